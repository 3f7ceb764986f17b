"""The accuracy pipeline: every selected model's IR, at every precision there is, measured on one
data set as its card does; the records, the table's rows and the references missed.

The pipelines' shape (``run(models, jobs) -> failures``, one Reporter); the command line only
parses, checks its outputs, and prints what this measured.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..descriptor import Model
from ..errors import ModelzooError
from ..events import Reporter
from ..executors import Executor, Job, JobBar, LocalProcesses
from ..shards import split
from ..verify import file_digest
from .config import AccuracyConfig, load_accuracy_config
from .dataset import Dataset
from .evaluate import (Network, Run, check_dataset, check_inputs, compile_network, measure, openvino_reason, predict,
                       read_network)

PRECISION_ORDER = ("FP32", "FP16", "FP32-INT8", "FP16-INT8", "FP32-INT1", "FP16-INT1")


class Task(NamedTuple):
    """One measurement: a model's IR at one precision, read and checked against its config."""

    model: Model
    config: AccuracyConfig
    precision: str
    xml: Path
    network: Network


class Part(NamedTuple):
    """What one job measured: one IR on one shard of the pictures."""

    detections: dict[int, Any]
    truth: dict[int, Any]  # the ground truth as the post-processing left it
    images: int
    seconds: float


class Shards:
    """How a sharded run splits its pictures (``count`` shards, by image id) and what it keeps of
    them: ``done(k, samples)`` gives back a shard measured before (every IR's Part) or None;
    ``keep(k, samples, parts)`` is told each shard once every IR of it is measured (the command
    line writes its run record there). This one keeps nothing."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)

    def done(self, index: int, samples: list[Any]) -> dict[tuple[str, str], Part] | None:
        return None

    def keep(self, index: int, samples: list[Any], parts: dict[tuple[str, str], Part]) -> None:
        return None


class Evaluator:
    """Measures IR under ``ir_dir`` (the converter's or quantizer's -o) on ``dataset``, each model
    with the accuracy-check.yml beside its model.yml in ``models_root``. ``after(task, run)`` is
    called once each measurement is done (the command line writes detections and drawings)."""

    def __init__(self, ir_dir: Path, models_root: Path, dataset: Dataset, precisions: frozenset[str],
                 device: str = "CPU", reporter: Reporter | None = None,
                 after: Callable[[Task, Run], None] | None = None) -> None:
        self.ir_dir, self.models_root, self.dataset = ir_dir, models_root, dataset
        self.precisions, self.device = precisions, device
        self.reporter = reporter or Reporter()
        self.after = after
        self.tasks: list[Task] | None = None
        self.errors: dict[str, ModelzooError] = {}  # model name -> why it failed
        self.records: list[dict[str, Any]] = []  # --json's
        self.rows: list[tuple[str, ...]] = []  # the table's
        self.missed: list[str] = []  # "model precision metric" below its reference, as accuracy_check judges

    def precisions_present(self, model: Model) -> list[str]:
        folder = self.ir_dir / model.subdirectory
        return [p for p in PRECISION_ORDER if p in self.precisions and (folder / p / f"{model.name}.xml").is_file()]

    def plan(self, models: list[Model]) -> list[Task]:
        """Every model's yml read and every IR read and checked before any inference; a model
        that cannot be measured is a failure (said in one line, kept in ``errors``)."""
        tasks = []
        for model in models:
            try:
                yml = self.models_root / model.subdirectory / "accuracy-check.yml"
                if not yml.is_file():
                    raise ModelzooError(f"{model.name}: no accuracy-check.yml beside its model.yml ({yml})")
                config = load_accuracy_config(yml, model.name)
                check_dataset(config, self.dataset)
                present = self.precisions_present(model)
                if not present:
                    raise ModelzooError(f"{model.name}: no IR under {self.ir_dir / model.subdirectory} "
                                        f"(precisions {', '.join(sorted(self.precisions))}); convert it first")
                for precision in present:
                    xml = self.ir_dir / model.subdirectory / precision / f"{model.name}.xml"
                    network = read_network(xml, config)
                    check_inputs(network, config, self.dataset)
                    tasks.append(Task(model, config, precision, xml, network))
            except ModelzooError as exc:
                self._failed(model, exc)
        self.tasks = tasks
        return tasks

    def _failed(self, model: Model, exc: ModelzooError) -> None:
        self.errors[model.name] = exc
        self.reporter.error(str(exc))

    def run(self, models: list[Model], jobs: int = 1, executor: Executor | None = None,
            shards: Shards | None = None) -> list[str]:
        """Measure every model (planned first, unless ``plan`` was called for them). Here, one IR
        at a time (OpenVINO runs one on every core); with ``jobs`` > 1 or an ``executor``, the
        pictures in ``shards`` (by default one shard a job) each a job of ``executor`` (by default
        ``jobs`` local processes), scored once over all of them. Returns the names of the models
        that failed.

        Raises:
            KeyboardInterrupt: on Ctrl-C (every request waited for first).
        """
        if executor is not None or jobs > 1:
            return self._run_sharded(models, executor or LocalProcesses(jobs), shards or Shards(max(1, jobs)))
        from tqdm import tqdm

        tasks = self.tasks if self.tasks is not None else self.plan(models)
        for task in tasks:
            if task.model.name in self.errors:
                continue
            self.reporter.say(f"Measuring {task.model.name} {task.precision} ({task.xml}) on "
                              f"{len(self.dataset.samples)} images")
            try:
                with tqdm(total=len(self.dataset.samples), desc=f"{task.model.name} {task.precision}", unit="img",
                          disable=None, file=sys.stderr, leave=False) as bar:
                    run = measure(task.xml, task.config, self.dataset, self.device, progress=bar.update,
                                  network=task.network, compiled=compile_network(task.network, self.device))
            except ModelzooError as exc:
                self._failed(task.model, exc)
                continue
            self._record(task, run)
            if self.after is not None:
                self.after(task, run)
        return [m.name for m in models if m.name in self.errors]

    def _run_sharded(self, models: list[Model], executor: Executor, shards: Shards) -> list[str]:
        """Every (IR, picture shard) a job; a shard that ``shards.done`` gives back is not run
        again; ``shards.keep`` is told each shard once all its IR are measured; every IR scored
        once over all its shards (as ``--merge`` does)."""
        tasks = [t for t in (self.tasks if self.tasks is not None else self.plan(models))
                 if t.model.name not in self.errors]
        pieces = split(self.dataset.samples, shards.count, key=lambda s: s.image_id)
        parts: dict[int, dict[tuple[str, str], Part]] = {}
        for k in range(shards.count):
            stored = shards.done(k, pieces[k])
            if stored is not None:
                parts[k] = stored
        done_before = len(parts) * len(tasks)
        hashes = {task.xml: (_sha384(task.xml), _sha384(task.xml.with_suffix(".bin"))) for task in tasks}
        work, of = [], {}  # of: job name -> (task, shard index)
        for k, piece in enumerate(pieces):
            if k in parts or not piece:
                continue
            parts[k] = {}
            for task in tasks:
                truth = {s.image_id: t for s, t in zip(piece, _truth_of(self.dataset, piece, task.config))}
                name = f"{task.model.name} {task.precision} shard {k}/{shards.count}"
                of[name] = (task, k)
                work.append(Job(name, measure_shard, (str(task.xml), task.config, piece, truth, self.device,
                                                      *hashes[task.xml])))
        self.reporter.say(f"Measuring {len(tasks)} IR on {len(self.dataset.samples)} images in {shards.count} "
                          f"shards: {len(work)} job{'' if len(work) == 1 else 's'} ({done_before} done already)")
        with JobBar(len(work), "measuring", self.reporter.say, self.reporter.emit) as bar:
            for job, result, why in executor.run(work):
                task, k = of[job.name]
                bar.update(job.name, why is None and not isinstance(result, ModelzooError))
                if why is not None or isinstance(result, ModelzooError):
                    if task.model.name not in self.errors:  # (its first failure is the line; the rest are alike)
                        self._failed(task.model, ModelzooError(f"{job.name}: {why or result}"))
                    continue
                parts[k][(task.model.name, task.precision)] = result
                if len(parts[k]) == len(tasks) and not any(t.model.name in self.errors for t in tasks):
                    shards.keep(k, pieces[k], parts[k])
        for task in tasks:
            if task.model.name in self.errors:
                continue
            mine = [parts[k][(task.model.name, task.precision)] for k in sorted(parts)
                    if (task.model.name, task.precision) in parts[k]]
            detections = {i: d for p in mine for i, d in p.detections.items()}
            truth = {i: g for p in mine for i, g in p.truth.items()}
            if set(detections) != {s.image_id for s in self.dataset.samples}:
                self._failed(task.model, ModelzooError(f"{task.model.name} {task.precision}: pictures not measured"))
                continue
            self.merge(task.model, task.precision, detections, truth, sum(p.images for p in mine),
                       max(sum(p.seconds for p in mine), 1e-3))
        return [m.name for m in models if m.name in self.errors]

    def _record(self, task: Task, run: Run) -> None:
        for result in run.results:
            self.records.append({"model": task.model.name, "precision": task.precision, "metric": result.metric,
                                 "value": result.value, "reference": result.reference, "images": run.images,
                                 "seconds": round(run.seconds, 3)})
            self.rows.append((
                task.model.name, task.precision, str(run.images), result.metric, result.shown(),
                "-" if result.reference is None else result.shown(result.reference),
                "-" if result.reference is None else result.points(result.value - result.reference),
                {True: "OK", False: "MISSED", None: ""}[result.passed], f"{run.images / run.seconds:.1f}"))
            if result.passed is False:
                self.missed.append(f"{task.model.name} {task.precision} {result.metric}")

    # --- picture shards (accuracy_check --shard / --run_dir / --merge) ---

    def merge(self, model: Model, precision: str, detections: dict[int, Any], truth: dict[int, Any],
              images: int, seconds: float) -> Run | None:
        """Score once over every shard's detections (COCO precision is not additive: one COCOeval
        over all of them) and record it as a single run would; ``detections`` and ``truth`` are
        each shard's ``predict`` output, put together (every picture of ``self.dataset``)."""
        from .evaluate import score

        yml = self.models_root / model.subdirectory / "accuracy-check.yml"
        try:
            config = load_accuracy_config(yml, model.name)
            order = [s.image_id for s in self.dataset.samples]
            results = score(config, self.dataset.for_config(config), {i: detections[i] for i in order},
                            {i: truth[i] for i in order})
        except ModelzooError as exc:
            self._failed(model, exc)
            return None
        xml = self.ir_dir / model.subdirectory / precision / f"{model.name}.xml"
        task = Task(model, config, precision, xml, None)  # type: ignore[arg-type] (no network: not run)
        run = Run(images, seconds, results, {i: detections[i] for i in order}, {i: truth[i] for i in order})
        self._record(task, run)
        if self.after is not None:
            self.after(task, run)
        return run


def _sha384(path: Path) -> str:
    return file_digest(path)[1]


def _truth_of(dataset: Dataset, samples: list[Any], config: AccuracyConfig) -> list[Any]:
    """The ground truth of these samples only (a job takes its own, not the whole annotation file)."""
    part = dataset.with_samples(samples).for_config(config)  # (every kind's annotations: COCO's, labels, boxes, masks)
    truth = part.ground_truth(config.label_offset, config.full_label_map)
    return [truth[s.image_id] for s in samples]


_COMPILED: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # per worker process: (xml, its SHA-384, device)


def measure_shard(xml: str, config: AccuracyConfig, samples: list[Any], truth: dict[int, Any], device: str,
                  xml_sha384: str, bin_sha384: str) -> Part | ModelzooError:
    """A job: one IR on one shard of the pictures. The IR is read from where every worker sees it
    (a shared folder) and checked against the SHA-384 the driver read, then compiled once per
    worker process (a pool's worker takes many shards). Returns the Part, or the error (one line
    for the driver to say with the shard's name)."""
    try:
        key = (xml, xml_sha384, device)
        if key not in _COMPILED:
            for path, want in ((Path(xml), xml_sha384), (Path(xml).with_suffix(".bin"), bin_sha384)):
                if _sha384(path) != want:
                    raise ModelzooError(f"{path}: not the file the driver read (SHA-384 differs)")
            network = read_network(Path(xml), config)
            _COMPILED.clear()  # one IR at a time per worker: memory, not speed
            _COMPILED[key] = (network, compile_network(network, device))
        network, compiled = _COMPILED[key]
        started = time.monotonic()
        detections, processed = predict(config, network, compiled, samples, truth)
        return Part(detections, processed, len(samples), time.monotonic() - started)
    except ModelzooError as exc:
        return exc
    except OSError as exc:
        return ModelzooError(f"{exc.filename}: {exc.strerror}")
    except RuntimeError as exc:  # OpenVINO's (compiling: a device it does not have, no memory): one line
        return ModelzooError(f"{xml}: {openvino_reason(exc)}")
