"""The conversion pipeline: descriptor -> Model Optimizer arguments -> a backend -> OpenVINO IR.

Descriptors say what a conversion needs in the Model Optimizer's (`mo`'s) words. This module
builds those arguments (placeholders, `input_info`), picks a backend and puts the result in
place:

- `mo` (convert_mo.py): openvino-dev 2024.6's Model Optimizer, once, in this process; or an
  external `--mo` once per precision;
- `ovc` (convert_ovc.py): today's `openvino.convert_model` plus a PrePostProcessor and the output
  stages that mo's transformation configs made; no TensorFlow, no openvino-dev.

One conversion serves every precision (saved as FP32 and as FP16). Output is written into a
staging folder of this run's own (`.converting-<pid>-<random>` in the model's output folder; one
that a killed run left is removed by the next run) and
swapped into place all precisions or none (fsio.swap_in), under a lock on the model folder so
that concurrent runs into the same output follow each other.
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
from typing import Any, Callable

from . import mo as convert_mo
from .. import fsio
from .mo import child_env, disable_telemetry, mo_package_dir  # noqa: F401  (public, used by peer)
from ..descriptor import Model
from ..errors import (
    ConversionError, DiskFullError, MissingExtraError, ModelzooError, UnsafeArgumentError, ZooCodeError,
)
from ..events import Reporter
from ..executors import Executor, Job, JobBar, LocalProcesses
from ..mirror.ir_share import MADE, obtain_ir

STAGING_PREFIX = ".converting-"
IR_PRECISIONS = ("FP32", "FP16")  # what a conversion writes; the others come from quantization
INPUT_FLAGS = ("--input_model", "--input_proto", "--input_meta_graph", "--input_checkpoint", "--input_symbol",
               "--saved_model_dir", "--input_model_is_text")
BACKENDS = ("auto", "mo", "ovc")
# mo's options whose value names a file or folder (openvino-dev 2024.6's
# cli_parser.get_params_with_paths_list): after placeholders, each must lie below the model's own
# folders (PATH_ROOTS). The list-valued ones are comma-separated.
PATH_FLAGS = ("--input_model", "--input_proto", "--input_meta_graph", "--input_checkpoint", "--input_symbol",
              "--saved_model_dir", "--transformations_config", "--tensorflow_object_detection_api_pipeline_config",
              "--k", "--counts", "--caffe_parser_path", "--extensions", "--tensorboard_logdir",
              "--tensorflow_custom_layer_libraries", "--tensorflow_custom_operations_config_update", "--output_dir")
LIST_PATH_FLAGS = ("--extensions", "--tensorflow_custom_layer_libraries")
# Where a descriptor's paths may lead: its downloads, its own folder in the zoo, the output folder
# our own steps (pre-convert, the conversion to ONNX) write into, and the Model Optimizer's files.
PATH_ROOTS = ("dl_dir", "config_dir", "conv_dir", "mo_dir")
# Placeholders that name mo's own folders: without mo (the ovc backend) they stay as written, so
# that convert_ovc can recognise `$mo_ext_dir/front/tf/retinanet.json` by name.
UNEXPANDED_MO_DIRS = {"mo_dir": "$mo_dir", "mo_ext_dir": "$mo_ext_dir"}


@dataclass
class ConvertOptions:
    """What the converter's command line says, minus the selection and -j."""

    download_dir: Path
    output_dir: Path
    models_root: Path
    precisions: frozenset[str]
    mo: Path | None = None  # an external mo to run as a subprocess
    python: Path = Path(sys.executable)
    extra_mo_args: list[str] = field(default_factory=list)
    dry_run: bool = False
    backend: str = "auto"
    verbose: bool = False
    cache_dir: Path | None = None  # converted IR by conversion key (ir_cache.py), beside the downloads
    mirrors: list[str] = field(default_factory=list)  # mirrors with IR (mirror/ir_share.py), tried before converting
    mirror_min_speed: int | None = None  # bytes/s below which a mirror's IR is given up (None: ir_share's default)
    # may a zoo's own code run (pre-convert.py, a PyTorch model module)? the CLI allows it for the
    # bundled zoo, and for any other with --allow_zoo_code (see zoo_code)
    allow_zoo_code: bool = False

    log: Path | None = None  # where a PyTorch export's child writes its output (a traceback)


def zoo_code(model: Model, models_root: Path) -> list[str]:
    """What a conversion of ``model`` (a leaf) would run that came with its zoo, one entry each:
    its ``pre-convert.py``; for a PyTorch model, the export (convert/pytorch.py imports
    ``--import-module`` from the zoo's or the download's folders and unpickles the weights in a
    child process: the zoo's code either way). Empty: it runs only the converter."""
    if model.mo_args is None:
        return []
    found = []
    script = models_root / model.subdirectory / "pre-convert.py"
    if script.exists():
        found.append(str(script))
    if model.conversion_to_onnx_args:
        named = [a for a in model.conversion_to_onnx_args if a.startswith(("--import-module", "--model-path"))]
        found.append(f"{models_root / model.subdirectory}: the PyTorch model's code"
                     + (f" ({' '.join(named)})" if named else ""))
    return found


def choose_backend(backend: str, mo: Path | None) -> str:
    """auto: mo when --mo is given or openvino-dev's Model Optimizer can be imported, else ovc."""
    if backend == "auto":
        return "mo" if mo is not None or convert_mo.available() else "ovc"
    if backend == "ovc" and mo is not None:
        raise ConversionError("--mo runs the Model Optimizer: it cannot be used with --backend ovc")
    return backend


def openvino_version() -> str:
    """The installed OpenVINO's version (short), or a MissingExtraError naming the extra. Read
    from the metadata installed beside the package that ``import openvino`` would load, without
    importing it (0.4 s): a run that places IR from the cache or a mirror never imports OpenVINO.
    Without such metadata (a source build, a stand-in), it is imported to ask."""
    spec = importlib.util.find_spec("openvino")
    version = None
    if spec is not None and spec.origin:
        version = convert_mo.dist_version("openvino", [str(Path(spec.origin).parent.parent)])
    if version is None:
        try:
            import openvino
        except ImportError as exc:
            raise MissingExtraError(f"conversion needs OpenVINO ({exc}): pip install 'modelzoo[convert]'") from exc
        version = openvino.__version__
    return version.split("-")[0]


def template_variables(model: Model, options: ConvertOptions, mo_dir: Path | None) -> dict[str, str]:
    """The placeholders of model_optimizer_args, as omz_converter defines them."""
    variables = {
        "config_dir": str(options.models_root / model.subdirectory),
        "conv_dir": str(options.output_dir / model.subdirectory),
        "dl_dir": str(options.download_dir / model.subdirectory),
        "models_dir": str(options.models_root),
        **UNEXPANDED_MO_DIRS,
    }
    if mo_dir is not None:
        ext = mo_dir / "extensions"
        variables.update(mo_dir=str(mo_dir), mo_ext_dir=str(ext if ext.is_dir() else mo_dir))
    return variables


def expand(args: list[str], variables: dict[str, str], model: Model, key: str) -> list[str]:
    """Substitute $placeholders; an unknown one is an error naming the descriptor key."""
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
    args = [f"--framework={framework}"]
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
    # ours last: where a flag is given twice, mo's argparse keeps the last one
    return args + list(extra) + [f"--model_name={model.name}"]


def check_paths(model: Model, variables: dict[str, str]) -> None:
    """Every path a descriptor's model_optimizer_args name (PATH_FLAGS), placeholders expanded,
    `..` and links resolved, must lie below $dl_dir, $config_dir, $conv_dir or $mo_dir: a zoo
    from outside must not convert (and a mirror publish) some other file of this machine. An
    UnsafeArgumentError names the first that does not, before any work, for either backend.
    A value must follow its flag after '=' (a separate word would be read as the flag's value by
    mo, unchecked)."""
    from .ovc import canonical_flag

    roots = [Path(os.path.realpath(variables[k])) for k in PATH_ROOTS if not variables[k].startswith("$")]
    shown = ", ".join("$" + k for k in PATH_ROOTS)
    for arg in expand(model.mo_args or [], variables, model, "model_optimizer_args"):
        if not arg.startswith("--"):
            raise UnsafeArgumentError(model.name, arg, "not an option (a value must follow its flag after '=')")
        flag, eq, value = arg.partition("=")
        flag = canonical_flag(flag) or flag
        if flag not in PATH_FLAGS:
            continue
        for path in (value.split(",") if flag in LIST_PATH_FLAGS else [value]):
            if not path:
                raise UnsafeArgumentError(model.name, arg, "needs a path after '='")
            if path.startswith(tuple(f"${k}/" for k in UNEXPANDED_MO_DIRS)):
                # ovc without openvino-dev: mo's folder is known only by name (convert_ovc.plan)
                if os.path.normpath(path.split("/", 1)[1]).startswith(".."):
                    raise UnsafeArgumentError(model.name, arg, f"{path} climbs out of the Model Optimizer's folder")
                if flag == "--transformations_config":
                    continue
                raise UnsafeArgumentError(model.name, arg, "names the Model Optimizer's folder, which is not "
                                                           "installed")
            real = Path(os.path.realpath(path))
            if not any(real == root or root in real.parents for root in roots):
                raise UnsafeArgumentError(model.name, arg, f"{path} is not below the model's folders ({shown})"
                                          + (f" (it leads to {real})" if str(real) != path else ""))


def check_inputs_exist(args: list[str], dl_dir: str) -> None:
    """Fail before a conversion starts when an input file it is given is missing."""
    for arg in args:
        flag, _, value = arg.partition("=")
        if flag in INPUT_FLAGS and value and not Path(value).exists():
            hint = " (run the downloader first)" if value.startswith(dl_dir) else ""
            raise ConversionError(f"{flag}: {value} does not exist{hint}")


def command_line(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _set_model_info(ov_model: Any, model: Model) -> None:
    """Carry the descriptor's model_info into the IR's rt_info, as omz_converter does."""
    for key, value in model.model_info.items():
        ov_model.set_rt_info(value, ["model_info", key])


def remove_dead_staging(target: Path) -> None:
    """Remove staging folders that a killed run left (`.converting-<pid>-...` of a process that
    no longer exists); those of live runs are theirs."""
    fsio.remove_dead_staged(target, STAGING_PREFIX)


def save_ir(ov_model: Any, xml: Path, fp16: bool) -> None:
    """openvino.save_model, then a check of what it wrote: OpenVINO does not notice a failed
    write (a full disk, a file-size limit) and leaves a truncated IR behind as if all went well."""
    import openvino as ov

    try:
        ov.save_model(ov_model, str(xml), compress_to_fp16=fp16)
        problem = incomplete_ir(xml)
    except OSError as exc:
        raise fsio.fs_error(xml, exc, "save") from exc
    except Exception as exc:  # noqa: BLE001 - OpenVINO reports file errors as RuntimeError
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        problem = lines[-1] if lines else type(exc).__name__
    if problem is None:
        return
    try:
        free = shutil.disk_usage(xml.parent).free
    except OSError:
        free = -1
    # OpenVINO's message does not say why ("basic_ios::clear: iostream error"), and may have
    # removed what it wrote: compare what the weights need with what is free.
    need = weights_size(ov_model, fp16)
    if 0 <= free < need + (1 << 20) or "No space" in problem:
        raise DiskFullError(f"no space left on device while saving {xml} (the weights need {need} bytes, "
                            f"{free} are free)")
    raise ConversionError(f"saving {xml} failed: {problem}")


def weights_size(ov_model: Any, fp16: bool) -> int:
    """About what an IR's .bin takes: the constants' bytes (f32 ones halved for FP16)."""
    total = 0
    for op in ov_model.get_ops():
        if op.get_type_name() == "Constant":
            size = op.get_byte_size()
            total += size // 2 if fp16 and op.get_output_element_type(0).get_type_name() == "f32" else size
    return total


def incomplete_ir(xml: Path) -> str | None:
    """None when the IR on disk is whole: the .xml parses to its end and the .bin holds every
    byte its constants point to; otherwise what is wrong."""
    import xml.etree.ElementTree as ET

    end = 0
    try:
        for _, element in ET.iterparse(xml):
            if element.tag == "data" and "offset" in element.attrib and "size" in element.attrib:
                end = max(end, int(element.attrib["offset"]) + int(element.attrib["size"]))
    except (ET.ParseError, ValueError) as exc:
        return f"{xml.name} is not complete XML ({exc})"
    except OSError as exc:
        return f"{xml.name} cannot be read back ({exc.strerror or exc})"
    bin_path = xml.with_suffix(".bin")
    size = bin_path.stat().st_size if bin_path.exists() else 0
    if size < end:
        return f"{bin_path.name} has {size} bytes, its constants need {end}"
    return None




class Backend:
    """How one model's mo arguments become IR in a staging folder. Three of them, chosen once a
    run (``make_backend``): the Model Optimizer in-process, an external ``mo`` once per
    precision, and ovc (``openvino.convert_model``). Each says what it will do (also in a dry
    run) before it does it."""

    name = ""
    mo_dir: Path | None = None  # what $mo_dir / $mo_ext_dir read as
    version: str | None = None  # what goes into the conversion key; None: this backend's IR is not cached
    checks_its_saves = True  # every IR it writes was read back (save_ir); False: check after it

    def describe(self) -> str:
        """The backend as a user should see it (the converter's first line)."""
        raise NotImplementedError

    def arguments(self, extra: list[str]) -> list[str]:
        """The extra mo arguments, with whatever this backend needs added."""
        return extra

    def prepare(self, model: Model, args: list[str], variables: dict[str, str]) -> Any:
        """Check the arguments before any work (and return what write needs)."""
        return None

    def announce(self, conv: "Converter", model: Model, args: list[str], precisions: list[str], target: Path,
                 dry: str, prepared: Any) -> None:
        conv.say(f"{dry}Converting {model.name} to IR ({', '.join(precisions)}) with the {self.name} backend, "
                 "one conversion for all")
        conv.say("Conversion command: mo " + command_line(args))

    def write(self, conv: "Converter", model: Model, args: list[str], precisions: list[str], staging: Path,
              prepared: Any) -> None:
        """Write staging/<precision>/<name>.xml and .bin for every precision."""
        ov_model = self.convert(args, prepared, conv.options)
        _set_model_info(ov_model, model)
        for p in precisions:  # FP32 first: saving FP16 must not touch what FP32 saves
            save_ir(ov_model, staging / p / f"{model.name}.xml", fp16=(p == "FP16"))

    def convert(self, args: list[str], prepared: Any, options: "ConvertOptions") -> Any:
        """One conversion: an ov.Model that every precision is saved from."""
        raise NotImplementedError


class _Mo(Backend):
    name = "mo"

    def prepare(self, model: Model, args: list[str], variables: dict[str, str]) -> Any:
        # the descriptor's own arguments (not --add_mo_arg's: the user's) against the allow-list
        convert_mo.check_arguments(model.name, expand(model.mo_args or [], variables, model, "model_optimizer_args"))
        return None


class MoInProcess(_Mo):

    def __init__(self, options: "ConvertOptions") -> None:
        self.mo_dir = mo_package_dir(options.python, None)
        self.version = convert_mo.versions()

    def describe(self) -> str:
        return "mo (the Model Optimizer of openvino-dev 2024.6, in-process)"

    def arguments(self, extra: list[str]) -> list[str]:
        # mo compresses to FP16 unless told not to; the one conversion must keep FP32 (FP16 is
        # made from it when saving).
        return ["--compress_to_fp16=False", *extra]

    def convert(self, args: list[str], prepared: Any, options: "ConvertOptions") -> Any:
        return convert_mo.run_in_process(args, options.verbose)


class MoExternal(_Mo):
    checks_its_saves = False

    def __init__(self, options: "ConvertOptions") -> None:
        assert options.mo is not None
        self.mo, self.python = options.mo, options.python
        self.mo_dir = mo_package_dir(options.python, options.mo)

    def describe(self) -> str:
        return f"mo (external {self.mo}, once per precision)"

    def _command(self, conv: "Converter", model: Model, args: list[str], staging: Path, precision: str,
                 dry: str) -> list[str]:
        cmd = convert_mo.external_command(self.python, self.mo, args, staging / precision, precision)
        conv.say(f"{dry}Converting {model.name} to IR ({precision}) with the external mo")
        conv.say("Conversion command: " + command_line(cmd))
        return cmd

    def announce(self, conv: "Converter", model: Model, args: list[str], precisions: list[str], target: Path,
                 dry: str, prepared: Any) -> None:
        # Each run stages into a folder of its own, named only when it is created; a dry run
        # shows this placeholder where the real run shows that name.
        if dry:
            for p in precisions:
                self._command(conv, model, args, target / f"{STAGING_PREFIX}XXXXXXXX", p, dry)

    def write(self, conv: "Converter", model: Model, args: list[str], precisions: list[str], staging: Path,
              prepared: Any) -> None:
        for p in precisions:
            convert_mo.run_external(self._command(conv, model, args, staging, p, ""), model.name, p)


class Ovc(Backend):
    name = "ovc"

    def __init__(self, options: "ConvertOptions") -> None:
        self.version = openvino_version()
        if convert_mo.available():
            self.mo_dir = mo_package_dir(None, None)  # so that $mo_ext_dir reads as it does for mo

    def describe(self) -> str:
        return f"ovc (openvino.convert_model, OpenVINO {self.version})"

    def prepare(self, model: Model, args: list[str], variables: dict[str, str]) -> Any:
        from . import ovc as convert_ovc

        if model.conversion_to_onnx_args:  # PyTorch: straight into OpenVINO, no ONNX (convert/pytorch.py)
            from . import pytorch

            dl = Path(variables["dl_dir"])
            files = {str((dl / f.name).resolve()): (f.size, f.sha384) for f in model.files}
            return pytorch.prepare(model.name, expand(model.conversion_to_onnx_args, variables, model,
                                                      "conversion_to_onnx_args"),
                                   args, variables["mo_ext_dir"], files)
        return convert_ovc.plan(model.name, args, variables["mo_ext_dir"])  # refuses before any work

    def announce(self, conv: "Converter", model: Model, args: list[str], precisions: list[str], target: Path,
                 dry: str, prepared: Any) -> None:
        super().announce(conv, model, args, precisions, target, dry, prepared)
        conv.say("Conversion (ovc): " + prepared.describe())

    def convert(self, args: list[str], prepared: Any, options: "ConvertOptions") -> Any:
        from . import ovc as convert_ovc
        from . import pytorch

        if isinstance(prepared, pytorch.TorchPlan):
            return pytorch.export(prepared, options.log)
        return convert_ovc.convert(prepared)


def make_backend(options: "ConvertOptions") -> Backend:
    """The run's backend (choose_backend's choice), its extra checked now: before any work."""
    name = choose_backend(options.backend, options.mo)
    if name == "ovc":
        return Ovc(options)
    return MoExternal(options) if options.mo is not None else MoInProcess(options)


class Converter:
    """Converts models with one backend into ``OUTPUT/<model folder>/<precision>/``.

    Guarantees: one conversion serves every precision; a model folder receives all requested
    precisions or none (staged per run, swapped in under a lock on the folder), and an earlier
    IR survives a failed conversion; an argument the backend cannot honour is an error naming
    it, never dropped. ``run`` has the downloader's shape: failures are reported one line per
    model through the reporter (which the command line shapes) and returned by name.

    >>> failed = Converter(ConvertOptions(dl, ir, zoo, frozenset({"FP16"}))).run(models, jobs=2)  # doctest: +SKIP
    """

    def __init__(self, options: ConvertOptions, reporter: Reporter | None = None) -> None:
        disable_telemetry()  # before openvino is imported (see convert_mo.disable_telemetry)
        self.options = options
        self.reporter = reporter or Reporter("text", bars=False)
        self.say = self.reporter.say
        self.engine = make_backend(options)
        self.backend = self.engine.name
        self.ir_cache: Any = None
        self.keys: dict[str, str] = {}  # model name -> the key of its last conversion (mirror_ir reads it)
        if options.cache_dir is not None and not options.dry_run:
            from ..store.ir_cache import IrCache

            self.ir_cache = IrCache(options.cache_dir)

    def describe_backend(self) -> str:
        """The backend as a user should see it."""
        return self.engine.describe()

    def precisions_for(self, model: Model) -> list[str]:
        return [p for p in IR_PRECISIONS if p in model.precisions and p in self.options.precisions]

    def plan(self, model: Model, variables: dict[str, str]) -> tuple[list[str], list[str]]:
        """(mo arguments, precisions) for a model, or ([], []) when there is nothing to convert."""
        precisions = self.precisions_for(model)
        if model.mo_args is None or not precisions:
            return [], []
        framework = "onnx" if model.conversion_to_onnx_args else model.framework
        extra = self.engine.arguments(list(self.options.extra_mo_args))
        return mo_arguments(model, variables, framework, extra), precisions

    def convert(self, model: Model) -> None:
        """Convert one (leaf) model; raises ModelzooError on failure."""
        opts = self.options
        variables = template_variables(model, opts, self.engine.mo_dir)
        args, precisions = self.plan(model, variables)
        if not args:
            why = "no conversion defined (already IR)" if model.mo_args is None else "no requested precision"
            self.say(f"skipped {model.name}: {why}")
            return
        target = opts.output_dir / model.subdirectory
        dry = "(dry run) " if opts.dry_run else ""
        check_paths(model, variables)
        if model.conversion_to_onnx_args and self.engine.name == "mo":
            raise ConversionError("PyTorch models are converted by the ovc backend only (openvino-dev's "
                                  "pytorch_to_onnx.py fails on torch 2.9 and later): use --backend ovc")
        if model.conversion_to_onnx_args and not opts.dry_run:
            self._allowed(model)  # the export imports the model's code and unpickles its checkpoint
        prepared = self.engine.prepare(model, args, variables)
        self._pre_convert(model, variables, dry)
        # (the ovc backend exports PyTorch models itself, from the checkpoint: no ONNX file)
        needed = prepared.needed_files() if hasattr(prepared, "needed_files") else args
        self.engine.announce(self, model, args, precisions, target, dry, prepared)
        key, record = None, self._record(model, variables, args, precisions)
        if opts.dry_run:
            if record is not None:
                try:
                    check_inputs_exist(needed, variables["dl_dir"])
                except ConversionError:
                    self.say("Conversion key: unknown until the model's files are there")
                    return
                from ..store.ir_cache import key_of

                self.say(f"Conversion key: {key_of(record)}")
            return
        check_inputs_exist(needed, variables["dl_dir"])
        if record is not None:  # (the record is made either way: its key is known to the run, --locked compares it)
            from ..store.ir_cache import key_of

            self.keys[model.name] = key_of(record)
            if self.ir_cache is not None or opts.mirrors:
                key = self.keys[model.name]
                self.say(f"Conversion key: {key}")
        remove_dead_staging(target)
        with fsio.staged_dir(target, f"{STAGING_PREFIX}{os.getpid()}-") as staging:
            if key is None:
                self._write(model, args, precisions, staging, prepared)
                how = "wrote"
            else:
                how = obtain_ir(key, record, staging, ir_cache=self.ir_cache, mirrors=opts.mirrors,
                                model_dir=model.subdirectory.as_posix(), precisions=precisions,
                                check=lambda folder, parse: self._missing(model, precisions, folder, parse),
                                make=lambda folder: self._write(model, args, precisions, folder, prepared),
                                warn=lambda text: self.reporter.warning(f"{model.name}: {text}"),
                                fallback="converting locally", min_speed=opts.mirror_min_speed)
                how = "wrote" if how == MADE else how
            with fsio.folder_lock(target):
                fsio.swap_in([(staging / p, target / p) for p in precisions])
        for p in precisions:
            self.say(f"{how} {target / p / model.name}.xml and .bin")

    @staticmethod
    def _missing(model: Model, precisions: list[str], staging: Path, parse: bool) -> str | None:
        """Why staging does not hold this model's IR for every precision (None: it does);
        ``parse``: each IR also whole (an .xml that parses, a .bin with every byte it points to),
        for IR from a mirror (a cache entry was made from IR checked so when it was saved)."""
        for p in precisions:
            xml = staging / p / f"{model.name}.xml"
            problem = (incomplete_ir(xml) if parse else None) if xml.is_file() else f"no {p}/{xml.name}"
            if problem is not None:
                return problem
        return None

    def _record(self, model: Model, variables: dict[str, str], args: list[str], precisions: list[str]
                ) -> dict[str, Any] | None:
        # ovc knows a transformation config by its name below $mo_ext_dir (ovc.plan), not by the
        # bytes of openvino-dev's copy, which may or may not be installed: it is keyed so
        key_args = self.plan(model, {**variables, **UNEXPANDED_MO_DIRS})[0] if self.engine.name == "ovc" else args
        return self.key_record(model, key_args, precisions)

    def key_for(self, model: Model) -> str | None:
        """The conversion key of a (leaf) model's IR as ``convert`` works it out (None: it has
        none), here in this process: a conversion that ran in another one (an executor's) left no
        key behind."""
        from ..store.ir_cache import key_of

        variables = template_variables(model, self.options, self.engine.mo_dir)
        args, precisions = self.plan(model, variables)
        record = self._record(model, variables, args, precisions) if args else None
        return key_of(record) if record is not None else None

    def key_record(self, model: Model, args: list[str], precisions: list[str]) -> dict[str, Any] | None:
        """The record that keys this conversion's IR (ir_cache.py), or None when the IR depends
        on more than it can say: an external mo of unknown version, a pre-convert script, a
        conversion to ONNX first."""
        if self.engine.version is None or model.conversion_to_onnx_args or \
                (self.options.models_root / model.subdirectory / "pre-convert.py").exists():
            return None
        from ..store.ir_cache import conversion_record, known_downloads

        known = known_downloads(self.options.cache_dir, self.options.download_dir / model.subdirectory, model.files)
        return conversion_record(self.engine.name, self.engine.version, args, precisions, model.model_info, known)

    def _write(self, model: Model, args: list[str], precisions: list[str], staging: Path, prepared: Any) -> None:
        """Convert into staging and check that every precision's IR is there and whole."""
        log = os.environ.get("MODELZOO_CONVERSION_LOG")  # tests count real conversions with it
        if log:
            with open(log, "a") as f:
                f.write(f"{model.name} {os.getpid()}\n")
        self.engine.write(self, model, args, precisions, staging, prepared)
        for p in precisions:
            xml = staging / p / f"{model.name}.xml"
            if not xml.is_file():
                raise ConversionError(f"{model.name}: the conversion wrote no {p}/{model.name}.xml")
            problem = None if self.engine.checks_its_saves else incomplete_ir(xml)
            if problem:
                raise ConversionError(f"{model.name}: the Model Optimizer wrote an incomplete {p} IR: {problem}")

    def _run_script(self, what: str, cmd: list[str], dry: str) -> None:
        self.say(f"{dry}{what} command: {command_line(cmd)}")
        if dry:
            return
        result = convert_mo.run_command(cmd, what.lower(), stdin=subprocess.DEVNULL, env=child_env())
        if result.returncode != 0:
            raise ConversionError(f"{what} failed: {command_line(cmd)}")

    def _allowed(self, model: Model) -> None:
        """Zoo code runs only when the user allowed it (the CLI decides before any model; this
        is the second line for every other caller)."""
        if not self.options.allow_zoo_code:
            raise ZooCodeError(f"{model.name}: would run the zoo's code ("
                               f"{', '.join(zoo_code(model, self.options.models_root))}): not allowed")

    def _pre_convert(self, model: Model, variables: dict[str, str], dry: str) -> None:
        script = Path(variables["config_dir"]) / "pre-convert.py"
        if script.exists():
            if not dry:
                self._allowed(model)
            self._run_script("Pre-convert", [str(self.options.python), "--", str(script), "--",
                                             variables["dl_dir"], variables["conv_dir"]], dry)

    def run(self, models: list[Model], jobs: int = 1, executor: Executor | None = None,
            on_done: Callable[[Model, bool], None] | None = None) -> list[str]:
        """Convert every model (a composite's stages with it); returns the names of those that
        failed (the names asked for: a composite whose stage failed), each failure reported in
        one line. One model here, in this process, or each model (with its stages) a job of
        ``executor`` (by default up to ``jobs`` local processes, one fresh process a model even
        at -j 1): a conversion is CPU- and memory-heavy, a crash in native code must fail only
        its own model, and OpenVINO names the nodes it makes by counters of the process, so a
        model's XML would otherwise depend on what the process converted before it. ``on_done`` is
        told each model as soon as it ends (here, in the caller's process: a cluster run's
        records are written as its jobs end, so a lost driver loses only the jobs still running).

        Raises:
            Interrupted: on Ctrl-C, after the staging folders are removed.
        """
        groups = [m.leaf_models() for m in models]
        failed: set[str] = set()
        if executor is None and (self.options.dry_run or len(groups) <= 1):
            for model, group in zip(models, groups):
                failed.update(self._convert_here(group))
                if on_done is not None:
                    on_done(model, not any(leaf.name in failed for leaf in group))
        else:
            executor = executor or LocalProcesses(jobs)
            of = {}
            work = []
            for model, group in zip(models, groups):
                job = Job(", ".join(leaf.name for leaf in group), convert_group,
                          (self.options, self.reporter.line, group))
                of[job.name] = model
                work.append(job)
            with JobBar(len(work), "converting", self.reporter.say, self.reporter.emit) as bar:
                for job, result, lost in executor.run(work):
                    if lost is not None:
                        self.reporter.failure(job.name, RuntimeError(f"the conversion {lost}"))
                        failed.update(leaf.name for leaf in job.args[2])
                    else:
                        names, keys = result
                        failed.update(names)
                        self.keys.update(keys)  # (made in the job's process: --locked and sync --ir read them here)
                    ok = not any(leaf.name in failed for leaf in job.args[2])
                    bar.update(of[job.name].name, ok)
                    if on_done is not None:
                        on_done(of[job.name], ok)
        return [m.name for m, group in zip(models, groups) if any(leaf.name in failed for leaf in group)]

    def _convert_here(self, leaves: list[Model]) -> list[str]:
        failed = []
        for model in leaves:
            try:
                self.convert(model)
            except ModelzooError as exc:
                self.reporter.failure(model.name, exc)
                failed.append(model.name)
        return failed


def convert_group(options: ConvertOptions, line: Callable[[str, str], str], group: list[Model]
                  ) -> tuple[list[str], dict[str, str]]:
    """A job: convert one model (with its stages) in a fresh Converter; the names that failed and
    the conversion keys it worked out (model name -> key), which the parent's ``keys`` takes."""
    disable_telemetry()
    converter = Converter(options, Reporter("text", bars=False, line=line))
    return converter._convert_here(group), converter.keys
