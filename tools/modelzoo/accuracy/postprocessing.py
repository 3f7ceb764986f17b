"""The box side of an accuracy-check.yml: back from the network's frame to the picture's pixels
(faster_rcnn_postprocessing_resize, resize_prediction_boxes), filter, clip_boxes; the semantics
of Open Model Zoo's accuracy checker."""

from __future__ import annotations

import numpy as np

from ..errors import AccuracyConfigError
from .adapter import Detections
from .config import AccuracyConfig, Step
from .dataset import GroundTruth
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


def _apply(step: Step, dets: Detections, gt: GroundTruth | None, geometry: Geometry
           ) -> tuple[Detections, GroundTruth | None]:
    if step.type == "faster_rcnn_postprocessing_resize":
        _scale(dets, *_frcnn_coefficients(geometry))
    elif step.type == "resize_prediction_boxes":
        _scale(dets, geometry.width, geometry.height)
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
            gt = GroundTruth(_clip(gt.boxes, width, height), gt.labels, gt.iscrowd)
    return dets, gt


def postprocess(dets: Detections, gt: GroundTruth | None, geometry: Geometry, config: AccuracyConfig
                ) -> tuple[Detections, GroundTruth | None]:
    """Detections in the original picture's pixels, and the ground truth as the metric sees it."""
    for step in config.postprocessing:
        dets, gt = _apply(step, dets, gt, geometry)
    return dets, gt
