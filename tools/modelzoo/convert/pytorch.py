"""PyTorch models straight into OpenVINO (the ovc backend): no ONNX, no openvino-dev.

Open Model Zoo describes a PyTorch model by the command line of openvino-dev's
`pytorch_to_onnx.py` (`conversion_to_onnx_args`) followed by Model Optimizer arguments for the
ONNX file it wrote. That script no longer works on today's torch (`torch.onnx.export` needs
onnxscript since 2.9; `torch.load` refuses pickled objects since 2.6), so this module reads the
same command line and does what it meant, without ONNX:

- `parse_export(args)` reads `--model-name`, `--import-module`, `--model-path`, `--model-param`,
  `--weights`, `--input-shapes`, `--input-names`, `--output-names`, `--inputs-dtype` and
  `--conversion-param` (only `dynamic_axes`) as the script's own argparse did (abbreviations
  such as `--input-shape` included). Parameter values are Python literals (`ast.literal_eval`),
  not evaluated expressions.
- `prepare(...)` plans it: the export plus the model's Model Optimizer arguments, whose
  `--input_model` must name the export's `--output-file` (the ONNX file that is no longer made);
  everything is refused before any work, by name.
- `export(...)` builds and loads the model in a CHILD process (`convert/pytorch_child.py`: model
  code pollutes `sys.modules`, descriptors pin different library versions, and a crash or an
  out-of-memory kill must fail only this model), converts it with `openvino.convert_model` and
  the descriptor's input shapes, types, names and dynamic axes, names the outputs as
  `--output-names` says, and writes an FP32 IR that this process reads back; then the Model
  Optimizer arguments are applied as for any model (ovc.preprocess).

Checkpoints: `--weights` is loaded with `torch.load(weights_only=False)` (which unpickles, i.e. runs
code from the file) only when the file's SHA-384 and size are the ones the descriptor lists for it,
checked again here just before the export; any other file is loaded with `weights_only=True`.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConversionError, MissingExtraError, UnsupportedArgumentError

EXTRA_HINT = "pip install 'modelzoo[pytorch]'"
# --inputs-dtype values of pytorch_to_onnx.py -> (torch dtype name, OpenVINO element type name)
DTYPES = {
    "bool": ("bool", "boolean"), "double": ("double", "f64"), "float": ("float", "f32"), "half": ("half", "f16"),
    "int32": ("int32", "i32"), "int8": ("int8", "i8"), "long": ("long", "i64"), "short": ("short", "i16"),
    "uint8": ("uint8", "u8"),
}
CHILD_MODULE = "modelzoo.convert.pytorch_child"


@dataclass
class TorchExport:
    """What `conversion_to_onnx_args` asks for, read as pytorch_to_onnx.py reads it."""

    model_name: str
    import_module: str
    output_file: Path
    input_shapes: list[list[int]]
    input_names: list[str]
    output_names: list[str]
    model_paths: list[str] = field(default_factory=list)
    weights: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs_dtype: str = "float"
    dynamic_axes: dict[str, list[int]] = field(default_factory=dict)  # input name -> dynamic dimensions

    def shapes(self) -> list[list[int]]:
        """The inputs' shapes for the conversion: -1 where `dynamic_axes` says so."""
        out = []
        for name, shape in zip(self.input_names, self.input_shapes):
            dims = self.dynamic_axes.get(name, [])
            out.append([-1 if i in dims else d for i, d in enumerate(shape)])
        return out

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        where = f" (from {', '.join(self.model_paths)})" if self.model_paths else ""
        loaded = f", load_state_dict({self.weights})" if self.weights else ""
        inputs = ", ".join(f"{n}{s}:{self.inputs_dtype}" for n, s in zip(self.input_names, self.shapes()))
        return (f"in a child process: {self.import_module}.{self.model_name}({params}){where}{loaded}; "
                f"openvino.convert_model(module, inputs {inputs}; outputs {','.join(self.output_names)})")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{text!r} is not a Python literal ({exc.__class__.__name__})") from None


def _pair(text: str) -> tuple[str, Any]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise ValueError(f"{text!r} is not name=value")
    return name, _literal(value)


def _shapes(text: str) -> list[list[int]]:
    value = _literal(text)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{text!r}: not a shape or a list of shapes")
    if not all(isinstance(s, (list, tuple)) for s in value):
        value = (value,)
    shapes = []
    for shape in value:
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{shape!r}: a shape is a sequence of non-negative integers")
        shapes.append(list(shape))
    return shapes


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="conversion_to_onnx_args", add_help=False)
    p.add_argument("--model-name", required=True)
    p.add_argument("--weights")
    p.add_argument("--input-shapes", required=True)
    p.add_argument("--output-file", required=True)
    p.add_argument("--model-path", action="append", dest="model_paths", default=[])
    p.add_argument("--import-module", required=True)
    p.add_argument("--input-names", required=True)
    p.add_argument("--output-names", required=True)
    p.add_argument("--model-param", action="append", default=[])
    p.add_argument("--inputs-dtype", choices=sorted(DTYPES), default="float")
    p.add_argument("--conversion-param", action="append", default=[])
    p.add_argument("--opset_version")  # ONNX only: nothing to do without ONNX
    return p


def _names(text: str) -> list[str]:
    """As the script split them: f3net's `--output-names="saliency_map"` names its output with the
    quotes, and its Model Optimizer arguments say `--output="saliency_map"`."""
    return text.split(",")


def parse_export(args: list[str]) -> TorchExport:
    """conversion_to_onnx_args (placeholders expanded) -> TorchExport; ValueError saying what is wrong."""
    ns = _parser().parse_args(args)
    params = dict(_pair(p) for p in ns.model_param)
    conversion = dict(_pair(p) for p in ns.conversion_param)
    names = _names(ns.input_names)
    export = TorchExport(model_name=ns.model_name, import_module=ns.import_module, output_file=Path(ns.output_file),
                         input_shapes=_shapes(ns.input_shapes), input_names=names,
                         output_names=_names(ns.output_names), model_paths=list(ns.model_paths),
                         weights=ns.weights, params=params, inputs_dtype=ns.inputs_dtype)
    if len(export.input_shapes) != len(names):
        raise ValueError(f"{len(export.input_shapes)} input shapes for {len(names)} input names")
    for key, value in conversion.items():
        if key != "dynamic_axes":
            raise ValueError(f"--conversion-param={key}: an ONNX export parameter with no meaning here "
                             f"(only dynamic_axes is read)")
        if not isinstance(value, dict):
            raise ValueError("--conversion-param=dynamic_axes: not a dict")
        for name, axes in value.items():
            if name not in names:
                continue  # an output's dynamic axes follow from the inputs'
            dims = list(axes) if isinstance(axes, (dict, list, tuple)) else None
            if dims is None or not all(isinstance(d, int) for d in dims):
                raise ValueError(f"--conversion-param=dynamic_axes: {name}: not a dict or list of dimensions")
            export.dynamic_axes[name] = dims
    return export


@dataclass
class TorchPlan:
    """The ovc backend's plan for a PyTorch model: the export, then the Model Optimizer arguments."""

    model: str
    export: TorchExport
    plan: Any  # ovc.OvcPlan of the Model Optimizer arguments; its source is the export's output file
    verified: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (size, SHA-384) the descriptor gives

    def describe(self) -> str:
        rest = self.plan.describe().split(" + ")[1:]
        return " + ".join(["PyTorch export " + self.export.describe(), *rest])

    def needed_files(self) -> list[str]:
        """Arguments naming what must exist before the export (the pipeline's input check)."""
        return [f"--input_model={p}" for p in self.export.model_paths] + \
            ([f"--input_model={self.export.weights}"] if self.export.weights else [])


def prepare(model: str, export_args: list[str], mo_args: list[str], mo_ext_dir: str,
            files: dict[str, tuple[int, str]]) -> TorchPlan:
    """Plan a PyTorch model for the ovc backend, or refuse it by name before any work.
    ``files``: the descriptor's files as {absolute path: (size, SHA-384)}."""
    from . import ovc

    try:
        export = parse_export(export_args)
    except ValueError as exc:
        raise UnsupportedArgumentError(model, "conversion_to_onnx_args", f"cannot read it: {exc}") from None
    # The Model Optimizer arguments were written for the ONNX file the export wrote: read them as
    # arguments for the exported model.
    mapped, named = [], False
    for arg in mo_args:
        flag, eq, value = arg.partition("=")
        canonical = ovc.canonical_flag(flag)
        if canonical == "--input_model" and eq:
            if Path(value) != export.output_file:
                raise UnsupportedArgumentError(model, arg, f"names {value}, not the file conversion_to_onnx_args "
                                                           f"writes ({export.output_file})")
            named = True
        elif canonical == "--framework":
            arg = "--framework=pytorch"
        mapped.append(arg)
    if not named:
        raise UnsupportedArgumentError(model, "--input_model", "model_optimizer_args do not name the file "
                                                              "conversion_to_onnx_args writes")
    plan = ovc.plan(model, mapped, mo_ext_dir)
    return TorchPlan(model, export, plan, files)


def _torch_available() -> None:
    if importlib.util.find_spec("torch") is None:
        raise MissingExtraError(f"PyTorch models need the 'pytorch' extra (torch is not installed): {EXTRA_HINT}")


def _verified(tp: TorchPlan) -> list[str]:
    """The checkpoint files whose size and SHA-384 are, now, the descriptor's."""
    from ..verify import file_digest

    out = []
    if tp.export.weights:
        path = str(Path(tp.export.weights).resolve())
        expected = tp.verified.get(path)
        if expected is not None and os.path.isfile(path) and os.path.getsize(path) == expected[0] \
                and file_digest(Path(path))[1] == expected[1]:
            out.append(path)
    return out


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def export(tp: TorchPlan, log: Path | None = None) -> Any:
    """Run the export child; returns the exported openvino.Model with the Model Optimizer
    arguments applied. A failure is one ConversionError naming the model and the cause; the
    child's own output (a traceback) goes to ``log`` when given."""
    _torch_available()
    from . import ovc
    from .mo import child_env

    ov = ovc._openvino()
    root = Path(__file__).resolve().parents[2]  # the folder holding the modelzoo package
    with tempfile.TemporaryDirectory(prefix="modelzoo-torch-") as tmp:
        spec = Path(tmp) / "spec.json"
        xml = Path(tmp) / "exported.xml"
        cause = Path(tmp) / "cause.txt"
        spec.write_text(json.dumps({"model": tp.model, "args": _export_args(tp.export), "verified": _verified(tp),
                                    "xml": str(xml), "cause": str(cause)}))
        env = child_env()
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.setdefault("PYTHONWARNINGS", "ignore")
        out: Any = subprocess.DEVNULL
        if log is not None:
            try:
                out = open(log, "a")
                out.write(f"--- {tp.model}: PyTorch export\n")
                out.flush()
            except OSError as exc:
                raise ConversionError(f"cannot write the log {log}: {exc.strerror or exc}") from None
        try:
            code = subprocess.run([sys.executable, "-m", CHILD_MODULE, str(spec)], cwd=tmp, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=out).returncode
        except OSError as exc:
            raise ConversionError(f"cannot start the PyTorch export: {exc.strerror or exc}") from exc
        finally:
            if log is not None:
                out.close()
        if code != 0:
            why = cause.read_text().strip() if cause.is_file() and cause.read_text().strip() else _death(code)
            where = f" (traceback in {log})" if log is not None else " (--log FILE keeps its traceback)"
            raise ConversionError(f"the PyTorch export failed: {why}{where}")
        model = ov.Core().read_model(str(xml))
        model = _apply_plan(tp, model)
        return ovc.preprocess(tp.plan, model)


def _export_args(e: TorchExport) -> dict[str, Any]:
    """What the child needs, as JSON (dynamic_axes as lists; parameters re-read as literals)."""
    return {"model_name": e.model_name, "import_module": e.import_module, "model_paths": e.model_paths,
            "weights": e.weights, "params": {k: repr(v) for k, v in e.params.items()},
            "input_names": e.input_names, "output_names": e.output_names, "shapes": e.input_shapes,
            "conversion_shapes": e.shapes(), "dtype": e.inputs_dtype}


def _apply_plan(tp: TorchPlan, model: Any) -> Any:
    """--input / --input_shape / --output of the Model Optimizer arguments on the exported model."""
    import openvino as ov

    p = tp.plan
    names = {n: i for i, port in enumerate(model.inputs) for n in port.get_names()}
    shapes = {}
    for spec in p.inputs:
        if spec.name not in names:
            raise UnsupportedArgumentError(tp.model, "--input", f"no input named {spec.name} (the export's inputs: "
                                                                f"{', '.join(tp.export.input_names)})")
        if spec.shape is not None and model.inputs[names[spec.name]].get_partial_shape() != ov.PartialShape(spec.shape):
            shapes[names[spec.name]] = ov.PartialShape(spec.shape)
    if shapes:
        model.reshape(shapes)
    if p.outputs:
        by_name = {n: port for port in model.outputs for n in port.get_names()}
        missing = [o for o in p.outputs if o not in by_name]
        if missing:
            exported = ", ".join(tp.export.output_names)
            raise UnsupportedArgumentError(tp.model, "--output", f"no output named {', '.join(missing)} (the "
                                                                 f"export's outputs: {exported})")
        if len(p.outputs) != len(model.outputs) or \
                any(o not in port.get_names() for o, port in zip(p.outputs, model.outputs)):
            results = [by_name[o].get_node() for o in p.outputs]
            model = ov.Model(results, model.get_parameters(), model.get_friendly_name())
    return model
