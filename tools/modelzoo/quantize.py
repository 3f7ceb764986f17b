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
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import fsio
from .accuracy.config import AccuracyConfig, load_accuracy_config
from .accuracy.dataset import Dataset, read_image
from .accuracy.evaluate import Network, compile_network, is_int8, measure, read_network
from .accuracy.preprocessing import preprocess
from .descriptor import Model
from .errors import AccuracyBudgetError, IRMismatchError, ModelzooError, QuantizationError
from .verify import file_digest

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


@dataclass
class Outcome:
    """What one model's quantization did (also what quantization.json records)."""

    seconds: float
    calibration_images: int
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    metric: str | None = None
    written: list[Path] = field(default_factory=list)

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


def _sha384(path: Path) -> str:
    return file_digest(path)[1]


def calibration_digest(dataset: Dataset) -> str:
    """SHA-384 of the sorted list of calibration files (each as its SHA-384 and name)."""
    lines = sorted(f"{_sha384(s.path)}  {s.path.name}\n" for s in dataset.samples)
    return hashlib.sha384("".join(lines).encode()).hexdigest()


def _quiet_nncf() -> None:
    logging.getLogger("nncf").setLevel(logging.ERROR)


def _ignored_scope(model: Any, user: list[str]) -> Any:
    import nncf

    names = {op.get_friendly_name() for op in model.get_ops()}
    unknown = [n for n in user if n not in names]
    if unknown:
        raise QuantizationError(f"--ignored_scope {unknown[0]}: the IR has no node of that name")
    return nncf.IgnoredScope(names=sorted(set(postprocessing_nodes(model)) | set(user)), validate=False)


def _check_input(xml: Path, config: AccuracyConfig, core: Any) -> Network:
    network = read_network(xml, config, core)
    if is_int8(network.model):
        raise IRMismatchError(f"{xml}: already INT8 (it holds FakeQuantize operations or 8-bit weights); "
                              "quantize an FP32 IR")
    return network


class Quantizer:
    """Quantizes models into OUTPUT/<model folder>/<precision>/ (omz_quantizer's layout)."""

    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        self.options = options
        self.say = say

    def plan(self, model: Model, models_root: Path) -> tuple[AccuracyConfig, Path]:
        yml = models_root / model.subdirectory / "accuracy-check.yml"
        if not yml.is_file():
            raise ModelzooError(f"{model.name}: no accuracy-check.yml beside its model.yml ({yml}): "
                                "it says how to preprocess calibration pictures")
        config = load_accuracy_config(yml, model.name)
        xml = self.options.ir_dir / model.subdirectory / "FP32" / f"{model.name}.xml"
        return config, xml

    def run(self, model: Model, models_root: Path, dataset: Dataset) -> Outcome:
        import nncf
        import openvino as ov

        _quiet_nncf()
        opts = self.options
        config, xml = self.plan(model, models_root)
        core = ov.Core()
        network = _check_input(xml, config, core)
        calibration = dataset.subset(opts.subset)
        for sample in calibration.samples:  # every picture readable before NNCF starts
            read_image(sample.path)
        started = time.monotonic()

        def transform(sample: Any) -> Any:
            picture, _ = preprocess(read_image(sample.path), config)
            return network.tensor(picture)

        calibration_set = nncf.Dataset(calibration.samples, transform)
        ignored = _ignored_scope(network.model, opts.ignored_scope)
        preset = nncf.QuantizationPreset.MIXED if opts.preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
        outcome = Outcome(0.0, len(calibration.samples))
        self.say(f"Quantizing {model.name} ({xml}) with NNCF {nncf.__version__}: {len(calibration.samples)} "
                 f"calibration images, preset {opts.preset}, {len(ignored.names)} post-processing nodes kept in float")
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
        self._write(model, xml, quantized, calibration, outcome)
        return outcome

    def _validation_fn(self, config: AccuracyConfig, network: Network, dataset: Dataset) -> Callable:
        from .accuracy.adapter import ssd
        from .accuracy.evaluate import score
        from .accuracy.postprocessing import postprocess

        truth = dataset.ground_truth(config.label_offset)

        def validate(compiled: Any, samples: Any) -> tuple[float, None]:
            detections, gts, chosen = {}, {}, []
            for sample in samples:
                picture, geometry = preprocess(read_image(sample.path), config)
                output = compiled(network.tensor(picture))[0]
                dets, gt = postprocess(ssd(output), truth[sample.image_id], geometry, config)
                detections[sample.image_id], gts[sample.image_id] = dets, gt
                chosen.append(sample)
            value = score(config, Dataset(chosen, dataset.coco), detections, gts)[0].value
            return (0.0 if math.isnan(value) else value), None

        return validate

    def _with_budget(self, network: Network, config: AccuracyConfig, calibration: Dataset, calibration_set: Any,
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

    def _measure(self, model: Model, config: AccuracyConfig, network: Network, quantized: Any, dataset: Dataset,
                 outcome: Outcome) -> None:
        """FP32 and INT8 accuracy by the accuracy tool, on the calibration images' annotations."""
        fp32 = measure(Path(), config, dataset, self.options.device, network=network)
        int8_net = Network(quantized, network.input_name, network.nchw, network.height, network.width)
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

    def _record(self, model: Model, xml: Path, precision: str, calibration: Dataset, outcome: Outcome) -> dict:
        import nncf
        import openvino as ov

        opts = self.options
        return {
            "model": model.name, "precision": precision, "nncf": nncf.__version__,
            "openvino": ov.get_version(),
            "options": {"subset": opts.subset, "max_drop": opts.max_drop, "max_iterations": opts.max_iterations,
                        "preset": opts.preset,
                        "ignored_scope": opts.ignored_scope, "device": opts.device},
            "input_ir": {"xml": str(xml), "xml_sha384": _sha384(xml), "bin_sha384": _sha384(xml.with_suffix(".bin"))},
            "calibration": {"images": len(calibration.samples), "files_sha384": calibration_digest(calibration),
                            "annotations": str(calibration.annotations_path) if calibration.annotations_path else None},
            "accuracy": None if outcome.fp32_accuracy is None else {
                "metric": outcome.metric, "fp32": outcome.fp32_accuracy, "int8": outcome.int8_accuracy,
                "drop": outcome.drop},
            "seconds": round(outcome.seconds, 2),
        }

    def _write(self, model: Model, xml: Path, quantized: Any, calibration: Dataset, outcome: Outcome) -> None:
        from .convert import save_ir

        target = self.options.output_dir / model.subdirectory
        records = {p: self._record(model, xml, p, calibration, outcome) for p in self.options.precisions}
        with fsio.staged_dir(target, f"{STAGING_PREFIX}{__import__('os').getpid()}-") as staging:
            for precision in self.options.precisions:
                (staging / precision).mkdir()
                save_ir(quantized, staging / precision / f"{model.name}.xml", fp16=precision.startswith("FP16"))
                fsio.write_bytes(staging / precision / "quantization.json",
                                 (json.dumps(records[precision], indent=1) + "\n").encode())
            with fsio.folder_lock(target):
                fsio.swap_in([(staging / p, target / p) for p in self.options.precisions])
        for precision in self.options.precisions:
            path = target / precision / f"{model.name}.xml"
            outcome.written.append(path)
            self.say(f"wrote {path} and .bin ({precision}), quantization.json beside them")
