"""The YOLO (v1/v2 regions, v3/v4 entry points) and barrier-SSD output stages of the ovc backend.

Each case is a zoo descriptor's own mo arguments on a synthetic TensorFlow graph that carries the
descriptor's node names (tests/stages_yolo_reference.py), converted with the real command line
(`converter.py --backend ovc`). The IR must give mo 2024.6's interface (the output names that the
model's accuracy-check.yml and card read, shapes, the RegionYolo / DetectionOutput attributes of
the config) and compute what a numpy RegionYolo / DetectionOutput computes on TensorFlow's own
tensors (so the graph before the stage is TensorFlow's too), within 1e-4.

Runs in the first environment (which builds the graphs) and in the newest-OpenVINO one (which
reads them from $MODELZOO_OVC_REFERENCE).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from conftest import run_tool, write_model
from ovc_reference import can_prepare, mo_ir, reference_dir, store_mo_ir
from stages_yolo_reference import (BARRIER, BARRIER_CONFIG, CASES, DESCRIPTORS, OUTPUT_NAMES, barrier_priors,
                                   files)

F32 = {"INFERENCE_PRECISION_HINT": "f32"}

# RegionYolo attributes: the config's (mo's own file for v2, the downloaded JSON for v3/v4)
V2_ATTRIBUTES = {
    "yolo-v1-tiny-tf": {"classes": 20, "coords": 4, "num": 5, "do_softmax": True,
                        "anchors": [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]},
    "yolo-v2-tf": {"classes": 80, "coords": 4, "num": 5, "do_softmax": True,
                   "anchors": [0.57273, 0.677385, 1.87446, 2.06253, 3.33843, 5.47434, 7.88282, 3.52778, 9.77052,
                               9.16828]},
}


MO_COMPARED = ("yolo-v2-tf", "yolo-v3-tf", BARRIER)


def write_descriptor(root: Path, model: str) -> dict[str, np.ndarray]:
    """A copy of `model`'s descriptor in root/zoo over its synthetic graph (and config) in root/dl;
    TensorFlow's values."""
    pb, config, values = files(model)
    args, pb_name, config_name = DESCRIPTORS[model]
    entries = []
    for name, source in ((pb_name, pb), (config_name, config)):
        if name is None:
            continue
        target = root / "dl" / "public" / model / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        entries.append({"name": name, "data": target.read_bytes(), "url": f"http://127.0.0.1:9/{name}"})
    write_model(root / "zoo", model, entries, framework="tf", model_optimizer_args=args)
    return values


@pytest.fixture(scope="module")
def zoo_copy(tmp_path_factory) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """Every case's descriptor in one zoo (root/zoo, root/dl) and TensorFlow's values."""
    root = tmp_path_factory.mktemp("stages")
    return root, {model: write_descriptor(root, model) for model in DESCRIPTORS}


@pytest.fixture(scope="module")
def converted(zoo_copy) -> dict[str, tuple[Path, dict[str, np.ndarray]]]:
    """{model: (its FP32 IR's xml, TensorFlow's values)}: every case converted by one run of the
    real command line with the ovc backend."""
    root, values = zoo_copy
    result = run_tool("converter", "--models_dir", root / "zoo", "--name", ",".join(DESCRIPTORS), "-d", root / "dl",
                      "-o", root / "ir", "--backend", "ovc", "--precisions", "FP32")
    assert result.returncode == 0, result.stderr
    return {m: (root / "ir" / "public" / m / "FP32" / f"{m}.xml", values[m]) for m in DESCRIPTORS}


@pytest.fixture(scope="module")
def mo_converted(zoo_copy) -> dict[str, Path]:
    """{model: the Model Optimizer 2024.6's FP32 IR's xml} of the same descriptors: converted by
    one run with --backend mo where it is installed, kept for the run without it."""
    root, _ = zoo_copy
    if not all((reference_dir() / f"stages-mo-{m}").exists() for m in MO_COMPARED) and can_prepare():
        result = run_tool("converter", "--models_dir", root / "zoo", "--name", ",".join(MO_COMPARED), "-d",
                          root / "dl", "-o", root / "mo", "--backend", "mo", "--precisions", "FP32", timeout=900)
        assert result.returncode == 0, result.stderr
        for m in MO_COMPARED:
            store_mo_ir(root / "mo" / "public" / m, f"stages-mo-{m}")
    return {m: mo_ir(f"stages-mo-{m}") / "FP32" / f"{m}.xml" for m in MO_COMPARED}


def run(xml: Path, x: np.ndarray) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(str(xml), "CPU", F32)
    outputs = compiled(x)
    return [outputs[port] for port in compiled.outputs]


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def region_yolo(t: np.ndarray, coords: int, classes: int, num: int, do_softmax: bool, mask: list[int]) -> np.ndarray:
    """OpenVINO's RegionYolo (opset1) in numpy, on an NHWC tensor transposed to NCHW as mo did."""
    t = t.transpose(0, 3, 1, 2).astype(np.float64)
    n, c, h, w = t.shape
    boxes = t.reshape(n, num if do_softmax else len(mask), coords + 1 + classes, h, w)
    out = boxes.copy()
    out[:, :, :2] = sigmoid(boxes[:, :, :2])  # x, y
    out[:, :, coords] = sigmoid(boxes[:, :, coords])  # the box score
    scores = boxes[:, :, coords + 1:]
    if do_softmax:
        e = np.exp(scores - scores.max(axis=2, keepdims=True))
        out[:, :, coords + 1:] = e / e.sum(axis=2, keepdims=True)
    else:
        out[:, :, coords + 1:] = sigmoid(scores)
    return out.reshape(n, -1) if do_softmax else out.reshape(n, c, h, w)


def close(got: np.ndarray, want: np.ndarray, rel: float = 1e-4) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rel, atol=rel * float(np.abs(want).max()))


def regions_of(xml: Path) -> dict[str, dict]:
    """{output name: the RegionYolo's attributes} of an IR, read back from the file."""
    model = ov.Core().read_model(str(xml))
    found = {}
    for output in model.outputs:
        node = output.get_node().input_value(0).get_node()
        assert node.get_type_name() == "RegionYolo"
        found[output.get_any_name().removesuffix(":0")] = node.get_attributes()
    return found


def output_names(xml: Path) -> list[set[str]]:
    return [set(o.get_names()) for o in ov.Core().read_model(str(xml)).outputs]


# ------------------------------------------------------------------------------------------
# YOLO v1/v2: a RegionYolo (softmax) after the graph's output


@pytest.mark.parametrize("model", ["yolo-v2-tf", "yolo-v1-tiny-tf"])
def test_v2_regions_are_mos_on_tensorflows_output(converted, model):
    xml, tf = converted[model]
    name, = OUTPUT_NAMES[model]
    assert output_names(xml) == [{name, name + ":0"}]
    attrs = regions_of(xml)[name]
    want = V2_ATTRIBUTES[model]
    assert {k: attrs[k] for k in ("classes", "coords", "num", "do_softmax")} == {k: want[k] for k in
                                                                                 ("classes", "coords", "num",
                                                                                  "do_softmax")}
    assert (attrs["axis"], attrs["end_axis"], list(attrs["mask"])) == (1, 3, [])
    np.testing.assert_allclose(attrs["anchors"], want["anchors"], rtol=1e-6)
    image = ov.Core().read_model(str(xml)).inputs[0]
    assert list(image.get_partial_shape().to_shape()) == list(tf["x"].shape)  # NHWC, as mo 2024.6 left it
    got, = run(xml, tf["x"])
    cells = tf["t0"].shape[1] * tf["t0"].shape[2]
    assert got.shape == (1, want["num"] * (want["coords"] + 1 + want["classes"]) * cells)  # [N, C*H*W]
    close(got, region_yolo(tf["t0"], want["coords"], want["classes"], want["num"], True, []))


# ------------------------------------------------------------------------------------------
# YOLO v3/v4: RegionYolo per entry point of the downloaded config, with its mask


@pytest.mark.parametrize("model", ["yolo-v3-tf", "yolo-v3-tiny-tf", "mobilenet-yolo-v4-syg"])
def test_v3_regions_read_the_entry_points_as_mo_did(converted, model):
    xml, tf = converted[model]
    config = CASES[model].config["custom_attributes"]
    names = OUTPUT_NAMES[model]
    assert output_names(xml) == [{n, n + ":0"} for n in names]
    regions = regions_of(xml)
    got = run(xml, tf["x"])
    for i, (name, mask) in enumerate(zip(names, config["masks"])):
        attrs = regions[name]
        assert (attrs["classes"], attrs["coords"], attrs["num"], attrs["do_softmax"]) == \
            (config["classes"], config["coords"], config["num"], False)
        assert (list(attrs["mask"]), attrs["axis"], attrs["end_axis"]) == (mask, 1, 3)
        np.testing.assert_allclose(attrs["anchors"], config["anchors"])
        h, w = tf[f"t{i}"].shape[1:3]
        assert got[i].shape == (1, len(mask) * (config["coords"] + 1 + config["classes"]), h, w)  # NCHW
        # the region reads the tensor feeding the entry point (the convolution before its bias)
        close(got[i], region_yolo(tf[f"t{i}"], config["coords"], config["classes"], config["num"], False, mask))


# ------------------------------------------------------------------------------------------
# The barrier SSD: DetectionOutput over the three cut heads


def detection_output(loc: np.ndarray, conf: np.ndarray, priors: np.ndarray, attrs: dict) -> np.ndarray:
    """Caffe's DetectionOutput (shared locations, centre-size codes, background 0, no top_k) in
    numpy: the detections as rows [0, label, conf, x_min, y_min, x_max, y_max], sorted."""
    boxes, variances = priors[0, 0].reshape(-1, 4), priors[0, 1].reshape(-1, 4)
    loc = loc.reshape(-1, 4).astype(np.float64)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + variances[:, :2] * loc[:, :2] * size
    half = np.exp(variances[:, 2:] * loc[:, 2:]) * size / 2
    decoded = np.concatenate([centre - half, centre + half], axis=1)
    area = np.prod(decoded[:, 2:] - decoded[:, :2], axis=1)
    scores = conf.reshape(len(boxes), -1)
    found = []
    for label in range(1, scores.shape[1]):
        kept: list[int] = []
        for i in sorted(np.flatnonzero(scores[:, label] > attrs["confidence_threshold"]),
                        key=lambda i: -scores[i, label]):
            lo = np.maximum(decoded[kept, :2], decoded[i, :2])
            hi = np.minimum(decoded[kept, 2:], decoded[i, 2:])
            inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
            if np.all(inter / (area[kept] + area[i] - inter) <= attrs["nms_threshold"]):
                kept.append(i)
        found += [(scores[i, label], label, i) for i in kept]
    found = sorted(found, reverse=True)[:attrs["keep_top_k"]]
    rows = [[0, label, score, *decoded[i]] for score, label, i in found]
    return np.array(sorted(rows), dtype=np.float64).reshape(-1, 7)


def test_barrier_detection_output_is_mos_over_the_three_heads(converted):
    xml, tf = converted[BARRIER]
    assert output_names(xml) == [{"DetectionOutput_", "DetectionOutput_:0"}]
    model = ov.Core().read_model(str(xml))
    node = model.outputs[0].get_node().input_value(0).get_node()
    assert node.get_type_name() == "DetectionOutput" and node.get_friendly_name() == "DetectionOutput_"
    attrs = node.get_attributes()
    custom = BARRIER_CONFIG["custom_attributes"]
    # mo 2024.6's IR of this config writes exactly these (its defaults and the config's values)
    assert {k: attrs[k] for k in ("background_label_id", "top_k", "variance_encoded_in_target", "code_type",
                                  "share_location", "clip_after_nms", "clip_before_nms", "decrease_label_id",
                                  "normalized", "input_height", "input_width")} == {
        "background_label_id": 0, "top_k": -1, "variance_encoded_in_target": False, "code_type": custom["code_type"],
        "share_location": True, "clip_after_nms": False, "clip_before_nms": False, "decrease_label_id": False,
        "normalized": True, "input_height": 1, "input_width": 1}
    assert list(attrs["keep_top_k"]) == [custom["keep_top_k"]]
    assert attrs["nms_threshold"] == pytest.approx(custom["nms_threshold"])
    assert attrs["confidence_threshold"] == pytest.approx(custom["confidence_threshold"])
    out, = run(xml, tf["x"])
    assert out.shape == (1, 1, custom["keep_top_k"], 7)  # the card's [1, 1, N, 7], N = 200
    rows = out[0, 0]
    end = int(np.flatnonzero(rows[:, 0] == -1)[0])  # the row after the last detection
    got = np.array(sorted(rows[:end].tolist()))
    want = detection_output(tf["t0"], tf["t1"], tf["t2"], custom)
    np.testing.assert_array_equal(tf["t2"], barrier_priors())  # (the graph's priors are the ones we made)
    assert 5 <= len(want) < custom["keep_top_k"]  # (enough detections to mean something, NMS included)
    close(got, want)


# ------------------------------------------------------------------------------------------
# The same descriptor through the Model Optimizer 2024.6 (the first run converts; both compare)


def interface(model) -> list:
    """What a user of the IR sees: the outputs (names, shapes) and the op before each output with
    its attributes."""
    ports = []
    for p in model.outputs:
        op = p.get_node().input_value(0).get_node()
        attrs = {k: (list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
                 for k, v in op.get_attributes().items()}
        ports.append(("out", sorted(p.get_names()), str(p.get_partial_shape()), op.get_type_name(),
                      op.get_friendly_name(), attrs))
    return ports


@pytest.mark.parametrize("model", MO_COMPARED)
def test_the_ir_is_the_model_optimizers(converted, mo_converted, model):
    xml, tf = converted[model]
    theirs = mo_converted[model]
    ours_model, mo_model = (ov.Core().read_model(str(x)) for x in (xml, theirs))
    assert interface(ours_model) == interface(mo_model)
    for mine, mo in zip(ours_model.inputs, mo_model.inputs, strict=True):  # (ovc adds `input_1` to `input_1:0`)
        assert mo.get_names() <= mine.get_names() and mine.get_partial_shape() == mo.get_partial_shape()
    for got, want in zip(run(xml, tf["x"]), run(theirs, tf["x"])):
        close(got, want)  # (the barrier's rows come in the same order too)


# ------------------------------------------------------------------------------------------
# The plan and refusals


def _v3(**changes) -> str:
    custom = {**CASES["yolo-v3-tf"].config["custom_attributes"], **changes}
    return json.dumps([{"id": "TFYOLOV3", "match_kind": "general", "custom_attributes": custom}])


@pytest.mark.parametrize("config,says", [
    (json.dumps([{"id": "ObjectDetectionAPISSDPostprocessorReplacement", "custom_attributes": {}}]),
     "cfg.json is mo's ObjectDetectionAPISSDPostprocessorReplacement transformation, which has no equivalent in the "
     "ovc backend (supported: SSDToolboxDetectionOutput, TFYOLO, TFYOLOV3)"),
    (_v3(entry_points=["conv2d_58/BiasAdd", "conv2d_66/BiasAdd", "conv2d_99/BiasAdd"]),
     "entry point conv2d_99/BiasAdd of "),
    (_v3(masks=[[6, 7, 8], [3, 4, 5]]), "TFYOLOV3 needs one mask per entry point (3 entry points, masks "),
    (_v3(anchors="10,13"), "anchors must be a list of numbers (got '10,13')"),
    ("{not json", "cfg.json is not JSON: "),
], ids=["another-transformation", "missing-entry-point", "masks", "anchors", "not-json"])
def test_a_downloaded_config_that_cannot_be_honoured_is_one_line_naming_it(tmp_path, config, says):
    pb, _, _ = files("yolo-v3-tf")
    zoo, dl = tmp_path / "zoo", tmp_path / "dl" / "public" / "odd"
    dl.mkdir(parents=True)
    (dl / "g.pb").write_bytes(pb.read_bytes())
    (dl / "cfg.json").write_text(config)
    write_model(zoo, "odd", [{"name": "g.pb", "data": pb.read_bytes(), "url": "http://127.0.0.1:9/g.pb"},
                             {"name": "cfg.json", "data": config.encode(), "url": "http://127.0.0.1:9/cfg.json"}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/g.pb", "--scale_values=input_1[255]",
                                                      "--transformations_config=$dl_dir/cfg.json"])
    result = run_tool("converter", "--models_dir", zoo, "--name", "odd", "-d", tmp_path / "dl", "-o",
                      tmp_path / "ir", "--backend", "ovc")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].startswith("modelzoo-converter: error: odd: --transformations_config: "), lines[0]
    assert says in lines[0] and lines[0].endswith("(ovc backend, model odd)"), lines[0]
    assert lines[1] == "modelzoo-converter: failed: odd"
    assert not (tmp_path / "ir" / "public" / "odd").exists()


def test_barrier_heads_that_do_not_fit_are_one_line(tmp_path):
    """A config whose start points name the heads in another order (confidences as locations):
    DetectionOutput's shapes do not fit, and the model fails in one line naming it."""
    pb, _, _ = files(BARRIER)
    swapped = json.loads(json.dumps(BARRIER_CONFIG))
    points = swapped["instances"]["start_points"]
    points[0], points[1] = points[1], points[0]
    args, pb_name, config_name = DESCRIPTORS[BARRIER]
    zoo, dl = tmp_path / "zoo", tmp_path / "dl" / "public" / BARRIER
    for name, data in ((pb_name, pb.read_bytes()), (config_name, json.dumps([swapped]).encode())):
        (dl / name).parent.mkdir(parents=True, exist_ok=True)
        (dl / name).write_bytes(data)
    write_model(zoo, BARRIER, [{"name": n, "data": (dl / n).read_bytes(), "url": f"http://127.0.0.1:9/{n}"}
                               for n in (pb_name, config_name)], framework="tf", model_optimizer_args=args)
    result = run_tool("converter", "--models_dir", zoo, "--name", BARRIER, "-d", tmp_path / "dl", "-o",
                      tmp_path / "ir", "--backend", "ovc")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].startswith(f"modelzoo-converter: error: {BARRIER}: SSDToolboxDetectionOutput over "), lines[0]
    assert not (tmp_path / "ir" / "public" / BARRIER).exists()
