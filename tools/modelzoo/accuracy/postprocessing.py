"""The box side of an accuracy-check.yml: back from the network's frame to the picture's pixels
(faster_rcnn_postprocessing_resize, resize_prediction_boxes), filter, nms, clip_boxes,
cast_to_int; the semantics of Open Model Zoo's accuracy checker."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Detections, SegmentationMask
from .config import TASK_OF_POSTPROCESSING, AccuracyConfig, Step
from .dataset import GroundTruth, MaskTruth, resize_nearest
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
            dets = Detections(dets.labels, dets.scores, rounding(dets.boxes))
        if gt is not None and step.options["apply_to"] in ("annotation", "all"):
            gt = dataclasses.replace(gt, boxes=rounding(gt.boxes))
    elif step.type == "filter":
        # annotations are never filtered by confidence; predictions below it are dropped
        dets = dets.take(dets.scores >= float(step.options["min_confidence"]))
    elif step.type == "clip_boxes":
        h, w = step.size()
        width, height = (w or geometry.width), (h or geometry.height)
        if step.options["boxes_normalized"]:
            width = height = 1
        dets = Detections(dets.labels, dets.scores, _clip(dets.boxes, width, height))
        if gt is not None and step.options["apply_to"] == "all":
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


def postprocess(dets: Any, gt: Any, geometry: Geometry, config: AccuracyConfig) -> tuple[Any, Any]:
    """Detections in the original picture's pixels (or a mask at its size), and the ground truth
    as the metric sees it."""
    for step in config.postprocessing:
        if TASK_OF_POSTPROCESSING.get(step.type) == "segmentation":
            dets, gt = _apply_mask(step, dets, gt, geometry)
        else:
            dets, gt = _apply(step, dets, gt, geometry)
    return dets, gt
