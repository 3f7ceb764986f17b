"""front/tf/retinanet.json: mo's DetectionOutput interface on top of the graph's own post-processing."""

from __future__ import annotations

from typing import Any

from ...errors import ConversionError, UnsupportedArgumentError
from ._ops import opset


def stage(model: Any, p: Any) -> Any:
    """Turn the graph's boxes [B,300,4] (pixels), scores [B,300] and labels [B,300] (-1 padded)
    into mo's one DetectionOutput-like output [1,1,300,7] (batch 1): rows [image_id, label, conf, x_min,
    y_min, x_max, y_max] with coordinates divided by the input's width and height, the row after
    an image's last detection has image_id -1 and the rest are zeros (as the CPU plugin's
    DetectionOutput writes them). Same tensor names as the mo IR."""
    import numpy as np

    ops = opset()
    if len(model.inputs) != 1:
        raise UnsupportedArgumentError(p.model, "--transformations_config", "expects one image input")
    shape = model.inputs[0].get_partial_shape()
    if shape.is_dynamic or len(shape) != 4:
        raise UnsupportedArgumentError(p.model, "--transformations_config",
                                       f"needs a static NHWC input shape (got {shape}); give --input_shape")
    batch, height, width = shape[0].get_length(), shape[1].get_length(), shape[2].get_length()
    if batch != 1:
        raise UnsupportedArgumentError(p.model, "--input_shape", f"the retinanet output stage is for batch 1 "
                                                                 f"(got {batch})")
    # the values the old Results hold (a Result's own output would keep the Result in the graph)
    boxes, scores, labels = (r.input_value(0) for r in model.get_results()[:3])
    if boxes.get_partial_shape().is_dynamic or len(boxes.get_partial_shape()) != 3:
        raise ConversionError(f"{p.model}: the first --output is not [B,N,4] boxes: {boxes.get_partial_shape()}")
    n = boxes.get_partial_shape()[1].get_length()
    name = p.outputs[0]

    f32 = np.float32
    labels_f = ops.convert(labels, "f32")
    valid = ops.greater_equal(labels_f, ops.constant(np.zeros((), f32)))  # [1,N]
    count = ops.reduce_sum(ops.convert(valid, "i32"), ops.constant(np.array([1], np.int64)), True)  # [1,1]
    rows = ops.constant(np.arange(n, dtype=np.int32)[None])  # [1,N]
    is_end = ops.equal(rows, count)  # the row right after the last detection
    zero = ops.constant(np.zeros((), f32))
    image_id = ops.select(is_end, ops.constant(np.array(-1, f32)), zero)  # 0 on detections and padding
    scale = ops.constant(np.array([1 / width, 1 / height, 1 / width, 1 / height], f32))
    boxes_n = ops.multiply(boxes, scale)  # [1,N,4]
    columns = [ops.unsqueeze(image_id, ops.constant(np.array([2], np.int64))),
               ops.unsqueeze(ops.select(valid, labels_f, zero), ops.constant(np.array([2], np.int64))),
               ops.unsqueeze(ops.select(valid, scores, zero), ops.constant(np.array([2], np.int64))),
               ops.select(ops.unsqueeze(valid, ops.constant(np.array([2], np.int64))), boxes_n, zero)]
    table = ops.concat(columns, axis=2)  # [1,N,7]
    detections = ops.reshape(table, ops.constant(np.array([1, 1, n, 7], np.int64)), False)
    detections.set_friendly_name("DetectionOutput")
    for port in (boxes, scores, labels):  # the graph's own names move to the new output
        port.get_tensor().set_names(set())
    detections.output(0).get_tensor().set_names({name, name + ":0"})
    result = ops.result(detections)
    result.set_friendly_name(name)
    for old in list(model.get_results()):
        model.remove_result(old)
    model.add_results([result])
    model.validate_nodes_and_infer_types()
    return model
