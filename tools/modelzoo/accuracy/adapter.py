"""From the network's output to predictions: one function per adapter type of accuracy-check.yml,
looked up in ADAPTERS (a new task's adapter is a function here and an entry there, its options
in config.ADAPTERS). Today: `classification` (class scores), accuracy_check's `ssd`
(DetectionOutput's [1, 1, N, 7] rows
[image_id, label, conf, x_min, y_min, x_max, y_max], boxes normalised), and the YOLO family
(`yolo_v2`, `yolo_v3`, `yolo_v3_onnx`, `yolox`: see their docstrings for the layouts).

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
                                "image_processing": image_processing, "super_resolution": image_processing,
                                "style_transfer": style_transfer, "inpainting": inpainting}
SINGLE_OUTPUT = frozenset({"ssd", "classification", "segmentation"})
