"""The RetinaNet post-processing in plain numpy: decode, clip, per-class threshold and NMS,
keep the best 300. Tests check the TensorFlow graph's own detections against it."""

from __future__ import annotations

import numpy as np

from .retinanet import BOX_STD, MAX_DETECTIONS, NMS_THRESHOLD, SCORE_THRESHOLD


def decode(anchors: np.ndarray, deltas: np.ndarray, std: float = BOX_STD) -> np.ndarray:
    """Corner deltas relative to the anchor's width and height -> [x1, y1, x2, y2] pixels."""
    wh = np.concatenate([anchors[:, 2:] - anchors[:, :2]] * 2, axis=1)
    return anchors + deltas * std * wh


def clip(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    limits = np.array([width - 1, height - 1, width - 1, height - 1], np.float32)
    return np.clip(boxes, 0, limits)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    def area(b):
        return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)

    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.maximum(hi - lo, 0), axis=1)
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD,
        limit: int = MAX_DETECTIONS) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best first; a box is dropped when its
    IoU with a kept one is above the threshold."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    for rank, i in enumerate(order):
        if suppressed[rank]:
            continue
        keep.append(int(i))
        if len(keep) == limit:
            break
        rest = order[rank + 1:]
        suppressed[rank + 1:] |= iou(boxes[i], boxes[rest]) > threshold
    return np.array(keep, dtype=np.int64)


def filter_detections(boxes: np.ndarray, classification: np.ndarray, score_threshold: float = SCORE_THRESHOLD,
                      max_detections: int = MAX_DETECTIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: boxes [N,4], classification [N,C] -> boxes [300,4], scores [300], labels [300],
    padded with -1, best first."""
    picks = []
    for c in range(classification.shape[1]):
        idx = np.flatnonzero(classification[:, c] > score_threshold)
        kept = idx[nms(boxes[idx], classification[idx, c])]
        picks.append(np.stack([kept, np.full_like(kept, c)], axis=1))
    picks = np.concatenate(picks) if picks else np.zeros((0, 2), np.int64)
    scores = classification[picks[:, 0], picks[:, 1]]
    top = np.argsort(-scores, kind="stable")[:max_detections]
    n = len(top)
    out_boxes = np.full((max_detections, 4), -1, np.float32)
    out_scores = np.full(max_detections, -1, np.float32)
    out_labels = np.full(max_detections, -1, np.int32)
    out_boxes[:n] = boxes[picks[top, 0]]
    out_scores[:n] = scores[top]
    out_labels[:n] = picks[top, 1]
    return out_boxes, out_scores, out_labels


def detect(regression: np.ndarray, classification: np.ndarray, anchors: np.ndarray, input_size: int):
    """From the heads' outputs of one image to its filtered detections, as the Keras graph
    does it: clip the boxes to [0, side-1], then NMS."""
    boxes = clip(decode(anchors, regression), input_size, input_size)
    return filter_detections(boxes, classification)


IR_TOP_K = 6000  # candidates per class the Model Optimizer's DetectionOutput keeps before NMS


def detect_ir_order(regression: np.ndarray, classification: np.ndarray, anchors: np.ndarray, input_size: int):
    """The same post-processing in the order of the converted model's DetectionOutput: at most
    6000 candidates per class, NMS on unclipped boxes, then boxes clipped to the image
    ([0, side], i.e. [0, 1] normalised). Explains where the IR and TensorFlow differ."""
    boxes = decode(anchors, regression)
    capped = classification.copy()
    for c in range(capped.shape[1]):
        above = np.flatnonzero(capped[:, c] > SCORE_THRESHOLD)
        if len(above) > IR_TOP_K:
            drop = above[np.argsort(-capped[above, c], kind="stable")[IR_TOP_K:]]
            capped[drop, c] = 0
    out_boxes, scores, labels = filter_detections(boxes, capped)
    valid = scores > 0
    out_boxes[valid] = np.clip(out_boxes[valid], 0, input_size)
    return out_boxes, scores, labels
