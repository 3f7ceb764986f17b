"""The box side of an accuracy-check.yml: back from the network's frame to the picture's pixels
(faster_rcnn_postprocessing_resize, resize_prediction_boxes), filter, nms, clip_boxes,
cast_to_int; the semantics of Open Model Zoo's accuracy checker."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Detections, Picture, PictureScores, SegmentationMask
from .config import TASK_OF_POSTPROCESSING, AccuracyConfig, Step
from .dataset import IMAGE_SETS, GroundTruth, ImageTruth, MaskTruth
from .preprocessing import Geometry


def _frcnn_coefficients(geometry: Geometry) -> tuple[float, float]:
    ops = geometry.operations
    if len(ops) == 1 and ops[0][0] == "resize":
        return float(ops[0][1]["original_width"]), float(ops[0][1]["original_height"])
    if len(ops) == 2 and ops[0][0] == "resize" and ops[1][0] == "padding" and ops[1][1]["pad"][:2] == [0, 0]:
        resize, padding = ops[0][1], ops[1][1]
        return padding["pref_width"] / resize["scale_x"], padding["pref_height"] / resize["scale_y"]
    raise AccuracyConfigError("faster_rcnn_postprocessing_resize needs a resize, or a resize then a "
                              "right_bottom padding, as the geometric preprocessing")


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


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, include_boundaries: bool = True,
        keep_top_k: int | None = None, use_min_area: bool = False) -> np.ndarray:
    """The checker's greedy `nms` over every box whatever its label: indices kept, best first.
    A box is dropped when its overlap with a kept one is above ``overlap``; ``use_min_area``
    divides by the smaller box's area instead of the union."""
    b = 1.0 if include_boundaries else 0.0
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + b) * (y2 - y1 + b)
    order = scores.argsort()[::-1]
    if keep_top_k:
        order = order[:keep_top_k]
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + b)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + b)
        inter = w * h
        base = np.minimum(areas[best], areas[rest]) if use_min_area else areas[best] + areas[rest] - inter
        ratio = np.divide(inter, base, out=np.zeros_like(inter, dtype=float), where=base != 0)
        order = rest[ratio <= overlap]
    return np.array(keep, dtype=int)


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


ROUND = {"nearest": np.rint, "nearest_to_zero": np.trunc, "lower": np.floor, "greater": np.ceil}


def _apply(step: Step, dets: Detections, gt: GroundTruth | None, geometry: Geometry
           ) -> tuple[Detections, GroundTruth | None]:
    if step.type == "faster_rcnn_postprocessing_resize":
        _scale(dets, *_frcnn_coefficients(geometry))
    elif step.type == "resize_prediction_boxes":
        _scale(dets, *(_rescale(geometry) if step.options["rescale"] else (geometry.width, geometry.height)))
    elif step.type == "nms":
        keep = nms(dets.boxes, dets.scores, float(step.options["overlap"]), step.options["include_boundaries"],
                   step.options["keep_top_k"], step.options["use_min_area"])
        dets = dets.take(np.sort(keep))  # (the boxes kept stay in their order, as the checker removes the rest)
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


def _bytes(mask: np.ndarray) -> np.ndarray:
    """A mask as the 8-bit picture the checker resizes: uint8 as it is, integers in 0..255 cast,
    anything else (floats) stretched from its minimum to its maximum over 0..255, rounded."""
    if mask.dtype == np.uint8:
        return mask
    low, high = mask.min(), mask.max()
    if low >= 0 and high <= 255 and not np.issubdtype(mask.dtype, np.floating):
        return mask.astype(np.uint8)
    span = (high - low) or 1
    return ((mask - low) * (255.0 / span)).clip(0, 255).__add__(0.5).astype(np.uint8)


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each 2-D mask as an 8-bit picture resized by Pillow's nearest neighbour (the checker's)."""
    from PIL import Image

    if mask.ndim == 2:
        return np.asarray(Image.fromarray(_bytes(mask), "L").resize((width, height), Image.Resampling.NEAREST))
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
    if step.type == "crop_padded_prediction":
        pred = SegmentationMask(_unpad(pred.mask, geometry))
    elif step.type == "resize_segmentation_mask":  # (apply_to: prediction, config's check)
        h, w = step.size()
        pred = SegmentationMask(_resize_mask(pred.mask, w or geometry.width, h or geometry.height))
    elif step.type == "encode_segmentation_mask" and gt is not None:  # (apply_to: annotation)
        gt = dataclasses.replace(gt, encode=True)
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
