"""The mo backend: the Model Optimizer of openvino-dev 2024.6 (the last release that has it).

In-process, `mo` runs once through its own argument parser (so every argument means exactly
what it means to `mo`) and returns an `openvino.Model` that the pipeline saves as FP32 and FP16.
With `--mo PATH` an external `mo` runs as a subprocess once per precision instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import ConversionError, MissingExtraError, UnsafeArgumentError

NO_TELEMETRY_DIR = Path(__file__).resolve().parents[1] / "notelemetry"  # (modelzoo/notelemetry)
# mo's own chatter on stdout that says nothing about this conversion (printed on every run).
_BANNERS = ("[ INFO ] MO command line tool is considered as the legacy conversion API",
            "In 2025.0 MO command line tool and openvino.tools.mo.convert_model() will be removed",
            "Find more information about transition from MO to OVC",
            "Check for a new version of Intel(R) Distribution of OpenVINO(TM) toolkit")
INSTALL_HINT = "pip install 'modelzoo[mo]' (openvino-dev 2024.6)"
# The Model Optimizer flags a descriptor may give the mo backend (as convert_ovc.HANDLERS is the
# ovc backend's): what reads the model, describes its inputs and outputs, or only changes the log.
# Every path among them is confined to the model's folders (convert.check_paths).
ALLOWED_FLAGS = frozenset({
    "--input_model", "--input_proto", "--input_meta_graph", "--input_checkpoint", "--input_symbol",
    "--saved_model_dir", "--saved_model_tags", "--input_model_is_text", "--transformations_config",
    "--tensorflow_object_detection_api_pipeline_config", "--k", "--counts", "--framework", "--input", "--output",
    "--input_shape", "--batch", "--layout", "--source_layout", "--target_layout", "--mean_values", "--scale_values",
    "--scale", "--reverse_input_channels", "--freeze_placeholder_with_value", "--static_shape", "--transform",
    "--use_new_frontend", "--use_legacy_frontend", "--disable_omitting_optional", "--enable_flattening_nested_params",
    "--remove_output_softmax", "--remove_memory", "--share_weights", "--log_level", "--silent", "--progress",
    "--stream_output",
})
# Flags known to run code, write elsewhere or take over what the converter decides: why each is refused.
REFUSED_FLAGS = {
    "--extensions": "it makes the Model Optimizer import Python code from the named folders",
    "--caffe_parser_path": "it makes the Model Optimizer import a Python parser from the named folder",
    "--tensorflow_custom_layer_libraries": "it loads shared libraries (native code) into the Model Optimizer",
    "--tensorflow_custom_operations_config_update": "it rewrites the named JSON file",
    "--tensorboard_logdir": "it writes a dump of the model into the named folder",
    "--output_dir": "the converter decides where the IR is written",
    "--model_name": "the converter names the IR after the model",
    "--compress_to_fp16": "the precisions come from --precisions (FP32 and FP16 from one conversion)",
    "--help": "it prints and exits instead of converting",
    "--version": "it prints and exits instead of converting",
}


def check_arguments(model: str, args: list[str]) -> None:
    """Refuse, by name and before any work, a descriptor's Model Optimizer argument that is not
    known to be harmless (ALLOWED_FLAGS; an abbreviation counts as the flag it stands for, as
    mo's argparse reads it): a zoo from outside must not make mo run its code or write outside
    the staging folder."""
    from .ovc import canonical_flag

    for arg in args:
        if not arg.startswith("--"):
            raise UnsafeArgumentError(model, arg, "not an option (a value must follow its flag after '=')")
        flag = arg.partition("=")[0]
        canonical = canonical_flag(flag)
        if canonical in REFUSED_FLAGS:
            raise UnsafeArgumentError(model, arg, f"{REFUSED_FLAGS[canonical]} (mo backend)")
        if canonical not in ALLOWED_FLAGS:
            raise UnsafeArgumentError(model, arg, "not a Model Optimizer flag the converter knows to be harmless "
                                                  "(mo backend)")


def disable_telemetry() -> None:
    """No usage telemetry from OpenVINO's converters in this process (see notelemetry/). Call it
    before `import openvino`: importing it (2024.6 and later) starts ovc's telemetry, whose GA4
    sender forks a process from a worker thread; with this process importing TensorFlow at the
    same time, that fork deadlocked conversions here."""
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import now raises ImportError


def child_env() -> dict[str, str]:
    """Environment for Model Optimizer subprocesses: the same, without telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NO_TELEMETRY_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def _mo_location() -> Path | None:
    """openvino-dev's Model Optimizer package folder in this interpreter, found without importing
    openvino (finding ``openvino.tools.mo`` imports its parents: 0.4 s that a run placing IR
    from the cache must not pay)."""
    try:
        spec = importlib.util.find_spec("openvino")  # a top-level package is found, not imported
    except (ImportError, ValueError):
        return None
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(base) / "tools" / "mo"
        if (folder / "__init__.py").is_file():
            return folder
    return None


def available() -> bool:
    """Can this interpreter import openvino-dev's Model Optimizer?"""
    return _mo_location() is not None


def versions() -> str:
    """What decides the Model Optimizer's IR besides its arguments: openvino-dev's, OpenVINO's and
    TensorFlow's versions (from their installed metadata; nothing is imported)."""
    found = []
    for dist in ("openvino-dev", "openvino", "tensorflow"):
        version = dist_version(dist)
        if version is not None:
            found.append(f"{dist} {version}")
    return ", ".join(found)


def dist_version(dist: str, where: list[str] | None = None) -> str | None:
    """An installed distribution's version, from its ``<name>-<version>.dist-info`` folder in
    ``where`` (default sys.path; what importlib.metadata reads, without its 0.08 s of imports);
    None if absent."""
    prefix = dist.replace("-", "_").lower() + "-"
    for entry in sys.path if where is None else where:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(prefix):
                version = name[len(prefix):-len(".dist-info")]
                if version and version[0].isdigit():
                    return version
    return None


def run_command(cmd: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run, with a missing or unrunnable program as one of our errors."""
    try:
        return subprocess.run(cmd, **kwargs)
    except OSError as exc:
        raise ConversionError(f"cannot run {what} with {cmd[0]}: {exc.strerror or exc}") from exc


def mo_package_dir(python: Path | None = None, mo: Path | None = None) -> Path:
    """The Model Optimizer's package folder ($mo_dir); its extensions ($mo_ext_dir) live there."""
    if mo is not None and str(mo).endswith(".py"):
        return mo.resolve().parent
    if python is None or Path(python).resolve() == Path(sys.executable).resolve():
        folder = _mo_location()
        if folder is None:
            raise MissingExtraError(f"the Model Optimizer is not installed: {INSTALL_HINT}")
        return folder
    result = run_command([str(python), "-c", "import openvino.tools.mo as m, os; print(os.path.dirname(m.__file__))"],
                         "the Model Optimizer", capture_output=True, text=True, env=child_env())
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise MissingExtraError(f"{python} cannot import openvino.tools.mo ({last}): {INSTALL_HINT}")
    return Path(result.stdout.strip())


def _quiet_tensorflow() -> None:
    """mo sets TF_CPP_MIN_LOG_LEVEL=2 when it loads, which lets TensorFlow print its CUDA
    factory lines; TensorFlow imported first, at level 3, prints none."""
    if "tensorflow" in sys.modules:
        return
    old = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        import tensorflow  # noqa: F401  (imported for its side effect: initialised at level 3)
    except ImportError:
        pass
    finally:
        if old is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = old


def run_in_process(args: list[str], verbose: bool = False):
    """Run the Model Optimizer on a command line, in this process; returns an openvino.Model.
    Its own log lines ([ ERROR ] ...) are printed as it prints them; its banners only with
    `verbose`."""
    disable_telemetry()
    if not verbose:
        _quiet_tensorflow()
    try:
        from openvino.tools.mo.convert_impl import _convert
        from openvino.tools.mo.utils.cli_parser import get_all_cli_parser
    except ImportError as exc:
        raise MissingExtraError(f"the mo backend needs the 'mo' extra ({exc.name} is missing): "
                                f"{INSTALL_HINT}") from exc
    parser = get_all_cli_parser()
    parse = parser.parse_args
    # mo's driver parses sys.argv; give it our arguments instead, through its own parser.
    parser.parse_args = lambda a=None, namespace=None: parse(args, namespace)  # type: ignore[method-assign]
    captured = io.StringIO()
    with contextlib.redirect_stdout(sys.stdout if verbose else captured):
        ov_model, _ = _convert(parser, None, {}, False)
    for line in captured.getvalue().splitlines():
        if line.strip() and not line.startswith(_BANNERS):
            print(line, flush=True)
    if ov_model is None:
        raise ConversionError("the Model Optimizer failed (its messages are above)")
    return ov_model


def external_command(python: Path, mo: Path, args: list[str], out_dir: Path, precision: str) -> list[str]:
    """An external mo's command line for one precision."""
    return [str(python), "--", str(mo), *args, f"--output_dir={out_dir}", f"--compress_to_fp16={precision == 'FP16'}"]


def run_external(cmd: list[str], model: str, precision: str) -> None:
    """Run an external mo (its messages go straight to the terminal)."""
    if run_command(cmd, "the Model Optimizer", stdin=subprocess.DEVNULL, env=child_env()).returncode != 0:
        raise ConversionError(f"{model}: the Model Optimizer failed for {precision} (its messages are above)")
