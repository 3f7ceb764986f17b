"""Graph cuts and frozen inputs for the ovc backend, through `openvino.frontend`.

`openvino.convert_model` refuses mo's `--input=1:mul_1` (the tensor feeding input port 1 of node
`mul_1`) and inner tensors as inputs, and has no `--freeze_placeholder_with_value`. The frontend
API does both, as mo 2024.6 itself did: the input model's places are overridden with the cut
tensors (`override_all_inputs`, then their shapes), a frozen input is one of those places given a
value (`set_tensor_value`, with the place's own element type), and the frontend folds what it
feeds. Forms (mo's): `N:name` (input port N of node `name`; the IR input keeps mo's name
`N:name`), `name:N` (output port N), `name` (a placeholder or an inner tensor), and `name->value`
(`False`, `3`, `[16]`, `[1 2 3]`).

mo cut an EDGE at `N:name`; a frontend cuts a TENSOR. Where the tensor feeding that port has
other consumers the two differ, and such a cut is refused by name. TensorFlow only (no ONNX
descriptor of Open Model Zoo cuts at a port); frozen inputs work for any frontend.

Trap avoided: TensorFlow's frontend silently ignores `set_tensor_value` on `phase_train` (a
node name); the tensor is `phase_train:0`, and a frozen input still present after conversion is
an error here.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConversionError, UnsupportedArgumentError


def _value(text: str, ov_type: Any, shape: Any, model: str, name: str) -> Any:
    """mo's frozen value (`False`, `3`, `1.5`, `[16]`, `[1 2 3]`) as an array of the place's type."""
    import numpy as np

    text = text.strip()
    items = re.split(r"[\s,]+", text[1:-1].strip()) if text.startswith("[") and text.endswith("]") else [text]
    items = [i for i in items if i]
    try:
        dtype = ov_type.to_dtype()
    except Exception:  # noqa: BLE001 - an undefined or dynamic type
        dtype = None
    if dtype is None or dtype.kind not in "biuf":
        raise UnsupportedArgumentError(model, "--freeze_placeholder_with_value",
                                       f"{name}: cannot freeze an input of type {ov_type}")
    try:
        if dtype.kind == "b":
            if any(i not in ("True", "False", "true", "false", "0", "1") for i in items):
                raise ValueError(text)
            values = [i in ("True", "true", "1") for i in items]
        else:
            values = [float(i) if dtype.kind == "f" else int(i) for i in items]
    except ValueError:
        raise UnsupportedArgumentError(model, "--freeze_placeholder_with_value",
                                       f"{name}->{text}: not a value of type {dtype}") from None
    array = np.array(values if text.startswith("[") else values[0], dtype=dtype)
    if shape.is_static:
        if int(np.prod(shape.to_shape())) != array.size:
            raise UnsupportedArgumentError(model, "--freeze_placeholder_with_value",
                                           f"{name}->{text}: {array.size} value(s) for an input of shape {shape}")
        array = array.reshape(list(shape.to_shape()))
    return array


def _reason(exc: BaseException) -> str:
    """The line of an OpenVINO error that says what went wrong (not where it was checked)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Check ", "FrontEnd API failed", "Exception from",
                                                              "While validating"))]
    return (useful or lines or [type(exc).__name__])[0]


def _tf_name(name: str) -> str:
    """A TensorFlow tensor place: `node:0` for `node`; `N:node` and `node:N` as written."""
    return name if re.search(r":\d+$", name) or re.match(r"^\d+:", name) else name + ":0"


def _check_port_cut(fe: Any, source: str, name: str, model: str) -> None:
    """Refuse `N:node` where the tensor feeding that port also feeds other nodes (mo cut only the edge)."""
    port_text, _, node = name.partition(":")
    decoded = fe.decode(fe.load(source))
    for op in decoded.get_ordered_ops():
        if op.get_friendly_name() == node:
            port = int(port_text)
            if port >= op.get_input_size():
                raise UnsupportedArgumentError(model, "--input", f"'{name}': {node} has {op.get_input_size()} inputs")
            source_output = op.input_value(port)
            others = sorted({t.get_node().get_friendly_name() for t in source_output.get_target_inputs()} - {node})
            if others:
                raise UnsupportedArgumentError(
                    model, "--input", f"'{name}': the tensor feeding input {port} of {node} also feeds "
                                      f"{', '.join(others)}; mo cut only that edge, and a frontend cuts the whole "
                                      f"tensor")
            return
    raise UnsupportedArgumentError(model, "--input", f"'{name}': the graph has no node named {node}")


def convert(p: Any) -> Any:
    """Convert ovc.OvcPlan `p` (TensorFlow or ONNX) with its cuts and frozen inputs; an openvino.Model
    whose inputs are the plan's (cut inputs named as mo named them), the frozen ones folded."""
    import openvino as ov
    from openvino.frontend import FrontEndManager

    source = str(p.source)
    fem = FrontEndManager()
    try:
        fe = fem.load_by_framework(p.framework) if p.framework else fem.load_by_model(source)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"no OpenVINO frontend for {p.source}: {exc}") from None
    if fe is None:
        raise ConversionError(f"no OpenVINO frontend for {p.source}")
    tf = fe.get_name() == "tf"
    named = _tf_name if tf else (lambda n: n)
    if any(i.port_cut for i in p.inputs):
        if not tf:
            raise UnsupportedArgumentError(p.model, "--input", "cuts at input ports (N:name) are supported for "
                                                               "TensorFlow models only")
        for spec in p.inputs:
            if spec.port_cut:
                _check_port_cut(fe, source, spec.name, p.model)
    try:
        im = fe.load(source)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"OpenVINO's {fe.get_name()} frontend cannot read {p.source}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None

    def place(name: str, arg: str) -> Any:
        found = im.get_place_by_tensor_name(named(name))
        if found is None:
            raise UnsupportedArgumentError(p.model, arg, f"the model has no tensor named {name}")
        return found

    frozen = {name: place(name, "--freeze_placeholder_with_value") for name in p.freeze}
    if p.inputs:
        places = [frozen.get(spec.name) or place(spec.name, "--input") for spec in p.inputs]
        places += [f for name, f in frozen.items() if name not in {s.name for s in p.inputs}]
        originals = {n for original in im.get_inputs() for n in original.get_names()}
        im.override_all_inputs(places)  # (a frozen input must be one of them, or its value is lost)
        for spec, where in zip(p.inputs, places):
            if spec.name in frozen:
                continue
            if getattr(spec, "element_type", None):  # an output stage's need (ovc.InputSpec)
                im.set_element_type(where, getattr(ov.Type, spec.element_type))
            if spec.shape is not None:
                im.set_partial_shape(where, ov.PartialShape(spec.shape))
            elif named(spec.name) not in originals:
                # mo inferred it; a frontend leaves a cut tensor of unknown rank (the CPU plugin refuses it)
                raise UnsupportedArgumentError(p.model, "--input", f"'{spec.name}': a cut needs its shape "
                                                                   f"({spec.name}[...] or --input_shape)")
    shapes = {s.name: ov.PartialShape(s.shape) for s in p.inputs if s.shape is not None}
    for name, where in frozen.items():
        shape = shapes.get(name) or im.get_partial_shape(where)
        im.set_tensor_value(where, _value(p.freeze[name], im.get_element_type(where), shape, p.model, name))
    if p.outputs:
        im.override_all_outputs([place(o, "--output") for o in p.outputs])
    try:
        model = fe.convert(im)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"OpenVINO's {fe.get_name()} frontend failed on {p.source}: {_reason(exc)}") from None
    left = [n for n in frozen if any(named(n) in port.get_names() or n in port.get_names() for port in model.inputs)]
    if left:
        raise UnsupportedArgumentError(p.model, "--freeze_placeholder_with_value",
                                       f"{', '.join(left)} is still an input after freezing")
    extra = [sorted(port.get_names()) for port in model.inputs
             if not any(named(s.name) in port.get_names() or s.name in port.get_names() for s in p.inputs)]
    if p.inputs and extra:
        raise UnsupportedArgumentError(p.model, "--input", f"the cut leaves other inputs the graph still needs: "
                                                           f"{', '.join(n[0] for n in extra if n)}")
    return model
