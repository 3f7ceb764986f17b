"""From the network's output to predictions: one function per adapter type of accuracy-check.yml,
looked up in ADAPTERS (a new task's adapter is a function here and an entry there, its options
in config.ADAPTERS). Today: `classification` (class scores), accuracy_check's `ssd`
(DetectionOutput's [1, 1, N, 7] rows
[image_id, label, conf, x_min, y_min, x_max, y_max], boxes normalised), and the YOLO family
(`yolo_v2`, `yolo_v3`, `yolo_v3_onnx`, `yolox`: see their docstrings for the layouts),
`segmentation`, and `mask_rcnn` (boxes with masks in the picture, Instances).

An adapter in SINGLE_OUTPUT takes the network's first output; the others take every output by
name (`Outputs`) and the network's input size, since a YOLO network answers on several grids."""

from __future__ import annotations

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
        p = net.named(name)
        p = p[0] if p.ndim > 1 and p.shape[0] == 1 else p
        layer_anchors = ([v for i in anchor_masks[layer] for v in anchors[2 * i:2 * i + 2]]
                         if anchor_masks else list(anchors))
        layer_num = len(layer_anchors) // 2 if anchor_masks else num
        if p.ndim != 3:
            if layer >= len(cells):
                raise AccuracyConfigError(f"yolo_v3: output {name!r} is not a grid and cells names no size for it")
            side = cells[layer]
            p = p.reshape((-1, side, side) if output_format == "BHW" else (side, side, -1))
        side = p.shape[1] if output_format == "BHW" else p.shape[0]
        box_size = (p.shape[0] if output_format == "BHW" else p.shape[2]) // layer_num
        parts.append(_region(p, side, layer_num, classes, box_size, layer_anchors, (width, height), threshold,
                             "v3" if raw_output else None, multiple_labels))
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


Adapter = Callable[..., Any]
"""adapter(the network's first output, or its Outputs, **the adapter's options) -> predictions."""

ADAPTERS: dict[str, Adapter] = {"ssd": ssd, "classification": classification, "yolo_v2": yolo_v2,
                                "yolo_v3": yolo_v3, "yolo_v3_onnx": yolo_v3_onnx, "yolox": yolox,
                                "segmentation": segmentation, "class_agnostic_detection": class_agnostic_detection,
                                "mask_rcnn": mask_rcnn}
SINGLE_OUTPUT = frozenset({"ssd", "classification", "segmentation"})
WITH_GEOMETRY = frozenset({"mask_rcnn"})  # adapters that take the picture's Geometry too (the masks' size)
