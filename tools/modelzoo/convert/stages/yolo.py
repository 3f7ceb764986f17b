"""YOLO v1/v2 (`TFYOLO`) and v3/v4 (`TFYOLOV3`): mo's `RegionYolo` outputs on a converted model.

What mo 2024.6 did (openvino/tools/mo/front/YOLO.py, checked against its IR of synthetic graphs):

- `TFYOLO` (front/tf/yolo_v2*.json; the zoo's yolo-v1-tiny-tf, yolo-v2-tf, yolo-v2-tiny-tf): every
  output of the graph gets a `RegionYolo` with the config's attributes (classes, coords, num,
  do_softmax, anchors; axis 1, end_axis 3), named `<node feeding the output>/YoloRegion`.
- `TFYOLOV3` (a JSON the model downloads: yolo-v3-tf, yolo-v3-tiny-tf, mobilenet-yolo-v4-syg):
  the graph's own outputs are dropped; for entry point i, the tensor feeding the entry point's
  input 0 gets a `RegionYolo` with `mask = masks[i]` (do_softmax 0 unless the config says
  otherwise), named `<that tensor's node>/YoloRegion`. Where the entry points are the heads'
  `BiasAdd` nodes (what the zoo's output names `conv2d_58/Conv2D/YoloRegion` in accuracy-check.yml
  imply: the node feeding the entry point is the convolution), the region reads the convolution
  before its bias, as mo 2024.6's IR does (measured on a synthetic graph); kept for equality.

TensorFlow's tensors are NHWC and RegionYolo reads NCHW, so each region has a Transpose before
it (mo's IR has the same: its layout pass). Outputs: do_softmax 1 gives [N, C*H*W] (one flat row
per image: boxes of `coords + 1 + classes` values, in the NCHW order of the cells); do_softmax 0
gives [N, C, H, W] with sigmoids on x, y, the box score and the classes.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ...errors import UnsupportedArgumentError
from . import _config
from ._ops import opset

V2_ID, V3_ID = "TFYOLO", "TFYOLOV3"

_V2_COCO = [0.57273, 0.677385, 1.87446, 2.06253, 3.33843, 5.47434, 7.88282, 3.52778, 9.77052, 9.16828]
# The custom_attributes of mo 2024.6's own TFYOLO configs (openvino/tools/mo/front/tf/<name>): the ovc
# backend has no mo folder to read them from (tests/test_stages_yolo.py compares them with mo's files).
# (yolo_v1.json and yolo_v1_tiny.json are left out: without do_softmax and without masks, mo's own
# RegionYolo shape inference has no box count; no descriptor of the zoo names them.)
MO_CONFIGS: dict[str, dict[str, Any]] = {
    "front/tf/yolo_v2.json": {"anchors": _V2_COCO, "classes": 80, "coords": 4, "num": 5, "do_softmax": 1},
    "front/tf/yolo_v2_tiny.json": {"anchors": _V2_COCO, "classes": 80, "coords": 4, "num": 5, "do_softmax": 1},
    "front/tf/yolo_v2_tiny_voc.json": {"anchors": [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52],
                                       "classes": 20, "coords": 4, "num": 5, "do_softmax": 1},
    "front/tf/yolo_v2_voc.json": {"anchors": [1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053,
                                              11.2364, 10.0071], "classes": 20, "coords": 4, "num": 5, "do_softmax": 1},
}


def _node_name(port: Any) -> str:
    """The TensorFlow node of a tensor (`conv2d_9/Conv2D:0` -> `conv2d_9/Conv2D`), as mo names nodes."""
    names = sorted(port.get_names(), key=lambda n: (not re.search(r":\d+$", n), n))
    if not names:
        return port.get_node().get_friendly_name()
    return re.sub(r":\d+$", "", names[0])


def _region(p: Any, source: Any, attrs: dict[str, Any], mask: list[int]) -> Any:
    """Transpose(NHWC -> NCHW) + RegionYolo over `source`, with mo's tensor and Result names."""
    import numpy as np

    ops = opset()
    name = _node_name(source) + "/YoloRegion"
    shape = source.get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4 or shape[3].is_dynamic:
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{name}: RegionYolo needs a 4-D NHWC input with "
                                                                  f"known channels (got {shape})")
    boxes = len(mask) if not attrs["do_softmax"] else attrs["num"]
    per_box = attrs["coords"] + 1 + attrs["classes"]
    if shape[3].get_length() != boxes * per_box:
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT,
                                       f"{name}: {shape[3].get_length()} channels, but the config describes "
                                       f"{boxes} boxes of {per_box} values")
    with _config.building(p, name):
        nchw = ops.transpose(source, ops.constant(np.array([0, 3, 1, 2], np.int64)))
        region = ops.region_yolo(nchw, attrs["coords"], attrs["classes"], attrs["num"], bool(attrs["do_softmax"]),
                                 mask, 1, 3, attrs["anchors"])
    region.set_friendly_name(name)
    region.output(0).get_tensor().set_names({name, name + ":0"})
    result = ops.result(region)
    result.set_friendly_name(name + "/sink_port_0")
    return result


def _attributes(p: Any, custom: dict[str, Any], do_softmax_default: int | None) -> dict[str, Any]:
    """The RegionYolo attributes of a config (mo: the config's custom_attributes over its defaults).

    Raises:
        UnsupportedArgumentError: an attribute is missing or malformed, or the config asks for an
            axis other than mo's (1 to the last).
    """
    if custom.get("axis", 1) != 1 or custom.get("end_axis", -1) not in (-1, 3):
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, "only RegionYolo over axes 1..3 (mo's default) "
                                                                  "is supported")
    return {
        "classes": _config.integer(p, custom, "classes"),
        "coords": _config.integer(p, custom, "coords"),
        "num": _config.integer(p, custom, "num"),
        "do_softmax": _config.integer(p, custom, "do_softmax", do_softmax_default),
        "anchors": _config.number_list(p, custom, "anchors"),
    }


def _replace_results(model: Any, results: list[Any]) -> Any:
    for old in list(model.get_results()):
        model.remove_result(old)
    model.add_results(results)
    model.validate_nodes_and_infer_types()
    return model


def regions(model: Any, p: Any) -> Any:
    """`TFYOLO`: a RegionYolo after every output of the graph, in the graph's output order.

    Raises:
        UnsupportedArgumentError: the config is malformed or an output is not NHWC with the
            channels the config describes.
    """
    _tensorflow_only(p, V2_ID)
    custom = MO_CONFIGS.get(p.output_stage) or _config.replacement(p).get("custom_attributes", {})
    attrs = _attributes(p, custom, None)
    sources = [r.input_value(0) for r in model.get_results()]
    return _replace_results(model, [_region(p, s, attrs, []) for s in sources])


def entry_points(p: Any) -> list[str]:
    """`TFYOLOV3`'s entry points (node names), checked against its masks.

    Raises:
        UnsupportedArgumentError: no entry points, or not one mask per entry point.
    """
    custom = _config.replacement(p).get("custom_attributes", {})
    points = custom.get("entry_points")
    masks = custom.get("masks")
    if not (isinstance(points, list) and points and all(isinstance(e, str) and e for e in points)):
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{V3_ID} needs entry_points, a list of node names")
    if not (isinstance(masks, list) and len(masks) == len(points)):
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{V3_ID} needs one mask per entry point "
                                                                  f"({len(points)} entry points, masks {masks!r})")
    return points


def cut_at_entry_points(p: Any) -> Any:
    """The plan to convert for `TFYOLOV3`: outputs at the tensors feeding the entry points'
    input 0 (mo's `N:node` form, which convert/cuts.py resolves), whatever --output said (mo
    dropped the graph's own outputs).

    Raises:
        UnsupportedArgumentError: not a TensorFlow model, or an entry point the graph lacks
            (named as the config names it, as mo did).
    """
    points = entry_points(p)
    _tensorflow_only(p, V3_ID)
    try:
        from openvino.frontend import FrontEndManager

        graph = FrontEndManager().load_by_framework("tf").load(str(p.source))
    except Exception:  # noqa: BLE001 - an unreadable file: the conversion itself says why, in one line
        graph = None
    missing = [e for e in points if graph is not None and graph.get_place_by_tensor_name(f"0:{e}") is None]
    if missing:
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"entry point {', '.join(missing)} of "
                                                                  f"{p.output_stage_file} is not a node of the graph")
    return dataclasses.replace(p, outputs=[f"0:{e}" for e in points])


def _tensorflow_only(p: Any, ident: str) -> None:
    if p.framework != "tf":
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{ident} is a transformation of TensorFlow "
                                                                  f"models (this one is {p.framework or 'unknown'})")


def entry_regions(model: Any, p: Any) -> Any:
    """`TFYOLOV3`: on a model cut by `cut_at_entry_points`, one RegionYolo per entry point with
    its mask, in the config's order.

    Raises:
        UnsupportedArgumentError: the config is malformed, or the model's outputs are not the
            entry points' inputs.
    """
    custom = _config.replacement(p).get("custom_attributes", {})
    points = entry_points(p)
    attrs = _attributes(p, custom, 0)
    sources = [r.input_value(0) for r in model.get_results()]
    if len(sources) != len(points):
        raise UnsupportedArgumentError(p.model, _config.ARGUMENT, f"{len(points)} entry points but the converted "
                                                                  f"model has {len(sources)} outputs")
    results = []
    for source, mask in zip(sources, custom["masks"]):
        results.append(_region(p, source, attrs, _config.number_list(p, {"mask": mask}, "mask", int)))
    return _replace_results(model, results)
