"""`SSDToolboxDetectionOutput` (vehicle-license-plate-detection-barrier-0123's `model.tfmo.json`).

What mo 2024.6 did (openvino/tools/mo/front/tf/SSDToolboxDetectionOutput.py, checked against its
IR of a synthetic graph): the descriptor cuts the graph at the three heads of the SSD toolbox
(`--output=.../mbox_loc_final,.../mbox_conf_final,.../mbox_priorbox`); the config's start points
say which is which. Locations and confidences are flattened to [N, -1], the priors reshaped to
[1, 2, -1] (boxes, then variances), and one `DetectionOutput` (opset8) with the config's
custom_attributes over mo's defaults replaces the three outputs. Its output is [1, 1, keep_top_k, 7],
named `DetectionOutput_`: rows [image_id, label, conf, x_min, y_min, x_max, y_max] in [0, 1]
coordinates, the row after the last detection has image_id -1 (the card of the model and the
`ssd` adapter of its accuracy-check.yml read exactly this).
"""

from __future__ import annotations

from typing import Any

from ...errors import UnsupportedArgumentError
from . import _config
from ._ops import opset

ID = "SSDToolboxDetectionOutput"
NAME = "DetectionOutput_"

# mo's DetectionOutput defaults (ops/DetectionOutput.py) and what its IR writes when unset
DEFAULTS: dict[str, Any] = {
    "background_label_id": 0, "top_k": -1, "variance_encoded_in_target": False, "code_type":
    "caffe.PriorBoxParameter.CORNER", "share_location": True, "clip_after_nms": False, "clip_before_nms": False,
    "decrease_label_id": False, "normalized": True, "input_height": 1, "input_width": 1, "objectness_score": 0.0,
    "confidence_threshold": 0.0,
}
# custom_attributes mo's IR does not carry (the toolbox's resize settings): read and dropped, as mo did
IGNORED = ("pad_mode", "resize_mode", "num_classes")


def _attributes(p: Any, custom: dict[str, Any], priors: int) -> dict[str, Any]:
    """The DetectionOutput attributes: the config's over mo's defaults; keep_top_k -1 or absent
    means every prior (mo's infer).

    Raises:
        UnsupportedArgumentError: an attribute the stage does not know (it would be dropped).
    """
    unknown = sorted(set(custom) - set(DEFAULTS) - {"keep_top_k", "nms_threshold"} - set(IGNORED))
    if unknown:
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{ID}: unknown custom_attributes "
                                                                  f"{', '.join(unknown)}")
    attrs = {**DEFAULTS, **{k: v for k, v in custom.items() if k not in IGNORED}}
    keep = _config.integer(p, custom, "keep_top_k", -1)
    attrs["keep_top_k"] = [priors if keep == -1 else keep]
    attrs["nms_threshold"] = float(custom.get("nms_threshold", 0.0))
    return attrs


def _heads(model: Any, p: Any, replacement: dict[str, Any]) -> list[Any]:
    """The three tensors (locations, confidences, priors) in the order of the config's start points.

    Raises:
        UnsupportedArgumentError: the config does not name three start points that are outputs
            of the converted model (the descriptor's --output).
    """
    instances = replacement.get("instances")
    points = instances.get("start_points") if isinstance(instances, dict) else None
    if not (isinstance(points, list) and len(points) == 3 and all(isinstance(s, str) for s in points)):
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{ID} needs instances.start_points: the "
                                                                  "locations, confidences and priors")
    by_name = {}
    for result in model.get_results():
        for name in result.input_value(0).get_names():
            by_name[name] = result.input_value(0)
    missing = [s for s in points if s not in by_name and s + ":0" not in by_name]
    if missing:  # (TensorFlow's frontend drops an output that is a bare Const, as priors may be)
        raise UnsupportedArgumentError(p.model, "--output", f"{ID} starts at {', '.join(missing)}, which the "
                                                            "converted model does not output (not in --output, "
                                                            "or a constant that OpenVINO's frontend drops)")
    return [by_name[s if s in by_name else s + ":0"] for s in points]


def stage(model: Any, p: Any) -> Any:
    """Replace the three SSD heads with mo's DetectionOutput [1, 1, keep_top_k, 7].

    Raises:
        UnsupportedArgumentError: the config or the heads are not what the transformation reads
            (see _heads, _attributes), or the priors' size is unknown.
    """
    import numpy as np

    ops = opset()
    replacement = _config.replacement(p)
    loc, conf, priors = _heads(model, p, replacement)
    prior_shape = priors.get_partial_shape()
    if prior_shape.is_dynamic:
        raise UnsupportedArgumentError(p.model, "--output", f"{ID}: the priors' shape is not known ({prior_shape})")
    count = int(np.prod(prior_shape.to_shape())) // 8  # [1, 2, priors * 4]: boxes and variances
    attrs = _attributes(p, replacement.get("custom_attributes", {}), count)
    flat = ops.constant(np.array([0, -1], np.int64))
    with _config.building(p, f"{ID} over {', '.join(p.outputs)}"):
        detections = ops.detection_output(ops.reshape(loc, flat, True), ops.reshape(conf, flat, True),
                                          ops.reshape(priors, ops.constant(np.array([1, 2, -1], np.int64)), False),
                                          attrs)
        detections.set_friendly_name(NAME)
        detections.output(0).get_tensor().set_names({NAME, NAME + ":0"})
        result = ops.result(detections)
        result.set_friendly_name(NAME + "/sink_port_0")
        for old in list(model.get_results()):
            model.remove_result(old)
        model.add_results([result])
        model.validate_nodes_and_infer_types()
    return model
