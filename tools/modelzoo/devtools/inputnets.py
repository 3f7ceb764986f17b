"""Tiny detectors with the interfaces of Open Model Zoo's IRs, built with OpenVINO's Python API, for
proving the accuracy tool against Open Model Zoo's own accuracy_check: with a second input
(CONST_INPUT, IMAGE_INFO, ORIG_IMAGE_INFO), each network's boxes divided or multiplied by what
that input holds, so a wrong feed (another size, height and width swapped, the network's size for
the picture's) moves every box and the metric with it; and YOLO v4's raw grids.

Their weights are random; the data sets are annotated from the networks' own detections (see
vocset.detector and cocoset.write_coco_folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .vocset import _grid_head, _save


def _corners(fractions):
    """[.., 4] values in (0, 1) -> corners (a, b, a', b') in (0, 1): the first two the top-left
    corner, the other two a size from 0.1 to 0.4."""
    import openvino.opset8 as ops

    def part(start: int, stop: int):
        rank = len(fractions.get_output_partial_shape(0))
        begin, end = [0] * (rank - 1) + [start], [1 << 30] * (rank - 1) + [stop]
        return ops.slice(fractions, ops.constant(np.array(begin)), ops.constant(np.array(end)),
                         ops.constant(np.ones(rank, dtype=np.int64)))

    low = ops.multiply(part(0, 2), ops.constant(np.float32(0.6)))
    size = ops.add(ops.multiply(part(2, 4), ops.constant(np.float32(0.3))), ops.constant(np.float32(0.1)))
    return ops.concat([low, ops.add(low, size)], -1)


def ssd_ir(xml: Path, height: int, width: int, classes: int, info: int = 0, nhwc: bool = False,
           seed: int = 0) -> Path:
    """A [1,3,H,W] (or [1,H,W,3]) picture and, with ``info`` 3 or 6, an `image_info` input
    [1, info] ([height, width, ...], as Faster R-CNN's): one detection per 32x32 cell, rows
    [0, label, score, x_min, y_min, x_max, y_max] in DetectionOutput's [1, 1, N, 7]; the boxes
    made in the network's pixels, then divided by image_info's width and height (by the
    network's own without it)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, height, width, 3] if nhwc else [1, 3, height, width], np.float32,
                            name="image_tensor")
    params = [picture]
    planar = ops.transpose(picture, ops.constant(np.array([0, 3, 1, 2]))) if nhwc else picture
    head = _grid_head(planar, 32, 4 + classes, rng)
    rows = ops.transpose(ops.reshape(head, ops.constant(np.array([1, 4 + classes, -1])), False),
                         ops.constant(np.array([0, 2, 1])))  # [1, N, 4 + classes]
    cells = (height // 32) * (width // 32)
    box_logits = ops.slice(rows, ops.constant(np.array([0, 0, 0])), ops.constant(np.array([1, 1 << 30, 4])),
                           ops.constant(np.array([1, 1, 1])))
    # (and a bias of each cell, so that the cells' boxes differ more than the pooled picture moves them)
    fractions = ops.sigmoid(ops.add(box_logits, ops.constant(rng.normal(0, 1.0, (1, cells, 4)).astype(np.float32))))
    pixels = ops.multiply(_corners(fractions), ops.constant(np.array([width, height, width, height], np.float32)))
    if info:
        image_info = ops.parameter([1, info], np.float32, name="image_info")
        params.append(image_info)
        divisor = ops.gather(image_info, ops.constant(np.array([1, 0, 1, 0])), ops.constant(np.int64(1)))
    else:
        divisor = ops.constant(np.array([[width, height, width, height]], np.float32))
    boxes = ops.divide(pixels, ops.reshape(divisor, ops.constant(np.array([1, 1, 4])), False))
    logits = ops.slice(rows, ops.constant(np.array([0, 0, 4])), ops.constant(np.array([1, 1 << 30, 4 + classes])),
                       ops.constant(np.array([1, 1, 1])))
    # a bias of each cell and class (the pooled picture moves the scores a little around it), so
    # that the cells' best classes differ
    bias = rng.normal(-2.0, 1.5, (1, cells, classes)).astype(np.float32)
    best = ops.topk(ops.sigmoid(ops.add(logits, ops.constant(bias))), ops.constant(np.int64(1)), 2,
                    "max", "none", "i32")
    label = ops.convert(best.output(1), np.float32)
    image_id = ops.multiply(label, ops.constant(np.float32(0.0)))
    out = ops.reshape(ops.concat([image_id, label, best.output(0), boxes], 2),
                      ops.constant(np.array([1, 1, -1, 7])), False)
    out.output(0).get_tensor().set_names({"detection_out"})
    return _save(ov.Model([out], params, "tiny-ssd-info"), xml)


YOLO_ONNX_OUTPUTS = ("yolonms_layer_1/ExpandDims_1:0", "yolonms_layer_1/ExpandDims_3:0", "yolonms_layer_1/concat_2:0")


def yolo_onnx_ir(xml: Path, classes: int = 80, side: int = 416, seed: int = 0) -> Path:
    """yolo-v3-onnx's interface: the picture [1,3,side,side] and `image_shape` [1,2] (the
    original picture's height and width); boxes [1, N, 4] (y_min, x_min, y_max, x_max) in the
    original picture's pixels (fractions times image_shape), scores [1, classes, N], and
    NonMaxSuppression's selected [M, 3] rows (batch, class, box)."""
    import openvino as ov
    import openvino.opset8 as ops
    import openvino.opset9 as ops9

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, side, side], np.float32, name="input_1")
    shape = ops.parameter([1, 2], np.float32, name="image_shape")
    head = ops.reshape(_grid_head(picture, 32, 4 + classes, rng), ops.constant(np.array([1, 4 + classes, -1])), False)
    fractions = ops.sigmoid(ops.add(ops.transpose(
        ops.slice(head, ops.constant(np.array([0, 0, 0])), ops.constant(np.array([1, 4, 1 << 30])),
                  ops.constant(np.array([1, 1, 1]))), ops.constant(np.array([0, 2, 1]))),
        ops.constant(rng.normal(0, 1.0, (1, (side // 32) ** 2, 4)).astype(np.float32))))
    scale = ops.reshape(ops.gather(shape, ops.constant(np.array([0, 1, 0, 1])), ops.constant(np.int64(1))),
                        ops.constant(np.array([1, 1, 4])), False)
    boxes = ops.multiply(_corners(fractions), scale)
    logits = ops.slice(head, ops.constant(np.array([0, 4, 0])), ops.constant(np.array([1, 4 + classes, 1 << 30])),
                       ops.constant(np.array([1, 1, 1])))
    bias = rng.normal(-3.0, 1.5, (1, classes, (side // 32) ** 2)).astype(np.float32)
    scores = ops.sigmoid(ops.add(logits, ops.constant(bias)))
    nms = ops9.non_max_suppression(boxes, scores, ops.constant(np.int64(20)), ops.constant(np.float32(0.5)),
                                   ops.constant(np.float32(0.01)), box_encoding="corner",
                                   sort_result_descending=False, output_type="i32")
    outputs = [boxes.output(0), scores.output(0), nms.output(0)]
    for port, name in zip(outputs, YOLO_ONNX_OUTPUTS):
        port.get_tensor().set_names({name})
    return _save(ov.Model(outputs, [picture, shape], "tiny-yolo-v3-onnx"), xml)


def yolo_raw_ir(xml: Path, side: int, grids: tuple[tuple[str, int], ...], classes: int = 80, seed: int = 0) -> Path:
    """yolo-v4-tf's interface as mo made it (no region layer): the picture [1, side, side, 3] and,
    per (output name, stride), the raw convolution [1, side/stride, side/stride, 3 * (5 + classes)]
    (height, width, then the boxes: `output_format: HWB`, `raw_output: true`); objectness
    logits biased low, so that a few percent of the boxes pass 0.001, as a trained detector's do
    (and the suppression after them stays quick)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, side, side, 3], np.float32, name="image_input")
    planar = ops.transpose(picture, ops.constant(np.array([0, 3, 1, 2])))
    box = 5 + classes
    outputs = []
    for name, stride in grids:
        cells = side // stride
        # a bias of each cell: box logits around 0, objectness around -10 (a few percent of the
        # boxes pass 0.001), class logits spread (the best class differs from box to box)
        means = np.tile(np.r_[np.zeros(4), -10.0, np.ones(classes)], 3)[None, :, None, None]
        spreads = np.tile(np.r_[np.full(4, 0.5), 1.5, np.full(classes, 2.0)], 3)[None, :, None, None]
        bias = (means + spreads * rng.standard_normal((1, 3 * box, cells, cells))).astype(np.float32)
        head = ops.add(_grid_head(planar, stride, 3 * box, rng), ops.constant(bias))
        out = ops.transpose(head, ops.constant(np.array([0, 2, 3, 1])))
        out.output(0).get_tensor().set_names({name})
        outputs.append(out)
    return _save(ov.Model(outputs, [picture], "tiny-yolo-raw"), xml)
