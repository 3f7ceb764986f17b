"""front/tf/automl_efficientdet.json: mo's AutomlEfficientDet rebuilt on the converted graph.

The AutoML EfficientDet frozen graphs end in post-processing that neither mo nor today's
frontends convert (a Python function, or `CombinedNonMaxSuppression`), so mo 2024.6 cut the
graph and finished it itself; this stage does the same steps on an `openvino.Model` converted
up to the heads (`concat`: class logits [1,A,C], `concat_1`: box deltas [1,A,4]; see NEEDS in
stages/__init__.py):

- the resizing and padding is taken out: the picture goes straight into the normalisation (the
  consumer of `preprocessing_input_node`, `strided_slice_1`) and the normalised picture
  (`preprocessing_output_node`, `truediv`) straight into the first convolution;
- anchors: one `PriorBoxClustered` per level (the levels are the `box_net/box-predict*/BiasAdd`
  feature maps) with mo's widths and heights (`2**(min_level+i) * anchor_scale * 2**(s/num_scales)`
  times each aspect ratio pair), offset 0.5, the config's variances, no clipping;
- the box deltas in x/y order (mo swapped the shared box convolution's weights, the same values),
  the class scores through a sigmoid, and one `DetectionOutput` (CENTER_SIZE, shared locations,
  no background class: `background_label_id` = num_classes + 1, the config's NMS and confidence
  thresholds, top_k = keep_top_k = 100) named `detections` [1,1,100,7]: labels 0-based (the card:
  class ids for coco_91cl.txt; the accuracy config shifts them by 1).

The config's attributes are read from the file the descriptor names when it exists (mo's own
extensions folder); without mo they are mo 2024.6's values below.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import ConversionError, UnsupportedArgumentError
from ._ops import opset

CONFIG = "front/tf/automl_efficientdet.json"
HEADS = ("concat", "concat_1")  # class logits, box deltas
# mo 2024.6's automl_efficientdet.json (custom_attributes of "AutomlEfficientDet")
DEFAULTS: dict[str, Any] = {
    "preprocessing_input_node": "strided_slice_1", "preprocessing_output_node": "truediv",
    "aspect_ratios": [1.0, 1.0, 1.4, 0.7, 0.7, 1.4], "variance": [1.0, 1.0, 1.0, 1.0], "min_level": 3,
    "num_scales": 3, "anchor_scale": 4.0, "num_classes": 90, "nms_threshold": 0.6, "confidence_threshold": 0.2,
}
INPUT_ALIAS = "image_arrays/placeholder_port_0"  # the card's name of the converted model's input
MAX_DETECTIONS = 100


def attributes(p: Any) -> dict[str, Any]:
    """The config's custom attributes: the descriptor's file if it is there, else mo 2024.6's."""
    path = p.output_stage_file
    if path is None or not path.is_file():
        return dict(DEFAULTS)
    try:
        entries = json.loads(path.read_text())
        found = next(e for e in entries if e.get("id") == "AutomlEfficientDet")
        return {**DEFAULTS, **found.get("custom_attributes", {})}
    except (OSError, ValueError, StopIteration, AttributeError) as exc:
        raise ConversionError(f"{p.model}: cannot read the AutomlEfficientDet attributes of {path}: {exc}") from None


def anchor_sizes(level: int, a: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(widths, heights) in pixels of one level's anchors, in mo's order (scales, then aspect ratios)."""
    ratios = list(zip(a["aspect_ratios"][::2], a["aspect_ratios"][1::2]))
    base = 2 ** (int(a["min_level"]) + level) * float(a["anchor_scale"])
    scales = [2 ** (s / int(a["num_scales"])) for s in range(int(a["num_scales"]))]
    widths = [base * s * rx for s in scales for rx, _ in ratios]
    heights = [base * s * ry for s in scales for _, ry in ratios]
    return widths, heights


def _by_name(model: Any) -> dict[str, Any]:
    return {op.get_friendly_name(): op for op in model.get_ordered_ops()}


def _node(ops_by_name: dict[str, Any], name: str, p: Any) -> Any:
    if name not in ops_by_name:
        raise UnsupportedArgumentError(p.model, "--transformations_config",
                                       f"{CONFIG}: the graph has no node {name} (not an AutoML EfficientDet graph?)")
    return ops_by_name[name]


def _head(model: Any, name: str, p: Any) -> Any:
    for result in model.get_results():
        value = result.input_value(0)
        if {name, name + ":0"} & set(value.get_names()):
            return value
    raise ConversionError(f"{p.model}: the graph has no output {name}")


def _skip_preprocessing(model: Any, a: dict[str, Any], p: Any) -> None:
    """The picture into the normalisation, the normalised picture into the first convolution."""
    import numpy as np

    ops_by_name = _by_name(model)
    start = _node(ops_by_name, a["preprocessing_input_node"], p)
    end = _node(ops_by_name, a["preprocessing_output_node"], p)
    picture = start.input_value(0)  # the (pre-processed) input the slice read from
    for target in list(start.output(0).get_target_inputs()):
        target.replace_source_output(picture)
    convolutions = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if not convolutions:
        raise UnsupportedArgumentError(p.model, "--transformations_config", f"{CONFIG}: the graph has no convolution")
    _reinfer_between(model, picture.get_node(), end)  # `end`: now the [1,H,W,3] picture normalised (NHWC)
    nchw = opset().transpose(end.output(0), opset().constant(np.array([0, 3, 1, 2], np.int64)))
    convolutions[0].input(0).replace_source_output(nchw.output(0))  # as a Convolution reads it
    try:
        model.validate_nodes_and_infer_types()
    except Exception as exc:  # noqa: BLE001 - OpenVINO's shape inference says what does not fit
        raise ConversionError(f"{p.model}: {CONFIG}: the picture does not fit the first convolution once the "
                              f"resizing is taken out: {str(exc).strip().splitlines()[-1]}") from None


def _reinfer_between(model: Any, source: Any, end: Any) -> None:
    """Shapes again on the ops from `source` (exclusive) up to `end` (their inputs changed)."""
    between, todo = set(), [end]
    while todo:
        op = todo.pop()
        if op is source or op.get_friendly_name() in between or op.get_type_name() in ("Constant", "Parameter"):
            continue
        between.add(op.get_friendly_name())
        todo.extend(value.get_node() for value in op.input_values())
    for op in model.get_ordered_ops():
        if op.get_friendly_name() in between:
            op.validate_and_infer_types()


def _priors(model: Any, a: dict[str, Any], height: int, width: int, p: Any) -> Any:
    """mo's PriorBoxClustered per level, concatenated: [1,2,4*A]."""
    import numpy as np

    ops = opset()
    ops_by_name = _by_name(model)
    priors = []
    for level in range(100):
        name = "box_net/box-predict{}/BiasAdd".format(f"_{level}" if level else "")
        if name not in ops_by_name:
            break
        shape = ops_by_name[name].get_output_partial_shape(0)
        if shape.is_dynamic or len(shape) != 4:
            raise UnsupportedArgumentError(p.model, "--input_shape", f"{name} has no static shape ({shape})")
        rows, columns = shape[1].get_length(), shape[2].get_length()  # NHWC, as TensorFlow computed it
        widths, heights = anchor_sizes(level, a)
        priors.append(ops.prior_box_clustered(
            ops.constant(np.array([rows, columns], np.int64)), ops.constant(np.array([height, width], np.int64)),
            {"width": np.array(widths, np.float32), "height": np.array(heights, np.float32), "clip": False,
             "offset": 0.5, "variance": np.array(a["variance"], np.float32)}))  # steps: image / feature map
    if not priors:
        raise UnsupportedArgumentError(p.model, "--transformations_config",
                                       f"{CONFIG}: the graph has no box_net/box-predict/BiasAdd")
    return ops.unsqueeze(ops.concat(priors, axis=-1), ops.constant(np.array([0], np.int64)))


def stage(model: Any, p: Any) -> Any:
    """The AutoML EfficientDet graph up to its heads -> mo's IR: one `detections` [1,1,100,7].

    Raises:
        UnsupportedArgumentError: not one static [1,H,W,3] picture, or a node the config names is missing.
        ConversionError: the heads are not outputs, the config file is unreadable, or the picture does not
            fit the first convolution once the resizing is taken out.
    """
    import numpy as np

    ops = opset()
    a = attributes(p)
    if len(model.inputs) != 1:
        raise UnsupportedArgumentError(p.model, "--transformations_config", f"{CONFIG} expects one picture input")
    shape = model.inputs[0].get_partial_shape()
    if shape.is_dynamic or len(shape) != 4 or shape[0].get_length() != 1:
        raise UnsupportedArgumentError(p.model, "--input_shape", f"{CONFIG} needs a static [1,H,W,3] input "
                                                                 f"(got {shape})")
    height, width = shape[1].get_length(), shape[2].get_length()
    logits, deltas = (_head(model, name, p) for name in HEADS)
    _skip_preprocessing(model, a, p)
    flat = ops.constant(np.array([0, -1], np.int64))
    conf = ops.reshape(ops.sigmoid(logits), flat, True)
    xy = ops.gather(deltas, ops.constant(np.array([1, 0, 3, 2], np.int64)), ops.constant(np.array(2, np.int64)))
    detections = ops.detection_output(ops.reshape(xy, flat, True), conf, _priors(model, a, height, width, p), {
        "background_label_id": int(a["num_classes"]) + 1, "top_k": MAX_DETECTIONS, "keep_top_k": [MAX_DETECTIONS],
        "code_type": "caffe.PriorBoxParameter.CENTER_SIZE", "share_location": True,
        "nms_threshold": float(a["nms_threshold"]), "confidence_threshold": float(a["confidence_threshold"]),
        "variance_encoded_in_target": False, "normalized": True, "clip_after_nms": False, "clip_before_nms": False,
        "decrease_label_id": False, "input_height": 1, "input_width": 1, "objectness_score": 0.0})
    detections.set_friendly_name("detections")
    for port in (logits, deltas):
        port.get_tensor().set_names(set())
    detections.output(0).get_tensor().set_names({"detections"})
    result = ops.result(detections)
    result.set_friendly_name("detections")
    for old in list(model.get_results()):
        model.remove_result(old)
    model.add_results([result])
    model.inputs[0].get_tensor().add_names({INPUT_ALIAS})
    model.validate_nodes_and_infer_types()
    return model
