"""INT8 IR with NNCF's post-training quantization, as omz_quantizer made it with POT.

For each model: its FP32 IR (either backend's) is read and checked (inputs as the model's
accuracy-check.yml preprocesses, not already INT8); calibration pictures are read and
preprocessed by the accuracy tool's own code; the detector's post-processing (everything after
the last convolution or matrix product: box decoding, the ovc IR's Loop with NMS, the mo IR's
DetectionOutput) is kept in floating point without the user naming it; then `nncf.quantize`
(or, with a budget, `nncf.quantize_with_accuracy_control` validated by the accuracy pipeline,
and the drop measured again afterwards by the accuracy tool: a budget missed is an error and
nothing is written). Every requested precision is
saved into one staging folder and swapped in at once, with a quantization.json beside each.
Nothing is created under the output folder before the last step.

With a cache (``--cache_dir``, ir_cache.py) or mirrors (``--mirror``, mirror_ir.py), the
quantization's key (``ir_cache.quantization_record``) is worked out first, without importing
NNCF or OpenVINO (their versions come from their installed metadata): a cache entry or a mirror's
IR for that key, verified, is put in place and NNCF is not run; otherwise the IR is quantized and
added to the cache. Runs with one key quantize once (the key's lock).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .. import fsio
from ..descriptor import Model
from ..events import Reporter
from ..executors import Executor, Job, JobBar, LocalProcesses
from ..errors import (AccuracyBudgetError, InputChangedError, IRMismatchError, MissingExtraError, ModelzooError,
                      QuantizationError)
from ..mirror.ir_share import MADE, obtain_ir
from ..store.ir_cache import file_sha384, files_digest, quantization_record
from .pipeline import incomplete_ir, openvino_version, save_ir

if TYPE_CHECKING:  # (numpy and OpenVINO behind these: imported only when quantizing)
    from ..accuracy.config import AccuracyConfig
    from ..accuracy.dataset import Dataset
    from ..accuracy.evaluate import Network

INT8_PRECISIONS = ("FP16-INT8", "FP32-INT8")
PRESETS = ("performance", "mixed")
STAGING_PREFIX = ".quantizing-"
_COMPUTE_TYPES = {"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData"}


@dataclass
class Options:
    ir_dir: Path
    output_dir: Path
    precisions: list[str]
    subset: int = 300
    max_drop: float | None = None
    preset: str = "performance"
    ignored_scope: list[str] = field(default_factory=list)
    device: str = "CPU"
    max_iterations: int = 20
    dry_run: bool = False
    cache_dir: Path | None = None  # the IR cache (ir_cache.py): quantized IR by key, beside converted IR
    mirrors: list[str] = field(default_factory=list)  # mirrors with IR (mirror/ir_share.py), tried before NNCF
    mirror_min_speed: int | None = None  # bytes/s below which a mirror's IR is given up (None: ir_share's default)


@dataclass
class Outcome:
    """What one model's quantization did (also what quantization.json records)."""

    seconds: float
    calibration_images: int
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    metric: str | None = None
    written: list[Path] = field(default_factory=list)
    how: str = "wrote"  # or "cached", "fetched from the mirror URL:"

    @property
    def drop(self) -> float | None:
        if self.fp32_accuracy is None or self.int8_accuracy is None:
            return None
        return self.fp32_accuracy - self.int8_accuracy


def postprocessing_nodes(model: Any) -> list[str]:
    """Friendly names of the nodes that feed no convolution or matrix product: the detector's
    output stage, which must stay in floating point (NMS and box arithmetic are not
    quantization-friendly, and POT kept them in float too)."""
    feeds_compute: set[str] = set()
    stack = [op for op in model.get_ops() if op.get_type_name() in _COMPUTE_TYPES]
    while stack:
        op = stack.pop()
        name = op.get_friendly_name()
        if name in feeds_compute:
            continue
        feeds_compute.add(name)
        stack.extend(value.get_node() for value in op.input_values())
    skip = {"Parameter", "Result", "Constant"}
    return sorted(op.get_friendly_name() for op in model.get_ops()
                  if op.get_friendly_name() not in feeds_compute and op.get_type_name() not in skip)


def calibration_files(calibration: "Dataset") -> tuple[list[Path], Path | None]:
    """The calibration pictures in the order NNCF gets them, and the folder their names are
    relative to in the digest (so where the data set lives does not matter)."""
    paths = [s.path for s in calibration.samples]
    return paths, (paths[0].parent if paths and all(p.parent == paths[0].parent for p in paths) else None)


def annotations_sha384(calibration: "Dataset") -> str:
    """What the calibration's annotations hold (Dataset.annotations_sha384: the annotation file's
    SHA-384, or for a VOC or segmentation set the digest of its list and each XML or mask)."""
    return calibration.annotations_sha384()


@dataclass(frozen=True)
class CalibrationRef:
    """What a quantization job in another process, or on another node (through Ray's object
    store), is given of its data: neither the pictures nor the annotations, but where the data
    set is read from (a folder every node sees) and the SHA-384 of every file the calibration
    reads, which the job checks before it uses any (``open_calibration``)."""

    origin: tuple  # resolve's arguments (Dataset.origin)
    subset: int
    files: tuple[tuple[str, str], ...]  # (absolute path, SHA-384): the pictures in NNCF's order, then annotations


def _calibration_paths(dataset: "Dataset", subset: int) -> list[str]:
    """Every file a quantization on ``subset`` pictures reads of the data set: the pictures, then
    the annotation file (a VOC set's XML files, a segmentation set's masks of those pictures)."""
    samples = dataset.subset(subset).samples
    paths = [s.path for s in samples]
    if dataset.annotations_path is not None:
        paths += [dataset.annotations_path, *dataset.annotation_parts]
    if dataset.masks is not None:
        paths += [dataset.masks[s.image_id] for s in samples if s.image_id in dataset.masks]
    return [str(Path(p).absolute()) for p in paths]


def calibration_ref(dataset: "Dataset", subset: int) -> CalibrationRef:
    """The driver's side: the data set's origin and each file's SHA-384, read here once."""
    assert dataset.origin is not None, "a data set read by accuracy.dataset.resolve"
    return CalibrationRef(dataset.origin, subset,
                          tuple((p, file_sha384(Path(p))) for p in _calibration_paths(dataset, subset)))


def open_calibration(ref: CalibrationRef) -> tuple["Dataset", dict[str, str]]:
    """The job's side: the data set read again from where the driver read it, and every file the
    calibration reads checked against the driver's SHA-384 (returned, by path, so that the key
    does not read them again).

    Raises:
        DatasetError: the data set cannot be read here.
        InputChangedError: another list of files, or a file whose SHA-384 differs (named).
    """
    from ..accuracy.dataset import resolve

    dataset_dir, images, annotations, need_annotations, kind = ref.origin
    dataset = resolve(dataset_dir, images, annotations, need_annotations=need_annotations, kind=kind)
    paths = _calibration_paths(dataset, ref.subset)
    want = dict(ref.files)
    if paths != [p for p, _ in ref.files]:
        other = next((p for p in paths if p not in want), None) or next(p for p, _ in ref.files if p not in paths)
        raise InputChangedError(f"{other}: the calibration files here are not the ones the driver read "
                                f"({len(paths)} files here, {len(ref.files)} there)")
    for path, sha in ref.files:
        try:
            got = file_sha384(Path(path))
        except OSError as exc:
            raise InputChangedError(f"{path}: cannot be read here ({exc.strerror or exc})") from None
        if got != sha:
            raise InputChangedError(f"{path}: not the file the driver read (SHA-384 differs)")
    return dataset, want


def nncf_version() -> str:
    """NNCF's version from the metadata installed beside the package ``import nncf`` would load
    (importing it takes seconds and imports OpenVINO); imported only without such metadata."""
    from .mo import dist_version

    spec = importlib.util.find_spec("nncf")
    version = None
    if spec is not None and spec.origin:
        version = dist_version("nncf", [str(Path(spec.origin).parent.parent)])
    if version is None:
        try:
            import nncf
        except ImportError as exc:
            raise MissingExtraError(f"quantization needs NNCF ({exc}): pip install 'modelzoo[convert,quantize]'") \
                from exc
        version = nncf.__version__
    return version


def _quiet_nncf() -> None:
    logging.getLogger("nncf").setLevel(logging.ERROR)


def classifier_head(model: Any) -> list[str]:
    """Friendly names of a classifier's final matrix products (a MatMul no other compute layer
    follows), when the network has other compute layers to quantize. Kept in float: with NNCF's
    defaults the last fully connected layer of the small classifier lost 8.3 top-5 points of
    41.7 on 24 pictures (opencv-1001 case; docs/compatibility.md), and it is a small share of
    the work; a network whose only compute layer is that MatMul keeps it quantized (else nothing
    would be INT8)."""
    compute = [op for op in model.get_ops() if op.get_type_name() in _COMPUTE_TYPES]

    def feeds_compute(op: Any) -> bool:
        stack, seen = [op], set()
        while stack:
            node = stack.pop()
            for output in node.outputs():
                for target in output.get_target_inputs():
                    nxt = target.get_node()
                    if nxt.get_friendly_name() in seen:
                        continue
                    seen.add(nxt.get_friendly_name())
                    if nxt.get_type_name() in _COMPUTE_TYPES:
                        return True
                    stack.append(nxt)
        return False

    heads = [op.get_friendly_name() for op in compute if op.get_type_name() == "MatMul" and not feeds_compute(op)]
    return sorted(heads) if len(heads) < len(compute) else []


def _ignored_scope(model: Any, user: list[str], keep: tuple[str, ...] | list[str] = ()) -> Any:
    import nncf

    names = {op.get_friendly_name() for op in model.get_ops()}
    unknown = [n for n in user if n not in names]
    if unknown:
        raise QuantizationError(f"--ignored_scope {unknown[0]}: the IR has no node of that name")
    return nncf.IgnoredScope(names=sorted(set(postprocessing_nodes(model)) | set(user) | set(keep)), validate=False)


def _check_input(xml: Path, config: "AccuracyConfig", core: Any) -> "Network":
    from ..accuracy.evaluate import is_int8, read_network

    network = read_network(xml, config, core)
    if is_int8(network.model):
        raise IRMismatchError(f"{xml}: already INT8 (it holds FakeQuantize operations or 8-bit weights); "
                              "quantize an FP32 IR")
    return network


class Quantizer:
    """Quantizes models into OUTPUT/<model folder>/<precision>/ (omz_quantizer's layout), each
    calibrated on ``dataset`` with the accuracy-check.yml beside its model.yml in ``models_root``."""

    def __init__(self, options: Options, reporter: Reporter | None = None, *, dataset: "Dataset | None" = None,
                 models_root: Path | None = None) -> None:
        self.options = options
        self.reporter = reporter or Reporter()
        self.say = self.reporter.say
        self.warn = self.reporter.warning
        self.dataset = dataset
        self.models_root = models_root
        self.keys: dict[str, str] = {}  # model name -> the key of its last quantization (sync --ir reads it)
        self.errors: dict[str, ModelzooError] = {}  # model name -> why it failed (run)
        self._input_key: str | None = None  # the FP32 IR's conversion key, when the IR cache knows it
        self._input_sha384: dict[str, str] = {}  # the FP32 .xml's and .bin's SHA-384 (by path), hashed once for the key
        self.known_sha384: dict[str, str] = {}  # calibration files' SHA-384 (by path) a job checked already
        self.ir_cache: Any = None
        if options.cache_dir is not None and not options.dry_run:
            from ..store.ir_cache import IrCache

            self.ir_cache = IrCache(options.cache_dir)

    def run(self, models: list[Model], jobs: int = 1, executor: Executor | None = None,
            on_done: Callable[[Model, bool], None] | None = None) -> list[str]:
        """Quantize every model: one at a time here (NNCF and OpenVINO use every core for one), or
        each a job of ``executor`` (by default up to ``jobs`` local processes);
        returns the names of those that failed, each reported in one line (``errors`` keeps why,
        so a command line quantizing one model can exit with that error's code). ``on_done`` is
        told each model as soon as it ends, here (a cluster run's records).

        Raises:
            KeyboardInterrupt: on Ctrl-C, after the staging folders are removed.
        """
        assert self.dataset is not None and self.models_root is not None, "run needs the dataset and the zoo"
        failed = []
        if executor is None and jobs == 1:
            for model in models:
                try:
                    self.quantize(model, self.models_root, self.dataset)
                except ModelzooError as exc:
                    self.errors[model.name] = exc
                    self.reporter.error(str(exc))
                    failed.append(model.name)
                if on_done is not None:
                    on_done(model, model.name not in self.errors)
            return failed
        work = self.jobs(models)
        of = {m.name: m for m in models}
        with JobBar(len(work), "quantizing", self.reporter.say, self.reporter.emit) as bar:
            for job, result, lost in (executor or LocalProcesses(jobs)).run(work):
                error = None
                if lost is not None:
                    error = ModelzooError(f"{job.name}: the quantization {lost}")
                    self.reporter.error(str(error))
                else:
                    key, said = result
                    if key is not None:
                        self.keys[job.name] = key
                    if said is not None:  # (its line said by its process; an exception may not unpickle)
                        error = ModelzooError(said[0])
                        error.exit_code = said[1]
                if error is not None:
                    self.errors[job.name] = error
                    failed.append(job.name)
                bar.update(job.name, error is None)
                if on_done is not None:
                    on_done(of[job.name], error is None)
        return failed

    def jobs(self, models: list[Model]) -> list[Job]:
        """One job a model. Its data goes as a CalibrationRef (paths and SHA-384, checked where the
        job runs), never as pictures or annotations, when the data set says where it was read."""
        assert self.dataset is not None and self.models_root is not None
        data: Any = (calibration_ref(self.dataset, self.options.subset) if self.dataset.origin is not None
                     else self.dataset)
        return [Job(m.name, quantize_job, (self.options, self.reporter.line, data, self.models_root, m))
                for m in models]

    def paths(self, model: Model, models_root: Path) -> tuple[Path, Path]:
        """(the model's accuracy-check.yml, its FP32 IR's .xml)."""
        yml = models_root / model.subdirectory / "accuracy-check.yml"
        if not yml.is_file():
            raise ModelzooError(f"{model.name}: no accuracy-check.yml beside its model.yml ({yml}): "
                                "it says how to preprocess calibration pictures")
        return yml, self.options.ir_dir / model.subdirectory / "FP32" / f"{model.name}.xml"

    def plan(self, model: Model, models_root: Path) -> tuple["AccuracyConfig", Path]:
        from ..accuracy.config import load_accuracy_config

        yml, xml = self.paths(model, models_root)
        return load_accuracy_config(yml, model.name), xml

    def key_record(self, model: Model, yml: Path, xml: Path, dataset: "Dataset",
                   calibration: "Dataset") -> dict[str, Any]:
        """The record that keys this quantization (ir_cache.quantization_record). Nothing is
        imported: the FP32 IR's files are hashed (or, when they are links to verified blobs of
        the IR cache, known without a read), so are the calibration pictures and the yml."""
        opts = self.options
        folder = xml.parent.parent
        rels = [f"FP32/{xml.name}", f"FP32/{xml.with_suffix('.bin').name}"]
        known: dict[str, str] = {}
        self._input_key = None
        if self.ir_cache is not None:
            known, self._input_key = self.ir_cache.known_files(folder, rels)
        # each file hashed once (unless known): the key's digest and quantization.json use these
        self._input_sha384 = {str(folder / r): known.get(str(folder / r)) or file_sha384(folder / r) for r in rels}
        paths, root = calibration_files(calibration)
        annotated = dataset.annotated
        options = {"preset": opts.preset, "subset": opts.subset, "max_drop": opts.max_drop,
                   "max_iterations": opts.max_iterations if opts.max_drop is not None else None,
                   "ignored_scope": sorted(set(opts.ignored_scope)), "device": opts.device if annotated else None}
        return quantization_record(
            model.name, files_digest([folder / r for r in rels], folder, self._input_sha384), openvino_version(),
            nncf_version(),
            file_sha384(yml), options, files_digest(paths, root, self.known_sha384),
            annotations_sha384(calibration) if annotated and calibration.annotations_path else None,
            self.options.precisions)

    def quantize(self, model: Model, models_root: Path, dataset: "Dataset") -> Outcome:
        """One model: the IR of its quantization's key from the IR cache or a mirror, else NNCF here.

        Raises:
            ModelzooError: the model's IR, data, NNCF or a --max_drop that cannot be met.
        """
        opts = self.options
        yml, xml = self.paths(model, models_root)
        calibration = dataset.subset(opts.subset)
        target = opts.output_dir / model.subdirectory
        dry = "(dry run) " if opts.dry_run else ""
        key = record = None
        self._input_key, self._input_sha384 = None, {}
        if xml.is_file() and xml.with_suffix(".bin").is_file():
            from ..store.ir_cache import key_of

            record = self.key_record(model, yml, xml, dataset, calibration)
            key = self.keys[model.name] = key_of(record)
            if opts.dry_run or self.ir_cache is not None or opts.mirrors:
                self.say(f"Conversion key: {key}")
        elif opts.dry_run:
            self.say("Conversion key: unknown until the FP32 IR is there")
        if opts.dry_run:
            self.plan(model, models_root)  # the yml read and checked, as a real run would
            self.say(f"{dry}Quantizing {model.name} ({xml}) to {', '.join(opts.precisions)} in {target}: "
                     f"{len(calibration.samples)} calibration images, preset {opts.preset}")
            return Outcome(0.0, len(calibration.samples), how="(dry run)")
        made: list[Outcome] = []

        def make(staging: Path) -> None:
            made.append(self._quantize(model, models_root, dataset, calibration, key, record, staging))

        fsio.remove_dead_staged(target, STAGING_PREFIX)
        with fsio.staged_dir(target, f"{STAGING_PREFIX}{os.getpid()}-") as staging:
            if key is not None and record is not None and (self.ir_cache is not None or opts.mirrors):
                how = obtain_ir(key, record, staging, ir_cache=self.ir_cache, mirrors=opts.mirrors,
                                model_dir=model.subdirectory.as_posix(), precisions=opts.precisions,
                                check=lambda folder, parse: self._complete(model, folder, parse), make=make,
                                warn=lambda text: self.warn(f"{model.name}: {text}"), fallback="quantizing locally",
                                min_speed=opts.mirror_min_speed)
            else:
                make(staging)
                how = MADE
            if how != MADE:
                return self._reused(model, target, staging, calibration, how)
            return self._placed(model, target, staging, made[0])

    def _complete(self, model: Model, staging: Path, parse: bool) -> str | None:
        """None when staging holds every precision's IR and its quantization.json; ``parse``:
        each IR also whole (an .xml that parses, a .bin with every byte it points to), for IR
        from a mirror (a cache entry was made from IR that was checked so when it was saved)."""
        for p in self.options.precisions:
            xml = staging / p / f"{model.name}.xml"
            if not xml.is_file() or not (staging / p / "quantization.json").is_file():
                return f"no {p}/{xml.name} with its quantization.json"
            problem = incomplete_ir(xml) if parse else None
            if problem is not None:
                return problem
        return None

    def _reused(self, model: Model, target: Path, staging: Path, calibration: "Dataset", how: str) -> Outcome:
        with fsio.folder_lock(target):
            fsio.swap_in([(staging / p, target / p) for p in self.options.precisions])
        outcome = Outcome(0.0, len(calibration.samples), how=how)
        for precision in self.options.precisions:
            path = target / precision / f"{model.name}.xml"
            outcome.written.append(path)
            self.say(f"{how} {path} and .bin ({precision}), quantization.json beside them")
        try:  # what the run that made it measured, when it did (the key covers the annotations)
            made = json.loads((target / self.options.precisions[0] / "quantization.json").read_text())
            acc = made.get("accuracy") or None
            if acc:
                outcome.metric, outcome.fp32_accuracy, outcome.int8_accuracy = acc["metric"], acc["fp32"], acc["int8"]
                self.say(f"{model.name}: {outcome.metric} FP32 {100 * acc['fp32']:.2f} %, INT8 {100 * acc['int8']:.2f} "
                         f"%, drop {100 * acc['drop']:.2f} points (as measured when it was quantized)")
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return outcome

    def _quantize(self, model: Model, models_root: Path, dataset: "Dataset", calibration: "Dataset",
                  key: str | None, record: dict[str, Any] | None, staging: Path) -> Outcome:
        """NNCF on the FP32 IR, the accuracy measured (and the budget checked) when the data set
        is annotated, the IR of every precision and its quantization.json written into staging."""
        import nncf
        import openvino as ov

        from ..accuracy.dataset import read_image
        from ..accuracy.preprocessing import preprocess

        _quiet_nncf()
        opts = self.options
        config, xml = self.plan(model, models_root)
        core = ov.Core()
        network = _check_input(xml, config, core)
        for sample in calibration.samples:  # every picture readable before NNCF starts
            read_image(sample.path, config.reader)
        started = time.monotonic()

        def transform(sample: Any) -> Any:
            picture, geometry = preprocess(read_image(sample.path, config.reader), config,  # as the evaluation reads it
                                           sample.keypoints, (network.height, network.width))
            return network.inputs(picture, geometry) if network.feeds else network.tensor(picture)

        calibration_set = nncf.Dataset(calibration.samples, transform)
        head = classifier_head(network.model) if config.adapter == "classification" else []
        ignored = _ignored_scope(network.model, opts.ignored_scope, head)
        preset = nncf.QuantizationPreset.MIXED if opts.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
        outcome = Outcome(0.0, len(calibration.samples))
        self.say(f"Quantizing {model.name} ({xml}) with NNCF {nncf.__version__}: {len(calibration.samples)} "
                 f"calibration images, preset {opts.preset}, {len(ignored.names)} post-processing nodes kept in float"
                 + (f" (with the classifier's last MatMul {', '.join(head)})" if head else ""))
        log = os.environ.get("MODELZOO_QUANTIZATION_LOG")  # tests count real NNCF runs with it
        if log:
            with open(log, "a") as f:
                f.write(f"{model.name} {os.getpid()}\n")
        try:
            if opts.max_drop is not None and opts.max_iterations > 0:
                quantized = self._with_budget(network, config, calibration, calibration_set, ignored, preset)
            else:
                quantized = nncf.quantize(network.model, calibration_set, subset_size=len(calibration.samples),
                                          preset=preset, ignored_scope=ignored)
        except (KeyboardInterrupt, ModelzooError):
            raise
        except Exception as exc:  # noqa: BLE001 - NNCF's and OpenVINO's failures, one line
            text = str(exc).strip().splitlines()
            raise QuantizationError(f"{model.name}: NNCF failed: {type(exc).__name__}: "
                                    f"{text[-1] if text else ''}") from exc
        outcome.seconds = time.monotonic() - started
        if dataset.annotated:
            self._measure(model, config, network, quantized, calibration, outcome)
        self._write(model, xml, quantized, calibration, outcome, staging, key, record)
        return outcome

    def _validation_fn(self, config: "AccuracyConfig", network: "Network", dataset: "Dataset") -> Callable:
        """NNCF's validation: the accuracy tool's own prediction routine and scorers on the
        samples NNCF hands over, so a budget is kept as the tool measures it."""
        from ..accuracy.evaluate import predict, score

        dataset = dataset.for_config(config)
        truth = dataset.ground_truth(config.label_offset, config.full_label_map)

        def validate(compiled: Any, samples: Any) -> tuple[float, None]:
            chosen = list(samples)
            detections, gts = predict(config, network, compiled, chosen, truth)
            value = score(config, dataset.with_samples(chosen), detections, gts)[0].value
            return (0.0 if math.isnan(value) else value), None

        return validate

    def _with_budget(self, network: "Network", config: "AccuracyConfig", calibration: "Dataset", calibration_set: Any,
                     ignored: Any, preset: Any) -> Any:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

        assert self.options.max_drop is not None
        validation = nncf.Dataset(calibration.samples)
        return nncf.quantize_with_accuracy_control(
            network.model, calibration_set, validation, self._validation_fn(config, network, calibration),
            max_drop=self.options.max_drop, drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calibration.samples), preset=preset, ignored_scope=ignored,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=self.options.max_iterations,
                ranking_subset_size=min(len(calibration.samples), 30)))

    def _measure(self, model: Model, config: "AccuracyConfig", network: "Network", quantized: Any,
                 dataset: "Dataset", outcome: Outcome) -> None:
        """FP32 and INT8 accuracy by the accuracy tool, on the calibration images' annotations."""
        import dataclasses

        from ..accuracy.evaluate import compile_network, is_int8, measure

        fp32 = measure(Path(), config, dataset, self.options.device, network=network)
        int8_net = dataclasses.replace(network, model=quantized)  # (the same inputs: every picture, image_info...)
        int8 = measure(Path(), config, dataset, self.options.device, network=int8_net,
                       compiled=compile_network(int8_net, self.options.device))
        outcome.metric = fp32.results[0].metric
        outcome.fp32_accuracy, outcome.int8_accuracy = fp32.results[0].value, int8.results[0].value
        self.say(f"{model.name}: {outcome.metric} FP32 {100 * outcome.fp32_accuracy:.2f} %, INT8 "
                 f"{100 * outcome.int8_accuracy:.2f} %, drop {100 * (outcome.drop or 0):.2f} points "
                 f"({len(dataset.samples)} images)")
        budget = self.options.max_drop
        if budget is not None and not is_int8(quantized):
            raise AccuracyBudgetError(f"{model.name}: --max_drop {budget:g} cannot be met with any operation in "
                                      "INT8 (every one had to go back to float); nothing written")
        if budget is not None and outcome.drop is not None and outcome.drop > budget:
            raise AccuracyBudgetError(
                f"{model.name}: --max_drop {budget:g} cannot be met: the INT8 IR loses {outcome.drop:.4f} "
                f"({100 * outcome.fp32_accuracy:.2f} % -> {100 * outcome.int8_accuracy:.2f} %); nothing written")

    def _record(self, model: Model, xml: Path, precision: str, calibration: "Dataset", outcome: Outcome,
                key: str | None, calibration_sha384: str) -> dict:
        import nncf
        import openvino as ov

        opts = self.options

        def sha384(path: Path) -> str:  # (hashed for the key already, in a run that has one)
            return self._input_sha384.get(str(path)) or file_sha384(path)

        return {
            "model": model.name, "precision": precision, "nncf": nncf.__version__,
            "openvino": ov.get_version(), "key": key,
            "options": {"subset": opts.subset, "max_drop": opts.max_drop, "max_iterations": opts.max_iterations,
                        "preset": opts.preset,
                        "ignored_scope": opts.ignored_scope, "device": opts.device},
            "input_ir": {"xml": str(xml), "xml_sha384": sha384(xml), "bin_sha384": sha384(xml.with_suffix(".bin")),
                         "conversion_key": self._input_key},
            "calibration": {"images": len(calibration.samples), "files_sha384": calibration_sha384,
                            "annotations": str(calibration.annotations_path) if calibration.annotations_path else None},
            "accuracy": None if outcome.fp32_accuracy is None else {
                "metric": outcome.metric, "fp32": outcome.fp32_accuracy, "int8": outcome.int8_accuracy,
                "drop": outcome.drop},
            "seconds": round(outcome.seconds, 2),
        }

    def _write(self, model: Model, xml: Path, quantized: Any, calibration: "Dataset", outcome: Outcome,
               staging: Path, key: str | None = None, record: dict[str, Any] | None = None) -> None:
        # the key's record has the calibration files' digest already: the pictures are not read again
        digest = (record["quantization"]["calibration"] if record is not None
                  else files_digest(*calibration_files(calibration)))
        for precision in self.options.precisions:
            (staging / precision).mkdir()
            save_ir(quantized, staging / precision / f"{model.name}.xml", fp16=precision.startswith("FP16"))
            record_p = self._record(model, xml, precision, calibration, outcome, key, digest)
            fsio.write_bytes(staging / precision / "quantization.json", (json.dumps(record_p, indent=1) + "\n").encode())

    def _placed(self, model: Model, target: Path, staging: Path, outcome: Outcome) -> Outcome:
        """The IR this run made, moved from staging into the output, all precisions or none."""
        with fsio.folder_lock(target):
            fsio.swap_in([(staging / p, target / p) for p in self.options.precisions])
        for precision in self.options.precisions:
            path = target / precision / f"{model.name}.xml"
            outcome.written.append(path)
            self.say(f"wrote {path} and .bin ({precision}), quantization.json beside them")
        return outcome


def quantize_job(options: Options, line: Callable[[str, str], str], data: "CalibrationRef | Dataset",
                 models_root: Path, model: Model) -> tuple[str | None, tuple[str, int] | None]:
    """A job: one model quantized by a fresh Quantizer (its lines said here), its data read here
    from a CalibrationRef (checked) or given whole; (its key, its error as (line, exit code))."""
    from .mo import disable_telemetry

    disable_telemetry()
    reporter = Reporter("text", bars=False, line=line)
    known: dict[str, str] = {}
    if isinstance(data, CalibrationRef):
        try:
            dataset, known = open_calibration(data)
        except ModelzooError as exc:
            reporter.error(f"{model.name}: {exc}")
            return None, (f"{model.name}: {exc}", exc.exit_code)
    else:
        dataset = data
    quantizer = Quantizer(options, reporter, dataset=dataset, models_root=models_root)
    quantizer.known_sha384 = known
    failed = quantizer.run([model])
    error = quantizer.errors.get(model.name) if failed else None
    return quantizer.keys.get(model.name), (None if error is None else (str(error), error.exit_code))
