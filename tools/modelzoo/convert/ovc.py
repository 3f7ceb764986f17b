"""The ovc backend: Model Optimizer arguments carried out with today's OpenVINO.

The Model Optimizer (`mo`) left OpenVINO in 2025.0; `openvino.convert_model` (ovc) has no mean
values, no layouts, no graph cuts by name and no transformation configs. Descriptors still say
what they need in mo's words, so this module translates them, one argument at a time:

- `plan(...)` reads the arguments into an :class:`OvcPlan` without touching a model. Anything it
  cannot honour is an :class:`UnsupportedArgumentError` naming the argument and the model, never a
  silent drop (Open Model Zoo's own move to ovc dropped mean values, cuts and configs). The
  compatibility table in docs/compatibility.md is this function run over a whole zoo.
- `convert(plan)` runs `openvino.convert_model` (inputs, shapes, outputs), then a
  `PrePostProcessor` (layouts, channel reversal, mean, scale, in mo's order), then the output stage
  a transformation config asks for (convert/stages/: one module per family), and returns an `ov.Model` that the
  pipeline saves as FP32 and FP16.

Nothing here imports TensorFlow or openvino-dev.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from ..errors import ConversionError, MissingExtraError, UnsupportedArgumentError
from . import stages

# Every long option of mo 2024.6 (so that an abbreviation such as `--input_meta` means what it
# meant to mo's argparse: the one option it starts).
MO_FLAGS = (
    "--batch", "--caffe_parser_path", "--compress_to_fp16", "--counts", "--disable_omitting_optional",
    "--enable_flattening_nested_params", "--example_input", "--extensions", "--framework",
    "--freeze_placeholder_with_value", "--help", "--input", "--input_checkpoint", "--input_meta_graph",
    "--input_model", "--input_model_is_text", "--input_proto", "--input_shape", "--k", "--layout", "--log_level",
    "--mean_values", "--model_name", "--output", "--output_dir", "--progress", "--remove_memory",
    "--remove_output_softmax", "--reverse_input_channels", "--saved_model_dir", "--saved_model_tags", "--scale",
    "--scale_values", "--share_weights", "--silent", "--source_layout", "--static_shape", "--stream_output",
    "--target_layout", "--tensorboard_logdir", "--tensorflow_custom_layer_libraries",
    "--tensorflow_custom_operations_config_update", "--tensorflow_object_detection_api_pipeline_config",
    "--transform", "--transformations_config", "--use_legacy_frontend", "--use_new_frontend", "--version",
)
# What OpenVINO's own frontends read (mo's --framework values that ovc can still convert).
FRAMEWORKS = ("tf", "onnx", "paddle", "tflite", "pytorch")
# Options that change nothing in the converted model (logging, naming: the file is named by us).
HARMLESS = ("--framework", "--model_name", "--log_level", "--silent", "--progress", "--stream_output",
            "--use_new_frontend")
MODEL_SOURCES = ("--input_model", "--saved_model_dir", "--input_meta_graph")


@dataclass
class InputSpec:
    """One model input as mo's --input / --input_shape name it."""

    name: str
    shape: list[int] | None = None  # -1: dynamic dimension
    port_cut: bool = False  # `N:name`: the tensor feeding input port N of node `name` (convert/cuts.py)
    element_type: str | None = None  # "f32": the type the input takes (an output stage's need, stages.NEEDS)

    def described(self) -> Any:
        """As --dry_run shows it: the name, or (name, shape, type) with what is given."""
        extra = [x for x in (self.shape, self.element_type) if x]
        return (self.name, *extra) if extra else self.name


@dataclass
class OvcPlan:
    """What the ovc backend will do for one model; built from mo arguments without converting."""

    model: str
    framework: str
    source: Path
    inputs: list[InputSpec] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    layouts: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # name: (source, target)
    unnamed_layout: tuple[str | None, str | None] | None = None  # a layout given without an input name
    means: dict[str | None, list[float]] = field(default_factory=dict)  # None: the only input
    scales: dict[str | None, list[float]] = field(default_factory=dict)
    scale: float | None = None  # --scale: one factor for every input
    reverse_channels: bool = False
    output_stage: str | None = None  # the transformation config, relative to mo's extensions folder (stages/)
    output_stage_file: Path | None = None  # that config's file (a stage may read its attributes)
    pipeline_config: Path | None = None  # --tensorflow_object_detection_api_pipeline_config
    freeze: dict[str, str] = field(default_factory=dict)  # input name -> value as written (convert/cuts.py)

    def describe(self) -> str:
        """One line for --dry_run: the calls the conversion makes."""
        kwargs = [repr(str(self.source))]
        if self.inputs:
            kwargs.append("input=" + repr([i.described() for i in self.inputs]))
        if self.outputs:
            kwargs.append("output=" + repr(self.outputs))
        steps = [f"openvino.convert_model({', '.join(kwargs)})"]
        if self.freeze or any(i.port_cut for i in self.inputs):
            steps = [f"openvino.frontend({', '.join(kwargs)}{', freeze=' + repr(self.freeze) if self.freeze else ''})"]
        pre = []
        for name, (src, dst) in self.layouts.items():
            pre.append(f"layout {name}: {src or ''}{' -> ' + dst if dst else ''}")
        if self.unnamed_layout:
            src, dst = self.unnamed_layout
            pre.append(f"layout: {src or ''}{' -> ' + dst if dst else ''}")
        if self.reverse_channels:
            pre.append("reverse_channels")
        for name, values in self.means.items():
            pre.append(f"mean{'[' + name + ']' if name else ''} {values}")
        for name, values in self.scales.items():
            pre.append(f"scale{'[' + name + ']' if name else ''} {values}")
        if self.scale is not None:
            pre.append(f"scale {self.scale}")
        if pre:
            steps.append("PrePostProcessor(" + "; ".join(pre) + ")")
        if self.output_stage:
            steps.append(f"the output stage of mo's {self.output_stage} (convert/stages/)")
        return " + ".join(steps)


# ----------------------------------------------------------------------------------------------
# Reading mo's argument syntax


def _split_top(text: str) -> list[str]:
    """Split at commas that are not inside [], () or {}."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur or parts:
        parts.append(cur)
    return [p.strip() for p in parts]


def _numbers(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", text.strip("[]() ")) if t]


def _shape(text: str) -> list[int]:
    dims = []
    for t in _numbers(text):
        if t in ("?", "-1"):
            dims.append(-1)
        elif t.isdigit():
            dims.append(int(t))
        else:
            raise ValueError(f"dimension {t!r} (only numbers, -1 or ? here)")
    return dims


def _floats(text: str) -> list[float]:
    return [float(t) for t in _numbers(text)]


def _named_values(text: str) -> dict[str | None, str]:
    """mo's `name[1,2,3],other[4,5,6]` or `[1,2,3]` (the only input) -> {name: "[...]"}."""
    out: dict[str | None, str] = {}
    for part in _split_top(text):
        m = re.fullmatch(r"([^\[\(]*)([\[\(].*[\]\)])", part)
        if not m:
            raise ValueError(f"{part!r} is not name[values] or [values]")
        out[m.group(1).strip() or None] = m.group(2)
    return out


def _layouts(text: str) -> dict[str | None, tuple[str | None, str | None]]:
    """mo's --layout: `nchw`, `name(nchw)`, `name(nhwc->nchw)`, comma-separated."""
    out: dict[str | None, tuple[str | None, str | None]] = {}
    for part in _split_top(text):
        m = re.fullmatch(r"([^\(\[]*)\((.*)\)", part) or re.fullmatch(r"()(.*)", part)
        assert m is not None
        name, value = m.group(1).strip() or None, m.group(2).strip()
        src, arrow, dst = value.partition("->")
        out[name] = (src.strip() or None, dst.strip() or None) if arrow else (value or None, None)
    return out


def canonical_flag(flag: str) -> str | None:
    """mo's option name for `flag` (an exact name or an unambiguous prefix, as argparse allows)."""
    if flag in MO_FLAGS:
        return flag
    hits = [f for f in MO_FLAGS if f.startswith(flag)]
    return hits[0] if len(hits) == 1 else None


def split_arguments(args: list[str]) -> list[tuple[str, str, str | None]]:
    """[(argument as written, canonical flag, value or None)]; raises ValueError on a stray word."""
    out = []
    for arg in args:
        if not arg.startswith("--"):
            raise ValueError(arg)
        flag, eq, value = arg.partition("=")
        out.append((arg, canonical_flag(flag) or flag, value if eq else None))
    return out


# ----------------------------------------------------------------------------------------------
# The plan


class _Reading:
    """The plan being read from the arguments, one flag at a time (see HANDLERS)."""

    def __init__(self, model_name: str, mo_ext_dir: str) -> None:
        self.model, self.mo_ext_dir = model_name, mo_ext_dir
        self.plan = OvcPlan(model=model_name, framework="", source=Path())
        self.framework = ""
        self.source: Path | None = None
        self.inputs: list[InputSpec] = []
        self.shapes: list[list[int]] = []
        self.pipeline_arg = "--tensorflow_object_detection_api_pipeline_config"  # as written, for messages

    def refuse(self, arg: str, why: str) -> UnsupportedArgumentError:
        return UnsupportedArgumentError(self.model, arg, why)


Handler = Callable[[_Reading, str, "str | None"], None]
"""handler(reading, the argument as written, its value or None): reads one flag into the plan,
or raises the reading's refusal naming the argument."""


def _framework(r: _Reading, arg: str, value: str | None) -> None:
    if value not in FRAMEWORKS:
        raise r.refuse(arg, f"OpenVINO has no frontend for '{value}' models any more")
    r.framework = value


def _harmless(r: _Reading, arg: str, value: str | None) -> None:
    pass


def _source(r: _Reading, arg: str, value: str | None) -> None:
    if not value:
        raise r.refuse(arg, "needs a path")
    r.source = Path(value)


def _input(r: _Reading, arg: str, value: str | None) -> None:
    r.inputs = []
    for part in _split_top(value or ""):
        m = re.fullmatch(r"([^\[\{]+?)(\[[^\]]*\])?(->.+)?", part)
        if not m:
            raise r.refuse(arg, f"'{part}': only input names with an optional [shape] and ->value are supported "
                                "(no types)")
        name = m.group(1).strip()
        if m.group(3):  # name->value: an input frozen to a value
            r.plan.freeze[name] = m.group(3)[2:].strip()
        r.inputs.append(InputSpec(name, _shape(m.group(2)) if m.group(2) else None,
                                  port_cut=bool(re.match(r"^\d+:", name))))


def _freeze(r: _Reading, arg: str, value: str | None) -> None:
    for part in _split_top(value or ""):
        name, arrow, frozen = part.partition("->")
        if not arrow or not name.strip() or not frozen.strip():
            raise r.refuse(arg, f"'{part}' is not name->value")
        r.plan.freeze[name.strip()] = frozen.strip()


def _input_shape(r: _Reading, arg: str, value: str | None) -> None:
    r.shapes = [_shape(s) for s in _split_top(value or "")]


def _output(r: _Reading, arg: str, value: str | None) -> None:
    r.plan.outputs = [o for o in _split_top(value or "") if o]


def _layout(target_only: bool) -> Handler:
    def read(r: _Reading, arg: str, value: str | None) -> None:
        p = r.plan
        for name, (src, dst) in _layouts(value or "").items():
            if target_only:
                src, dst = None, src
            old = p.layouts.get(name, (None, None)) if name else (p.unnamed_layout or (None, None))
            merged = (src or old[0], dst or old[1])
            if name:
                p.layouts[name] = merged
            else:
                p.unnamed_layout = merged
    return read


def _mean_values(r: _Reading, arg: str, value: str | None) -> None:
    r.plan.means = {k: _floats(v) for k, v in _named_values(value or "").items()}


def _scale_values(r: _Reading, arg: str, value: str | None) -> None:
    r.plan.scales = {k: _floats(v) for k, v in _named_values(value or "").items()}


def _scale(r: _Reading, arg: str, value: str | None) -> None:
    r.plan.scale = float(value or "")


def _reverse_input_channels(r: _Reading, arg: str, value: str | None) -> None:
    if value not in (None, "True", "true"):
        raise r.refuse(arg, "expected no value")
    r.plan.reverse_channels = True


def _transformations_config(r: _Reading, arg: str, value: str | None) -> None:
    rel = _relative_to(value or "", r.mo_ext_dir) or stages.DOWNLOADED  # (not mo's: read when converting)
    if rel not in stages.STAGES:
        raise r.refuse(arg, f"the transformation config {rel or value} has no equivalent in the ovc backend "
                            f"(supported: {', '.join(sorted(stages.STAGES))})")
    r.plan.output_stage = rel
    r.plan.output_stage_file = Path(value or "")


def _pipeline_config(r: _Reading, arg: str, value: str | None) -> None:
    if not value:
        raise r.refuse(arg, "needs a path")
    r.plan.pipeline_config = Path(value)
    r.pipeline_arg = arg


def _compress_to_fp16(r: _Reading, arg: str, value: str | None) -> None:
    raise r.refuse(arg, "the precisions come from --precisions (FP32 and FP16 from one conversion)")


def _no_equivalent(r: _Reading, arg: str, value: str | None) -> None:
    raise r.refuse(arg, "the ovc backend has no equivalent (use --backend mo with openvino-dev 2024.6)")


# mo's flag -> how the ovc backend honours it; a flag not here is refused by name (_no_equivalent).
HANDLERS: dict[str, Handler] = {
    **{flag: _harmless for flag in HARMLESS},
    "--framework": _framework,
    **{flag: _source for flag in MODEL_SOURCES},
    "--input": _input,
    "--freeze_placeholder_with_value": _freeze,
    "--input_shape": _input_shape,
    "--output": _output,
    "--layout": _layout(False),
    "--source_layout": _layout(False),
    "--target_layout": _layout(True),
    "--mean_values": _mean_values,
    "--scale_values": _scale_values,
    "--scale": _scale,
    "--reverse_input_channels": _reverse_input_channels,
    "--transformations_config": _transformations_config,
    "--tensorflow_object_detection_api_pipeline_config": _pipeline_config,
    "--compress_to_fp16": _compress_to_fp16,
}


def plan(model_name: str, args: list[str], mo_ext_dir: str) -> OvcPlan:
    """Translate a model's mo arguments (placeholders already expanded) into an OvcPlan, or raise
    UnsupportedArgumentError naming the first argument the ovc backend cannot honour."""
    r = _Reading(model_name, mo_ext_dir)
    try:
        items = split_arguments(args)
    except ValueError as exc:
        raise r.refuse(str(exc), "not an option (mo options start with --)") from None
    for arg, flag, value in items:
        try:
            HANDLERS.get(flag, _no_equivalent)(r, arg, value)
        except (ValueError, TypeError) as exc:
            raise r.refuse(arg, f"cannot read it: {exc}") from None
    return _finish(r)


def _finish(r: _Reading) -> OvcPlan:
    """What needs every argument read: the model file, shapes matched to inputs, the framework."""
    p, source, inputs = r.plan, r.source, r.inputs
    if source is None:
        raise UnsupportedArgumentError(r.model, "--input_model", "no model file given")
    if r.shapes:
        if inputs and len(r.shapes) != len(inputs):
            raise r.refuse("--input_shape", f"{len(r.shapes)} shapes for {len(inputs)} inputs")
        if not inputs:
            raise r.refuse("--input_shape", "a shape without --input names cannot be given to ovc")
        for spec, shape in zip(inputs, r.shapes):
            spec.shape = shape
    p.framework, p.source, p.inputs = r.framework or _guess_framework(source), source, inputs
    _stage_needs(r, p)
    if p.output_stage == "retinanet":
        if p.framework != "tf" or len(p.outputs) != 3:
            raise r.refuse("--transformations_config", f"{RETINANET_CONFIG} expects a TensorFlow model cut at its "
                                                       "three filtered_detections outputs (boxes, scores, labels)")
    return p


def _stage_needs(r: _Reading, p: OvcPlan) -> None:
    """What the output stage needs of the conversion (stages.NEEDS): the graph outputs it reads,
    float inputs, the OD API pipeline config (read only by those stages, as by mo)."""
    needs = stages.NEEDS.get(p.output_stage or "")
    if p.pipeline_config is not None and not (needs and needs.pipeline_config):
        configs = ", ".join(sorted(c for c, n in stages.NEEDS.items() if n.pipeline_config))
        raise r.refuse(r.pipeline_arg, f"mo read it only with an Object Detection API --transformations_config "
                                       f"({configs})")
    if needs is None:
        return
    if needs.pipeline_config and p.pipeline_config is None:
        raise r.refuse("--transformations_config", f"{p.output_stage} needs {r.pipeline_arg} "
                                                   "(the model's pipeline.config)")
    if needs.outputs:
        p.outputs = list(needs.outputs)
    if needs.float_inputs:
        for spec in p.inputs:
            spec.element_type = "f32"


def _relative_to(value: str, base: str) -> str:
    try:
        return PurePosixPath(value).relative_to(PurePosixPath(base)).as_posix()
    except ValueError:
        return ""


def _guess_framework(source: Path) -> str:
    return {".pb": "tf", ".meta": "tf", ".onnx": "onnx", ".pdmodel": "paddle", ".tflite": "tflite"}.get(
        source.suffix, "tf" if source.is_dir() else "")


# ----------------------------------------------------------------------------------------------
# The conversion


def _openvino():
    try:
        import openvino as ov
    except ImportError as exc:
        raise MissingExtraError(f"conversion needs OpenVINO ({exc}): pip install 'modelzoo[convert]'") from exc
    return ov


def _tensor_name(name: str, framework: str) -> str:
    """TensorFlow's frontend names tensors `node:port`; mo let descriptors say `node`."""
    if framework == "tf" and not re.search(r":\d+$", name):
        return name + ":0"
    return name


def _frontend_name(name: str, p: OvcPlan) -> str:
    """A SavedModel's (a folder's) inputs and outputs are its signature's keys, `input_1` with no
    port (`input_1:0` is not found there: densenet-121-tf, mobilenet-v3-*-tf); a graph's are tensors."""
    return name if p.source.is_dir() else _tensor_name(name, p.framework)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Check ", "Exception from", "[ ")):
            return line
    return text.splitlines()[0] if text else type(exc).__name__


def convert(p: OvcPlan) -> Any:
    """Convert the planned model; returns an openvino.Model with mo's interface."""
    ov = _openvino()
    p = stages.prepare(p)  # (a stage may cut the graph where mo's transformation started: YOLO v3)
    if p.freeze or any(i.port_cut for i in p.inputs) or any(re.match(r"\d+:", o) for o in p.outputs):
        from . import cuts

        return finish(p, cuts.convert(p))
    kwargs: dict[str, Any] = {}
    if p.inputs:
        kwargs["input"] = [_input_spec(ov, i, p) for i in p.inputs]
    outputs = [_frontend_name(o, p) for o in p.outputs]
    try:
        model = ov.convert_model(str(p.source), output=outputs or None, **kwargs)
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises plain RuntimeError/OpError/Exception
        message = _first_line(exc)
        if "among model outputs" in message:
            model = _convert_then_cut(ov, p, kwargs, outputs)
        elif "among model inputs" in message:  # an inner tensor: cut there with openvino.frontend
            from . import cuts

            model = cuts.convert(p)
        else:
            raise ConversionError(f"openvino.convert_model failed on {p.source}: {message}") from None
    return finish(p, model)


def _input_spec(ov, spec: InputSpec, p: OvcPlan) -> Any:
    """convert_model's `input` entry: the name, with the shape and the type where given."""
    parts: list[Any] = [_frontend_name(spec.name, p)]
    if spec.shape is not None:
        parts.append(spec.shape)
    if spec.element_type is not None:
        parts.append(getattr(ov.Type, spec.element_type))
    return tuple(parts) if len(parts) > 1 else parts[0]


def finish(p: OvcPlan, model: Any) -> Any:
    """After the frontend: TensorFlow's plain names, the pre-processing, the output stage."""
    if p.framework == "tf":
        _add_plain_names(model)
    model = _preprocess(_openvino(), p, model)
    if p.output_stage is not None:
        model = stages.STAGES[p.output_stage](model, p)
    return model


def _convert_then_cut(ov, p: OvcPlan, kwargs: dict, outputs: list[str]):
    """--output names an inner tensor: convert everything, then end the model there; where
    everything does not convert (post-processing beyond the cut), the frontend cuts first."""
    try:
        model = ov.convert_model(str(p.source), **kwargs)
    except Exception:  # noqa: BLE001 - what cannot convert may lie beyond the cut
        from . import cuts

        return cuts.convert(p)
    by_name = {}
    for op in model.get_ordered_ops():
        for out in op.outputs():
            for n in out.get_names():
                by_name.setdefault(n, out)
    if any(o not in by_name for o in outputs):  # a name the conversion did not keep: the frontend cuts there
        from . import cuts

        return cuts.convert(p)
    return ov.Model([by_name[o] for o in outputs], model.get_parameters(), model.get_friendly_name())


def _add_plain_names(model) -> None:
    """`input_1:0` is also `input_1`, as in the mo IR (demos look tensors up by either)."""
    for port in [*model.inputs, *model.outputs]:
        names = port.get_names()
        plain = {n[:-2] for n in names if n.endswith(":0")}
        if plain - names:
            port.get_tensor().add_names(plain | names)
    for parameter in model.get_parameters():  # the node too: `input_1`, as mo names it
        if parameter.get_friendly_name().endswith(":0"):
            parameter.set_friendly_name(parameter.get_friendly_name()[:-2])


def _find_input(model, name: str | None, p: OvcPlan, arg: str) -> int:
    """The index of the input mo's `name` means (None: the only input)."""
    if name is None:
        if len(model.inputs) != 1:
            raise UnsupportedArgumentError(p.model, arg, f"values without an input name, but the model has "
                                                         f"{len(model.inputs)} inputs")
        return 0
    for i, port in enumerate(model.inputs):
        if name in port.get_names() or _tensor_name(name, p.framework) in port.get_names():
            return i
    raise UnsupportedArgumentError(p.model, arg, f"the model has no input named {name}")


def _channel_layout(port, channels: int, p: OvcPlan, arg: str) -> str:
    """mo's guess when no layout was given: the one dimension of `channels` (1 or 3 of 4, ...)."""
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        raise UnsupportedArgumentError(p.model, arg, "cannot find the channels of an input of unknown rank; "
                                                     "give --layout")
    rank = shape.rank.get_length()
    allowed = {3: (0, 2), 4: (1, 3), 5: (1, 4)}.get(rank, ())
    hits = [i for i in range(rank) if shape[i].is_static and shape[i].get_length() == channels]
    if len(hits) != 1 or hits[0] not in allowed:
        raise UnsupportedArgumentError(p.model, arg, f"cannot tell which dimension of {shape} holds the "
                                                     f"{channels} channels; give --layout")
    return "?" * hits[0] + "C" + "?" * (rank - hits[0] - 1)


def preprocess(p: OvcPlan, model: Any) -> Any:
    """The plan's layouts, reversal, mean and scale on a model converted elsewhere (a PyTorch
    export, convert/pytorch.py)."""
    return _preprocess(_openvino(), p, model)


def _preprocess(ov, p: OvcPlan, model):
    """Layouts, reversal, mean, scale: applied in mo's order with a PrePostProcessor."""
    if not (p.layouts or p.unnamed_layout or p.means or p.scales or p.scale is not None or p.reverse_channels):
        return model
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    layouts: dict[int, tuple[str | None, str | None]] = {}
    guessed: set[int] = set()
    ports = {i: port for i, port in enumerate(model.inputs)}
    for name, lay in p.layouts.items():
        layouts[_find_input(model, name, p, "--layout")] = lay
    if p.unnamed_layout:
        layouts[_find_input(model, None, p, "--layout")] = p.unnamed_layout
    for arg, values in (("--mean_values", p.means), ("--scale_values", p.scales)):
        for name, numbers in values.items():
            i = _find_input(model, name, p, arg)
            if len(numbers) > 1 and not (layouts.get(i) or (None, None))[0]:
                layouts[i] = (_channel_layout(ports[i], len(numbers), p, arg), (layouts.get(i) or (None, None))[1])
                guessed.add(i)
    reverse: list[int] = []
    if p.reverse_channels:
        for i, port in ports.items():
            src = (layouts.get(i) or (None, None))[0]
            if src:
                c = ov.Layout(src)
                shape = port.get_partial_shape()
                if ov.layout_helpers.has_channels(c):
                    dim = shape[ov.layout_helpers.channels_idx(c)]
                    if dim.is_static and dim.get_length() == 3:
                        reverse.append(i)
                continue
            try:
                layouts[i] = (_channel_layout(port, 3, p, "--reverse_input_channels"), None)
            except UnsupportedArgumentError:
                continue  # mo skips inputs without three channels, and so do we
            guessed.add(i)
            reverse.append(i)
        if not reverse:
            raise UnsupportedArgumentError(p.model, "--reverse_input_channels", "no input has 3 channels")
    for i, (src, dst) in layouts.items():
        if src:
            ppp.input(i).model().set_layout(ov.Layout(src))
        if dst:
            ppp.input(i).tensor().set_layout(ov.Layout(dst))
    for i in reverse:
        ppp.input(i).preprocess().reverse_channels()
    for name, numbers in p.means.items():
        i = _find_input(model, name, p, "--mean_values")
        ppp.input(i).preprocess().mean(numbers if len(numbers) > 1 else numbers[0])
    for name, numbers in p.scales.items():
        i = _find_input(model, name, p, "--scale_values")
        ppp.input(i).preprocess().scale(numbers if len(numbers) > 1 else numbers[0])
    if p.scale is not None:
        for i in ports:
            ppp.input(i).preprocess().scale(p.scale)
    try:
        model = ppp.build()
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"{p.model}: pre-processing (layout, mean, scale) failed: {_first_line(exc)}") from None
    for i in guessed:  # a guessed layout is not the model's (mo does not write it either)
        if not (layouts[i][1]):
            model.get_parameters()[i].set_layout(ov.Layout())
    return model
