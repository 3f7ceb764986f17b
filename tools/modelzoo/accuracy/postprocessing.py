"""The box side of an accuracy-check.yml: back from the network's frame to the picture's pixels
(faster_rcnn_postprocessing_resize, resize_prediction_boxes), filter, nms, diou_nms, clip_boxes,
cast_to_int, shift_labels; the semantics of Open Model Zoo's accuracy checker."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Detections, Picture, PictureScores, SegmentationMask, greedy_nms, nms
from .config import TASK_OF_POSTPROCESSING, AccuracyConfig, Step
from .dataset import IMAGE_SETS, GroundTruth, ImageTruth, MaskTruth, resize_nearest
from .preprocessing import Geometry, frcnn_coefficients


def check_postprocessing(config: AccuracyConfig) -> None:
    """Refuse, before any inference, a combination the steps cannot undo."""
    geometric = [s.type for s in config.preprocessing if s.type in ("resize", "padding")]
    for step in config.postprocessing:
        if step.type == "faster_rcnn_postprocessing_resize":
            pads = [s for s in config.preprocessing if s.type == "padding"]
            if geometric not in (["resize"], ["resize", "padding"]) or any(
                    p.options["pad_type"] != "right_bottom" for p in pads):
                raise AccuracyConfigError(f"{config.path}: faster_rcnn_postprocessing_resize needs a resize, or a "
                                          "resize then a right_bottom padding, as the geometric preprocessing")


def _scale(dets: Detections, sx: float, sy: float) -> None:
    dets.boxes[:, [0, 2]] *= sx
    dets.boxes[:, [1, 3]] *= sy


def _clip(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    out = boxes.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def _rescale(geometry: Geometry) -> tuple[float, float]:
    """resize_prediction_boxes with rescale: boxes in the resized picture's pixels (the checker's
    `image_info`, the last resize's size; the picture's own without one) back to the picture's."""
    resizes = [op for name, op in geometry.operations if name == "resize"]
    if not resizes:
        return 1.0, 1.0
    last = resizes[-1]
    width = last["original_width"] * last["scale_x"]
    height = last["original_height"] * last["scale_y"]
    return geometry.width / round(width), geometry.height / round(height)


def in_range(values: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """The checker's in_interval: at least the low bound and, when there is a high one (not 0),
    below it."""
    inside = values >= bounds[0]
    if len(bounds) > 1 and bounds[1]:
        inside &= values < bounds[1]
    return inside


def caught(criterion: str, value: Any, boxes: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """[N] booleans: the boxes one criterion of the checker's `filter` catches (``scores`` None
    for the ground truth, which no confidence filters)."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if criterion == "min_confidence":
        return np.zeros(len(boxes), dtype=bool) if scores is None else scores < float(value)
    if criterion == "height_range":
        return ~in_range(height, value)
    if criterion == "width_range":
        return ~in_range(width, value)
    if criterion == "is_empty":
        return (width <= 0) | (height <= 0)
    if criterion == "aspect_ratio":  # height over width
        return ~in_range(height / np.maximum(width, np.finfo(float).eps), value)
    # min_visibility: only a data set with visibility levels has any to compare, and none of ours has
    return np.zeros(len(boxes), dtype=bool)


def _filter(options: dict[str, Any], dets: Detections, gt: GroundTruth | None
            ) -> tuple[Detections, GroundTruth | None]:
    """Each criterion in the yml's order, on the ground truth then the predictions (apply_to):
    what it catches removed (remove_filtered) or marked ignored (the ground truth's difficult
    flags, the predictions' ignored ones), as the checker's filter does."""
    to_truth = options["apply_to"] in ("annotation", "all") and gt is not None
    to_predictions = options["apply_to"] in ("prediction", "all")
    for criterion in options["criteria"]:
        value = options[criterion]
        if to_truth:
            hit = caught(criterion, value, gt.boxes, None)
            if options["remove_filtered"]:
                keep = ~hit
                gt = dataclasses.replace(gt, boxes=gt.boxes[keep], labels=gt.labels[keep], iscrowd=gt.iscrowd[keep],
                                         difficult=gt.difficult[keep] if gt.difficult.size else gt.difficult)
            else:
                hard = gt.difficult.astype(bool) if gt.difficult.size else np.zeros(len(hit), dtype=bool)
                gt = dataclasses.replace(gt, difficult=hard | hit)
        if to_predictions:
            hit = caught(criterion, value, dets.boxes, dets.scores)
            dets = dets.take(~hit) if options["remove_filtered"] else \
                dataclasses.replace(dets, ignored=dets.ignored_mask() | hit)
    return dets, gt


def diou_nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, include_boundaries: bool = True,
             keep_top_k: int | None = None) -> np.ndarray:
    """The checker's `diou_nms`: greedy as ``nms``, but a box is dropped when its IoU with a kept
    one, less (squared distance between their centres / squared diagonal of the box enclosing
    both) ** 0.6, is above ``overlap`` (the enclosing box without the boundary pixel)."""
    def diou(corners: np.ndarray, areas: np.ndarray, best: int, rest: np.ndarray, inter: np.ndarray,
             b: float) -> np.ndarray:
        x1, y1, x2, y2 = corners
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter, dtype=float), where=union != 0)
        diagonal = ((np.maximum(x2[best], x2[rest]) - np.minimum(x1[best], x1[rest])) ** 2
                    + (np.maximum(y2[best], y2[rest]) - np.minimum(y1[best], y1[rest])) ** 2 + 1e-16)
        centres = (((x1[rest] + x2[rest]) - (x1[best] + x2[best])) ** 2
                   + ((y1[rest] + y2[rest]) - (y1[best] + y2[best])) ** 2) / 4
        return iou - (centres / diagonal) ** 0.6

    return greedy_nms(boxes, scores, overlap, include_boundaries, keep_top_k, diou)


ROUND = {"nearest": np.rint, "nearest_to_zero": np.trunc, "lower": np.floor, "greater": np.ceil}


def _apply(step: Step, dets: Detections, gt: GroundTruth | None, geometry: Geometry
           ) -> tuple[Detections, GroundTruth | None]:
    if step.type == "faster_rcnn_postprocessing_resize":
        _scale(dets, *frcnn_coefficients(geometry))
    elif step.type == "resize_prediction_boxes":
        _scale(dets, *(_rescale(geometry) if step.options["rescale"] else (geometry.width, geometry.height)))
    elif step.type == "nms":
        keep = nms(dets.boxes, dets.scores, float(step.options["overlap"]), step.options["include_boundaries"],
                   step.options["keep_top_k"], step.options["use_min_area"])
        dets = dets.take(np.sort(keep))  # (the boxes kept stay in their order, as the checker removes the rest)
    elif step.type == "class_aware_nms":  # the same, each label's boxes on their own
        keep = [np.flatnonzero(dets.labels == label)[nms(dets.boxes[dets.labels == label],
                                                        dets.scores[dets.labels == label],
                                                        float(step.options["overlap"]),
                                                        step.options["include_boundaries"], step.options["keep_top_k"],
                                                        step.options["use_min_area"])]
                for label in np.unique(dets.labels)]
        dets = dets.take(np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int))
    elif step.type == "diou_nms":
        keep = diou_nms(dets.boxes, dets.scores, float(step.options["overlap"]), step.options["include_boundaries"],
                        step.options["keep_top_k"])
        dets = dets.take(np.sort(keep))
    elif step.type == "shift_labels":
        dets = Detections(dets.labels + int(step.options["offset"]), dets.scores, dets.boxes)
    elif step.type == "cast_to_int":
        rounding = ROUND[step.options["round_policy"]]
        if step.options["apply_to"] in ("prediction", "all"):
            dets = dataclasses.replace(dets, boxes=rounding(dets.boxes))
        if gt is not None and step.options["apply_to"] in ("annotation", "all"):
            gt = dataclasses.replace(gt, boxes=rounding(gt.boxes))
    elif step.type == "filter":
        dets, gt = _filter(step.options, dets, gt)
    elif step.type == "clip_boxes":
        h, w = step.size()
        width, height = (w or geometry.width), (h or geometry.height)
        if step.options["boxes_normalized"]:
            width = height = 1
        if step.options["apply_to"] in ("prediction", "all"):
            dets = dataclasses.replace(dets, boxes=_clip(dets.boxes, width, height))
        if gt is not None and step.options["apply_to"] in ("annotation", "all"):
            gt = dataclasses.replace(gt, boxes=_clip(gt.boxes, width, height))
    return dets, gt


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each 2-D mask (each class's map of a [C, H, W] one) as an 8-bit picture resized by Pillow's
    nearest neighbour (the checker's)."""
    if mask.ndim == 2:
        return resize_nearest(mask, width, height)
    return np.stack([_resize_mask(m, width, height) for m in mask])


def _unpad(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """crop_padded_prediction: the padding steps' borders taken off (top, left, bottom, right)."""
    for name, op in geometry.operations:
        if name == "padding":
            top, left, bottom, right = op["pad"]
            h, w = mask.shape[-2:]
            mask = mask[..., top:h - bottom, left:w - right]
    return mask


def _apply_mask(step: Step, pred: SegmentationMask, gt: MaskTruth | None, geometry: Geometry
                ) -> tuple[SegmentationMask, MaskTruth | None]:
    to = step.options.get("apply_to")
    on_prediction, on_annotation = to in ("prediction", "all"), gt is not None and to in ("annotation", "all")
    if step.type == "crop_padded_prediction":
        pred = SegmentationMask(_unpad(pred.mask, geometry))
    elif step.type == "resize_segmentation_mask":  # to the size given, else the picture's
        h, w = step.size()
        width, height = w or geometry.width, h or geometry.height
        resized = [op for name, op in geometry.operations if name == "resize"]
        if step.options["to_dst_image_size"] and resized:  # the checker's image_info: the last resize's size
            width, height = w or resized[-1]["dst_width"], h or resized[-1]["dst_height"]
        if on_prediction:
            pred = SegmentationMask(_resize_mask(pred.mask, width, height))
        if on_annotation:
            gt = gt.then("resize", (width, height))  # type: ignore[union-attr]
    elif step.type == "crop_or_pad" and gt is not None:  # (the annotation's, always)
        gt = gt.then("crop_or_pad", step.size())
    elif step.type == "encode_segmentation_mask" and on_annotation:  # (apply_to: annotation, config's check)
        gt = gt.then("encode")  # type: ignore[union-attr]
    elif step.type == "shift":  # the checker's: every value plus shift_value, as 16-bit integers
        value = int(step.options["shift_value"])
        if on_prediction:
            pred = SegmentationMask((pred.mask.astype(np.int64) + value).astype(np.int16))
        if on_annotation:
            gt = gt.then("shift", value)  # type: ignore[union-attr]
    return pred, gt


def _resize_picture(pixels: np.ndarray, width: int, height: int, realization: str) -> np.ndarray:
    """The checker's `resize` of a picture: Pillow's bicubic on its bytes (or OpenCV's bilinear,
    cast to bytes); one channel as a 2-D picture."""
    data = pixels if pixels.ndim == 2 or pixels.shape[-1] > 1 else pixels[:, :, 0]
    if realization == "pillow":
        from PIL import Image

        return np.array(Image.fromarray(data.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC))
    import cv2

    return cv2.resize(data, (width, height)).astype(np.uint8)


def _colorized(target: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The checker's colorization_recovery: the target (BGR) resized to the prediction, its
    lightness (BGR to Lab on 0..1) with the predicted a and b, back to BGR bytes (truncated)."""
    import cv2

    if ab.ndim != 3 or ab.shape[-1] != 2:
        raise AccuracyConfigError(f"colorization_recovery: a {list(ab.shape)} prediction (two channels, a and b, "
                                  "needed)")
    h, w = ab.shape[:2]
    resized = cv2.resize(target, (w, h)).astype(np.float32)
    lightness = cv2.cvtColor(resized / 255, cv2.COLOR_BGR2LAB)[:, :, 0]
    lab = np.concatenate((lightness[:, :, None], ab.astype(np.float32)), axis=2)
    return (cv2.cvtColor(lab, cv2.COLOR_Lab2BGR) * 255).astype(np.uint8)


def _corner(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    return pixels[:height, :width]


def _pictures(pred: Picture, gt: ImageTruth, geometry: Geometry, config: AccuracyConfig) -> PictureScores:
    """The image steps on the predicted and target pictures, then each metric's value for them."""
    from .metric import picture_value

    target = gt.pixels()
    pixels = pred.pixels
    for step in config.postprocessing:
        h, w = step.size()
        if step.type == "resize":  # (apply_to: prediction) to the target's size, as for super-resolution
            if IMAGE_SETS[config.dataset].scale:  # (a super-resolution target: its own size)
                size = (h or target.shape[0], w or target.shape[1])
            else:  # (any other target: the input picture's)
                size = (h or geometry.height, w or geometry.width)
            pixels = _resize_picture(pixels, size[1], size[0], step.options["resize_realization"])
        elif step.type == "resize_style_transfer":  # (the target only)
            from PIL import Image

            target = np.array(Image.fromarray(target).resize((step.options["dst_width"], step.options["dst_height"]),
                                                             Image.Resampling.BICUBIC))
        elif step.type == "colorization_recovery":
            pixels = _colorized(target, pixels)
        elif step.type == "corner_crop_image":
            size = (h or geometry.height, w or geometry.width)
            if step.options["apply_to"] in ("prediction", "all"):
                pixels = _corner(pixels, *size)
            if step.options["apply_to"] in ("annotation", "all"):
                target = _corner(target, *size)
    return PictureScores({m.name: picture_value(m, target, pixels) for m in config.metrics})


def postprocess(dets: Any, gt: Any, geometry: Geometry, config: AccuracyConfig) -> tuple[Any, Any]:
    """Detections in the original picture's pixels (or a mask at its size; or, for a predicted
    picture, its metric values), and the ground truth as the metric sees it."""
    if isinstance(dets, Picture):
        return _pictures(dets, gt, geometry, config), gt
    for step in config.postprocessing:
        if TASK_OF_POSTPROCESSING.get(step.type) == "segmentation":
            dets, gt = _apply_mask(step, dets, gt, geometry)
        else:
            dets, gt = _apply(step, dets, gt, geometry)
    return dets, gt
