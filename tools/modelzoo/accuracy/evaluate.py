"""Measuring one IR on one dataset: read and check the IR, preprocess every picture as the model's
accuracy-check.yml says, run them on every core (OpenVINO's throughput mode, with twice as many
asynchronous requests as it asks for, the pictures prepared while they run), bring the boxes
back to the picture and score them.

Computation is f32 (`INFERENCE_PRECISION_HINT`): the CPU plugin would otherwise compute in
bfloat16 on machines that have it, and the number would say more about the machine than about
the IR.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import AccuracyConfigError, IRMismatchError, ModelzooError
from . import adapter as adapters
from .config import MASK_DATASETS, AccuracyConfig, Metric
from .dataset import Dataset, GroundTruth, check_instance_masks, read_image
from .metric import SCORERS, VECTOR_SCORERS
from .postprocessing import check_postprocessing, postprocess
from .preprocessing import Geometry, preprocess, preprocess_views

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@dataclass
class Result:
    metric: str
    value: float
    reference: float | None
    passed: bool | None
    unit: str = "%"  # how it is printed: "%" (a share, times 100), "dB" or "" (the number as it is)

    def shown(self, value: float | None = None) -> str:
        value = self.value if value is None else value
        if self.unit == "%":
            return f"{100 * value:.2f} %"
        return f"{value:.4f}" + (f" {self.unit}" if self.unit else "")

    def points(self, value: float) -> str:
        return f"{100 * value:+.2f}" if self.unit == "%" else f"{value:+.4f}"


# metrics whose value is not a share (printed as they are)
UNITS = {"psnr": "dB", "ssim": ""}


@dataclass
class Run:
    """Everything one measurement produced."""

    images: int
    seconds: float
    results: list[Result]
    detections: dict[int, adapters.Detections] = field(default_factory=dict)
    ground_truth: dict[int, GroundTruth] = field(default_factory=dict)


def is_int8(model: Any) -> bool:
    """An IR that is already quantized: FakeQuantize operations, or 8-bit integer weights."""
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant" and op.get_output_element_type(0).get_type_name() in ("i8", "u8"):
            return True
    return False


@dataclass(frozen=True)
class Port:
    """Another picture input of the IR (two-stream super-resolution's upscaled picture): its name,
    layout and size (0: any), and the pattern of the file's name it takes (the yml's `value`)."""

    name: str
    nchw: bool
    height: int
    width: int
    pattern: str | None = None
    channels: int = 3

    def tensor(self, picture: np.ndarray) -> np.ndarray:
        if self.height and picture.shape[:2] != (self.height, self.width):
            raise AccuracyConfigError(f"the preprocessing made a {picture.shape[0]}x{picture.shape[1]} picture "
                                      f"for the IR's {self.height}x{self.width} input {self.name}")
        if picture.ndim != 3 or picture.shape[2] != self.channels:
            raise AccuracyConfigError(f"the preprocessing made a picture of {list(picture.shape)} for the IR's "
                                      f"input {self.name} of {self.channels} channel{'s' if self.channels > 1 else ''}")
        data = picture.transpose(2, 0, 1) if self.nchw else picture
        return np.ascontiguousarray(data[None], dtype=np.float32)

    def size(self) -> tuple[int, int] | None:
        return (self.height, self.width) if self.height else None


@dataclass(frozen=True)
class Feed:
    """An input fed besides the picture: its kind (config.LAUNCHER_INPUTS), the IR's shape and
    element type for it, and a CONST_INPUT's array (already in that shape and type)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: Any
    const: np.ndarray | None = None

    def array(self, geometry: Geometry) -> np.ndarray:
        """What the checker feeds for this picture: [height, width], then 1 when the input's
        last axis holds 3 values, or four zeros when it holds 6, in the input's shape."""
        if self.const is not None:
            return self.const
        height, width = ((geometry.height, geometry.width) if self.kind == "ORIG_IMAGE_INFO"
                         else geometry.resized())
        return np.array(_info_values(height, width, self.shape), dtype=self.dtype).reshape(self.shape)


def _info_values(height: int, width: int, shape: tuple[int, ...]) -> list[int]:
    last = shape[-1] if shape else 0
    return [height, width] + ([1] if last == 3 else []) + ([0, 0, 0, 0] if last == 6 else [])


@dataclass
class Network:
    """The IR's picture input: its layout, and the size the preprocessing must produce (0: any,
    an input of dynamic size); ``others``: its other picture inputs, each given its own file; and
    what every input that is not a picture is fed (``feeds``)."""

    model: Any
    input_name: str
    nchw: bool
    height: int
    width: int
    all_outputs: bool = False  # hand the adapter every output by name (adapter.Outputs), not the first
    pattern: str | None = None  # the file the first input takes, when there are several
    others: tuple[Port, ...] = ()
    channels: int = 3
    feeds: tuple[Feed, ...] = ()

    def port(self) -> Port:
        return Port(self.input_name, self.nchw, self.height, self.width, self.pattern, self.channels)

    def tensor(self, picture: np.ndarray) -> np.ndarray:
        return self.port().tensor(picture)

    def by_pattern(self, sample: Any, made: list[np.ndarray]) -> list[np.ndarray]:
        """rect_mask's picture and mask to the inputs whose patterns match NAME_image and NAME_mask
        (the names the checker gives them)."""
        names = [f"{sample.path.name}_image", f"{sample.path.name}_mask"]
        chosen = []
        for port in (self.port(),) + self.others:
            at = next((i for i, n in enumerate(names) if port.pattern is None or re.match(port.pattern, n)), None)
            if at is None:
                raise AccuracyConfigError(f"input {port.name}'s pattern {port.pattern!r} matches neither "
                                          f"{' nor '.join(names)} (rect_mask's picture and mask)")
            chosen.append(made[at])
        return chosen

    def files(self, sample: Any) -> list[Path]:
        """The file each input takes: the one whose name its pattern matches (re.match, as the
        checker matches its identifiers), the sample's picture when it has none."""
        if not self.others:
            return [sample.path]
        chosen = []
        for port in (self.port(),) + self.others:
            found = next((f for f in sample.files() if port.pattern is None or re.match(port.pattern, f.name)), None)
            if found is None:
                names = ", ".join(f.name for f in sample.files())
                raise AccuracyConfigError(f"{sample.path}: no picture of it ({names}) matches {port.pattern!r}, the "
                                          f"pattern of input {port.name}")
            chosen.append(found)
        return chosen

    def inputs(self, picture: Any, geometry: Geometry) -> dict[str, np.ndarray]:
        """Every input's data for one sample: its picture, or one per picture input (the first,
        then ``others``), and what the other inputs are fed."""
        data = {feed.name: feed.array(geometry) for feed in self.feeds}
        if not self.others:
            data[self.input_name] = self.tensor(picture)
        else:
            data.update({port.name: port.tensor(p) for port, p in zip((self.port(),) + self.others, picture)})
        return data


def _port_names(port: Any) -> set[str]:
    return set(port.get_names()) | {port.get_node().get_friendly_name()}


def _feeds(xml: Path, config: AccuracyConfig, model: Any
           ) -> tuple[list[tuple[Any, str | None]], tuple[Feed, ...]]:
    """The picture ports (each with the pattern of the file it takes, when the yml gives several
    INPUTs) and a Feed for each other input, each input of the IR named by the yml (by a tensor
    name or the parameter's name, as the checker finds it) and the other way round; a
    CONST_INPUT's numbers as many as its input holds."""
    ports = list(model.inputs)
    where = f"{config.path} launchers[].inputs"
    fed = {}
    for entry in config.inputs:
        matches = [p for p in ports if entry.name in _port_names(p)]
        if not matches:
            raise IRMismatchError(f"{where}: {entry.kind} {entry.name!r} is not an input of {xml} (its inputs: "
                                  f"{', '.join(p.get_any_name() for p in ports)})")
        fed[matches[0].get_any_name()] = (entry, matches[0])
    rest = [p for p in ports if p.get_any_name() not in fed]
    pictures: list[tuple[Any, str | None]] = []
    if len(config.pictures) > 1:  # (each INPUT by its name, with the pattern of its file)
        for name, pattern in config.pictures:
            matches = [p for p in rest if name in _port_names(p)]
            if not matches:
                raise IRMismatchError(f"{where}: INPUT {name!r} is not an input of {xml} (its inputs: "
                                      f"{', '.join(p.get_any_name() for p in ports)})")
            pictures.append((matches[0], pattern))
        named = {p.get_any_name() for p, _ in pictures}
        unfed = [p.get_any_name() for p in rest if p.get_any_name() not in named]
        if unfed:
            raise IRMismatchError(f"{where}: {xml}'s input {unfed[0]} is fed by none of its entries")
    elif config.picture_input is not None:
        rest = [p for p in rest if config.picture_input in _port_names(p)]
        if not rest:
            raise IRMismatchError(f"{where}: INPUT {config.picture_input!r} is not an input of {xml} (its inputs: "
                                  f"{', '.join(p.get_any_name() for p in ports)})")
    elif len(rest) != 1:
        unfed = ", ".join(p.get_any_name() for p in rest) or "none"
        raise IRMismatchError(f"{where}: feeds {len(fed)} input{'' if len(fed) == 1 else 's'} besides the picture; "
                              f"{xml} has {len(ports)} (left for the picture: {unfed})")
    feeds = []
    for name, (entry, port) in fed.items():
        shape = port.get_partial_shape()
        if shape.is_dynamic:
            raise IRMismatchError(f"{where}: {entry.kind} {entry.name!r}: the IR's input has the dynamic shape "
                                  f"{shape}; a static one is implemented")
        dims = tuple(d.get_length() for d in shape)
        size = int(np.prod(dims)) if dims else 1
        dtype = np.dtype(port.get_element_type().to_dtype())
        if entry.kind == "CONST_INPUT":
            if len(entry.value) != size:
                raise IRMismatchError(f"{where}: CONST_INPUT {entry.name!r} gives {len(entry.value)} values; the "
                                      f"IR's input is {list(dims)} ({size} values)")
            const = np.array(entry.value, dtype=np.float64).astype(dtype).reshape(dims)
            feeds.append(Feed(name, entry.kind, dims, dtype, const))
            continue
        want = len(_info_values(0, 0, dims))
        if size != want:
            raise IRMismatchError(f"{where}: {entry.kind} {entry.name!r}: the IR's input is {list(dims)}; the "
                                  f"picture's size is fed as {want} values ([height, width]"
                                  f"{', 1' if want == 3 else ', 0, 0, 0, 0' if want == 6 else ''})")
        feeds.append(Feed(name, entry.kind, dims, dtype))
    return pictures or [(rest[0], None)], tuple(feeds)


def read_network(xml: Path, config: AccuracyConfig, core: Any = None) -> Network:
    """Read the IR and check that it takes what the preprocessing makes (and what the yml feeds
    its other inputs)."""
    import openvino as ov

    if not xml.is_file() or not xml.with_suffix(".bin").is_file():
        raise IRMismatchError(f"{xml}: no such IR (.xml and .bin)")
    try:
        with native_stderr_silenced():
            model = (core or ov.Core()).read_model(str(xml))
    except RuntimeError as exc:
        raise IRMismatchError(f"{xml}: not a readable IR: {openvino_reason(exc)}") from exc
    if config.reshape:  # (allow_reshape_input: every picture at its own size; one dynamic shape does it)
        _dynamic_sides(xml, model)
    if len(model.inputs) != 1 or config.inputs:  # (one input: the picture, whatever INPUT names it)
        pictures, feeds = _feeds(xml, config, model)
    else:
        pictures, feeds = [(model.inputs[0], None)], ()
    ports = [_picture_port(xml, port, pattern) for port, pattern in pictures]
    expected = config.input_size()
    first = ports[0]
    if expected is not None and first.height and expected != (first.height, first.width):
        raise IRMismatchError(f"{xml}: input {first.name} is {first.height}x{first.width} (HxW), but "
                              f"{config.path} preprocesses to {expected[0]}x{expected[1]}")
    check_postprocessing(config)
    return Network(model, first.name, first.nchw, first.height, first.width, pattern=first.pattern,
                   others=tuple(ports[1:]), channels=first.channels, feeds=feeds)


def _dynamic_sides(xml: Path, model: Any) -> None:
    """Each picture input's height and width made dynamic (the CPU plugin runs any size)."""
    import openvino as ov

    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_static and shape.rank.get_length() == 4:
            dims = list(shape)
            first = dims[1].is_static and dims[1].get_length() in (1, 3)
            sides = (2, 3) if first else (1, 2)
            shapes[port] = ov.PartialShape([ov.Dimension() if i in sides else d for i, d in enumerate(dims)])
    try:
        model.reshape(shapes)
    except RuntimeError as exc:
        raise IRMismatchError(f"{xml}: cannot take pictures of any size (allow_reshape_input): "
                              f"{openvino_reason(exc)}") from exc


def _picture_port(xml: Path, port: Any, pattern: str | None) -> Port:
    """A picture input: [1,H,W,C] or [1,C,H,W] with C 1 or 3; H and W may be dynamic (0: any)."""
    shape = port.get_partial_shape()
    name = port.get_any_name()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise IRMismatchError(f"{xml}: input {name} has shape {shape}; expected [1,H,W,3] or [1,3,H,W]")
    dims = [d.get_length() if d.is_static else 0 for d in shape]
    channels_first = dims[1] in (1, 3) and dims[3] not in (1, 3)
    if dims[0] not in (0, 1) or (dims[1] not in (1, 3) and dims[3] not in (1, 3)):
        raise IRMismatchError(f"{xml}: input {name} has shape {shape}; expected [1,H,W,3] or [1,3,H,W]")
    height, width = (dims[2], dims[3]) if channels_first else (dims[1], dims[2])
    if (height == 0) != (width == 0):
        raise IRMismatchError(f"{xml}: input {name} has shape {shape}; expected both sides fixed or both dynamic")
    return Port(name, channels_first, height, width, pattern, dims[1] if channels_first else dims[3])


_WHERE = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:)$")


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's own words from one of its exceptions, on one line: its text starts with the
    source lines it passed through ("Exception from src/...cpp:84:", "Check '...' failed at ..."),
    and the reason (e.g. "Incorrect weights in bin file!") comes after them."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = [line for line in lines if not _WHERE.match(line)]
    return " ".join(reason or lines[-1:]) or type(exc).__name__


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null for the block: when an .xml is not an IR, OpenVINO
    tries its other front ends, and TensorFlow's protobuf parser writes "E0000 ... text_format.cc"
    lines there from native code (sys.stderr cannot catch them). What went wrong is in the
    exception, which the caller reports in one line."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # (no fd 2 to save: nothing to silence)
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def compile_network(network: Network, device: str, core: Any = None) -> Any:
    import openvino as ov

    config = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if device.split(":")[0] in ("CPU", "AUTO", "MULTI", "HETERO"):
        config.update(F32)
    return (core or ov.Core()).compile_model(network.model, device, config)


def prepared(samples: Any, config: AccuracyConfig, network: Network | None = None
             ) -> Iterator[tuple[int, Any, Geometry]]:
    """(image id, network picture, geometry) for every sample, in order; for a network of several
    picture inputs, the list of its pictures (each preprocessed alike, to its input's size) and
    the first one's geometry."""
    for sample in samples:
        if network is None or not network.others:  # (config.views() of each: a picture, then its mirror,
            size = network.port().size() if network is not None else None  # when a flip is merged with it)
            pictures, geometry = preprocess_views(read_image(sample.path, config.reader), config, sample.keypoints,
                                                  size)
            for picture in pictures:
                yield sample.image_id, picture, geometry
            continue
        if any(step.type == "rect_mask" for step in config.preprocessing):  # one picture makes both inputs
            made, geometry = preprocess(read_image(sample.path, config.reader), config,
                                        network_size=network.port().size())
            yield sample.image_id, network.by_pattern(sample, made), geometry
            continue
        pictures, geometries = [], []
        for port, path in zip((network.port(),) + network.others, network.files(sample)):
            picture, geometry = preprocess(read_image(path, config.reader), config, network_size=port.size())
            pictures.append(picture)
            geometries.append(geometry)
        yield sample.image_id, pictures, geometries[0]


def infer_all(compiled: Any, network: Network, items: Iterator[tuple[int, np.ndarray, Geometry]],
              on_done: Callable[[int, np.ndarray, Geometry], None]) -> None:
    """Run every item on twice as many requests as the device wants, taking them in turn: before
    a request starts its next item, its last one is waited for and handed to ``on_done`` here, in
    this thread, while the others compute (so the outputs come in order). Twice: while this thread
    prepares a picture or waits for the oldest request, a stream that is done finds the next one
    already queued.

    Why not an AsyncInferQueue with a Python callback: OpenVINO runs that callback in its own
    threads, which take the GIL; on Ctrl-C the compiled model could then be destroyed by this thread
    (holding the GIL) while one of them waited for it to run a callback, and the process hung at
    exit (7 times in 15 interrupted mid-run here). Without a callback, nothing of OpenVINO's ever
    waits for Python, and every wait here lets go of the GIL (a Ctrl-C lands as soon as it
    returns)."""
    count = 2 * max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    requests = [compiled.create_infer_request() for _ in range(count)]
    waiting: list[tuple[int, Geometry] | None] = [None] * count  # what each request is computing
    turn = 0
    try:
        for image_id, picture, geometry in items:
            request = requests[turn]
            if waiting[turn] is not None:
                request.wait()
                _hand_on(request, waiting[turn], on_done, network)
            request.start_async(network.inputs(picture, geometry), share_inputs=False)
            waiting[turn] = (image_id, geometry)
            turn = (turn + 1) % count
        for i in range(count):  # the last ones, in the order they were started
            k = (turn + i) % count
            if waiting[k] is not None:
                requests[k].wait()
                _hand_on(requests[k], waiting[k], on_done, network)
                waiting[k] = None
    finally:
        for request in requests:  # (after an error or a Ctrl-C: nothing may be left computing)
            try:
                request.wait()
            except RuntimeError:  # (its failure is not the news: what ended the loop is)
                pass


def _hand_on(request: Any, item: tuple[int, Geometry], on_done: Callable[[int, Any, Geometry], None],
             network: Network) -> None:
    if not network.all_outputs:
        on_done(item[0], request.get_output_tensor(0).data.copy(), item[1])
        return
    arrays, order = {}, []
    for i, port in enumerate(network.model.outputs):
        data = request.get_output_tensor(i).data.copy()
        names = sorted(port.get_names()) or [f"output{i}"]
        order.append(port.get_any_name() if port.get_names() else names[0])
        arrays.update({name: data for name in names})
    on_done(item[0], adapters.Outputs(arrays, order, (network.height, network.width)), item[1])


def judge(value: float, reference: float | None, metric: Metric) -> bool | None:
    """accuracy_check's verdict: any difference from the reference fails unless it is below the
    metric's abs_threshold and rel_threshold (both 0 when not given)."""
    if reference is None or math.isnan(value):
        return None
    diff = abs(reference - value)
    if diff == 0:
        return True
    abs_t = float(metric.options.get("abs_threshold") or 0)
    rel_t = float(metric.options.get("rel_threshold") or 0)
    return not (abs_t <= diff or rel_t <= diff / reference)


def score(config: AccuracyConfig, dataset: Dataset, detections: dict[int, adapters.Detections],
          ground_truth: dict[int, GroundTruth]) -> list[Result]:
    """Every metric of the config, each by its scorer (metric.SCORERS)."""
    results = []
    for metric in config.metrics:
        value = SCORERS[metric.type](config, metric, dataset, detections, ground_truth)
        results.append(Result(metric.name, value, metric.reference, judge(value, metric.reference, metric),
                              UNITS.get(metric.type, "%")))
        if metric.presenter == "print_vector" and metric.type in VECTOR_SCORERS:
            for name, each in VECTOR_SCORERS[metric.type](config, metric, dataset, detections, ground_truth).items():
                reference = metric.class_references.get(name)
                results.append(Result(f"{metric.name}@{name}", each, reference, judge(each, reference, metric)))
    return results


def predict(config: AccuracyConfig, network: Network, compiled: Any, samples: Any,
            truth: dict[int, GroundTruth], progress: Callable[[int], None] | None = None
            ) -> tuple[dict[int, adapters.Detections], dict[int, GroundTruth]]:
    """The one prediction routine (the accuracy tool's and the quantizer's validation): each
    sample preprocessed as the config says, inferred, its output read by the config's adapter
    (adapter.ADAPTERS) and post-processed; returns the predictions and the ground truth as the
    post-processing left it, both by image id in the samples' order.

    Raises:
        ModelzooError: inference failed (OpenVINO's reason in one line).
    """
    adapter = functools.partial(adapters.ADAPTERS[config.adapter], **config.adapter_options)
    if config.adapter not in adapters.SINGLE_OUTPUT:
        network = dataclasses.replace(network, all_outputs=True)
    detections: dict[int, adapters.Detections] = {}
    processed_truth: dict[int, GroundTruth] = {}

    views, pending = config.views(), {}  # (a picture's outputs until all its views are in: the adapter joins them)

    def done(image_id: int, output: Any, geometry: Geometry) -> None:
        if views > 1:
            pending.setdefault(image_id, []).append(output)
            if len(pending[image_id]) < views:
                return
            output = pending.pop(image_id)
        geometric = config.adapter in adapters.NEEDS_GEOMETRY
        predicted = adapter(output, geometry=geometry) if geometric else adapter(output)
        dets, gt = postprocess(predicted, truth[image_id], geometry, config)
        detections[image_id] = dets
        processed_truth[image_id] = gt if gt is not None else truth[image_id]
        if progress:
            progress(1)

    try:
        infer_all(compiled, network, prepared(samples, config, network), done)
    except RuntimeError as exc:  # OpenVINO's: one line, not a traceback
        raise ModelzooError(f"inference failed: {openvino_reason(exc)}") from exc
    order = [s.image_id for s in samples]
    return {i: detections[i] for i in order}, {i: processed_truth[i] for i in order}


def check_inputs(network: Network, config: AccuracyConfig, dataset: Dataset) -> None:
    """Every sample has a file for each picture input (told by the inputs' patterns): said before
    any inference."""
    if network.others and not any(step.type == "rect_mask" for step in config.preprocessing):
        for sample in dataset.samples:
            network.files(sample)


def check_dataset(config: AccuracyConfig, dataset: Dataset) -> None:
    """The data set is of the kind the yml names (ImageNet labels for a classifier, COCO boxes
    for a detector): said before any inference, not as a scorer's traceback after it."""
    if dataset.kind != config.dataset_kind:
        raise AccuracyConfigError(f"{config.model}: {config.path.name} names the {config.dataset!r} data set "
                                  f"({config.dataset_kind}); the data given is a {dataset.kind} set")
    if config.dataset in MASK_DATASETS and dataset.coco is not None:
        check_instance_masks(dataset)
    dataset.for_config(config)  # (a labels file the definition names and that is not there: said now)
    if any(step.type == "point_alignment" for step in config.preprocessing):
        bare = next((s for s in dataset.samples if not s.keypoints), None)
        if bare is not None:
            raise AccuracyConfigError(f"{bare.path}: no landmarks, and {config.path.name}'s point_alignment needs "
                                      "them (an LFW folder's annotation/lfw_landmark.txt)")


def measure(xml: Path, config: AccuracyConfig, dataset: Dataset, device: str = "CPU",
            progress: Callable[[int], None] | None = None, network: Network | None = None,
            compiled: Any = None) -> Run:
    """Predictions and metrics of one IR on an annotated dataset.

    Raises:
        ModelzooError: the IR cannot be read or inference failed.
    """
    check_dataset(config, dataset)
    dataset = dataset.for_config(config)
    network = network or read_network(xml, config)
    compiled = compiled or compile_network(network, device)
    started = time.monotonic()
    try:
        detections, truth = predict(config, network, compiled, dataset.samples,
                                    dataset.ground_truth(config.label_offset, config.full_label_map), progress)
    except ModelzooError as exc:
        raise ModelzooError(f"{xml}: {exc}") from exc
    seconds = time.monotonic() - started
    return Run(len(dataset.samples), seconds, score(config, dataset, detections, truth), detections, truth)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
