"""From the network's output to predictions: one function per adapter type of accuracy-check.yml,
looked up in ADAPTERS (a new task's adapter is a function here and an entry there, its options
in config.ADAPTERS). Today: `classification` (class scores), accuracy_check's `ssd`
(DetectionOutput's [1, 1, N, 7] rows
[image_id, label, conf, x_min, y_min, x_max, y_max], boxes normalised), and the YOLO family
(`yolo_v2`, `yolo_v3`, `yolo_v3_onnx`, `yolox`: see their docstrings for the layouts), and the
detectors whose adapter decodes or chooses the boxes itself (priors, thresholds and NMS as the
checker's: `ultra_lightweight_face_detection`, `faceboxes`, `retinaface_pytorch`, `ssd_onnx`,
`detr`, `nanodet`, `faster_rcnn_onnx`; those in NEEDS_GEOMETRY also read what the resize did),
`segmentation` (masks), `mask_rcnn` (boxes with masks in the picture, Instances) and `reid`
(one embedding per picture, compared by the metric with every other picture's).

An adapter in SINGLE_OUTPUT takes the network's first output; the others take every output by
name (`Outputs`) and the network's input size, since a YOLO network answers on several grids."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AccuracyConfigError


@dataclass
class Detections:
    """One image's detections: labels [N], scores [N], boxes [N, 4] (x_min, y_min, x_max, y_max);
    ``ignored`` [N] marks the boxes a filter kept as ignored ones (empty: none is)."""

    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    ignored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def take(self, keep: np.ndarray) -> "Detections":
        return Detections(self.labels[keep], self.scores[keep], self.boxes[keep],
                          self.ignored[keep] if self.ignored.size else self.ignored)

    def ignored_mask(self) -> np.ndarray:
        """[N] booleans: which boxes are ignored."""
        return self.ignored.astype(bool) if self.ignored.size else np.zeros(len(self.scores), dtype=bool)


def ssd(output: np.ndarray, batch_index: int = 0) -> Detections:
    """Rows up to the first image_id -1 (the end marker), those of this batch index."""
    rows = np.asarray(output, dtype=np.float64).reshape(-1, 7)
    ends = np.flatnonzero(rows[:, 0] == -1)
    rows = rows[: ends[0] if ends.size else len(rows)]
    rows = rows[rows[:, 0] == batch_index]
    return Detections(rows[:, 1].astype(int), rows[:, 2].copy(), rows[:, 3:7].copy())


@dataclass
class Classes:
    """One picture's class scores [C] (the network's output as it is: the checker applies no
    softmax unless asked), or with argmax_output the one label the network computed."""

    scores: np.ndarray | None = None
    label: int | None = None

    def top_k(self, k: int) -> np.ndarray:
        """The k labels of highest score (in no particular order), as the checker takes them."""
        if self.scores is None:
            return np.full(k, self.label)
        k = min(k, self.scores.size)
        return np.argpartition(self.scores, -k)[-k:]


def classification(output: np.ndarray, argmax_output: bool = False, block: bool = False) -> Classes:
    """The checker's `classification`: the output flattened to one row of scores per picture;
    `argmax_output` when the network's output is the label itself; `block` (the whole batch as
    one prediction) is the same thing at batch 1, the only batch this tool runs."""
    row = np.asarray(output).reshape(-1)
    if argmax_output:
        return Classes(label=int(row[0]))
    return Classes(scores=row.astype(np.float64))


@dataclass
class Outputs:
    """Every output of one inference by its names (a tensor may have several), in the network's
    order, and the (height, width) of the network's input."""

    arrays: dict[str, np.ndarray]
    order: list[str]
    input_size: tuple[int, int]

    def named(self, name: str) -> np.ndarray:
        """The output a yml names, as the checker finds it: the name itself, else the one that
        name begins (mo's IR can add ":0" or "/sink_port_0") or that begins it."""
        if name in self.arrays:
            return self.arrays[name]
        near = [n for n in self.arrays if n.startswith(name + ":") or n.startswith(name + "/sink_port")
                or name.startswith(n + ":")]
        if len(near) == 1:
            return self.arrays[near[0]]
        raise AccuracyConfigError(f"the adapter reads output {name!r}, which the IR does not have "
                                  f"(outputs: {', '.join(self.order)})")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _cells_first(p: np.ndarray, box_size: int) -> np.ndarray:
    """[A*K, H, W] -> [H*W*A, K]: one row per (row, column, anchor), as the checker walks them."""
    _, h, w = p.shape
    return p.reshape(-1, box_size, h, w).transpose(2, 3, 0, 1).reshape(-1, box_size)


def _region(p: np.ndarray, cells: int, num: int, classes: int, box_size: int, anchors: Sequence[float],
            size_norm: tuple[float, float], threshold: float, raw: str | None, multiple_labels: bool = False
            ) -> Detections:
    """One grid's boxes as the checker's parse_output reads them. ``raw``: None (the network
    applied its region layer), "v2" (sigmoid on x, y and objectness, a softmax over the whole
    class block, as the checker computes it), "v3" (sigmoids everywhere)."""
    if p.shape[0] == p.shape[1]:  # (HWB: a square grid first)
        p = p.transpose(2, 0, 1)
    rows = _cells_first(np.asarray(p, dtype=np.float64), box_size)
    has_objectness = box_size != classes + 4
    coord = _sigmoid if raw else (lambda x: x)
    objectness = coord(rows[:, 4]) if has_objectness else np.ones(len(rows))
    start = 4 + int(has_objectness)
    probs = rows[:, start:start + classes]
    if raw == "v2":
        probs = np.exp(probs) / np.sum(np.exp(probs))
    elif raw:
        probs = _sigmoid(probs)
    probs = probs * objectness[:, None]
    if multiple_labels:
        keep, labels = np.nonzero(probs > threshold)
        scores = probs[keep, labels]
    else:
        keep = np.flatnonzero(objectness > threshold)
        labels = probs[keep].argmax(axis=1) if keep.size else np.zeros(0, dtype=int)
        scores = probs[keep, labels]
    row, rest = keep // (cells * num), keep % (cells * num)
    col, n = rest // num, rest % num
    anchor = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)[n] if keep.size else np.zeros((0, 2))
    x = (coord(rows[keep, 0]) + col) / cells
    y = (coord(rows[keep, 1]) + row) / cells
    w = np.exp(rows[keep, 2]) * anchor[:, 0] / size_norm[0]
    h = np.exp(rows[keep, 3]) * anchor[:, 1] / size_norm[1]
    boxes = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1) if keep.size else np.zeros((0, 4))
    return Detections(labels.astype(int), scores.astype(np.float64), boxes)


def _joined(parts: list[Detections]) -> Detections:
    return Detections(np.concatenate([d.labels for d in parts]), np.concatenate([d.scores for d in parts]),
                      np.concatenate([d.boxes for d in parts]).reshape(-1, 4))


def yolo_v2(net: Outputs, classes: int = 20, coords: int = 4, num: int = 5,
            anchors: Sequence[float] = (), cells: int = 13, raw_output: bool = False,
            output_format: str = "BHW") -> Detections:
    """The checker's `yolo_v2`: the first output, a RegionYolo layer's [num * (coords + 1 +
    classes), cells, cells] (flattened or not); boxes normalised to the picture (x, y by
    cells, w, h as anchor * exp / cells), objectness above 0.001, each box's best class."""
    p = net.arrays[net.order[0]]
    box_size = classes + coords + 1
    p = p[0] if p.ndim > 1 and p.shape[0] == 1 else p
    if p.ndim != 3:
        shape = (num * box_size, cells, cells) if output_format == "BHW" else (cells, cells, num * box_size)
        if p.size != num * box_size * cells * cells:
            raise AccuracyConfigError(f"yolo_v2: the output has {p.size} values; num {num}, classes {classes}, "
                                      f"coords {coords} and cells {cells} make {num * box_size * cells * cells}")
        p = p.reshape(shape)
    return _region(p, cells, num, classes, box_size, anchors, (cells, cells), 0.001, "v2" if raw_output else None)


def _yolo_layer(who: str, p: np.ndarray, name: str, layer: int, num: int, anchors: Sequence[float],
                anchor_masks: Any, cells: Sequence[int], output_format: str
                ) -> tuple[np.ndarray, int, int, list[float], int]:
    """One YOLO output as a grid: (the grid without its batch, its side, boxes a cell, their
    anchors, values a box); a flat output is reshaped by the layer's ``cells``."""
    p = p[0] if p.ndim > 1 and p.shape[0] == 1 else p
    layer_anchors = ([v for i in anchor_masks[layer] for v in anchors[2 * i:2 * i + 2]]
                     if anchor_masks else list(anchors))
    layer_num = len(layer_anchors) // 2 if anchor_masks else num
    if p.ndim != 3:
        if layer >= len(cells):
            raise AccuracyConfigError(f"{who}: output {name!r} is not a grid and cells names no size for it")
        side = cells[layer]
        p = p.reshape((-1, side, side) if output_format == "BHW" else (side, side, -1))
    side = p.shape[1] if output_format == "BHW" else p.shape[0]
    box_size = (p.shape[0] if output_format == "BHW" else p.shape[2]) // layer_num
    return p, side, layer_num, layer_anchors, box_size


def yolo_v3(net: Outputs, classes: int = 80, coords: int = 4, num: int = 3, anchors: Sequence[float] = (),
            threshold: float = 0.001, outputs: Sequence[str] = (), anchor_masks: Any = None,
            cells: Sequence[int] = (13, 26, 52), raw_output: bool = False, output_format: str = "BHW",
            multiple_labels: bool = False) -> Detections:
    """The checker's `yolo_v3`: one [num * (5 + classes), H, W] grid per output named, each with
    its anchors (anchor_masks), boxes normalised (x, y by the grid, w, h as anchor * exp by the
    network's input size), objectness above ``threshold``."""
    parts = []
    height, width = net.input_size
    for layer, name in enumerate(outputs):
        p, side, layer_num, layer_anchors, box_size = _yolo_layer(
            "yolo_v3", net.named(name), name, layer, num, anchors, anchor_masks, cells, output_format)
        parts.append(_region(p, side, layer_num, classes, box_size, layer_anchors, (width, height), threshold,
                             "v3" if raw_output else None, multiple_labels))
    return _joined(parts)


def yolof(net: Outputs, classes: int = 80, coords: int = 4, num: int = 3, anchors: Sequence[float] = (),
          threshold: float = 0.001, outputs: Sequence[str] = (), anchor_masks: Any = None,
          cells: Sequence[int] = (13, 26, 52), raw_output: bool = False, output_format: str = "BHW",
          multiple_labels: bool = False) -> Detections:
    """The checker's `yolof` (YOLOF's head, [num * (4 + classes), H, W], no objectness): with
    raw_output, sigmoids on the class scores only, the centre the cell's corner (over the grid)
    plus the raw offset times the anchor (over the input's size), the sides anchor * exp over the
    input's size; the scores above ``threshold``. Without raw_output it reads as `yolo_v3`."""
    if not raw_output:
        return yolo_v3(net, classes, coords, num, anchors, threshold, outputs, anchor_masks, cells, False,
                       output_format, multiple_labels)
    parts = []
    height, width = net.input_size
    for layer, name in enumerate(outputs):
        p, side, layer_num, layer_anchors, box_size = _yolo_layer(
            "yolof", np.asarray(net.named(name), dtype=np.float64), name, layer, num, anchors, anchor_masks, cells,
            output_format)
        if p.shape[0] == p.shape[1]:  # (HWB: a square grid first)
            p = p.transpose(2, 0, 1)
        rows = _cells_first(p, box_size)
        objectness = rows[:, 4] if box_size != classes + 4 else np.ones(len(rows))
        start = 4 + int(box_size != classes + 4)
        probs = _sigmoid(rows[:, start:start + classes]) * objectness[:, None]
        if multiple_labels:
            keep, labels = np.nonzero(probs > threshold)
        else:
            keep = np.flatnonzero(objectness > threshold)
            labels = probs[keep].argmax(axis=1) if keep.size else np.zeros(0, dtype=int)
        scores = probs[keep, labels]
        row, rest = keep // (side * layer_num), keep % (side * layer_num)
        col, n = rest // layer_num, rest % layer_num
        anchor = np.asarray(layer_anchors, dtype=np.float64).reshape(-1, 2)[n] if keep.size else np.zeros((0, 2))
        x = rows[keep, 0] * anchor[:, 0] / width + col / side
        y = rows[keep, 1] * anchor[:, 1] / height + row / side
        w = np.exp(rows[keep, 2]) * anchor[:, 0] / width
        h = np.exp(rows[keep, 3]) * anchor[:, 1] / height
        parts.append(Detections(labels.astype(int), scores.astype(np.float64), _center_to_corners(x, y, w, h)))
    return _joined(parts)


def yolo_v3_onnx(net: Outputs, boxes_out: str = "", scores_out: str = "", indices_out: str = "") -> Detections:
    """The checker's `yolo_v3_onnx`: the ONNX model's own NMS output, rows [batch, class, box]
    up to the first -1, scores[class, box], boxes as (y_min, x_min, y_max, x_max) in pixels."""
    boxes, scores = net.named(boxes_out)[0], net.named(scores_out)[0]
    indices = net.named(indices_out)
    indices = indices.reshape(-1, 3).astype(int)
    ends = np.flatnonzero(indices[:, 0] == -1)
    indices = indices[: ends[0] if ends.size else len(indices)]
    labels, chosen = indices[:, 1], indices[:, 2]
    picked = boxes[chosen].astype(np.float64).reshape(-1, 4)
    return Detections(labels.copy(), scores[labels, chosen].astype(np.float64), picked[:, [1, 0, 3, 2]])


def yolox(net: Outputs, threshold: float = 0.001, num: int = 5, output_name: str | None = None) -> Detections:
    """The checker's `yolox`: [N, 5 + classes] rows over the stride 8, 16, 32 grids of the input
    (x, y offset by the cell, w, h as exp, both times the stride), objectness above
    ``threshold``, then every class whose objectness-weighted score is above it, in pixels."""
    raw = net.named(output_name) if output_name else net.arrays[net.order[0]]
    rows = np.array(raw, dtype=np.float64).reshape(-1, raw.shape[-1])
    height, width = net.input_size
    grids, strides = [], []
    for stride in (8, 16, 32):  # the checker's grid: (input height // stride) rows of (width // stride)
        hs, ws = width // stride, height // stride  # (it names them the other way round; square inputs agree)
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((hs * ws, 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    if len(grid) != len(rows):
        raise AccuracyConfigError(f"yolox: the output has {len(rows)} rows; a {width}x{height} input makes "
                                  f"{len(grid)} cells")
    rows[:, :2] = (rows[:, :2] + grid) * stride
    rows[:, 2:4] = np.exp(rows[:, 2:4]) * stride
    rows = rows[rows[:, 4] > threshold]
    rows[:, 5:] *= rows[:, 4:5]
    i, j = np.nonzero(rows[:, 5:] > threshold)
    xy, wh = rows[i, :2], rows[i, 2:4]
    return Detections(j.astype(int), rows[i, j + num], np.concatenate([xy - wh / 2, xy + wh / 2], axis=1))


@dataclass
class SegmentationMask:
    """One picture's predicted mask: labels [H, W] (or [1, H, W]), or class scores [C, H, W]."""

    mask: np.ndarray


def segmentation(output: np.ndarray, make_argmax: bool = False) -> SegmentationMask:
    """The checker's `segmentation`: the network's output for the picture (batch 1), the class
    axis first; ``make_argmax`` takes the best class of every pixel."""
    mask = np.asarray(output)
    mask = mask[0] if mask.ndim > 2 and mask.shape[0] == 1 else mask
    if make_argmax:
        if mask.ndim != 3:
            raise AccuracyConfigError(f"segmentation: make_argmax on a {list(mask.shape)} output (expected [C, H, W])")
        mask = np.argmax(mask, axis=0)
    return SegmentationMask(mask)


def class_agnostic_detection(net: Outputs, scale: Sequence[float] = (1.0,) * 4, output_blob: str | None = None
                             ) -> Detections:
    """The checker's `class_agnostic_detection`: rows [x_min, y_min, x_max, y_max, score] (the output
    ``output_blob``, else the first one of rank 2 or 3 whose last axis is 5), those of score above
    0, the box times ``scale`` (x, y, x, y: the network's pixels to 0..1 when it is one over the
    input's size), every one of label 1."""
    if output_blob is not None:
        raw = net.named(output_blob)
    else:
        fitting = [name for name in net.order if net.arrays[name].ndim in (2, 3) and net.arrays[name].shape[-1] == 5]
        if not fitting:
            raise AccuracyConfigError("class_agnostic_detection: no output of rank 2 or 3 with 5 values a row "
                                      f"(outputs: {', '.join(f'{n} {list(net.arrays[n].shape)}' for n in net.order)})")
        raw = net.arrays[fitting[0]]
    rows = np.asarray(raw, dtype=np.float64)
    rows = rows[0] if rows.ndim == 3 else rows  # (batch 1)
    rows = rows[rows[:, -1] > 0.0]
    boxes = rows[:, :4] * np.asarray(scale, dtype=np.float64)
    return Detections(np.ones(len(rows), dtype=int), rows[:, 4].copy(), boxes.reshape(-1, 4))
@dataclass
class Instances(Detections):
    """One picture's instances: Detections (boxes in the picture's pixels, or normalised until a
    post-processing step moves them) and, per box, its mask in the whole picture as COCO's
    compressed RLE ({"size": [h, w], "counts": str}); none when the network gives no masks."""

    masks: list[dict[str, Any]] = field(default_factory=list)

    def take(self, keep: np.ndarray) -> "Instances":
        picked = np.arange(len(self.labels))[keep]
        return Instances(self.labels[keep], self.scores[keep], self.boxes[keep],
                         self.ignored[keep] if self.ignored.size else self.ignored,
                         masks=[self.masks[i] for i in picked] if self.masks else [])


def _expanded(box: np.ndarray, scale: float) -> np.ndarray:
    """The box grown about its centre by ``scale``, computed on [1, 4] arrays of the box's own
    float type as the checker does (a scalar would be computed in float64 by NumPy 1), then
    held as float64 to be truncated to whole pixels."""
    boxes = box[np.newaxis, :]
    half_w = (boxes[:, 2] - boxes[:, 0]) * .5
    half_h = (boxes[:, 3] - boxes[:, 1]) * .5
    cx, cy = (boxes[:, 2] + boxes[:, 0]) * .5, (boxes[:, 3] + boxes[:, 1]) * .5
    half_w *= scale
    half_h *= scale
    grown = np.zeros(boxes.shape)
    grown[:, 0], grown[:, 2] = cx - half_w, cx + half_w
    grown[:, 1], grown[:, 3] = cy - half_h, cy + half_h
    return grown[0]


MAX_MASK_AREA = 64  # a box's area over its picture's, at most (a bigger one is a broken network's)


def paste_mask(box: np.ndarray, raw: np.ndarray, height: int, width: int) -> dict[str, Any]:
    """One raw mask (a network's [h, w] scores for the box) into the picture, as the checker's
    segm_postprocess does: a zero border added, the box grown by as much, the mask resized
    (OpenCV's bilinear) to the grown box's whole pixels and kept above 0.5, then cut to the
    picture; COCO's RLE of the [height, width] result."""
    import cv2
    from pycocotools import mask as mask_utils

    if not np.all(np.isfinite(box)):
        raise AccuracyConfigError(f"mask_rcnn: a box {box.tolist()} is not finite numbers")
    raw = np.pad(raw, ((1, 1), (1, 1)), "constant", constant_values=0)
    grown = _expanded(box, raw.shape[0] / (raw.shape[0] - 2.0)).astype(int)
    w, h = np.maximum(grown[2:] - grown[:2] + 1, 1)
    if float(w) * float(h) > MAX_MASK_AREA * height * width:  # (OpenCV would be asked for it all)
        raise AccuracyConfigError(f"mask_rcnn: a box of {int(w)}x{int(h)} pixels for a {width}x{height} "
                                  f"picture (more than {MAX_MASK_AREA} times its area): not a mask to paste")
    x0, y0 = np.clip(grown[:2], a_min=0, a_max=[width, height])
    x1, y1 = np.clip(grown[2:] + 1, a_min=0, a_max=[width, height])
    inside = (cv2.resize(raw, (int(w), int(h))) > 0.5).astype(np.uint8)
    picture = np.zeros((height, width), dtype=np.uint8)
    picture[y0:y1, x0:x1] = inside[y0 - grown[1]:y1 - grown[1], x0 - grown[0]:x1 - grown[0]]
    rle = mask_utils.encode(np.asfortranarray(picture[:, :, None]))[0]
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def _instance_scale(geometry: Any, input_size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) from the picture to the network's frame: the last resize's scale, else the input's
    size over the picture's (the checker's scale_x / scale_y)."""
    resizes = [op for name, op in geometry.operations if name == "resize"]
    if resizes:
        return resizes[-1]["scale_x"], resizes[-1]["scale_y"]
    return input_size[1] / geometry.width, input_size[0] / geometry.height


def mask_rcnn(net: Outputs, geometry: Any, classes_out: str | None = None, scores_out: str | None = None,
              boxes_out: str | None = None, raw_masks_out: str | None = None,
              detection_out: str | None = None) -> Instances:
    """The checker's `mask_rcnn`, in the two forms Open Model Zoo's models have.

    Intel's (boxes_out): boxes [N, 5] in the network's pixels with the score last (or [N, 4] and
    scores_out), labels from classes_out (all 1 without it), masks [N, h, w] (or [N, 1, h, w],
    or [N, classes, h, w] taken at the box's label with scores_out); a row counts when its label
    is above 0 (with scores_out) or its box's coordinates sum above 0; boxes divided by the
    resize's scale into the picture's pixels.

    The Object Detection API's (detection_out): [N, 7] rows [image, label, score, x_min, y_min,
    x_max, y_max], normalised, up to the first image -1; masks [N, classes, h, w], the label's at
    label - 1; the masks are pasted at the box scaled by faster_rcnn_postprocessing_resize's
    factors, the boxes stay normalised for that step to scale."""
    height, width = geometry.height, geometry.width
    if detection_out is not None:
        from .preprocessing import frcnn_coefficients

        rows = np.array(net.named(detection_out))
        raw_masks = net.named(raw_masks_out)  # type: ignore[arg-type]
        if rows.ndim != 2 or rows.shape[1] != 7:
            raise AccuracyConfigError(f"mask_rcnn: detection_out {detection_out!r} is {list(rows.shape)}; "
                                      "expected [N, 7] (reshape_do_2d)")
        if raw_masks.ndim != 4 or len(raw_masks) != len(rows):
            raise AccuracyConfigError(f"mask_rcnn: raw_masks_out {raw_masks_out!r} is {list(raw_masks.shape)}; "
                                      f"expected [{len(rows)}, classes, h, w]")
        ends = np.flatnonzero(rows[:, 0] == -1)
        if ends.size:
            rows, raw_masks = rows[:ends[0]], raw_masks[:ends[0]]
        mine = rows[:, 0] == 0
        rows, raw_masks = rows[mine][:, 1:], raw_masks[mine]
        coeff_x, coeff_y = frcnn_coefficients(geometry)
        masks = []
        classes = raw_masks.shape[1]
        for row, per_class in zip(rows, raw_masks):
            if not (np.isfinite(row[0]) and row[0] == int(row[0]) and -classes < int(row[0]) <= classes):
                raise AccuracyConfigError(f"mask_rcnn: detection_out label {float(row[0]):g} has no mask among "
                                          f"raw_masks_out's {classes} classes")
            box = row[2:].copy()
            box[0::2] *= coeff_x
            box[1::2] *= coeff_y
            masks.append(paste_mask(box, per_class[int(row[0]) - 1], height, width))
        return Instances(rows[:, 0].astype(np.float64).astype(int), rows[:, 1].astype(np.float64),
                         rows[:, 2:].astype(np.float64), masks=masks)
    boxes = np.array(net.named(boxes_out))  # type: ignore[arg-type]
    scores = np.array(net.named(scores_out)) if scores_out else None
    labels = np.array(net.named(classes_out)) if classes_out else None
    raw_masks = net.named(raw_masks_out) if raw_masks_out else None
    if scores is None and boxes.ndim == 2 and boxes.shape[1] == 5:
        scores, boxes = boxes[:, 4], boxes[:, :4]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores is None:
        raise AccuracyConfigError(f"mask_rcnn: boxes_out {boxes_out!r} is {list(boxes.shape)}; expected [N, 5] "
                                  "(the score last), or [N, 4] with scores_out")
    if labels is None:
        labels = np.ones(len(boxes), np.uint32)
    for name, array in ((scores_out, scores), (classes_out, labels), (raw_masks_out, raw_masks)):
        if array is not None and len(array) != len(boxes):
            raise AccuracyConfigError(f"mask_rcnn: output {name!r} has {len(array)} rows, boxes_out {len(boxes)}")
    valid = labels > 0 if scores_out else np.sum(boxes, axis=1) > 0
    boxes, scores, labels = boxes[valid], scores[valid], labels[valid].astype(np.uint32)
    scale_x, scale_y = _instance_scale(geometry, net.input_size)
    boxes[:, 0::2] /= scale_x
    boxes[:, 1::2] /= scale_y
    masks = []
    if raw_masks is not None:
        raw_masks = raw_masks[valid]
        if raw_masks.ndim == 4 and raw_masks.shape[1] != 1:
            if not scores_out:
                raise AccuracyConfigError(f"mask_rcnn: raw_masks_out {raw_masks_out!r} holds every class's mask "
                                          f"{list(raw_masks.shape)}; the checker picks the box's label's only with "
                                          "scores_out")
            if np.any(labels >= raw_masks.shape[1]):
                raise AccuracyConfigError(f"mask_rcnn: a label {int(labels.max())} has no mask among "
                                          f"raw_masks_out's {raw_masks.shape[1]} classes")
            raw_masks = np.stack([m[c] for c, m in zip(labels, raw_masks)]) if len(labels) else raw_masks[:, 0]
        elif raw_masks.ndim == 4:
            raw_masks = raw_masks[:, 0]
        if raw_masks.ndim != 3:
            raise AccuracyConfigError(f"mask_rcnn: raw_masks_out {raw_masks_out!r} is {list(raw_masks.shape)} after "
                                      "the boxes are chosen; expected [N, h, w]")
        masks = [paste_mask(box, raw, height, width) for box, raw in zip(boxes, raw_masks)]
    return Instances(labels.astype(int), scores.astype(np.float64), boxes.astype(np.float64), masks=masks)


def _rows(array: np.ndarray, width: int | None = None, what: str = "an output") -> np.ndarray:
    """One picture's values (batch 1) as float64 rows of ``width`` (flat without one), a copy.

    Raises:
        AccuracyConfigError: the values do not make such rows (the IR is not the yml's model).
    """
    rows = np.array(array, dtype=np.float64)
    if width and rows.size % width:
        raise AccuracyConfigError(f"{what} of shape {list(np.shape(array))} is not rows of {width} values")
    return rows.reshape(-1, width) if width else rows.reshape(-1)


def _same_count(adapter: str, **counts: int) -> None:
    if len(set(counts.values())) > 1:
        raise AccuracyConfigError(f"{adapter}: the outputs disagree on the number of boxes "
                                  f"({', '.join(f'{k} {v}' for k, v in counts.items())})")


def _center_to_corners(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).reshape(-1, 4)


def _resize_scale(geometry: Any, adapter: str) -> tuple[float, float]:
    """(scale_x, scale_y) of the last resize: the network's pixels over the picture's."""
    resizes = [op for name, op in geometry.operations if name == "resize"]
    if not resizes:
        raise AccuracyConfigError(f"{adapter}: the boxes are brought back by the resize's scale, and the "
                                  "preprocessing has no resize")
    return float(resizes[-1]["scale_x"]), float(resizes[-1]["scale_y"])


Overlap = Callable[[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, float], np.ndarray]
"""overlap(the boxes' x1, y1, x2, y2 as [4, N], their areas, the kept box, the boxes left, their
intersections with it, the boundary pixel) -> each box left's overlap with the kept one."""


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, include_boundaries: bool,
               keep_top_k: int | None, measure: Overlap) -> np.ndarray:
    """The checker's greedy suppression, one loop for its NMS kinds: best score first, every box
    whose ``measure`` with a kept one is above ``overlap`` dropped; indices kept, best first."""
    b = 1.0 if include_boundaries else 0.0
    x1, y1, x2, y2 = corners = boxes.T
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
        order = rest[measure(corners, areas, best, rest, w * h, b) <= overlap]
    return np.array(keep, dtype=int)


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, include_boundaries: bool = True,
        keep_top_k: int | None = None, use_min_area: bool = False) -> np.ndarray:
    """The checker's greedy `nms` over every box whatever its label: indices kept, best first.
    A box is dropped when its overlap with a kept one is above ``overlap``; ``use_min_area``
    divides by the smaller box's area instead of the union."""
    def ratio(corners: np.ndarray, areas: np.ndarray, best: int, rest: np.ndarray, inter: np.ndarray,
              b: float) -> np.ndarray:
        base = np.minimum(areas[best], areas[rest]) if use_min_area else areas[best] + areas[rest] - inter
        return np.divide(inter, base, out=np.zeros_like(inter, dtype=float), where=base != 0)

    return greedy_nms(boxes, scores, overlap, include_boundaries, keep_top_k, ratio)


def _nms_per_label(labels: Sequence[int], scores: np.ndarray, boxes: np.ndarray, overlap: float,
                   include_boundaries: bool, keep_top_k: int | None = None) -> Detections:
    """For each label in turn (its boxes in the order given), the checker's greedy NMS; every label's
    survivors one after the other, best first within a label."""
    parts = []
    for label, (s, b) in zip(labels, zip(scores, boxes)):
        if s.size == 0:
            continue
        keep = nms(b, s, overlap, include_boundaries, keep_top_k)
        parts.append(Detections(np.full(len(keep), label, dtype=int), s[keep], b[keep].reshape(-1, 4)))
    if not parts:
        return Detections(np.zeros(0, dtype=int), np.zeros(0), np.zeros((0, 4)))
    return _joined(parts)


def ultra_lightweight_face_detection(net: Outputs, boxes_out: str = "", scores_out: str = "",
                                     score_threshold: float = 0.7) -> Detections:
    """The checker's `ultra_lightweight_face_detection`: scores [N, 2] (background, face) and boxes
    [N, 4] already decoded as parts of the picture (x_min, y_min, x_max, y_max); the faces whose
    score is above ``score_threshold``, label 1 (the yml's own nms follows)."""
    scores = _rows(net.named(scores_out), 2, f"output {scores_out!r}")[:, 1]
    boxes = _rows(net.named(boxes_out), 4, f"output {boxes_out!r}")
    _same_count("ultra_lightweight_face_detection", scores=len(scores), boxes=len(boxes))
    keep = scores > score_threshold
    return Detections(np.ones(int(keep.sum()), dtype=int), scores[keep], boxes[keep])


def _faceboxes_priors(height: int, width: int) -> np.ndarray:
    """FaceBoxes' prior boxes (cx, cy, w, h as parts of the picture) for an input of that size:
    steps 32, 64, 128; on the first level 32-pixel boxes on a 4x4 lattice in each cell, 64-pixel
    ones on 2x2 and a 128-pixel one at the centre, one box of 256 and 512 pixels on the others;
    clipped to 0..1."""
    priors = []
    for level, (step, sizes) in enumerate(((32, (32, 64, 128)), (64, (256,)), (128, (512,)))):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        for i in range(rows):
            for j in range(cols):
                for size in sizes:
                    shifts = {32: (0, 0.25, 0.5, 0.75), 64: (0, 0.5)}.get(size, (0.5,)) if level == 0 else (0.5,)
                    for dy in shifts:
                        for dx in shifts:
                            priors.append(((j + dx) * step / width, (i + dy) * step / height,
                                           size / width, size / height))
    return np.clip(np.array(priors, dtype=np.float64).reshape(-1, 4), 0, 1)


def _decode(deltas: np.ndarray, priors: np.ndarray, variance: tuple[float, float] = (0.1, 0.2)) -> np.ndarray:
    """SSD's box coding: centres moved by delta * variance * the prior's size, sizes times exp(delta *
    variance); corners out, in the priors' unit."""
    centre = priors[:, :2] + deltas[:, :2] * variance[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(deltas[:, 2:] * variance[1])
    return _center_to_corners(centre[:, 0], centre[:, 1], size[:, 0], size[:, 1])


def faceboxes(net: Outputs, boxes_out: str = "", scores_out: str = "") -> Detections:
    """The checker's `faceboxes`: deltas [N, 4] on FaceBoxes' priors (_faceboxes_priors, for the
    network's input size), scores [N, C] (column 0 the background); each other column's boxes of
    score above 0.05, NMS at 0.3 (no boundary pixel, the best 750 first), as parts of the picture."""
    height, width = net.input_size
    priors = _faceboxes_priors(height, width)
    deltas = _rows(net.named(boxes_out), 4, f"output {boxes_out!r}")
    scores = _rows(net.named(scores_out))
    if len(deltas) == 0 or scores.size % len(deltas) or scores.size // len(deltas) < 2:
        raise AccuracyConfigError(f"faceboxes: output {scores_out!r} has {scores.size} values, not a background "
                                  f"and a face score for each of the {len(deltas)} boxes")
    scores = scores.reshape(len(deltas), -1)
    if len(deltas) != len(priors):
        raise AccuracyConfigError(f"faceboxes: output {boxes_out!r} has {len(deltas)} boxes; a {width}x{height} "
                                  f"input has {len(priors)} priors")
    boxes = _decode(deltas, priors)
    labels = range(1, scores.shape[1])
    picked = [scores[:, c] > 0.05 for c in labels]
    return _nms_per_label(labels, [scores[m, c] for c, m in zip(labels, picked)], [boxes[m] for m in picked],
                          0.3, False, 750)


def _retinaface_priors(height: int, width: int) -> np.ndarray:
    """RetinaFace's (PyTorch) priors: steps 8, 16, 32 (the maps rounded to the nearest), two square
    boxes per cell (16 and 32, 64 and 128, 256 and 512 pixels), as parts of the picture."""
    priors = []
    for step, sizes in ((8, (16, 32)), (16, (64, 128)), (32, (256, 512))):
        for i in range(int(np.rint(height / step))):
            for j in range(int(np.rint(width / step))):
                priors += [((j + 0.5) * step / width, (i + 0.5) * step / height, s / width, s / height)
                           for s in sizes]
    return np.array(priors, dtype=np.float64).reshape(-1, 4)


def retinaface_pytorch(net: Outputs, geometry: Any, bboxes_output: str = "", scores_output: str = "",
                       landmarks_output: str | None = None, include_boundaries: bool = False,
                       keep_top_k: int = 750, nms_threshold: float = 0.4, confidence_threshold: float = 0.02
                       ) -> Detections:
    """The checker's `retinaface_pytorch`: deltas [N, 4] on RetinaFace's priors for the network's input
    size, scores [N, 2] (column 1 the face); faces of score above ``confidence_threshold``, its NMS,
    and the boxes in the picture's pixels (the input's pixels over the resize's scale). The
    landmarks are read by no metric here."""
    height, width = net.input_size
    priors = _retinaface_priors(height, width)
    deltas = _rows(net.named(bboxes_output), 4, f"output {bboxes_output!r}")
    if len(deltas) != len(priors):
        raise AccuracyConfigError(f"retinaface_pytorch: output {bboxes_output!r} has {len(deltas)} boxes; a "
                                  f"{width}x{height} input has {len(priors)} priors")
    scores = _rows(net.named(scores_output), 2, f"output {scores_output!r}")[:, 1]
    _same_count("retinaface_pytorch", scores=len(scores), boxes=len(deltas))
    boxes = _decode(deltas, priors) * np.array([width, height, width, height], dtype=np.float64)
    keep = scores > confidence_threshold
    found = _nms_per_label([1], [scores[keep]], [boxes[keep]], nms_threshold, include_boundaries, keep_top_k)
    sx, sy = _resize_scale(geometry, "retinaface_pytorch")
    found.boxes /= np.array([sx, sy, sx, sy])
    return found


def ssd_onnx(net: Outputs, labels_out: str = "", bboxes_out: str = "", scores_out: str | None = None
             ) -> Detections:
    """The checker's `ssd_onnx`: the outputs found by regular expressions matched at the start of
    their names (exactly one each); boxes [N, 4] (x_min, y_min, x_max, y_max as the network gives
    them) with scores [N], or boxes [N, 5] with the score last; labels [N] as they are."""
    def find(pattern: str, what: str) -> np.ndarray:
        regex = re.compile(pattern)
        hits = [name for name in net.order if regex.match(name)]
        if len(hits) != 1:
            raise AccuracyConfigError(f"ssd_onnx: {what} {pattern!r} matches {len(hits)} outputs, not one "
                                      f"(outputs: {', '.join(net.order)})")
        return net.arrays[hits[0]]

    labels = _rows(find(labels_out, "labels_out")).astype(int)
    boxes = _rows(find(bboxes_out, "bboxes_out"), 4 if scores_out else 5, "ssd_onnx's bboxes_out")
    scores = _rows(find(scores_out, "scores_out")) if scores_out else boxes[:, 4].copy()
    _same_count("ssd_onnx", labels=len(labels), scores=len(scores), boxes=len(boxes))
    return Detections(labels, scores, boxes[:, :4].copy())


def detr(net: Outputs, scores_out: str = "", boxes_out: str = "") -> Detections:
    """The checker's `detr`: logits [N, C + 1] (the last: no object) softmaxed over all, each query's
    best of the first C and its probability; boxes [N, 4] (cx, cy, w, h as parts of the picture)."""
    boxes = _rows(net.named(boxes_out), 4, f"output {boxes_out!r}")
    logits = _rows(net.named(scores_out), None).reshape(len(boxes), -1) if len(boxes) else np.zeros((0, 2))
    if logits.shape[1] < 2:
        raise AccuracyConfigError(f"detr: output {scores_out!r} has {logits.shape[1]} logits a query (at least "
                                  "a class and the no-object one)")
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = probs[:, :-1].argmax(axis=1)
    return Detections(labels, probs[np.arange(len(labels)), labels], _center_to_corners(*boxes.T))


def nanodet(net: Outputs, geometry: Any, num_classes: int = 80, confidence_threshold: float = 0.05,
            nms_threshold: float = 0.6, max_detections: int = 100, reg_max: int = 7,
            strides: Sequence[int] = (8, 16, 32), is_legacy: bool = False) -> Detections:
    """The checker's `nanodet`: the first output's rows [C class scores, 4 * (reg_max + 1) distance
    logits], one per cell of each stride's grid (the grid of the resize's preferable size, rounded
    up) in turn; each side's distance the softmax-weighted mean of 0..reg_max times the stride from
    the cell's corner (its centre when ``is_legacy``), clipped to the input; per class the scores
    above ``confidence_threshold`` and NMS (boundary pixel counted), the best ``max_detections``
    kept; in the resized picture's pixels."""
    rows = _rows(net.arrays[net.order[0]], num_classes + 4 * (reg_max + 1), "nanodet's output")
    resizes = [op for name, op in geometry.operations if name == "resize"]
    height = resizes[-1]["preferable_height"] if resizes else geometry.height
    width = resizes[-1]["preferable_width"] if resizes else geometry.width
    centres = []
    shift = 0.5 if is_legacy else 0.0
    for stride in strides:
        ys, xs = np.meshgrid((np.arange(math.ceil(height / stride)) + shift) * stride,
                             (np.arange(math.ceil(width / stride)) + shift) * stride, indexing="ij")
        centres.append(np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, float(stride))], axis=1))
    centre = np.concatenate(centres)
    if len(centre) != len(rows):
        raise AccuracyConfigError(f"nanodet: the output has {len(rows)} rows; strides {list(strides)} on a "
                                  f"{width}x{height} input make {len(centre)} cells")
    logits = rows[:, num_classes:].reshape(len(rows), 4, reg_max + 1)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    distance = (weights @ np.arange(reg_max + 1, dtype=np.float64)) * centre[:, 2:3]
    boxes = np.stack([(centre[:, 0] - distance[:, 0]).clip(0, width), (centre[:, 1] - distance[:, 1]).clip(0, height),
                      (centre[:, 0] + distance[:, 2]).clip(0, width), (centre[:, 1] + distance[:, 3]).clip(0, height)],
                     axis=1)
    scores = rows[:, :num_classes]
    labels = range(num_classes)
    picked = [scores[:, c] > confidence_threshold for c in labels]
    found = _nms_per_label(labels, [scores[m, c] for c, m in zip(labels, picked)], [boxes[m] for m in picked],
                           nms_threshold, True)
    if len(found.scores) > max_detections:
        found = found.take(np.argsort(found.scores, kind="stable")[::-1][:max_detections])
    return found


def faster_rcnn_onnx(net: Outputs, geometry: Any, boxes_out: str = "", labels_out: str | None = None,
                     scores_out: str | None = None) -> Detections:
    """The checker's `faster_rcnn_onnx`: boxes [N, 4 or more] in the network's pixels (the score
    fifth, the label sixth when no output names them), brought to the picture's by the resize's
    scale."""
    raw = np.array(net.named(boxes_out), dtype=np.float64)
    boxes = raw.reshape(-1, raw.shape[-1]) if raw.ndim else raw.reshape(0, 6)
    need = 6 if not labels_out else 5 if not scores_out else 4  # (the score fifth, the label sixth)
    if boxes.shape[1] < need:
        raise AccuracyConfigError(f"faster_rcnn_onnx: output {boxes_out!r} has {boxes.shape[1]} values a row; "
                                  "4 with labels_out and scores_out, 5 with labels_out only, 6 with neither")
    scores = _rows(net.named(scores_out)) if scores_out else boxes[:, 4].copy()
    labels = _rows(net.named(labels_out)) if labels_out else boxes[:, 5].copy()
    _same_count("faster_rcnn_onnx", labels=len(labels), scores=len(scores), boxes=len(boxes))
    sx, sy = _resize_scale(geometry, "faster_rcnn_onnx")
    return Detections(labels.astype(int), scores, boxes[:, :4] / np.array([sx, sy, sx, sy]))


def ctdet(net: Outputs, geometry: Any, center_heatmap_out: str = "", width_height_out: str = "",
          regression_out: str = "") -> Detections:
    """The checker's `ctdet` (CenterNet): the heatmap [C, H, W] of logits through a sigmoid, the
    points that are the maximum of their 3x3 neighbourhood, the 100 best (class, point) pairs;
    each point moved by the regression [2, H, W], a box of the size [2, H, W] around it, brought
    from the heatmap back to the picture by the inverse of CenterNet's affine map (the picture's
    longer side, centred, across the heatmap's width)."""
    from .preprocessing import centernet_affine

    heat = np.asarray(net.named(center_heatmap_out), dtype=np.float32)
    heat = heat[0] if heat.ndim == 4 else heat
    if heat.ndim != 3:
        raise AccuracyConfigError(f"ctdet: output {center_heatmap_out!r} of shape {list(heat.shape)} is not a "
                                  "[C, H, W] heatmap")
    classes, height, width = heat.shape
    wh, reg = (np.asarray(net.named(name), dtype=np.float64) for name in (width_height_out, regression_out))
    for name, part in ((width_height_out, wh), (regression_out, reg)):
        if part.size != 2 * height * width:
            raise AccuracyConfigError(f"ctdet: output {name!r} of shape {list(part.shape)} is not [2, {height}, "
                                      f"{width}] as the heatmap")
    wh, reg = wh.reshape(2, -1), reg.reshape(2, -1)
    heat = np.exp(heat) / (1 + np.exp(heat))  # (in float32, as the checker)
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1)))
    peak = np.max([padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)], axis=0)
    heat = heat * (peak == heat)
    flat = heat.reshape(-1)
    k = min(100, flat.size)
    best = np.argpartition(flat, -k)[-k:]
    label, point = best // (height * width), best % (height * width)
    xs = (point % width) + reg[0, point]
    ys = (point // width) + reg[1, point]
    half_w, half_h = wh[0, point] / 2, wh[1, point] / 2
    corners = np.stack([xs - half_w, ys - half_h, xs + half_w, ys + half_h], axis=1)
    back = centernet_affine((np.float32(geometry.width / 2.0), np.float32(geometry.height / 2.0)),  # type: ignore
                            float(max(geometry.height, geometry.width, 3)), width, height, inverse=True)
    boxes = np.empty_like(corners)
    for j in (0, 2):
        points = np.c_[corners[:, j:j + 2].astype(np.float32), np.ones(len(corners), dtype=np.float32)]
        boxes[:, j:j + 2] = points @ back.T
    return Detections(label.astype(int), flat[best].astype(np.float64), boxes)


@dataclass
class Embedding:
    """One picture's embedding [D] (a re-identification network's output), compared with every
    other picture's by the metric."""

    vector: np.ndarray


GRN_BIAS = 1e-6  # the checker's, under the square root


def reid(net: Outputs | list[Outputs], grn_workaround: bool = True, joining_method: str = "sum",
         target_out: str | None = None, keep_shape: bool = False) -> Embedding:
    """The checker's `reid`: the output named ``target_out`` (else the first), with
    ``grn_workaround`` divided by its L2 norm along the channel axis (axis 1, the batch's first
    after it; the bias under the root), flattened. Given the outputs of a picture and of its
    mirror (a flip merged with the original), ``joining_method`` joins them first: their sum, or
    their concatenation along axis 1."""
    if isinstance(net, list):
        parts = [np.asarray(n.named(target_out) if target_out else n.arrays[n.order[0]]) for n in net]
        if parts[0].ndim < 2:
            raise AccuracyConfigError(f"reid: the output is {list(parts[0].shape)}; expected a batch of embeddings "
                                      "[1, D, ...]")
        out = parts[0] + parts[1] if joining_method == "sum" else np.concatenate(parts, axis=1)
    else:
        out = np.asarray(net.named(target_out) if target_out else net.arrays[net.order[0]])
    if out.ndim < 2:
        raise AccuracyConfigError(f"reid: the output is {list(out.shape)}; expected a batch of embeddings [1, D, ...]")
    if grn_workaround:  # (in the output's own precision, float32, as the checker computes it)
        out = out / np.sqrt(np.sum(out ** 2, axis=1, keepdims=True) + out.dtype.type(GRN_BIAS))
    return Embedding(out[0].reshape(-1).copy())


@dataclass
class Picture:
    """One predicted picture (HxWxC or HxW), as the checker's image adapters leave it."""

    pixels: np.ndarray


@dataclass
class PictureScores:
    """One picture's image-quality values by metric name: computed as soon as it is predicted
    (the predicted and the target pictures are not kept for the whole data set)."""

    values: dict[str, float]


def image_processing(net: Outputs, reverse_channels: bool = False, mean: Sequence[float] = (0.0,),
                     std: Sequence[float] = (255.0,), target_out: str | None = None,
                     cast_to_uint8: bool = True) -> Picture:
    """The checker's `image_processing` (and `super_resolution`, the same reading): the output
    ``target_out`` (else the first), batch 0, channels last when the last axis is longer than 4;
    times ``std`` plus ``mean`` in the output's float32; with ``cast_to_uint8`` clipped to 0..255
    and truncated to bytes; ``reverse_channels`` swaps BGR and RGB."""
    raw = net.named(target_out) if target_out else net.arrays[net.order[0]]
    pixels = np.array(raw[0], dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[-1] > 4:
        pixels = pixels.transpose(1, 2, 0)
    pixels *= np.array(std, dtype=np.float32)
    pixels += np.array(mean, dtype=np.float32)
    if cast_to_uint8:
        pixels = np.clip(pixels, 0.0, 255.0).astype(np.uint8)
    if reverse_channels:
        if pixels.ndim != 3 or pixels.shape[-1] != 3:
            raise AccuracyConfigError(f"reverse_channels on a {list(pixels.shape)} output (three channels needed)")
        pixels = np.ascontiguousarray(pixels[:, :, ::-1])
    return Picture(pixels)


def style_transfer(net: Outputs) -> Picture:
    """The checker's `style_transfer`: the first output, batch 0, channels last when the first
    axis is 3, clipped to 0..255 and truncated to bytes (no scaling)."""
    pixels = np.array(net.arrays[net.order[0]][0], dtype=np.float32)
    if pixels.shape[0] == 3:
        pixels = pixels.transpose(1, 2, 0)
    return Picture(np.clip(pixels, 0.0, 255.0).astype(np.uint8))


def inpainting(net: Outputs) -> Picture:
    """The checker's `inpainting`: the first output, batch 0, channels last when the first axis is
    3, cast to bytes as it is (no clipping: the network's own range)."""
    pixels = np.asarray(net.arrays[net.order[0]][0])
    if pixels.shape[0] == 3:
        pixels = pixels.transpose(1, 2, 0)
    return Picture(pixels.astype(np.uint8))


Adapter = Callable[..., Any]
"""adapter(the network's first output, or its Outputs, **the adapter's options) -> predictions."""

ADAPTERS: dict[str, Adapter] = {"ssd": ssd, "classification": classification, "yolo_v2": yolo_v2,
                                "yolo_v3": yolo_v3, "yolo_v3_onnx": yolo_v3_onnx, "yolox": yolox,
                                "segmentation": segmentation, "class_agnostic_detection": class_agnostic_detection,
                                "mask_rcnn": mask_rcnn,
                                "ultra_lightweight_face_detection": ultra_lightweight_face_detection,
                                "faceboxes": faceboxes, "retinaface_pytorch": retinaface_pytorch, "ssd_onnx": ssd_onnx,
                                "detr": detr, "nanodet": nanodet, "faster_rcnn_onnx": faster_rcnn_onnx, "yolof": yolof,
                                "ctdet": ctdet, "reid": reid, "image_processing": image_processing,
                                "super_resolution": image_processing, "style_transfer": style_transfer,
                                "inpainting": inpainting}
SINGLE_OUTPUT = frozenset({"ssd", "classification", "segmentation"})
# adapters that also read what the preprocessing did (the resize's scale or size; the picture's size
# for the masks): geometry=
NEEDS_GEOMETRY = frozenset({"retinaface_pytorch", "nanodet", "faster_rcnn_onnx", "ctdet", "mask_rcnn"})
