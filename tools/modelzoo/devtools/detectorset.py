"""Tiny networks built with OpenVINO's Python API that answer in the layouts of Open Model Zoo's
detectors whose adapters decode, choose or scale boxes themselves (ultra_lightweight_face_detection,
faceboxes, retinaface_pytorch, ssd_onnx, detr, nanodet, faster_rcnn_onnx): each model's output
names, shapes and box coding, with random weights, for proving those adapters against Open Model
Zoo's own accuracy_check on the same IR and pictures.

Every network pools the picture into cells (one cell per prior, query or anchor point of the
real model), and a 1x1 convolution of random weights makes each cell's values from its mean
colour, so the boxes and scores follow the picture. Box sides stay small and the scores are
biased down, so a few boxes per picture pass the adapters' thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .vocset import _save


def _i64(values: Any) -> Any:
    import openvino.opset8 as ops

    return ops.constant(np.array(values, dtype=np.int64))


def _f32(value: Any) -> Any:
    import openvino.opset8 as ops

    return ops.constant(np.array(value, dtype=np.float32))


def _cells(picture: Any, kernel: tuple[int, int], channels: int, rng: np.random.Generator,
           bias: np.ndarray | None = None, ceil: bool = False, spread: Any = 0.9, grey_blind: int = 0
           ) -> tuple[Any, int, int]:
    """The picture averaged over kernel-sized cells (rounded up: the last cell partial), then a 1x1
    convolution: [rows * cols, channels] (row by row), rows, cols. The first ``grey_blind``
    channels weigh the colours to a sum of 0 (a grey or black cell, as a warp's border, gives
    them their bias only)."""
    import openvino.opset8 as ops

    pooled = ops.avg_pool(picture, list(kernel), [0, 0], [0, 0], list(kernel), exclude_pad=True,
                          rounding_type="ceil" if ceil else "floor")
    pooled = ops.divide(ops.subtract(pooled, _f32(128)), _f32(48))
    weights = rng.normal(0, 1, (channels, 3, 1, 1)) * np.reshape(spread, (-1, 1, 1, 1))
    weights[:grey_blind] -= weights[:grey_blind].mean(axis=1, keepdims=True)
    weights = weights.astype(np.float32)
    shift = rng.normal(0, 0.3, channels) if bias is None else bias
    head = ops.add(ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1]),
                   _f32(np.asarray(shift, dtype=np.float32).reshape(1, channels, 1, 1)))
    _, _, rows, cols = (int(d) for d in head.get_output_partial_shape(0).to_shape())
    flat = ops.reshape(head, _i64([channels, rows * cols]), False)
    # a little of each cell's own, so that no two cells of a flat region tie (the order of equal
    # scores is a sort's, not a rule either tool follows)
    noise = rng.normal(0, 0.15, (rows * cols, channels)).astype(np.float32)
    return ops.add(ops.transpose(flat, _i64([1, 0])), ops.constant(noise)), rows, cols


def _columns(node: Any, sizes: list[int]) -> list[Any]:
    import openvino.opset8 as ops

    return list(ops.variadic_split(node, _i64(1), _i64(sizes)).outputs())


def _named(node: Any, shape: list[int], name: str) -> Any:
    import openvino.opset8 as ops

    out = ops.reshape(node, _i64(shape), False)
    out.output(0).get_tensor().set_names({name})
    out.set_friendly_name(name)
    result = ops.result(out)  # named as mo names them: accuracy_check's ssd_onnx matches these names
    result.set_friendly_name(f"{name}/sink_port_0")
    return result


def _corners(offsets: Any, sides: Any, rows: int, cols: int, centre_form: bool = False) -> Any:
    """[N, 4] boxes as parts of the picture: centres at the cell's corner plus a sigmoid offset,
    sides 3 % .. 43 % of the picture (mostly small: a sigmoid squared); corners, or (cx, cy, w, h)."""
    import openvino.opset8 as ops

    grid = np.stack([np.tile(np.arange(cols), rows) / cols, np.repeat(np.arange(rows), cols) / rows], 1)
    centre = ops.add(ops.divide(ops.sigmoid(offsets), _f32([cols, rows])), _f32(grid))
    size = ops.add(ops.multiply(ops.multiply(ops.sigmoid(sides), ops.sigmoid(sides)), _f32(0.4)), _f32(0.03))
    if centre_form:
        return ops.concat([centre, size], 1)
    half = ops.multiply(size, _f32(0.5))
    return ops.concat([ops.subtract(centre, half), ops.add(centre, half)], 1)


def _two_class(logit: Any, bias: float) -> Any:
    """[N, 1] face logit (damped, then shifted by ``bias``) -> [N, 2] (background, face) probabilities."""
    import openvino.opset8 as ops

    logit = ops.add(ops.multiply(logit, _f32(0.3)), _f32(bias))
    return ops.softmax(ops.concat([ops.negative(logit), logit], 1), 1)


def ultra_lightweight_ir(xml: Path, seed: int = 0) -> Path:
    """As ultra-lightweight-face-detection-*-320: [1,3,240,320] in; `scores` [1,N,2], `boxes`
    [1,N,4] decoded corners as parts of the picture (16x16 cells here, 4420 priors there)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 240, 320], np.float32, name="input")
    cells, rows, cols = _cells(picture, (16, 16), 5, rng, rng.normal(0, 0.3, 5) + [0, 0, 0, -1, -1])
    logit, offsets, sides = _columns(cells, [1, 2, 2])
    n = rows * cols
    scores = _named(_two_class(logit, 0.2), [1, n, 2], "scores")
    boxes = _named(_corners(offsets, sides, rows, cols), [1, n, 4], "boxes")
    return _save(ov.Model([scores, boxes], [picture], "ultra-lightweight-face"), xml)


def _prior_deltas(picture: Any, levels: list[tuple[int, int, float]], rng: np.random.Generator, extra: int
                  ) -> tuple[Any, Any, Any, int]:
    """Per level (stride, priors per cell, the face logit's shift: the levels of larger priors
    favoured, so that faces tall enough for the configurations' filters are found), every prior's
    deltas [N, 4], (background, face) probabilities [N, 2] and ``extra`` more values [N, extra], in
    the priors' order (cell by cell, a cell's priors together)."""
    import openvino.opset8 as ops

    deltas, logits, rest = [], [], []
    total = 0
    for stride, per_cell, face_bias in levels:
        k = 5 + extra
        bias = np.tile(np.r_[rng.normal(0, 0.2, 4), face_bias / 0.3, np.zeros(extra)], per_cell)
        cells, rows, cols = _cells(picture, (stride, stride), per_cell * k, rng, bias)
        cells = ops.reshape(cells, _i64([rows * cols * per_cell, k]), False)
        d, logit, *more = _columns(cells, [4, 1] + ([extra] if extra else []))
        deltas.append(ops.multiply(d, _f32(0.6)))
        logits.append(logit)
        rest += more
        total += rows * cols * per_cell
    concat = (lambda parts: ops.concat(parts, 0)) if len(levels) > 1 else (lambda parts: parts[0])
    return concat(deltas), _two_class(concat(logits), 0.0), concat(rest) if rest else None, total


def faceboxes_ir(xml: Path, seed: int = 0) -> Path:
    """As faceboxes-pytorch: [1,3,1024,1024] in; `boxes` [1,21824,4] deltas on FaceBoxes' priors
    (21 a 32-pixel cell, one a 64- and a 128-pixel cell), `scores` [1,21824,2]."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 1024, 1024], np.float32, name="input.1")
    deltas, probs, _, n = _prior_deltas(picture, [(32, 21, -3.8), (64, 1, -1.6), (128, 1, -1.6)], rng, 0)
    return _save(ov.Model([_named(deltas, [1, n, 4], "boxes"), _named(probs, [1, n, 2], "scores")], [picture],
                          "faceboxes"), xml)


def retinaface_ir(xml: Path, seed: int = 0) -> Path:
    """As retinaface-resnet50-pytorch: [1,3,640,640] in; `face_rpn_bbox_pred` [1,16800,4] deltas on
    its priors (two a cell of 8, 16 and 32 pixels), `face_rpn_cls_prob` [1,16800,2],
    `face_rpn_landmark_pred` [1,16800,10]."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 640, 640], np.float32, name="data")
    deltas, probs, marks, n = _prior_deltas(picture, [(8, 2, -3.2), (16, 2, -2.4), (32, 2, -2.2)], rng, 10)
    outs = [_named(deltas, [1, n, 4], "face_rpn_bbox_pred"), _named(probs, [1, n, 2], "face_rpn_cls_prob"),
            _named(marks, [1, n, 10], "face_rpn_landmark_pred")]
    return _save(ov.Model(outs, [picture], "retinaface"), xml)


def ssd_onnx_ir(xml: Path, seed: int = 0) -> Path:
    """As ssd-resnet34-1200-onnx: [1,3,1200,1200] in; `bboxes` [1,N,4] corners as parts of the
    picture, `labels` [1,N] (int64, 1..80: COCO's 80 with the background 0), `scores` [1,N]."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 1200, 1200], np.float32, name="image")
    cells, rows, cols = _cells(picture, (100, 100), 85, rng)
    logit, offsets, sides, classes = _columns(cells, [1, 2, 2, 80])
    n = rows * cols
    label = ops.add(ops.topk(classes, _i64(1), 1, "max", "none", "i64").output(1), _i64(1))
    outs = [_named(_corners(offsets, sides, rows, cols), [1, n, 4], "bboxes"), _named(label, [1, n], "labels"),
            _named(ops.sigmoid(logit), [1, n], "scores")]
    return _save(ov.Model(outs, [picture], "ssd-onnx"), xml)


def detr_ir(xml: Path, seed: int = 0) -> Path:
    """As detr-resnet50: [1,3,800,1137] in; `scores` [1,100,92] logits (91 COCO labels, the last
    "no object"), `boxes` [1,100,4] (cx, cy, w, h) as parts of the picture: one query a cell."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 800, 1137], np.float32, name="input")
    cells, rows, cols = _cells(picture, (80, 113), 96, rng, np.r_[rng.normal(0, 0.3, 4), rng.normal(0, 1.5, 92)])
    offsets, sides, logits = _columns(cells, [2, 2, 92])
    outs = [_named(logits, [1, rows * cols, 92], "scores"),
            _named(_corners(offsets, sides, rows, cols, centre_form=True), [1, rows * cols, 4], "boxes")]
    return _save(ov.Model(outs, [picture], "detr"), xml)


def nanodet_ir(xml: Path, strides: tuple[int, ...], seed: int = 0) -> Path:
    """As nanodet(-plus)-m-1.5x-416: [1,3,416,416] in; `output` [1,N,112]: each stride's cells (the
    last one partial) in turn, rows of 80 class probabilities and 4 x 8 distance logits."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 416, 416], np.float32, name="data")
    parts, n = [], 0
    for stride in strides:
        bias = np.r_[rng.normal(0, 0.3, 80), rng.normal(0, 0.6, 32) + np.tile(np.linspace(1.2, -1.2, 8), 4)]
        cells, rows, cols = _cells(picture, (stride, stride), 112, rng, bias, ceil=True)
        scores, distances = _columns(cells, [80, 32])
        scores = ops.sigmoid(ops.add(ops.multiply(scores, _f32(0.35)), _f32(-5.0)))
        parts.append(ops.concat([scores, distances], 1))
        n += rows * cols
    return _save(ov.Model([_named(ops.concat(parts, 0), [1, n, 112], "output")], [picture], "nanodet"), xml)


def faster_rcnn_onnx_ir(xml: Path, seed: int = 0) -> Path:
    """As person-vehicle-bike-detection-2003: [1,3,480,864] in; `boxes` [N,5] (x_min, y_min, x_max,
    y_max in the input's pixels, score), `labels` [N] (int64; 0..79 here)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 480, 864], np.float32, name="image")
    cells, rows, cols = _cells(picture, (32, 32), 85, rng)
    logit, offsets, sides, classes = _columns(cells, [1, 2, 2, 80])
    pixels = ops.multiply(_corners(offsets, sides, rows, cols), _f32([864, 480, 864, 480]))
    boxes = _named(ops.concat([pixels, ops.sigmoid(logit)], 1), [rows * cols, 5], "boxes")
    label = _named(ops.topk(classes, _i64(1), 1, "max", "none", "i64").output(1), [rows * cols], "labels")
    return _save(ov.Model([boxes, label], [picture], "faster-rcnn-onnx"), xml)


def yolof_ir(xml: Path, seed: int = 0) -> Path:
    """As yolof: [1,3,608,608] in; `boxes` [1,504,38,38]: for each of 6 anchors a cell, 4 box values
    (raw centre offsets in anchors, log sides) then 80 class logits (no objectness)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 608, 608], np.float32, name="image")
    bias = np.tile(np.r_[rng.normal(0, 0.2, 4) - [0, 0, 0.5, 0.5], rng.normal(-4.6, 0.3, 80)], 6)
    spread = np.tile(np.r_[np.full(4, 0.5), np.full(80, 0.15)], 6)
    cells, rows, cols = _cells(picture, (16, 16), 6 * 84, rng, bias, spread=spread)
    grid = ops.reshape(ops.transpose(cells, _i64([1, 0])), _i64([1, 6 * 84, rows, cols]), False)
    return _save(ov.Model([_named(grid, [1, 6 * 84, rows, cols], "boxes")], [picture], "yolof"), xml)


def ctdet_ir(xml: Path, seed: int = 0) -> Path:
    """As ctdet_coco_dlav0_512: [1,3,512,512] in; `center_heatmap` [1,80,128,128] logits,
    `width_height` [1,2,128,128] box sides and `regression` [1,2,128,128] centre offsets, in the
    heatmap's cells (4 pixels of the input)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, 512, 512], np.float32, name="input.1")
    bias = np.r_[rng.normal(-1.6, 0.3, 80), rng.normal(0, 0.3, 4)]
    spread = np.r_[np.full(80, 0.6), np.full(4, 0.9)]
    cells, rows, cols = _cells(picture, (4, 4), 84, rng, bias, spread=spread, grey_blind=80)
    heat, sides, offsets = _columns(cells, [80, 2, 2])
    sides = ops.add(ops.multiply(ops.sigmoid(sides), _f32(30)), _f32(2))

    def grid(node: Any, channels: int, name: str) -> Any:
        return _named(ops.transpose(node, _i64([1, 0])), [1, channels, rows, cols], name)

    outs = [grid(heat, 80, "center_heatmap"), grid(sides, 2, "width_height"), grid(ops.sigmoid(offsets), 2, "regression")]
    return _save(ov.Model(outs, [picture], "ctdet"), xml)
