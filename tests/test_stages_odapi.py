"""The Object Detection API and EfficientDet output stages (convert/stages/odapi.py,
efficientdet.py), through the real converter.

Open Model Zoo's own descriptors of the eight OD API models and the two AutoML EfficientDets
(openvino-dev 2024.6's omz_tools), copied with their files pointed at small synthetic graphs that
carry the tensors and node names the stages read (odapi_graphs.py), converted with
`converter.py --backend ovc --all` in one run; the IR's detections are compared with TensorFlow's
outputs of the same graph on the same picture, and its inputs and outputs with what each model's
card and `accuracy-check.yml` name.

CI runs this file in both converter environments: the first (TensorFlow, openvino-dev's
omz_tools) builds the zoo copy, the graphs and TensorFlow's outputs into
`$MODELZOO_OVC_REFERENCE/odapi` (ovc_reference.py), the second converts the same zoo with the
newest OpenVINO and compares with those outputs.
"""

from __future__ import annotations

from pathlib import Path

import json
import os
import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import yaml
from conftest import run_tool, write_model
from odapi_graphs import OUTPUTS
from ovc_reference import can_prepare, reference_dir

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
CONFIGS = {"ssd_v2_support.json": "ssd", "faster_rcnn_support.json": "faster_rcnn",
           "rfcn_support.json": "rfcn", "mask_rcnn_support.json": "mask_rcnn"}
# The converted model's outputs as the cards (models/public/<name>/README.md of Open Model Zoo) give
# them: name and shape ([1,1,N,7] rows [image_id, label, conf, x_min, y_min, x_max, y_max]).
CARD_OUTPUTS = {
    "ssd": {"DetectionOutput": [1, 1, 100, 7]},
    "faster_rcnn": {"reshape_do_2d": [1, 1, 100, 7]},
    "rfcn": {"reshape_do_2d": [1, 1, 100, 7]},
    "mask_rcnn": {"reshape_do_2d": [100, 7], "masks": [100, 90, 33, 33]},
}
CONFIG_OF = {"efficientdet": "front/tf/automl_efficientdet.json"}
MO_NODE = {"ssd": "DetectionOutput", "faster_rcnn": "detection_output", "rfcn": "detection_output",
           "mask_rcnn": "reshape_do_2d"}
NO_BACKGROUND = "ssd-without-background"  # an SSD trained with add_background_class: false
EFFICIENTDETS = ("efficientdet-d0-tf", "efficientdet-d1-tf")


def _omz() -> Path:
    from modelzoo.devtools.peer import omz_models_root  # (openvino-dev's: the first environment only)

    return omz_models_root()


def _odapi_models() -> dict[str, str]:
    """Every OD API descriptor of Open Model Zoo: name -> family."""
    found = {}
    for yml in sorted(_omz().glob("public/*/model.yml")):
        args = " ".join(yaml.safe_load(yml.read_text()).get("model_optimizer_args") or [])
        for config, family in CONFIGS.items():
            if f"front/tf/{config}" in args:
                found[yml.parent.name] = family
    return found


def _arg(args: list[str], flag: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(flag + "="))


def _pipeline_text(family: str, background: bool = True) -> str:
    """Enough of a pipeline.config for the stages (they read num_classes and add_background_class)."""
    arch = "ssd" if family == "ssd" else "faster_rcnn"
    extra = "" if background else "    add_background_class: false\n"
    return f"model {{\n  {arch} {{\n    num_classes: 90  # COCO\n{extra}  }}\n}}\n"


def _prepare(ref: Path) -> None:
    """The zoo copy (Open Model Zoo's descriptors and accuracy configs, files pointed at synthetic
    graphs), the graphs, the pictures and TensorFlow's outputs on them (the first environment)."""
    from odapi_graphs import efficientdet_graph_def, odapi_pb, tf_outputs, tf_run

    zoo, dl, tf = ref / "zoo", ref / "dl", ref / "tf"
    models = _odapi_models()
    assert sorted(models.values()) == sorted(["ssd"] * 3 + ["faster_rcnn"] * 2 + ["rfcn"] + ["mask_rcnn"] * 2)
    models[NO_BACKGROUND] = "ssd"
    models.update({name: "efficientdet" for name in EFFICIENTDETS})
    tf.mkdir(parents=True)
    for seed, (name, family) in enumerate(models.items()):
        source = _omz() / "public" / ("ssd_mobilenet_v1_coco" if name == NO_BACKGROUND else name)
        doc = yaml.safe_load((source / "model.yml").read_text())
        args, shape = doc["model_optimizer_args"], doc["input_info"][0]["shape"]
        picture = np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)
        if family == "efficientdet":
            assert f"--transformations_config=$mo_ext_dir/{CONFIG_OF['efficientdet']}" in args
            pb = dl / "public" / name / doc["files"][0]["name"]
            pb.parent.mkdir(parents=True)
            pb.write_bytes(efficientdet_graph_def(seed, shape[1]))
            files = [pb]
            values = tf_run(pb, {"image_arrays": picture}, ("detections", "valid_detections"))
        else:
            graph = _arg(args, "--input_model").replace("$dl_dir/", "")
            config = _arg(args, "--tensorflow_object_detection_api_pipeline_config").replace("$dl_dir/", "")
            pb = odapi_pb(dl / "public" / name / graph, seed, mask_size=33 if family == "mask_rcnn" else 0)
            (dl / "public" / name / config).write_text(_pipeline_text(family, name != NO_BACKGROUND))
            files = [pb, dl / "public" / name / config]
            values = tf_outputs(pb, picture[0], OUTPUTS + (("detection_masks",) if family == "mask_rcnn" else ()))
        entries = [{"name": f.relative_to(dl / "public" / name).as_posix(), "data": f.read_bytes(),
                    "url": "http://127.0.0.1:9/" + f.name} for f in files]
        folder = write_model(zoo, name, entries, framework="tf", model_optimizer_args=args,
                             input_info=doc["input_info"]).parent
        shutil.copy(source / "accuracy-check.yml", folder / "accuracy-check.yml")
        np.savez(tf / f"{name}.npz", picture=picture[0], **values)
    (ref / "models.json").write_text(json.dumps(models))


def _reference() -> Path:
    """The prepared folder: made here when TensorFlow is (once per folder), else a first run's."""
    ref = reference_dir() / "odapi"
    if not ref.exists() and can_prepare():
        tmp = ref.with_name("odapi.part")
        shutil.rmtree(tmp, ignore_errors=True)
        _prepare(tmp)
        os.replace(tmp, ref)
    if not ref.exists():
        pytest.fail(f"{ref} is missing: the first CI environment (TensorFlow) writes it (ovc_reference.py)")
    return ref


@pytest.fixture(scope="module")
def odapi(tmp_path_factory):
    """The reference zoo converted with --backend ovc (FP32), all models in one run."""
    ref = _reference()
    ir = tmp_path_factory.mktemp("odapi") / "ir"
    result = run_tool("converter", "--models_dir", ref / "zoo", "--all", "-d", ref / "dl", "-o", ir, "--backend",
                      "ovc", "--precisions", "FP32", timeout=600)
    assert result.returncode == 0, result.stderr
    models = json.loads((ref / "models.json").read_text())
    return {"zoo": ref / "zoo", "dl": ref / "dl", "tf": ref / "tf", "ir": ir, "result": result,
            "models": {n: f for n, f in models.items() if f != "efficientdet"}}


def _descriptor(odapi: dict, name: str) -> dict:
    return yaml.safe_load((odapi["zoo"] / "public" / name / "model.yml").read_text())


def _accuracy(odapi: dict, name: str) -> dict:
    return yaml.safe_load((odapi["zoo"] / "public" / name / "accuracy-check.yml").read_text())["models"][0]


def _tf(odapi: dict, name: str) -> dict[str, np.ndarray]:
    with np.load(odapi["tf"] / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def _expected(tf: dict[str, np.ndarray], label_offset: float) -> np.ndarray:
    """TensorFlow's outputs as DetectionOutput rows: [0, label, conf, x/y boxes]; -1 after the last, zeros on."""
    n = len(tf["detection_scores"][0])
    count = int(tf["num_detections"][0])
    rows = np.zeros((n, 7), np.float32)
    y0, x0, y1, x1 = tf["detection_boxes"][0, :count].T
    rows[:count, 1] = tf["detection_classes"][0, :count] - label_offset
    rows[:count, 2] = tf["detection_scores"][0, :count]
    rows[:count, 3:] = np.stack([x0, y0, x1, y1], axis=1)
    if count < n:
        rows[count, 0] = -1
    return rows


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_every_od_api_model_computes_what_tensorflow_computes(odapi):
    for name, family in odapi["models"].items():
        shape = _descriptor(odapi, name)["input_info"][0]["shape"]
        tf = _tf(odapi, name)
        picture = tf["picture"]
        assert 0 < tf["num_detections"][0] < 100, name  # both kinds of rows are there: detections and padding
        model = ov.Core().read_model(str(odapi["ir"] / "public" / name / "FP32" / f"{name}.xml"))
        inputs = {"image_tensor": picture[None, ..., ::-1].astype(np.float32)}  # --reverse_input_channels: BGR
        if family != "ssd":
            inputs["image_info"] = np.array([[shape[1], shape[2], 1]], np.float32)
        got = ov.Core().compile_model(model, "CPU", F32)(inputs)
        detections = got[0].reshape(-1, 7)
        expected = _expected(tf, 1.0 if name == NO_BACKGROUND else 0.0)
        _close(detections, expected)
        count = int(tf["num_detections"][0])
        assert (detections[:count, 0] == 0).all() and detections[count, 0] == -1 and not detections[count + 1:].any()
        if family == "mask_rcnn":
            masks = got["masks"]
            want = np.zeros((100, 90, 33, 33), np.float32)
            for i in range(count):
                want[i, int(tf["detection_classes"][0, i]) - 1] = tf["detection_masks"][0, i]
            _close(masks, want)


def test_the_interface_is_the_cards_and_the_accuracy_configs(odapi):
    for name, family in odapi["models"].items():
        [image] = _descriptor(odapi, name)["input_info"]
        model = ov.Core().read_model(str(odapi["ir"] / "public" / name / "FP32" / f"{name}.xml"))
        picture = model.input("image_tensor")
        assert list(picture.get_shape()) == image["shape"] and picture.get_element_type() == ov.Type.f32
        assert str(picture.get_node().get_layout()) == "[N,H,W,C]"
        outputs = {n: list(port.get_shape()) for port in model.outputs for n in port.get_names()}
        assert {n: outputs.get(n) for n in CARD_OUTPUTS[family]} == CARD_OUTPUTS[family], name
        made_by = model.outputs[0].get_node().input_value(0).get_node().get_friendly_name()
        assert made_by == MO_NODE[family]  # the node's name in mo 2024.6's IR (ObjectDetectionAPI.py)
        assert len(model.outputs) == len(CARD_OUTPUTS[family])
        assert not {n for port in model.outputs for n in port.get_names()} & {*OUTPUTS, "detection_masks"}
        [launcher] = _accuracy(odapi, name)["launchers"]
        const_inputs = {i["name"]: i["value"] for i in launcher.get("inputs", []) if i["type"] == "CONST_INPUT"}
        assert len(model.inputs) == 1 + len(const_inputs)  # the picture, and image_info where the config feeds it
        for input_name, value in const_inputs.items():  # image_info [[H, W, 1]]: what the picture is
            assert list(model.input(input_name).get_shape()) == list(np.array(value).shape)
            assert value == [[image["shape"][1], image["shape"][2], 1]]
        adapter = launcher["adapter"]
        if isinstance(adapter, dict):  # mask_rcnn: the outputs it reads, by name
            assert adapter["type"] == "mask_rcnn" and family == "mask_rcnn"
            assert {adapter["detection_out"], adapter["raw_masks_out"]} == set(CARD_OUTPUTS[family])
        else:
            assert adapter == "ssd" and len(model.outputs) == 1  # the ssd adapter reads the one [.., 7] output


def test_dry_run_shows_the_od_api_outputs_and_the_stage(odapi):
    result = run_tool("converter", "--models_dir", odapi["zoo"], "--name", "faster_rcnn_resnet50_coco",
                      "-d", odapi["dl"], "--backend", "ovc", "--dry_run")
    assert result.returncode == 0, result.stderr
    [plan] = [x for x in result.stdout.splitlines() if x.startswith("Conversion (ovc): ")]
    assert "input=[('image_tensor', [1, 600, 1024, 3], 'f32')]" in plan  # (the graph's uint8 placeholder)
    assert "output=['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections']" in plan
    assert "the output stage of mo's front/tf/faster_rcnn_support.json" in plan


@pytest.mark.parametrize("drop,named", [
    ("--tensorflow_object_detection_api_pipeline_config", "--transformations_config: front/tf/ssd_v2_support.json"),
    ("--transformations_config", "--tensorflow_object_detection_api_pipeline_config=/"),  # (the path as expanded)
])
def test_a_pipeline_config_without_its_transformation_config_and_back_is_one_line(odapi, tmp_path, drop, named):
    """mo needed both: the OD API config without the pipeline config (or the reverse) is refused by name."""
    zoo = tmp_path / "zoo"
    doc = _descriptor(odapi, "ssd_mobilenet_v1_coco")
    args = [a for a in doc["model_optimizer_args"] if not a.startswith(drop + "=")]
    write_model(zoo, "ssd-half", [{"name": "g.pb", "data": b"x", "url": "http://127.0.0.1:9/g.pb"}],
                framework="tf", model_optimizer_args=args, input_info=doc["input_info"])
    result = run_tool("converter", "--models_dir", zoo, "--name", "ssd-half", "-d", odapi["dl"], "-o",
                      tmp_path / "ir", "--backend", "ovc", "--dry_run")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"modelzoo-converter: error: ssd-half: {named}") and "pipeline" in lines[0]
    assert lines[1] == "modelzoo-converter: failed: ssd-half"
    assert not (tmp_path / "ir").exists()


def _by_class(rows: np.ndarray) -> np.ndarray:
    """Rows by label, then best first (DetectionOutput keeps its per-class order when it keeps every detection)."""
    return rows[np.lexsort((-rows[:, 2], rows[:, 1]))]


@pytest.mark.parametrize("name", EFFICIENTDETS)
def test_efficientdet_detects_what_tensorflow_detects(odapi, name):
    """The stage's anchors, decoding and DetectionOutput against the graph's own decoding and
    TensorFlow's CombinedNonMaxSuppression (the op no frontend converts) on the same picture."""
    size = _descriptor(odapi, name)["input_info"][0]["shape"][1]
    tf = _tf(odapi, name)
    picture = tf["picture"][None]
    count = int(tf["valid_detections"][0])
    assert 0 < count < 100
    d = tf["detections"][0, :count]  # [image_id, y_min, x_min, y_max, x_max (pixels), score, class 1-based]
    expected = np.stack([np.zeros(count), d[:, 6] - 1, d[:, 5], d[:, 2] / size, d[:, 1] / size, d[:, 4] / size,
                         d[:, 3] / size], axis=1).astype(np.float32)
    xml = odapi["ir"] / "public" / name / "FP32" / f"{name}.xml"
    out = ov.Core().compile_model(str(xml), "CPU", F32)(picture[..., ::-1].astype(np.float32))[0][0, 0]
    assert (out[:count, 0] == 0).all() and (out[count] == [-1, 0, 0, 0, 0, 0, 0]).all() and not out[count + 1:].any()
    _close(_by_class(out[:count]), _by_class(expected))


@pytest.mark.parametrize("name", EFFICIENTDETS)
def test_efficientdet_interface_is_the_cards(odapi, name):
    """The card: input `image_arrays/placeholder_port_0` [1,H,W,3] BGR; output `detections` [1,1,100,7]
    with 0-based labels (accuracy-check.yml shifts them by 1 for its 90 classes without background)."""
    [image] = _descriptor(odapi, name)["input_info"]
    model = ov.Core().read_model(str(odapi["ir"] / "public" / name / "FP32" / f"{name}.xml"))
    [picture] = model.inputs
    assert {"image_arrays", "image_arrays/placeholder_port_0"} <= picture.get_names()
    assert list(picture.get_shape()) == image["shape"] and picture.get_element_type() == ov.Type.f32
    [out] = model.outputs
    assert out.get_names() == {"detections"} and list(out.get_shape()) == [1, 1, 100, 7]
    assert out.get_node().input_value(0).get_node().get_type_name() == "DetectionOutput"
    types = {op.get_type_name() for op in model.get_ordered_ops()}
    assert "Interpolate" not in types and "Pad" not in types  # the resizing and padding is taken out, as by mo
    config = _accuracy(odapi, name)
    assert config["launchers"][0]["adapter"] == "ssd"
    assert {"type": "shift_labels", "offset": 1} in config["datasets"][0]["postprocessing"]


def test_a_graph_that_is_not_an_od_api_graph_is_one_line_and_no_ir(odapi, tmp_path):
    """An SSD descriptor whose file is not an OD API graph (EfficientDet's: no image_tensor, no
    detection_* tensors, post-processing no frontend converts): one line naming what is missing,
    nothing at -o."""
    zoo, dl = tmp_path / "zoo", tmp_path / "dl"
    doc = _descriptor(odapi, "ssd_mobilenet_v1_coco")
    args = doc["model_optimizer_args"]
    graph = _arg(args, "--input_model").replace("$dl_dir/", "")
    config = _arg(args, "--tensorflow_object_detection_api_pipeline_config").replace("$dl_dir/", "")
    (dl / "public/ssd-wrong" / graph).parent.mkdir(parents=True)
    effdet = _descriptor(odapi, EFFICIENTDETS[0])["files"][0]["name"]
    shutil.copy(odapi["dl"] / "public" / EFFICIENTDETS[0] / effdet, dl / "public/ssd-wrong" / graph)
    (dl / "public/ssd-wrong" / config).write_text(_pipeline_text("ssd"))
    write_model(zoo, "ssd-wrong", [{"name": graph, "data": b"x", "url": "http://127.0.0.1:9/g.pb"}],
                framework="tf", model_optimizer_args=args, input_info=doc["input_info"])
    result = run_tool("converter", "--models_dir", zoo, "--name", "ssd-wrong", "-d", dl, "-o", tmp_path / "ir",
                      "--backend", "ovc", timeout=300)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("modelzoo-converter: error: ssd-wrong: ") and "image_tensor" in lines[0], lines[0]
    assert lines[1] == "modelzoo-converter: failed: ssd-wrong"
    assert not any((tmp_path / "ir").rglob("*.xml")) and not any((tmp_path / "ir").rglob("*.bin"))


# ------------------------------------------------------------------------------------------
# The plan (in-process: what the ovc backend will ask of the conversion, before converting)


def test_the_plan_converts_the_od_api_outputs_with_a_float_picture(tmp_path):
    from modelzoo.convert import ovc

    ext = "/mo/extensions"
    p = ovc.plan("m", ["--framework=tf", "--input=image_tensor", "--output=detection_scores,num_detections",
                       f"--transformations_config={ext}/front/tf/mask_rcnn_support.json",
                       f"--tensorflow_object_detection_api_pipeline_config={tmp_path}/pipeline.config",
                       "--input_model=g.pb", "--input_shape=[1,800,1365,3]"], ext)
    assert p.output_stage == "front/tf/mask_rcnn_support.json" and p.pipeline_config == tmp_path / "pipeline.config"
    assert p.outputs == [*OUTPUTS, "detection_masks"]  # what the stage reads, whatever --output said
    assert [(i.name, i.shape, i.element_type) for i in p.inputs] == [("image_tensor", [1, 800, 1365, 3], "f32")]
    e = ovc.plan("e", ["--input=image_arrays", f"--transformations_config={ext}/{CONFIG_OF['efficientdet']}",
                       "--input_model=e.pb"], ext)
    assert e.outputs == ["concat", "concat_1"] and e.inputs[0].element_type == "f32" and e.pipeline_config is None


def test_pipeline_config_values_are_read_as_protobuf_text():
    from modelzoo.convert.stages.odapi import pipeline_value

    text = ("model {\n  ssd {\n    # add_background_class: true\n    num_classes: 90\n"
            "    add_background_class: false\n    box_coder { faster_rcnn_box_coder { y_scale: 10.0 } }\n  }\n}\n")
    assert pipeline_value(text, "num_classes") == "90"
    assert pipeline_value(text, "add_background_class") == "false"  # (the commented line is not read)
    assert pipeline_value(text, "y_scale") == "10.0"
    assert pipeline_value(text, "scale") is None and pipeline_value(text, "missing") is None
