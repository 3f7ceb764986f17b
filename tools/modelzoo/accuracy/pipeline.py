"""The accuracy pipeline: every selected model's IR, at every precision there is, measured on one
data set as its card does; the records, the table's rows and the references missed.

The pipelines' shape (``run(models, jobs) -> failures``, one Reporter); the command line only
parses, checks its outputs, and prints what this measured.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..descriptor import Model
from ..errors import ModelzooError
from ..events import Reporter
from .config import AccuracyConfig, load_accuracy_config
from .dataset import Dataset
from .evaluate import Network, Run, check_dataset, compile_network, measure, read_network

PRECISION_ORDER = ("FP32", "FP16", "FP32-INT8", "FP16-INT8", "FP32-INT1", "FP16-INT1")


class Task(NamedTuple):
    """One measurement: a model's IR at one precision, read and checked against its config."""

    model: Model
    config: AccuracyConfig
    precision: str
    xml: Path
    network: Network


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
                    tasks.append(Task(model, config, precision, xml, read_network(xml, config)))
            except ModelzooError as exc:
                self._failed(model, exc)
        self.tasks = tasks
        return tasks

    def _failed(self, model: Model, exc: ModelzooError) -> None:
        self.errors[model.name] = exc
        self.reporter.error(str(exc))

    def run(self, models: list[Model], jobs: int = 1) -> list[str]:
        """Measure every model (planned first, unless ``plan`` was called for them), one IR at a
        time: OpenVINO runs one on every core. Returns the names of the models that failed.

        Raises:
            KeyboardInterrupt: on Ctrl-C (every request waited for first).
        """
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

    def _record(self, task: Task, run: Run) -> None:
        for result in run.results:
            self.records.append({"model": task.model.name, "precision": task.precision, "metric": result.metric,
                                 "value": result.value, "reference": result.reference, "images": run.images,
                                 "seconds": round(run.seconds, 3)})
            self.rows.append((
                task.model.name, task.precision, str(run.images), result.metric, f"{100 * result.value:.2f} %",
                "-" if result.reference is None else f"{100 * result.reference:.2f} %",
                "-" if result.reference is None else f"{100 * (result.value - result.reference):+.2f}",
                {True: "OK", False: "MISSED", None: ""}[result.passed], f"{run.images / run.seconds:.1f}"))
            if result.passed is False:
                self.missed.append(f"{task.model.name} {task.precision} {result.metric}")

    # --- picture shards (accuracy_check --shard / --run_dir / --merge) ---

    def merge(self, model: Model, precision: str, detections: dict[int, Any], truth: dict[int, Any],
              images: int, seconds: float) -> None:
        """Score once over every shard's detections (COCO precision is not additive: one COCOeval
        over all of them) and record it as a single run would; ``detections`` and ``truth`` are
        each shard's ``predict`` output, put together (every picture of ``self.dataset``)."""
        from .evaluate import score

        yml = self.models_root / model.subdirectory / "accuracy-check.yml"
        try:
            config = load_accuracy_config(yml, model.name)
            order = [s.image_id for s in self.dataset.samples]
            results = score(config, self.dataset, {i: detections[i] for i in order}, {i: truth[i] for i in order})
        except ModelzooError as exc:
            self._failed(model, exc)
            return
        xml = self.ir_dir / model.subdirectory / precision / f"{model.name}.xml"
        self._record(Task(model, config, precision, xml, None),  # type: ignore[arg-type] (no network: not run)
                     Run(images, seconds, results, detections, truth))
