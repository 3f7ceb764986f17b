"""The TensorFlow Object Detection API's configs: mo's DetectionOutput interface on the graph's own
post-processing.

mo 2024.6 replaced an OD API graph's post-processing (`ObjectDetectionAPISSDPostprocessorReplacement`,
`...ProposalReplacement`, `...DetectionOutputReplacement`) with its `DetectionOutput` operation;
today's TensorFlow frontend converts that post-processing as it is (loops, per-class NMS,
CropAndResize), so these stages only reformat its four outputs into mo's one table, in the
shape and with the names the Open Model Zoo cards and `accuracy-check.yml` give:

- `detection_boxes` [1,N,4] (`y_min, x_min, y_max, x_max`, normalised), `detection_scores` [1,N],
  `detection_classes` [1,N] (1-based: 0 is the background), `num_detections` [1] become rows
  `[image_id, label, conf, x_min, y_min, x_max, y_max]`; the row after the last detection has
  image_id -1 and every later row is zeros, as the CPU plugin's `DetectionOutput` writes them.
- label: mo's `DetectionOutput` numbers classes by their column in the class scores, where column
  0 is the background the OD API adds (`add_background_class`, true unless the pipeline config
  says otherwise): the same numbers as `detection_classes`. Without a background column
  (`add_background_class: false`, SSD only) mo's labels start at 0, so 1 is subtracted.
- Faster R-CNN, R-FCN and Mask R-CNN get mo's second input `image_info` [1,3] (height, width,
  scale; mo's `Proposal` read it). Here the graph's own proposals are clipped to the input picture,
  which is what `image_info` says for the pictures `accuracy-check.yml` feeds ([[600, 1024, 1]]
  for 600x1024): the input is accepted and not read.
- Mask R-CNN: `reshape_do_2d` [N,7] and `masks` [N,C,M,M] (C classes without the background):
  the graph's `detection_masks` [1,N,M,M] (each detection's mask for its own class, after the
  sigmoid) put at channel label-1 of its row; mo's IR holds every class's mask there, and the
  mask_rcnn adapter reads only the detected class's channel, which is the same values.

The conversion itself reads the OD API outputs instead of the descriptor's `--output` and takes
the picture as f32 (mo removed the uint8 placeholder's cast: see `NEEDS` in stages/__init__.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConversionError, UnsupportedArgumentError
from ._ops import opset

BOXES, SCORES, CLASSES, COUNT, MASKS = ("detection_boxes", "detection_scores", "detection_classes",
                                        "num_detections", "detection_masks")
DETECTIONS = (BOXES, SCORES, CLASSES, COUNT)
PIPELINE_FLAG = "--tensorflow_object_detection_api_pipeline_config"


@dataclass(frozen=True)
class Family:
    """What mo's IR of one OD API meta-architecture looks like."""

    config: str  # the transformation config, relative to mo's extensions folder
    names: tuple[str, ...]  # the detections' tensor names: the card's first, then mo's node name
    node: str  # the name of the node that makes them in mo's IR
    flat: bool = False  # [N,7] (Mask R-CNN's reshape_do_2d) instead of [1,1,N,7]
    image_info: bool = False  # the two-stage models' second input
    masks: bool = False


SSD = Family("front/tf/ssd_v2_support.json", ("DetectionOutput",), "DetectionOutput")
FASTER_RCNN = Family("front/tf/faster_rcnn_support.json", ("reshape_do_2d", "detection_output"), "detection_output",
                     image_info=True)
RFCN = Family("front/tf/rfcn_support.json", ("reshape_do_2d", "detection_output"), "detection_output",
              image_info=True)
MASK_RCNN = Family("front/tf/mask_rcnn_support.json", ("reshape_do_2d",), "reshape_do_2d", flat=True,
                   image_info=True, masks=True)
FAMILIES = (SSD, FASTER_RCNN, RFCN, MASK_RCNN)


def graph_outputs(family: Family) -> tuple[str, ...]:
    """The graph tensors the stage reads (converted in place of the descriptor's --output)."""
    return DETECTIONS + ((MASKS,) if family.masks else ())


def pipeline_value(text: str, key: str) -> str | None:
    """The first `key: value` of a pipeline.config (protobuf text format), comments left out."""
    text = re.sub(r"#[^\n]*", "", text)
    m = re.search(rf"(?<![\w]){re.escape(key)}\s*:\s*([^\s{{}}]+)", text)
    return m.group(1).strip("\"'") if m else None


def _pipeline_text(p: Any) -> str:
    path: Path | None = p.pipeline_config
    if path is None:
        raise UnsupportedArgumentError(p.model, "--transformations_config",
                                       f"needs {PIPELINE_FLAG} (the model's pipeline.config), as mo did")
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise ConversionError(f"{p.model}: cannot read {path}: {exc.strerror or exc}") from None


def _label_offset(family: Family, text: str) -> float:
    """1 where mo's labels start at 0 (an SSD trained without a background class), else 0."""
    if family is SSD and (pipeline_value(text, "add_background_class") or "true").lower() == "false":
        return 1.0
    return 0.0


def _graph_ports(model: Any, p: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The values feeding the model's Results, by OD API name (the order convert_model keeps is its own)."""
    found: dict[str, Any] = {}
    for result in model.get_results():
        value = result.input_value(0)
        for name in names:
            if {name, name + ":0"} & set(value.get_names()):
                found[name] = value
    missing = [n for n in names if n not in found]
    if missing:
        raise ConversionError(f"{p.model}: the graph has no Object Detection API output {', '.join(missing)}")
    return found


def _static(port: Any, rank: int, p: Any, what: str) -> list[int]:
    shape = port.get_partial_shape()
    if shape.is_dynamic or len(shape) != rank:
        raise UnsupportedArgumentError(p.model, "--input_shape", f"{what} must have a static rank-{rank} shape "
                                                                 f"(got {shape}); give the input's shape")
    return [d.get_length() for d in shape]


def _add_image_info(model: Any) -> None:
    """mo's `image_info` [1,3] f32 input (height, width, scale), after the picture."""
    import numpy as np

    info = opset().parameter([1, 3], np.float32, name="image_info")
    info.output(0).get_tensor().set_names({"image_info"})
    model.add_parameters([info])


def stage_for(family: Family):
    """The stage function of one family (STAGES' entries): `stage(model, plan) -> model`.

    The stage raises UnsupportedArgumentError (no pipeline config; outputs without a static batch-1
    shape) or ConversionError (an OD API output missing; the pipeline config unreadable or without
    num_classes for masks).
    """
    def stage(model: Any, p: Any) -> Any:
        return _stage(model, p, family)
    stage.__doc__ = f"mo's {family.config} interface on the graph's own post-processing (stages/odapi.py)."
    return stage


def _const(value: Any, dtype: Any = None) -> Any:
    import numpy as np

    return opset().constant(np.array(value, dtype or np.float32))


def _stage(model: Any, p: Any, family: Family) -> Any:
    import numpy as np

    ops = opset()
    text = _pipeline_text(p)
    ports = _graph_ports(model, p, graph_outputs(family))
    batch, n, four = _static(ports[BOXES], 3, p, BOXES)
    if batch != 1 or four != 4:
        raise UnsupportedArgumentError(p.model, "--input_shape", f"the Object Detection API stages are for batch 1 "
                                                                 f"(detection_boxes is [{batch},{n},{four}])")
    labels = ops.subtract(ports[CLASSES], _const(_label_offset(family, text)))
    table, valid = _rows(ports, labels, n)
    detections = ops.reshape(table, _const([n, 7] if family.flat else [1, 1, n, 7], np.int64), False)
    detections.set_friendly_name(family.node)
    outputs = [(detections, family.names)]
    if family.masks:
        outputs.append((_masks(ops, ports[MASKS], labels, valid, text, p, n), ("masks",)))
    _replace_results(model, ports, outputs)
    if family.image_info:
        _add_image_info(model)
    model.validate_nodes_and_infer_types()
    return model


def _rows(ports: dict[str, Any], labels: Any, n: int) -> tuple[Any, Any]:
    """[1,N,7] rows [image_id, label, conf, x_min, y_min, x_max, y_max] and which rows are detections [1,N]."""
    import numpy as np

    ops = opset()
    rows = _const(np.arange(n)[None])  # [1,N]
    count = ops.reshape(ports[COUNT], _const([1, 1], np.int64), False)  # [1,1]
    valid = ops.less(rows, count)
    image_id = ops.select(ops.equal(rows, count), _const(-1.0), _const(0.0))  # -1 right after the last
    xy = ops.gather(ports[BOXES], _const([1, 0, 3, 2], np.int64), _const(2, np.int64))  # y/x -> x/y
    column = _const([2], np.int64)
    table = ops.concat([ops.unsqueeze(image_id, column),
                        ops.unsqueeze(ops.select(valid, labels, _const(0.0)), column),
                        ops.unsqueeze(ops.select(valid, ports[SCORES], _const(0.0)), column),
                        ops.select(ops.unsqueeze(valid, column), xy, _const(0.0))], axis=2)
    return table, valid


def _masks(ops: Any, masks: Any, labels: Any, valid: Any, text: str, p: Any, n: int) -> Any:
    """[1,N,M,M] each detection's mask -> [N,C,M,M] with the mask at channel label-1, zeros elsewhere."""
    import numpy as np

    _, n_masks, height, width = _static(masks, 4, p, MASKS)
    classes = pipeline_value(text, "num_classes")
    if classes is None or not classes.isdigit():
        raise ConversionError(f"{p.model}: {PIPELINE_FLAG}: no num_classes in {p.pipeline_config}")
    if n_masks != n:
        raise ConversionError(f"{p.model}: detection_masks has {n_masks} rows for {n} detections")
    channel = ops.convert(ops.subtract(ops.squeeze(labels, ops.constant(np.array([0], np.int64))),
                                       ops.constant(np.array(1.0, np.float32))), "i64")  # [N]; -1 off every class
    pick = ops.one_hot(channel, ops.constant(np.array(int(classes), np.int64)), ops.constant(np.array(1.0, np.float32)),
                       ops.constant(np.array(0.0, np.float32)), -1)  # [N,C]
    keep = ops.multiply(pick, ops.convert(ops.reshape(valid, ops.constant(np.array([n, 1], np.int64)), False), "f32"))
    scattered = ops.multiply(ops.reshape(masks, ops.constant(np.array([n, 1, height, width], np.int64)), False),
                             ops.unsqueeze(keep, ops.constant(np.array([2, 3], np.int64))))
    scattered.set_friendly_name("masks")
    return scattered


def _replace_results(model: Any, ports: dict[str, Any], outputs: list[tuple[Any, tuple[str, ...]]]) -> None:
    """The graph's outputs give way to mo's (their names move: no tensor keeps an OD API name)."""
    ops = opset()
    for port in ports.values():
        port.get_tensor().set_names(set())
    results = []
    for node, names in outputs:
        node.output(0).get_tensor().set_names(set(names))
        result = ops.result(node)
        result.set_friendly_name(names[0])
        results.append(result)
    for old in list(model.get_results()):
        model.remove_result(old)
    model.add_results(results)
