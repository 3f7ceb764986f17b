"""Where the Model Optimizer command is built and run: descriptor -> OpenVINO IR.

One conversion serves every precision: the Model Optimizer runs once (in this process,
through its own command-line parser, so the arguments mean exactly what they mean to `mo`)
and the model is saved as FP32 and as FP16. `--mo PATH` runs an external `mo` once per
precision instead. Output is written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .descriptor import Model
from .errors import ConversionError, MissingExtraError

STAGING = ".converting"
IR_PRECISIONS = ("FP32", "FP16")  # what the Model Optimizer writes; the others come from quantization
INPUT_FLAGS = ("--input_model", "--input_proto", "--input_meta_graph", "--input_checkpoint", "--input_symbol",
               "--saved_model_dir", "--input_model_is_text")


@dataclass
class ConvertOptions:
    download_dir: Path
    output_dir: Path
    models_root: Path
    precisions: frozenset[str]
    mo: Path | None = None  # an external mo to run as a subprocess
    python: Path = Path(sys.executable)
    extra_mo_args: list[str] = field(default_factory=list)
    dry_run: bool = False


NO_TELEMETRY_DIR = Path(__file__).resolve().parent / "notelemetry"


def disable_telemetry() -> None:
    """No usage telemetry from Model Optimizer code in this process (see notelemetry/)."""
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import now raises ImportError


def child_env() -> dict[str, str]:
    """Environment for Model Optimizer subprocesses: the same, without telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NO_TELEMETRY_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def mo_package_dir(python: Path | None = None, mo: Path | None = None) -> Path:
    """The Model Optimizer's package folder ($mo_dir); its extensions ($mo_ext_dir) live there."""
    if mo is not None and str(mo).endswith(".py"):
        return mo.resolve().parent
    if python is None or Path(python).resolve() == Path(sys.executable).resolve():
        try:
            spec = importlib.util.find_spec("openvino.tools.mo")
        except ImportError:
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtraError("the Model Optimizer is not installed: pip install 'modelzoo[convert]' "
                                    "(openvino-dev 2024.6)")
        return Path(next(iter(spec.submodule_search_locations)))
    result = subprocess.run([str(python), "-c", "import openvino.tools.mo as m, os; print(os.path.dirname(m.__file__))"],
                            capture_output=True, text=True, env=child_env())
    if result.returncode != 0:
        raise MissingExtraError(f"{python} cannot import openvino.tools.mo: {result.stderr.strip().splitlines()[-1:]}")
    return Path(result.stdout.strip())


def template_variables(model: Model, options: ConvertOptions, mo_dir: Path) -> dict[str, str]:
    ext = mo_dir / "extensions"
    return {
        "config_dir": str(options.models_root / model.subdirectory),
        "conv_dir": str(options.output_dir / model.subdirectory),
        "dl_dir": str(options.download_dir / model.subdirectory),
        "mo_dir": str(mo_dir),
        "mo_ext_dir": str(ext if ext.is_dir() else mo_dir),
        "models_dir": str(options.models_root),
    }


def expand(args: list[str], variables: dict[str, str], model: Model, key: str) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        try:
            out.append(string.Template(arg).substitute(variables))
        except (KeyError, ValueError) as exc:
            raise ConversionError(f"{model.config_path}: {key}[{i}]: cannot expand {arg!r}: {exc}") from exc
    return out


def mo_arguments(model: Model, variables: dict[str, str], framework: str, extra: list[str]) -> list[str]:
    """The Model Optimizer arguments for a model, without output folder and precision."""
    assert model.mo_args is not None
    args = [f"--framework={framework}", f"--model_name={model.name}"]
    names = [i.name for i in model.input_info]
    if names:
        args.append("--input=" + ",".join(names))
    args += expand(model.mo_args, variables, model, "model_optimizer_args")
    layouts = ",".join(f"{i.name}({i.layout})" for i in model.input_info if i.layout)
    shapes = ",".join(str(list(i.shape)) for i in model.input_info if i.shape)
    if layouts:
        args.append(f"--layout={layouts}")
    if shapes:
        args.append(f"--input_shape={shapes}")
    return args + list(extra)


def check_inputs_exist(args: list[str], dl_dir: str) -> None:
    """Fail before the Model Optimizer starts when an input file it is given is missing."""
    for arg in args:
        flag, _, value = arg.partition("=")
        if flag in INPUT_FLAGS and value and not Path(value).exists():
            hint = " (run the downloader first)" if value.startswith(dl_dir) else ""
            raise ConversionError(f"{flag}: {value} does not exist{hint}")


def command_line(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def run_mo_in_process(args: list[str]):
    """Run the Model Optimizer on a command line, in this process; returns an openvino.Model.
    Its own log lines ([ ERROR ] ...) are printed as it prints them."""
    disable_telemetry()
    try:
        from openvino.tools.mo.convert_impl import _convert
        from openvino.tools.mo.utils.cli_parser import get_all_cli_parser
    except ImportError as exc:
        raise MissingExtraError(f"conversion needs the 'convert' extra ({exc.name} is missing): "
                                "pip install 'modelzoo[convert]'") from exc
    parser = get_all_cli_parser()
    parse = parser.parse_args
    # mo's driver parses sys.argv; give it our arguments instead, through its own parser.
    parser.parse_args = lambda a=None, namespace=None: parse(args, namespace)  # type: ignore[method-assign]
    ov_model, _ = _convert(parser, None, {}, False)
    if ov_model is None:
        raise ConversionError("the Model Optimizer failed (its messages are above)")
    return ov_model


def _set_model_info(ov_model, model: Model) -> None:
    """Carry the descriptor's model_info into the IR's rt_info, as omz_converter does."""
    for key, value in model.model_info.items():
        ov_model.set_rt_info(value, ["model_info", key])


def _move_into_place(staged: Path, final: Path) -> None:
    """Replace final (a precision folder) by staged with renames only."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staged, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


Say = Callable[[str], None]


class Converter:
    def __init__(self, options: ConvertOptions, say: Say = print) -> None:
        self.options = options
        self.say = say
        self.mo_dir = mo_package_dir(options.python, options.mo)

    def precisions_for(self, model: Model) -> list[str]:
        return [p for p in IR_PRECISIONS if p in model.precisions and p in self.options.precisions]

    def plan(self, model: Model, variables: dict[str, str]) -> tuple[list[str], list[str]]:
        """(mo arguments, precisions) for a model, or ([], []) when there is nothing to convert."""
        precisions = self.precisions_for(model)
        if model.mo_args is None or not precisions:
            return [], []
        framework = "onnx" if model.conversion_to_onnx_args else model.framework
        extra = list(self.options.extra_mo_args)
        if self.options.mo is None:
            # mo compresses to FP16 unless told not to; the one conversion must keep FP32
            # (FP16 is made from it when saving).
            extra.insert(0, "--compress_to_fp16=False")
        return mo_arguments(model, variables, framework, extra), precisions

    def external_command(self, args: list[str], out_dir: Path, precision: str) -> list[str]:
        assert self.options.mo is not None
        return [str(self.options.python), "--", str(self.options.mo), *args, f"--output_dir={out_dir}",
                f"--compress_to_fp16={precision == 'FP16'}"]

    def convert(self, model: Model) -> None:
        """Convert one (leaf) model; raises ConversionError on failure."""
        opts = self.options
        variables = template_variables(model, opts, self.mo_dir)
        args, precisions = self.plan(model, variables)
        if not args:
            why = "no conversion defined (already IR)" if model.mo_args is None else "no requested precision"
            self.say(f"skipped {model.name}: {why}")
            return
        target = opts.output_dir / model.subdirectory
        # Output is staged here and renamed into place; a fixed name, so that the command a dry
        # run prints is the one a real run executes.
        staging = target / STAGING
        dry = "(dry run) " if opts.dry_run else ""
        self._pre_convert(model, variables, dry)
        if model.conversion_to_onnx_args:
            self._to_onnx(model, variables, dry)
        if opts.mo is None:
            self.say(f"{dry}Converting {model.name} to IR ({', '.join(precisions)}), one conversion for all")
            self.say("Conversion command: mo " + command_line(args))
        else:
            for p in precisions:
                self.say(f"{dry}Converting {model.name} to IR ({p})")
                self.say("Conversion command: " + command_line(self.external_command(args, staging / p, p)))
        if opts.dry_run:
            return
        check_inputs_exist(args, variables["dl_dir"])
        shutil.rmtree(staging, ignore_errors=True)  # what an interrupted run left
        staging.mkdir(parents=True)
        try:
            if opts.mo is None:
                ov_model = run_mo_in_process(args)
                _set_model_info(ov_model, model)
                import openvino as ov

                for p in precisions:  # FP32 first: saving FP16 must not touch what FP32 saves
                    ov.save_model(ov_model, str(staging / p / f"{model.name}.xml"), compress_to_fp16=(p == "FP16"))
            else:
                for p in precisions:
                    cmd = self.external_command(args, staging / p, p)
                    if subprocess.run(cmd, stdin=subprocess.DEVNULL, env=child_env()).returncode != 0:
                        raise ConversionError(f"{model.name}: the Model Optimizer failed for {p} "
                                              "(its messages are above)")
            for p in precisions:
                if not (staging / p / f"{model.name}.xml").is_file():
                    raise ConversionError(f"{model.name}: the Model Optimizer wrote no {p}/{model.name}.xml")
            for p in precisions:
                _move_into_place(staging / p, target / p)
                self.say(f"wrote {target / p / model.name}.xml and .bin")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run_script(self, what: str, cmd: list[str], dry: str) -> None:
        self.say(f"{dry}{what} command: {command_line(cmd)}")
        if dry:
            return
        if subprocess.run(cmd, stdin=subprocess.DEVNULL, env=child_env()).returncode != 0:
            raise ConversionError(f"{what} failed: {command_line(cmd)}")

    def _pre_convert(self, model: Model, variables: dict[str, str], dry: str) -> None:
        script = Path(variables["config_dir"]) / "pre-convert.py"
        if script.exists():
            self._run_script("Pre-convert", [str(self.options.python), "--", str(script), "--",
                                             variables["dl_dir"], variables["conv_dir"]], dry)

    def _to_onnx(self, model: Model, variables: dict[str, str], dry: str) -> None:
        # Open Model Zoo's own PyTorch-to-ONNX script, from the openvino-dev that the
        # 'convert' extra installs.
        spec = importlib.util.find_spec("omz_tools")
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtraError("PyTorch models are converted with omz_tools' pytorch_to_onnx.py: "
                                    "pip install 'modelzoo[convert]'")
        script = Path(next(iter(spec.submodule_search_locations))) / "internal_scripts" / "pytorch_to_onnx.py"
        args = expand(model.conversion_to_onnx_args or [], variables, model, "conversion_to_onnx_args")
        self._run_script("Conversion to ONNX", [str(self.options.python), "--", str(script), *args], dry)
