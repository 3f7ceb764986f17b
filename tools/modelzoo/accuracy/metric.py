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
- `coco_orig_segm_precision`: the same over the instances' masks (COCOeval's segm) against the
  annotation file's polygons / RLE.
- `coco_precision`: what Open Model Zoo's accuracy checker reports under that name, and what the
  model cards quote: the same matching and 101-point interpolation, but on the boxes after the
  post-processing, at most `max_detections` (default 20) detections per image and class, no
  area ranges, a crowd box is an ignored box matched by plain IoU (COCO uses the intersection
  over the detection's area for crowds), a difficult box (VOC's, CVAT's occluded) an ignored box
  matched once, and the checker's greedy matching (see evaluateImg).
  Both are means over the classes that have ground truth.

- `cmc` and `reid_map` (re-identification): every query's embedding against every gallery
  embedding (distance 1 - their dot product), the gallery pictures of the query's own identity
  seen by the query's own camera left out (the Market-1501 protocol); a query with no picture of
  its identity left is not counted. `cmc`: the share of queries whose first match is among the
  `top_k` nearest (without `first_match_break`, the share of each query's matches with fewer than
  `top_k` non-matches before it); `reid_map`: the mean over queries of the area under the
  precision/recall curve (trapezoids from recall 0 at precision 1, pictures at the same distance
  taken together; without `interpolated_auc`, steps).

- `pairwise_accuracy_subsets` (face verification, LFW): the pictures that start a pair, in the
  data set's order, cut into `subset_number` folds; for each, a threshold on the pairs of the
  other folds (their median distance, the best of 0, 0.01, ..., 3.99, or a number given) decides
  "same person" for the fold's own pairs; the mean of the folds' accuracies.

- `localization_recall` (place recognition): for each query its `top_k` nearest database
  pictures (squared L2 distance of the embeddings); each one taken within `distance_threshold`
  metres of the query counts one, over the number of queries (so above 1 with a top_k over 1,
  as the checker counts).

Each metric type of accuracy-check.yml is a scorer in SCORERS (its options in config.METRICS): a
new task's metric is a function here and an entry there.
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Classes, Detections, Embedding, Instances, SegmentationMask
from .dataset import VOC_COLORS, ClassLabel, GroundTruth, MaskTruth, PairTruth, PlaceTruth, ReidTruth

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


def _segm_result_doc(images: list[dict], categories: list[dict], detections: dict[int, Instances],
                     category_of_label: dict[int, int]) -> dict[str, Any]:
    """The instances' masks as COCO results, as pycocotools' loadRes makes them: the area and the
    box are the mask's own."""
    from pycocotools import mask as mask_utils

    anns = []
    for image_id, dets in detections.items():
        for label, score, rle in zip(dets.labels, dets.scores, dets.masks):
            if int(label) not in category_of_label:
                continue
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": category_of_label[int(label)],
                         "segmentation": rle, "score": float(score), "area": float(mask_utils.area(rle)),
                         "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0})
    return {"images": images, "categories": categories, "annotations": anns}


def coco_orig_precision(coco_doc: dict[str, Any], image_ids: list[int], detections: dict[int, Detections],
                        label_offset: int, include_boundaries: bool = False, full_label_map: bool = False,
                        iou_type: str = "bbox") -> float:
    """COCO's AP@[.50:.95] (COCOeval's stats[0]) on the images `image_ids` of `coco_doc`, of the
    boxes or (``iou_type`` "segm") of the instances' masks against the annotations' polygons/RLE."""
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
    if iou_type == "segm":
        dt = _coco(_segm_result_doc(gt_doc["images"], categories, detections,  # type: ignore[arg-type]
                                    category_of_label))
    else:
        dt = _coco(_result_doc(gt_doc["images"], categories, detections, category_of_label,
                               1 if include_boundaries else 0))
    evaluator = COCOeval(gt, dt, iou_type)
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
            # ignored: a crowd, or a difficult box (the checker's difficult_boxes: VOC's, CVAT's occluded)
            g_order = np.argsort([int(g["iscrowd"] or g.get("difficult", 0)) for g in gts], kind="mergesort")
            gts = [gts[i] for i in g_order]
            d_order = np.argsort([-d["score"] for d in dts], kind="mergesort")
            dts = [dts[i] for i in d_order[:maxDet]]
            ious = self.ious[imgId, catId]
            ious = ious[:, g_order] if len(ious) else ious
            thresholds = self.params.iouThrs
            crowd = [int(g["iscrowd"]) for g in gts]
            g_ignore = np.array([int(g["iscrowd"] or g.get("difficult", 0)) for g in gts], dtype=bool)
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
        difficult = gt.difficult if gt.difficult.size else np.zeros(len(gt.labels), dtype=bool)
        for box, label, crowd, hard in zip(gt.boxes, gt.labels, gt.iscrowd, difficult):
            bbox = _xywh(box)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(label), "bbox": bbox,
                         "area": bbox[2] * bbox[3], "iscrowd": int(crowd), "difficult": int(hard)})
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


def _coco_orig_segm_precision(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                              detections: dict[int, Instances], ground_truth: dict[int, GroundTruth]) -> float:
    assert dataset.coco is not None
    return coco_orig_precision(dataset.coco, [s.image_id for s in dataset.samples], detections,  # type: ignore
                               config.label_offset, full_label_map=config.full_label_map, iou_type="segm")


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
    aps = voc_aps(truth, detections, labels, integral, overlap_threshold, ignore_difficult, include_boundaries,
                  allow_multiple_matches_per_ignored, distinct_conf, use_filtered_tp)
    return float(np.mean(list(aps.values()))) if aps else 0.0


def voc_aps(truth: list[GroundTruth], detections: list[Detections], labels: list[int], integral: str = "max",
            overlap_threshold: float = 0.5, ignore_difficult: bool = True, include_boundaries: bool = True,
            allow_multiple_matches_per_ignored: bool = False, distinct_conf: bool = False,
            use_filtered_tp: bool = False) -> dict[int, float]:
    """Each class's AP by its label, for the classes with a detection (`map`'s print_vector)."""
    boundary = 1.0 if include_boundaries else 0.0
    eps = np.finfo(float).eps
    aps = {}
    for label in labels:
        tp, fp, scores, counted = _class_matches(label, truth, detections, overlap_threshold, ignore_difficult,
                                                 allow_multiple_matches_per_ignored, boundary, use_filtered_tp)
        if not tp.size:
            continue
        at = np.r_[np.flatnonzero(np.diff(scores)), tp.size - 1] if distinct_conf else np.arange(tp.size)
        tp, fp = np.cumsum(tp)[at], np.cumsum(fp)[at]
        aps[label] = average_precision(tp / np.maximum(tp + fp, eps), tp / np.maximum(counted, eps), integral)
    return aps


def _map(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", detections: dict[int, Detections],
         ground_truth: dict[int, GroundTruth]) -> float:
    order = list(ground_truth)
    labels = list(dataset.label_of_category(config.label_offset, config.full_label_map).values())
    o = metric.options
    return voc_map([ground_truth[i] for i in order], [detections[i] for i in order], labels, o["integral"],
                   float(o["overlap_threshold"]), o["ignore_difficult"], o["include_boundaries"],
                   o["allow_multiple_matches_per_ignored"], o["distinct_conf"], o["use_filtered_tp"])


def _map_per_class(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                   detections: dict[int, Detections], ground_truth: dict[int, GroundTruth]) -> dict[str, float]:
    """`map` with print_vector: each class's AP by the class's name (the classes with a detection)."""
    order = list(ground_truth)
    label_of = dataset.label_of_category(config.label_offset, config.full_label_map)
    name_of = {label_of[c["id"]]: str(c["name"]) for c in dataset.categories()}
    o = metric.options
    aps = voc_aps([ground_truth[i] for i in order], [detections[i] for i in order], list(label_of.values()),
                  o["integral"], float(o["overlap_threshold"]), o["ignore_difficult"], o["include_boundaries"],
                  o["allow_multiple_matches_per_ignored"], o["distinct_conf"], o["use_filtered_tp"])
    return {name_of[label]: value for label, value in aps.items()}


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """[true, predicted] pixel counts over the pixels whose both labels are classes (VOC's 255
    border, any label out of range, is left out)."""
    t, p = truth.reshape(-1).astype(np.int64), predicted.reshape(-1).astype(np.int64)
    keep = (t >= 0) & (t < classes) & (p >= 0) & (p < classes)
    return np.bincount(classes * t[keep] + p[keep], minlength=classes * classes).reshape(classes, classes)


def mean_iou(matrix: np.ndarray, ignore_label: int | None = None) -> float:
    """The mean over classes of TP / (TP + FP + FN), classes never seen nor predicted left out
    (the checker's mean_iou; print_scalar's and print_vector's `mean`). ``ignore_label``'s IoU is
    left out of the mean (whether its pixels count in the others' unions is the matrix's affair:
    shared_matrix)."""
    diagonal = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=1) + matrix.sum(axis=0) - diagonal
    iou = np.divide(diagonal, union, out=np.full_like(diagonal, np.nan), where=union != 0)
    if ignore_label is not None and ignore_label < len(iou):
        iou = np.delete(iou, ignore_label)
    iou = iou[~np.isnan(iou)]
    return float(np.mean(iou)) if iou.size else math.nan


def pixel_accuracy(matrix: np.ndarray, ignore_label: int | None = None) -> float:
    """The share of counted pixels labelled right (the checker's segmentation_accuracy). Its own
    ignore_label changes nothing here: only the matrix's (shared_matrix) does, as in the checker."""
    total = matrix.sum()
    return float(np.diag(matrix).sum() / total) if total else math.nan


def mean_accuracy(matrix: np.ndarray) -> float:
    """The mean over classes of the share of each one's pixels labelled right, classes with no
    pixel left out (the checker's mean_accuracy, whose own ignore_label leaves nothing out)."""
    diagonal = np.diag(matrix).astype(np.float64)
    count = matrix.sum(axis=1)
    share = np.divide(diagonal, count, out=np.full_like(diagonal, np.nan), where=count != 0)
    share = share[~np.isnan(share)]
    return float(np.mean(share)) if share.size else math.nan


def shared_matrix(matrix: np.ndarray, ignore_label: int | None) -> np.ndarray:
    """The checker's segmentation metrics share one matrix, summed by whichever of them runs first
    on each picture (the yml's first): with that metric's ignore_label, the class's row and column
    are emptied, so its pixels count in no other class's union either (measured against
    accuracy_check 2023.3: icnet-camvid's mean_iou with ignore_label 11 is computed so)."""
    if ignore_label is None or ignore_label >= len(matrix):
        return matrix
    out = matrix.copy()
    out[ignore_label, :] = 0
    out[:, ignore_label] = 0
    return out


_LAST_MATRIX: list = []  # (predictions, ground truth, use_argmax, matrix) of the last call: each metric reads it


def _segmentation_matrix(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                         predictions: dict[int, SegmentationMask], ground_truth: dict[int, MaskTruth]) -> np.ndarray:
    """The confusion matrix over every picture, as the yml's first segmentation metric makes it
    (its use_argmax and ignore_label: shared_matrix); each mask read once per run."""
    from .config import SEGMENTATION_METRICS

    first = next(m for m in config.metrics if m.type in SEGMENTATION_METRICS)
    use_argmax = first.options["use_argmax"]
    if _LAST_MATRIX and _LAST_MATRIX[0] is predictions and _LAST_MATRIX[1] is ground_truth \
            and _LAST_MATRIX[2] == use_argmax:
        matrix = _LAST_MATRIX[3]
    else:
        matrix = _matrix(dataset, predictions, ground_truth, use_argmax)
        _LAST_MATRIX[:] = [predictions, ground_truth, use_argmax, matrix]
    return shared_matrix(matrix, first.options["ignore_label"])


def _matrix(dataset: "Dataset", predictions: dict[int, SegmentationMask], ground_truth: dict[int, MaskTruth],
            use_argmax: bool) -> np.ndarray:
    from ..errors import AccuracyConfigError

    classes = len(dataset.categories())
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for image_id, truth in ground_truth.items():
        labels = truth.labels(dataset.colors)
        mask = predictions[image_id].mask
        predicted = np.argmax(mask, axis=0) if use_argmax else mask.astype(np.int64)
        if predicted.size != labels.size:
            raise AccuracyConfigError(f"{truth.path}: the predicted mask is {'x'.join(map(str, predicted.shape))}, "
                                      f"the annotation {'x'.join(map(str, labels.shape))} (resize_segmentation_mask "
                                      "brings one to the other's size)")
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


REID_BLOCK = 256  # queries ranked at once: Market-1501's 3,368 x 19,732 distances are never held whole


def reid_rankings(query: np.ndarray, gallery: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray,
                  query_cameras: np.ndarray, gallery_cameras: np.ndarray, separate_camera_set: bool = False
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each query (embeddings [Q, D], gallery [G, D]): whether each gallery picture it may be
    matched with is of its identity, nearest first, and their distances (1 - the dot product). The
    gallery pictures of its identity from its camera are left out, with ``separate_camera_set``
    every picture from its camera. Equal distances keep the gallery's order."""
    gallery64 = gallery.astype(np.float64)
    for start in range(0, len(query), REID_BLOCK):
        distances = 1.0 - query[start:start + REID_BLOCK].astype(np.float64) @ gallery64.T
        order = np.argsort(distances, axis=1, kind="stable")
        for row, ranked in enumerate(order):
            q = start + row
            same_camera = gallery_cameras[ranked] == query_cameras[q]
            valid = (gallery_ids[ranked] != query_ids[q]) | ~same_camera
            if separate_camera_set:
                valid &= ~same_camera
            kept = ranked[valid]
            yield gallery_ids[kept] == query_ids[q], distances[row, kept]


def cmc_score(rankings: Iterable[tuple[np.ndarray, np.ndarray]], top_k: int = 1, first_match_break: bool = True
              ) -> float:
    """The checker's `cmc` at ``top_k`` over queries that have a match (NaN when none has)."""
    scores = []
    for matches, _ in rankings:
        hits = np.flatnonzero(matches)
        if not hits.size:
            continue
        if first_match_break:
            scores.append(float(hits[0] < top_k))
        else:  # each match ranked among the non-matches only
            scores.append(float(np.mean(hits - np.arange(hits.size) < top_k)))
    return float(np.mean(scores)) if scores else math.nan


def ranked_average_precision(matches: np.ndarray, distances: np.ndarray, interpolated: bool = True) -> float:
    """One query's area under its precision/recall curve, the gallery ranked nearest first: one
    point per distinct distance (pictures at the same distance come together), from (0, 1)."""
    ends = np.r_[np.flatnonzero(np.diff(distances)), matches.size - 1]
    found = np.cumsum(matches)[ends].astype(np.float64)
    precision, recall = found / (ends + 1), found / found[-1]
    steps = np.diff(np.r_[0.0, recall])
    if not interpolated:
        return float(np.sum(steps * precision))
    return float(np.sum(steps * (precision + np.r_[1.0, precision[:-1]]) / 2))


def reid_map(rankings: Iterable[tuple[np.ndarray, np.ndarray]], interpolated_auc: bool = True) -> float:
    """The checker's `reid_map`: the mean average precision of the queries that have a match."""
    aps = [ranked_average_precision(m, d, interpolated_auc) for m, d in rankings if m.any()]
    return float(np.mean(aps)) if aps else math.nan


def _reid_split(predictions: dict[int, Embedding], ground_truth: dict[int, ReidTruth], separate_camera_set: bool
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from ..errors import AccuracyConfigError

    sides = {}
    for is_query in (True, False):
        ids = [i for i, t in ground_truth.items() if t.query == is_query]
        if not ids:
            raise AccuracyConfigError(f"the data set has no {'query' if is_query else 'gallery'} pictures to "
                                      "compare (--subset or a shard took none)")
        vectors = [predictions[i].vector for i in ids]
        if len({v.size for v in vectors}) != 1:
            raise AccuracyConfigError("reid: the embeddings differ in size from picture to picture")
        sides[is_query] = (np.stack(vectors), np.array([ground_truth[i].identity for i in ids]),
                           np.array([ground_truth[i].camera for i in ids]))
    (query, query_ids, query_cameras), (gallery, gallery_ids, gallery_cameras) = sides[True], sides[False]
    if query.shape[1] != gallery.shape[1]:
        raise AccuracyConfigError("reid: the query and gallery embeddings differ in size")
    return reid_rankings(query, gallery, query_ids, gallery_ids, query_cameras, gallery_cameras, separate_camera_set)


def _cmc(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict[int, Embedding],
         ground_truth: dict[int, ReidTruth]) -> float:
    o = metric.options
    return cmc_score(_reid_split(predictions, ground_truth, o["separate_camera_set"]), int(o["top_k"]),
                     o["first_match_break"])


def _reid_map(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict[int, Embedding],
              ground_truth: dict[int, ReidTruth]) -> float:
    return reid_map(_reid_split(predictions, ground_truth, False), metric.options["interpolated_auc"])


def localization_recall(query: np.ndarray, database: np.ndarray, query_positions: np.ndarray,
                        database_positions: np.ndarray, top_k: int = 1, distance_threshold: float = 25) -> float:
    """The checker's `localization_recall`: hits among each query's top_k nearest, over the queries."""
    query64, database64 = query.astype(np.float64), database.astype(np.float64)
    squared = np.sum(database64 ** 2, axis=1)
    hits = 0
    for start in range(0, len(query64), REID_BLOCK):
        block = query64[start:start + REID_BLOCK]
        distances = np.sum(block ** 2, axis=1, keepdims=True) + squared - 2 * block @ database64.T
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :top_k]
        for row, found in enumerate(nearest):
            metres = np.linalg.norm(database_positions[found] - query_positions[start + row], axis=1)
            hits += int(np.sum(metres < distance_threshold))
    return hits / len(query64) if len(query64) else math.nan


def _localization_recall(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                         predictions: dict[int, Embedding], ground_truth: dict[int, PlaceTruth]) -> float:
    from ..errors import AccuracyConfigError

    sides = {}
    for is_query in (True, False):
        ids = [i for i, t in ground_truth.items() if t.query == is_query]
        if not ids:
            raise AccuracyConfigError(f"the data set has no {'query' if is_query else 'database'} pictures to "
                                      "compare (--subset or a shard took none)")
        sides[is_query] = (np.stack([predictions[i].vector for i in ids]),
                           np.array([[ground_truth[i].easting, ground_truth[i].northing] for i in ids]))
    return localization_recall(sides[True][0], sides[False][0], sides[True][1], sides[False][1],
                               int(metric.options["top_k"]), float(metric.options["distance_threshold"]))


Pair = tuple[int, int, bool]  # (first picture's id, second's, the same person)


def pair_distances(embeddings: dict[int, np.ndarray], pairs: list[Pair], method: str = "euclidian_distance",
                   mean: np.ndarray | float = 0.0) -> np.ndarray:
    """The checker's distance of each pair: `euclidian_distance` 0.5 * (1 - the dot product) (for
    unit-length embeddings), `cosine_distance` the angle over pi; ``mean`` taken off both first."""
    first = np.array([embeddings[a] for a, _, _ in pairs], dtype=np.float64) - mean
    second = np.array([embeddings[b] for _, b, _ in pairs], dtype=np.float64) - mean
    dot = np.sum(first * second, axis=1)
    if method == "euclidian_distance":
        return 0.5 * (1 - dot)
    with np.errstate(invalid="ignore", divide="ignore"):  # (as the checker: no clipping; NaN is "not the same")
        return np.arccos(dot / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))) / np.pi


def pairwise_accuracy(embeddings: dict[int, np.ndarray], train: list[Pair], test: list[Pair],
                      min_score: str | float = "train_median", method: str = "euclidian_distance",
                      subtract_mean: bool = False) -> float:
    """The checker's `pairwise_accuracy` of the ``test`` pairs: "the same person" when the
    distance is below a threshold chosen on the ``train`` pairs (NaN without test pairs)."""
    mean: np.ndarray | float = 0.0
    if min_score in ("train_median", "best_train_threshold"):
        if not train:
            return math.nan
        if subtract_mean:  # every embedding of every train pair, as often as it appears
            mean = np.mean(np.array([embeddings[i] for k in (0, 1) for i in (p[k] for p in train)],
                                    dtype=np.float64), axis=0)
        distances = pair_distances(embeddings, train, method, mean)
        if min_score == "train_median":
            threshold = float(np.median(distances))
        else:
            same = np.array([p[2] for p in train])
            candidates = np.arange(0, 4, 0.01)
            right = [int(np.sum((distances < t) == same)) for t in candidates]
            threshold = float(candidates[int(np.argmax(right))])
    else:
        threshold = float(min_score)
    if not test:
        return math.nan
    distances = pair_distances(embeddings, test, method, mean)
    return float(np.mean((distances < threshold) == np.array([p[2] for p in test])))


def verification_folds(starts: list[int], truth: dict[int, PairTruth], present: set[int], folds: int
                       ) -> list[tuple[list[Pair], list[Pair]]]:
    """(train pairs, test pairs) of each fold: the pictures that start a pair (``starts``, in the
    data set's order) cut into ``folds`` runs, a pair whose picture is not ``present`` left out."""
    def pairs_of(ids: list[int]) -> list[Pair]:
        return [(i, j, same) for i in ids if i in present
                for partners, same in ((truth[i].same, True), (truth[i].other, False)) for j in partners
                if j in present]

    n = len(starts)
    result = []
    for k in range(folds):
        low, high = k * n // folds, (k + 1) * n // folds
        result.append((pairs_of(starts[:low] + starts[high:]), pairs_of(starts[low:high])))
    return result


def pairwise_accuracy_subsets(embeddings: dict[int, np.ndarray], truth: dict[int, PairTruth], folds: int = 10,
                              min_score: str | float = "train_median", method: str = "euclidian_distance",
                              subtract_mean: bool = False) -> float:
    """The checker's `pairwise_accuracy_subsets`: the mean over folds that have test pairs (0
    when there are fewer pictures starting a pair than folds, or no fold has any)."""
    starts = [i for i, t in truth.items() if t.same or t.other]
    if folds > len(starts):
        return 0.0
    scores = [pairwise_accuracy(embeddings, train, test, min_score, method, subtract_mean)
              for train, test in verification_folds(starts, truth, set(embeddings), folds)]
    scores = [s for s in scores if not math.isnan(s)]
    return float(np.mean(scores)) if scores else 0.0


def _pairwise_accuracy_subsets(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset",
                               predictions: dict[int, Embedding], ground_truth: dict[int, PairTruth]) -> float:
    o = metric.options
    return pairwise_accuracy_subsets({i: p.vector for i, p in predictions.items()}, ground_truth,
                                     int(o["subset_number"]), o["min_score"], o["distance_method"], o["subtract_mean"])


def _mean_accuracy(config: "AccuracyConfig", metric: "Metric", dataset: "Dataset", predictions: dict,
                   ground_truth: dict) -> float:
    return mean_accuracy(_segmentation_matrix(config, metric, dataset, predictions, ground_truth))


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


# metric type -> its per-class values, reported as NAME@class when the yml says print_vector
VECTOR_SCORERS: dict[str, Callable[..., dict[str, float]]] = {"map": _map_per_class}
SCORERS: dict[str, Scorer] = {"coco_precision": _coco_precision, "coco_orig_precision": _coco_orig_precision,
                              "coco_orig_segm_precision": _coco_orig_segm_precision,
                              "accuracy": _accuracy, "map": _map, "mean_iou": _mean_iou,
                              "segmentation_accuracy": _segmentation_accuracy, "cmc": _cmc, "reid_map": _reid_map,
                              "pairwise_accuracy_subsets": _pairwise_accuracy_subsets,
                              "localization_recall": _localization_recall, "mean_accuracy": _mean_accuracy,
                              "psnr": _picture_mean, "ssim": _picture_mean}
