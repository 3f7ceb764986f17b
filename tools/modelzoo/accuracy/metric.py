"""Classification's `accuracy` (top-k), Pascal VOC's `map`, and COCO detection metrics through
pycocotools' COCOeval (the official evaluator).

- `map`: the checker's VOC average precision per class (its bbox_match and average_precision:
  detections of a class over all pictures by falling score, each matched to the unused ground
  truth box it overlaps most, at least `overlap_threshold`; a difficult box, with
  `ignore_difficult`, neither counts as ground truth nor makes its match a false positive;
  `integral` 11point or max), averaged over the classes that have a detection.

- `coco_orig_precision`: COCOeval as COCO defines it (AP at IoU .50:.05:.95, all areas, at most
  100 detections per image and class), against the annotation file's own boxes; as in the
  checker, a detection's width and height count its last pixel (`include_boundaries`, default
  true: x_max - x_min + 1).
- `coco_precision`: what Open Model Zoo's accuracy checker reports under that name, and what the
  model cards quote: the same matching and 101-point interpolation, but on the boxes after the
  post-processing, at most `max_detections` (default 20) detections per image and class, no
  area ranges, a crowd box is an ignored box matched by plain IoU (COCO uses the intersection
  over the detection's area for crowds), and the checker's greedy matching (see evaluateImg).
  Both are means over the classes that have ground truth.

Each metric type of accuracy-check.yml is a scorer in SCORERS (its options in config.METRICS): a
new task's metric is a function here and an entry there.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Classes, Detections, SegmentationMask
from .dataset import VOC_COLORS, ClassLabel, GroundTruth, MaskTruth

if TYPE_CHECKING:
    from .config import AccuracyConfig, Metric
    from .dataset import Dataset


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())  # pycocotools prints its progress


def _coco(doc: dict[str, Any]):
    from pycocotools.coco import COCO

    with _quiet():
        coco = COCO()
        coco.dataset = doc
        coco.createIndex()
    return coco


def _xywh(box: np.ndarray, delta: float = 0) -> list[float]:
    return [float(box[0]), float(box[1]), float(box[2] - box[0] + delta), float(box[3] - box[1] + delta)]


def _result_doc(images: list[dict], categories: list[dict], detections: dict[int, Detections],
                category_of_label: dict[int, int], delta: float = 0) -> dict[str, Any]:
    anns = []
    for image_id, dets in detections.items():
        for label, score, box in zip(dets.labels, dets.scores, dets.boxes):
            if int(label) not in category_of_label:
                continue  # a label outside the dataset's classes (the background)
            bbox = _xywh(box, delta)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": category_of_label[int(label)],
                         "bbox": bbox, "score": float(score), "area": bbox[2] * bbox[3], "iscrowd": 0})
    return {"images": images, "categories": categories, "annotations": anns}


def _mean_precision(evaluator, area: int = 0, max_det: int = -1) -> float:
    precision = evaluator.eval["precision"][:, :, :, area, max_det]
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else math.nan


def coco_orig_precision(coco_doc: dict[str, Any], image_ids: list[int], detections: dict[int, Detections],
                        label_offset: int, include_boundaries: bool = False, full_label_map: bool = False) -> float:
    """COCO's AP@[.50:.95] (COCOeval's stats[0]) on the images `image_ids` of `coco_doc`."""
    from pycocotools.cocoeval import COCOeval

    categories = coco_doc["categories"]
    category_of_label = {(c["id"] if full_label_map else i + label_offset): c["id"] for i, c in enumerate(categories)}
    wanted = set(image_ids)
    gt_doc = {"images": [im for im in coco_doc["images"] if im["id"] in wanted], "categories": categories,
              "annotations": [dict(a, id=a.get("id", i + 1)) for i, a in enumerate(coco_doc["annotations"])
                              if a["image_id"] in wanted]}
    for ann in gt_doc["annotations"]:  # COCO's area: the annotation's own, else the box's
        if "area" not in ann:
            ann["area"] = ann["bbox"][2] * ann["bbox"][3]
        ann.setdefault("iscrowd", 0)
    gt = _coco(gt_doc)
    dt = _coco(_result_doc(gt_doc["images"], categories, detections, category_of_label,
                           1 if include_boundaries else 0))
    evaluator = COCOeval(gt, dt, "bbox")
    evaluator.params.imgIds = sorted(wanted)
    with _quiet():
        evaluator.evaluate()
        evaluator.accumulate()
    return _mean_precision(evaluator, area=0, max_det=evaluator.params.maxDets.index(100))


def _checker_eval(gt, dt, max_detections: int):
    """COCOeval with the accuracy checker's rules: plain IoU also for crowd boxes, one area range."""
    from pycocotools import mask as mask_utils
    from pycocotools.cocoeval import COCOeval

    class CheckerEval(COCOeval):
        def computeIoU(self, imgId, catId):  # noqa: N802 (pycocotools' names)
            gts = self._gts[imgId, catId]
            dts = sorted(self._dts[imgId, catId], key=lambda d: -d["score"])[: self.params.maxDets[-1]]
            if not gts or not dts:
                return []
            return mask_utils.iou([d["bbox"] for d in dts], [g["bbox"] for g in gts], [0] * len(gts))

        def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802
            # COCO's greedy matching, as the checker does it: a ground-truth box remembers the
            # index of the detection it matched, so one matched by the best detection (index 0)
            # looks unmatched and can be matched again (the checker's number includes this).
            gts, dts = self._gts[imgId, catId], self._dts[imgId, catId]
            if not gts and not dts:
                return None
            g_order = np.argsort([int(g["iscrowd"]) for g in gts], kind="mergesort")
            gts = [gts[i] for i in g_order]
            d_order = np.argsort([-d["score"] for d in dts], kind="mergesort")
            dts = [dts[i] for i in d_order[:maxDet]]
            ious = self.ious[imgId, catId]
            ious = ious[:, g_order] if len(ious) else ious
            thresholds = self.params.iouThrs
            crowd = [int(g["iscrowd"]) for g in gts]
            g_ignore = np.array(crowd, dtype=bool)
            gtm = np.zeros((len(thresholds), len(gts)))
            dtm = np.zeros((len(thresholds), len(dts)))
            dt_ignore = np.zeros((len(thresholds), len(dts)), dtype=bool)
            if len(ious):
                for t_index, t in enumerate(thresholds):
                    for d_index in range(len(dts)):
                        best, match = min(t, 1 - 1e-10), -1
                        for g_index in range(len(gts)):
                            if gtm[t_index, g_index] > 0 and not crowd[g_index]:
                                continue
                            if match > -1 and not g_ignore[match] and g_ignore[g_index]:
                                break
                            if ious[d_index, g_index] < best:
                                continue
                            best, match = ious[d_index, g_index], g_index
                        if match == -1:
                            continue
                        dt_ignore[t_index, d_index] = g_ignore[match]
                        dtm[t_index, d_index] = 1
                        gtm[t_index, match] = d_index
            return {"image_id": imgId, "category_id": catId, "aRng": aRng, "maxDet": maxDet,
                    "dtIds": [d["id"] for d in dts], "gtIds": [g["id"] for g in gts], "dtMatches": dtm,
                    "gtMatches": gtm, "dtScores": [d["score"] for d in dts], "gtIgnore": g_ignore,
                    "dtIgnore": dt_ignore}

    evaluator = CheckerEval(gt, dt, "bbox")
    evaluator.params.maxDets = [max_detections]
    evaluator.params.areaRng = [[-math.inf, math.inf]]
    evaluator.params.areaRngLbl = ["all"]
    return evaluator


def coco_precision(ground_truth: dict[int, GroundTruth], detections: dict[int, Detections], labels: list[int],
                   max_detections: int = 20, thresholds: tuple[float, ...] | None = None) -> float:
    """Open Model Zoo's `coco_precision` on post-processed boxes; `labels` are the dataset's classes."""
    categories = [{"id": int(label), "name": str(label)} for label in labels]
    images = [{"id": image_id} for image_id in ground_truth]
    anns = []
    for image_id, gt in ground_truth.items():
        for box, label, crowd in zip(gt.boxes, gt.labels, gt.iscrowd):
            bbox = _xywh(box)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(label), "bbox": bbox,
                         "area": bbox[2] * bbox[3], "iscrowd": int(crowd)})
    gt_coco = _coco({"images": images, "categories": categories, "annotations": anns})
    dt_coco = _coco(_result_doc(images, categories, detections, {int(label): int(label) for label in labels}))
    evaluator = _checker_eval(gt_coco, dt_coco, max_detections)
    if thresholds is not None:
        evaluator.params.iouThrs = np.array(thresholds, dtype=np.float64)
    with _quiet():
        evaluator.evaluate()
        evaluator.accumulate()
    return _mean_precision(evaluator)


def _coco_precision(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                    detections: dict[int, Detections], ground_truth: dict[int, GroundTruth]) -> float:
    labels = list(dataset.label_of_category(config.label_offset, config.full_label_map).values())
    return coco_precision(ground_truth, detections, labels, int(metric.options["max_detections"]),
                          tuple(metric.options["threshold"]))


def _coco_orig_precision(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                         detections: dict[int, Detections], ground_truth: dict[int, GroundTruth]) -> float:
    assert dataset.coco is not None
    return coco_orig_precision(dataset.coco, [s.image_id for s in dataset.samples], detections, config.label_offset,
                               bool(metric.options["include_boundaries"]), config.full_label_map)


def top_k_accuracy(labels: list[int], predictions: list[Classes], k: int) -> float:
    """The share of pictures whose label is among the prediction's k best (the checker's `accuracy`)."""
    if not labels:
        return math.nan
    hits = sum(int(label in prediction.top_k(k)) for label, prediction in zip(labels, predictions))
    return hits / len(labels)


def _accuracy(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict[int, Classes],
              ground_truth: dict[int, ClassLabel]) -> float:
    order = list(ground_truth)
    return top_k_accuracy([ground_truth[i].label for i in order], [predictions[i] for i in order],
                          int(metric.options["top_k"]))


def _overlaps(box: np.ndarray, boxes: np.ndarray, boundary: float, over_union: bool = True) -> np.ndarray:
    """IoU (or, with over_union false, the intersection over the box's own area) of one box
    with each of ``boxes``; a width counts its last pixel when ``boundary`` is 1."""
    x0, y0 = np.maximum(boxes[:, 0], box[0]), np.maximum(boxes[:, 1], box[1])
    x1, y1 = np.maximum(x0, np.minimum(boxes[:, 2], box[2])), np.maximum(y0, np.minimum(boxes[:, 3], box[3]))
    inter = (x1 - x0 + boundary) * (y1 - y0 + boundary)
    own = (box[2] - box[0] + boundary) * (box[3] - box[1] + boundary)
    base = own + (boxes[:, 2] - boxes[:, 0] + boundary) * (boxes[:, 3] - boxes[:, 1] + boundary) - inter \
        if over_union else np.full(len(boxes), own, dtype=np.float64)
    return np.divide(inter, base, out=np.zeros_like(inter, dtype=np.float64), where=base != 0)


def _class_matches(label: int, truth: list[GroundTruth], detections: list[Detections], threshold: float,
                   ignore_difficult: bool, multiple_per_ignored: bool, boundary: float, use_filtered_tp: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One class's detections over every picture by falling score: (tp, fp, scores, the number
    of ground truth boxes that count). An ignored detection (a filter's, with ignore_difficult)
    is never a false positive, and is a true positive only with ``use_filtered_tp``."""
    scores = np.concatenate([d.scores[d.labels == label] for d in detections]) if detections else np.zeros(0)
    pictures = np.concatenate([np.full(int(np.sum(d.labels == label)), i) for i, d in enumerate(detections)]) \
        if detections else np.zeros(0, dtype=int)
    boxes = np.concatenate([d.boxes[d.labels == label] for d in detections]).reshape(-1, 4) if detections \
        else np.zeros((0, 4))
    ignored = np.concatenate([d.ignored_mask()[d.labels == label] for d in detections]) if detections \
        else np.zeros(0, dtype=bool)
    if not ignore_difficult:
        ignored = np.zeros_like(ignored)
    order = np.argsort(-scores)
    scores, pictures, boxes, ignored = scores[order], pictures[order], boxes[order], ignored[order]
    gt_boxes = [t.boxes[t.labels == label] for t in truth]
    hard = [(t.difficult[t.labels == label] if ignore_difficult and t.difficult.size else
             np.zeros(int(np.sum(t.labels == label)), dtype=bool)) for t in truth]
    used = [np.zeros(len(b), dtype=bool) for b in gt_boxes]
    tp, fp = np.zeros(len(scores)), np.zeros(len(scores))
    for k, (picture, box) in enumerate(zip(pictures, boxes)):
        candidates, difficult = gt_boxes[picture], hard[picture]
        if not len(candidates):
            fp[k] = 1
            continue
        overlap = _overlaps(box, candidates, boundary)
        if ignore_difficult and multiple_per_ignored and difficult.any():
            overlap[difficult] = _overlaps(box, candidates[difficult], boundary, over_union=False)
        best = np.max(overlap[~difficult]) if (~difficult).any() else -np.inf
        if best < threshold and difficult.any():
            best = np.max(overlap[difficult])
        if best < threshold:
            fp[k] = int(not ignored[k])
            continue
        hit = overlap == best
        if not difficult[hit].any():
            if used[picture][hit].any():
                fp[k] = int(not ignored[k])
            elif use_filtered_tp or not ignored[k]:
                tp[k] = 1
                used[picture][hit] = True
        elif not multiple_per_ignored:
            if used[picture][hit].any():
                fp[k] = int(not ignored[k])
            used[picture][hit] = True
    counted = sum(int(len(b) - np.sum(h)) for b, h in zip(gt_boxes, hard))
    return tp, fp, scores, counted


def average_precision(precision: np.ndarray, recall: np.ndarray, integral: str) -> float:
    """VOC's area under the precision/recall curve: `11point` (the best precision at recall of at
    least 0, 0.1, ..., 1, averaged; the checker's arange steps) or `max` (every recall change)."""
    if integral == "11point":
        return float(sum((np.max(precision[recall >= point]) if np.any(recall >= point) else 0.0) / 11.0
                         for point in np.arange(0.0, 1.1, 0.1)))
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: the best precision to the right
    changes = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def voc_map(truth: list[GroundTruth], detections: list[Detections], labels: list[int], integral: str = "max",
            overlap_threshold: float = 0.5, ignore_difficult: bool = True, include_boundaries: bool = True,
            allow_multiple_matches_per_ignored: bool = False, distinct_conf: bool = False,
            use_filtered_tp: bool = False) -> float:
    """The checker's `map` over pictures given in the same order in ``truth`` and ``detections``:
    the mean of the classes' APs, a class without any detection left out (0 when none has one)."""
    boundary = 1.0 if include_boundaries else 0.0
    eps = np.finfo(float).eps
    aps = []
    for label in labels:
        tp, fp, scores, counted = _class_matches(label, truth, detections, overlap_threshold, ignore_difficult,
                                                 allow_multiple_matches_per_ignored, boundary, use_filtered_tp)
        if not tp.size:
            continue
        at = np.r_[np.flatnonzero(np.diff(scores)), tp.size - 1] if distinct_conf else np.arange(tp.size)
        tp, fp = np.cumsum(tp)[at], np.cumsum(fp)[at]
        aps.append(average_precision(tp / np.maximum(tp + fp, eps), tp / np.maximum(counted, eps), integral))
    return float(np.mean(aps)) if aps else 0.0


def _map(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", detections: dict[int, Detections],
         ground_truth: dict[int, GroundTruth]) -> float:
    order = list(ground_truth)
    labels = list(dataset.label_of_category(config.label_offset, config.full_label_map).values())
    o = metric.options
    return voc_map([ground_truth[i] for i in order], [detections[i] for i in order], labels, o["integral"],
                   float(o["overlap_threshold"]), o["ignore_difficult"], o["include_boundaries"],
                   o["allow_multiple_matches_per_ignored"], o["distinct_conf"], o["use_filtered_tp"])


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """[true, predicted] pixel counts over the pixels whose both labels are classes (VOC's 255
    border, any label out of range, is left out)."""
    t, p = truth.reshape(-1).astype(np.int64), predicted.reshape(-1).astype(np.int64)
    keep = (t >= 0) & (t < classes) & (p >= 0) & (p < classes)
    return np.bincount(classes * t[keep] + p[keep], minlength=classes * classes).reshape(classes, classes)


def mean_iou(matrix: np.ndarray, ignore_label: int | None = None) -> float:
    """The mean over classes of TP / (TP + FP + FN), classes never seen nor predicted left out
    (the checker's mean_iou, print_scalar). ``ignore_label``'s IoU is left out of the mean, but
    its pixels still count in the other classes' unions: what accuracy_check 2023.3 reports
    (measured against it; its per-picture matrices drop that row and column, its total does not)."""
    diagonal = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=1) + matrix.sum(axis=0) - diagonal
    iou = np.divide(diagonal, union, out=np.full_like(diagonal, np.nan), where=union != 0)
    if ignore_label is not None and ignore_label < len(iou):
        iou = np.delete(iou, ignore_label)
    iou = iou[~np.isnan(iou)]
    return float(np.mean(iou)) if iou.size else math.nan


def pixel_accuracy(matrix: np.ndarray, ignore_label: int | None = None) -> float:
    """The share of counted pixels labelled right (the checker's segmentation_accuracy). Its
    ignore_label changes nothing in accuracy_check 2023.3's number (measured: its total matrix
    keeps the class), so it changes nothing here."""
    total = matrix.sum()
    return float(np.diag(matrix).sum() / total) if total else math.nan


_LAST_MATRIX: list = []  # (predictions, ground truth, use_argmax, matrix) of the last call: each metric reads it


def _segmentation_matrix(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                         predictions: dict[int, SegmentationMask], ground_truth: dict[int, MaskTruth]) -> np.ndarray:
    """The confusion matrix over every picture (each mask read once per run, not once a metric)."""
    use_argmax = metric.options["use_argmax"]
    if _LAST_MATRIX and _LAST_MATRIX[0] is predictions and _LAST_MATRIX[1] is ground_truth \
            and _LAST_MATRIX[2] == use_argmax:
        return _LAST_MATRIX[3]
    matrix = _matrix(dataset, predictions, ground_truth, use_argmax)
    _LAST_MATRIX[:] = [predictions, ground_truth, use_argmax, matrix]
    return matrix


def _matrix(dataset: "Dataset", predictions: dict[int, SegmentationMask], ground_truth: dict[int, MaskTruth],
            use_argmax: bool) -> np.ndarray:
    from ..errors import AccuracyConfigError

    classes = len(dataset.categories())
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for image_id, truth in ground_truth.items():
        labels = truth.labels(VOC_COLORS)
        mask = predictions[image_id].mask
        predicted = np.argmax(mask, axis=0) if use_argmax else mask.astype(np.int64)
        if predicted.size != labels.size:
            raise AccuracyConfigError(f"{truth.path}: the predicted mask is {'x'.join(map(str, predicted.shape))}, "
                                      f"the annotation {'x'.join(map(str, labels.shape))} (resize_segmentation_mask "
                                      "brings it to the picture's size)")
        matrix += confusion(labels, predicted, classes)
    return matrix


def _mean_iou(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict,
              ground_truth: dict) -> float:
    return mean_iou(_segmentation_matrix(config, metric, dataset, predictions, ground_truth),
                    metric.options["ignore_label"])


def _segmentation_accuracy(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict,
                           ground_truth: dict) -> float:
    return pixel_accuracy(_segmentation_matrix(config, metric, dataset, predictions, ground_truth),
                          metric.options["ignore_label"])


Scorer = Callable[["AccuracyConfig", "Metric", "Dataset", dict, dict], float]
"""scorer(config, metric, dataset, predictions by image id, ground truth by image id) -> value."""

# The checker's image-quality weights of R, G and B in its psnr (ITU-R BT.601's luma, over 256)
PSNR_WEIGHTS = (65.738, 129.057, 25.064)


def psnr(target: np.ndarray, predicted: np.ndarray, scale_border: int = 4, color_order: str = "RGB",
         normalized_images: bool = False, unweighted_average: bool = False) -> float:
    """The checker's psnr of one picture, in dB: both squeezed, ``scale_border`` pixels cut from
    every side (of the prediction's size), a colour target made grey when the prediction is grey;
    a three-channel difference weighted as luma (channels read in ``color_order``) unless
    ``unweighted_average``; infinity when equal."""
    import cv2

    pred = np.squeeze(np.asarray(predicted)).astype(float)
    truth = np.squeeze(np.asarray(target)).astype(float)
    h, w = pred.shape[:2]
    b = scale_border
    pred, truth = pred[b:h - b, b:w - b], truth[b:h - b, b:w - b]
    if truth.ndim == 3 and pred.ndim == 2:
        code = cv2.COLOR_BGR2GRAY if color_order == "BGR" else cv2.COLOR_RGB2GRAY
        truth = cv2.cvtColor(truth.astype(np.float32), code).astype(float)
    if pred.shape != truth.shape:
        raise AccuracyConfigError(f"psnr: a {'x'.join(map(str, pred.shape))} prediction against a "
                                  f"{'x'.join(map(str, truth.shape))} target")
    diff = (pred - truth) / (1 if normalized_images else 255)
    if truth.ndim == 3 and truth.shape[2] == 3 and not unweighted_average:
        r, g, bl = (0, 1, 2) if color_order == "RGB" else (2, 1, 0)
        diff = (diff[:, :, r] * PSNR_WEIGHTS[0] + diff[:, :, g] * PSNR_WEIGHTS[1]
                + diff[:, :, bl] * PSNR_WEIGHTS[2]) / 256
    mse = float(np.mean(diff ** 2))
    return math.inf if mse == 0 else -10 * math.log10(mse)


def ssim(target: np.ndarray, predicted: np.ndarray) -> float:
    """The checker's ssim: one window over the whole picture (every channel together), not the
    mean over local windows of Wang et al.; constants for 8-bit pixels."""
    pred = np.asarray(predicted)
    truth = np.asarray(target)
    if truth.ndim < pred.ndim and pred.shape[-1] == 1:
        pred = np.squeeze(pred)
    if pred.shape != truth.shape:
        raise AccuracyConfigError(f"ssim: a {'x'.join(map(str, pred.shape))} prediction against a "
                                  f"{'x'.join(map(str, truth.shape))} target")
    mu_x, mu_y = np.mean(pred), np.mean(truth)
    var_x, var_y = np.var(pred), np.var(truth)
    cov = np.mean((pred - mu_x) * (truth - mu_y))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))


def picture_value(metric: "Metric", target: np.ndarray, predicted: np.ndarray) -> float:
    """One picture's value of an image-quality metric (psnr, ssim)."""
    if metric.type == "psnr":
        o = metric.options
        return psnr(target, predicted, o["scale_border"], o["color_order"], o["normalized_images"],
                    o["unweighted_average"])
    return ssim(target, predicted)


def _picture_mean(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict,
                  ground_truth: dict) -> float:
    """The mean over the pictures (as the checker's `mean`; its `std` is their spread)."""
    values = [p.values[metric.name] for p in predictions.values()]
    return float(np.mean(values)) if values else math.nan


SCORERS: dict[str, Scorer] = {"coco_precision": _coco_precision, "coco_orig_precision": _coco_orig_precision,
                              "accuracy": _accuracy, "map": _map, "mean_iou": _mean_iou,
                              "segmentation_accuracy": _segmentation_accuracy, "psnr": _picture_mean,
                              "ssim": _picture_mean}
