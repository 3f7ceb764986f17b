"""Classification (issue 26 item 1): modelzoo-accuracy's `classification` adapter, top-k
`accuracy`, the imagenet_1000_classes / imagenet_1001_classes data sets (val.txt) and the
preprocessing the zoo's classifiers use, through the real command line, against Open Model Zoo's
own accuracy_check (openvino-dev 2023.3.0) on the same IR, pictures and yml."""

from __future__ import annotations

import functools
import shutil
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools.imagenetset import classifier_ir, ir_scorer, pictures, write_imagenet_folder
from modelzoo.devtools.peer_accuracy import run_peer

NAME = "tiny-classifier"
METRICS = """        metrics:
          - name: accuracy@top1
            type: accuracy
            top_k: 1
          - name: accuracy@top5
            type: accuracy
            top_k: 5
"""
# 1000 classes as the PyTorch classifiers are checked: Pillow reads RGB, resizes the shorter side
# to 256 (bicubic) and crops 224 at the centre, mean/std as a string
PILLOW_YML = """models:
  - name: tiny-classifier
    launchers:
      - framework: openvino
        adapter: classification
    datasets:
      - name: imagenet_1000_classes
        reader: pillow_imread
        preprocessing:
          - type: resize
            size: 256
            aspect_ratio_scale: greater
            use_pillow: true
            interpolation: BICUBIC
          - type: crop
            size: 224
            use_pillow: true
          - type: normalization
            mean: (123.675, 116.28, 103.53)
            std: (58.395, 57.12, 57.375)
""" + METRICS
# 1001 classes (background at 0) as the TensorFlow ones: OpenCV, the shorter side to 256, a
# centre crop, BGR to RGB, one mean and std for every channel
OPENCV_YML = """models:
  - name: tiny-classifier
    launchers:
      - framework: openvino
        adapter:
          type: classification
    datasets:
      - name: imagenet_1001_classes
        preprocessing:
          - type: resize
            size: 256
            aspect_ratio_scale: greater
          - type: crop
            size: 224
          - type: bgr_to_rgb
          - type: normalization
            mean: 127.5
            std: 127.5
""" + METRICS
# as googlenet-v1-tf: normalized first (floats), then a central_fraction crop and a plain resize
TF_FRACTION_YML = OPENCV_YML.replace("""          - type: resize
            size: 256
            aspect_ratio_scale: greater
          - type: crop
            size: 224
          - type: bgr_to_rgb
          - type: normalization
            mean: 127.5
            std: 127.5
""", """          - type: bgr_to_rgb
          - type: normalization
            mean: 127.5
            std: 127.5
          - type: crop
            central_fraction: 0.875
          - type: resize
            size: 224
""")
# as efficientnet-b0: Pillow's central_fraction crop and bicubic resize on the OpenCV picture
PILLOW_FRACTION_YML = PILLOW_YML.replace("""        reader: pillow_imread
        preprocessing:
          - type: resize
            size: 256
            aspect_ratio_scale: greater
            use_pillow: true
            interpolation: BICUBIC
          - type: crop
            size: 224
            use_pillow: true
""", """        preprocessing:
          - type: bgr_to_rgb
          - type: crop
            central_fraction: 0.875
            use_pillow: True
          - type: resize
            size: 224
            use_pillow: True
            interpolation: BICUBIC
""")
assert len({PILLOW_YML, OPENCV_YML, TF_FRACTION_YML, PILLOW_FRACTION_YML}) == 4  # (the replacements happened)
CASES = {"pillow-1000": PILLOW_YML, "opencv-1001": OPENCV_YML, "fraction-1001": TF_FRACTION_YML,
         "pillow-fraction-1000": PILLOW_FRACTION_YML}


@functools.cache
def classifier_case(name: str) -> dict:
    """zoo (model.yml + accuracy-check.yml), ir/public/tiny-classifier/FP32, an ImageNet-style folder."""
    classes = int(name.rsplit("-", 1)[1])
    root = _workdir() / f"classifier-{name}"
    zoo, ir = root / "zoo", root / "ir"
    folder = write_model(zoo, NAME, [{"name": "FP32/tiny-classifier.xml", "data": b"x", "url": "http://x/a"},
                                     {"name": "FP32/tiny-classifier.bin", "data": b"x", "url": "http://x/b"}],
                         task_type="classification").parent
    (folder / "accuracy-check.yml").write_text(CASES[name])
    xml = classifier_ir(ir / "public" / NAME / "FP32" / f"{NAME}.xml", classes, seed=classes)
    data = write_imagenet_folder(root / "imagenet", pictures(24, seed=classes), ir_scorer(xml),
                                 offset=classes - 1000, seed=classes)
    return {"zoo": zoo, "ir": ir, "xml": xml, "data": data, "yml": folder / "accuracy-check.yml"}


def accuracy(case: dict, *args, **kw):
    return run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", NAME, "--ir_dir", case["ir"],
                    "--precisions", "FP32", *args, **kw)


@pytest.mark.parametrize("name", list(CASES))
def test_top1_and_top5_equal_accuracy_check(name, peer_accuracy_check, tmp_path):
    case = classifier_case(name)
    ours = accuracy(case, "--dataset", case["data"], "--json", tmp_path / "r.json")
    assert ours.returncode == 0, ours.stderr
    records = {r["metric"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert set(records) == {"accuracy@top1", "accuracy@top5"}
    theirs, _, out = run_peer(peer_accuracy_check, case["yml"], NAME, case["xml"], case["data"],
                              case["data"] / "val.txt")
    for metric, record in records.items():
        assert record["images"] == 24
        assert 0 < record["value"] < 1, record  # a number that can move
        assert abs(100 * record["value"] - 100 * theirs[metric]) <= 0.1, (record, out)
    assert records["accuracy@top5"]["value"] >= records["accuracy@top1"]["value"]


def test_top_k_equals_numpy_on_synthetic_scores():
    from modelzoo.accuracy.adapter import classification
    from modelzoo.accuracy.metric import top_k_accuracy

    rng = np.random.default_rng(5)
    scores = rng.random((500, 1001))
    labels = rng.integers(0, 1001, 500)
    labels[::3] = scores[::3].argmax(axis=1)  # some right at top-1
    predictions = [classification(row.astype(np.float32).reshape(1, 1001)) for row in scores.astype(np.float32)]
    for k in (1, 2, 5, 10):
        best = np.argsort(-scores.astype(np.float32), axis=1)[:, :k]
        expected = np.mean([label in row for label, row in zip(labels, best)])
        assert abs(top_k_accuracy(list(labels), predictions, k) - expected) <= 1e-9
    argmax = [classification(np.array([[label]], np.float32), argmax_output=True) for label in labels]
    assert top_k_accuracy(list(labels), argmax, 1) == 1.0


def bad_set(case: dict, tmp: Path, problem: str) -> Path:
    data = tmp / "bad"
    data.mkdir()
    lines = (case["data"] / "val.txt").read_text().splitlines()
    for line in lines:
        name = line.split()[0]
        (data / name).write_bytes((case["data"] / name).read_bytes())
    if problem == "missing":
        (data / lines[3].split()[0]).unlink()
    else:
        lines[3] = lines[3].split()[0] + " 1000"
    (data / "val.txt").write_text("\n".join(lines) + "\n")
    return data


@pytest.mark.parametrize("problem,needle", [("missing", "line 4: names picture 'ILSVRC2012_val_00000004.png'"),
                                            ("label", "line 4: label 1000 is out of range (0..999)")])
def test_bad_val_txt_is_one_line_naming_the_file(problem, needle, tmp_path):
    case = classifier_case("pillow-1000")
    data = bad_set(case, tmp_path, problem)
    result = accuracy(case, "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(data / "val.txt") in line and needle in line, line
    assert not (tmp_path / "r.json").exists()


def test_the_entry_with_the_openvino_launcher_is_measured(tmp_path):
    """Open Model Zoo lists a model twice when it has a framework's launcher and an OpenVINO one
    (efficientnet-b0: tf first): the OpenVINO entry is the one measured, not a refusal."""
    case = classifier_case("pillow-1000")
    zoo = tmp_path / "zoo"
    shutil.copytree(case["zoo"], zoo)
    tf_entry = PILLOW_YML.replace("models:\n", "").replace("framework: openvino", "framework: tf\n        model: m.pb")
    both = "models:\n" + tf_entry + PILLOW_YML.replace("models:\n", "")
    (zoo / "public" / NAME / "accuracy-check.yml").write_text(both)
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", NAME, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", case["data"], "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    assert {r["metric"] for r in json.loads((tmp_path / "r.json").read_text())} == {"accuracy@top1", "accuracy@top5"}


def test_list_supported_needs_no_ir_and_no_data(tmp_path):
    """One line per selected model from its yml alone: yes, or the first entry not implemented
    (an unknown adapter, an unknown option, no yml at all); exit 0, with no IR and no data set."""
    zoo = tmp_path / "zoo"
    ymls = {"a-classifier": PILLOW_YML,
            "b-yolo": PILLOW_YML.replace("adapter: classification", "adapter: narnmt"),
            "c-option": OPENCV_YML.replace("size: 224\n", "size: 224\n            max_square: true\n"),
            "d-no-yml": None,
            "e-composite": "evaluations:\n  - name: e-composite\n    module: custom_evaluators.x.Y\n"}
    for name, text in ymls.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")]).parent
        if text is not None:
            (folder / "accuracy-check.yml").write_text(text.replace("name: tiny-classifier", f"name: {name}"))
    result = run_tool("accuracy_check", "--models_dir", zoo, "--all", "--list_supported")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "a-classifier: yes",
        "b-yolo: no: launchers[].adapter: 'narnmt' is not implemented by modelzoo-accuracy",
        "c-option: no: preprocessing[1] (crop): option 'max_square' is not implemented",
        "d-no-yml: no: no accuracy-check.yml",
        "e-composite: no: evaluations: a composite model's evaluation (several networks and a custom evaluator) is "
        "not implemented by modelzoo-accuracy (one network a model only)"]
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", "b-yolo", "--list_supported")
    assert result.returncode == 0 and result.stdout == "b-yolo: no: launchers[].adapter: 'narnmt' is not " \
        "implemented by modelzoo-accuracy\n", result


def test_the_quantizer_on_the_classifier_keeps_max_drop(tmp_path):
    """modelzoo-quantizer on the small classifier: INT8 inside, and --max_drop held as the accuracy
    tool measures FP32 and INT8 top-1 (no assumption about the drop's value: CPUs differ)."""
    import openvino as ov

    from modelzoo.accuracy.evaluate import is_int8

    case = classifier_case("opencv-1001")
    out = tmp_path / "out"
    result = run_tool("quantizer", "--models_dir", case["zoo"], "--name", NAME, "--ir_dir", case["ir"], "-o", out,
                      "--dataset", case["data"], "--max_drop", "0.05", timeout=900)
    assert result.returncode == 0, result.stderr
    int8 = out / "public" / NAME / "FP16-INT8"
    assert is_int8(ov.Core().read_model(str(int8 / f"{NAME}.xml")))
    top1 = {}
    for ir, precision in ((case["ir"], "FP32"), (out, "FP16-INT8")):
        measured = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", NAME, "--ir_dir", ir,
                            "--precisions", precision, "--dataset", case["data"], "--json", tmp_path / "r.json")
        assert measured.returncode == 0, measured.stderr
        top1[precision] = next(r["value"] for r in json.loads((tmp_path / "r.json").read_text())
                               if r["metric"] == "accuracy@top1")
    record = json.loads((int8 / "quantization.json").read_text())
    assert record["accuracy"]["metric"] == "accuracy@top1"
    assert top1["FP32"] - top1["FP16-INT8"] <= 0.05
    assert abs(record["accuracy"]["drop"] - (top1["FP32"] - top1["FP16-INT8"])) < 1e-9


def test_another_tasks_data_or_metric_is_one_line(tmp_path):
    """A classifier's yml given COCO annotations, or naming a detection metric: one line that
    says so, before any inference (not a traceback from the scorer)."""
    case = classifier_case("pillow-1000")
    images = tmp_path / "images"
    images.mkdir()
    first = sorted(case["data"].glob("*.png"))[0]
    (images / first.name).write_bytes(first.read_bytes())
    coco = {"images": [{"id": 1, "file_name": first.name}], "annotations": [],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    result = accuracy(case, "--images", images, "--annotations", tmp_path / "instances.json")
    assert result.returncode == 1 and "Measuring" not in result.stdout
    assert "names the 'imagenet_1000_classes' data set (imagenet); the data given is a coco set" in \
        one_error_line(result)
    zoo = tmp_path / "zoo"
    shutil.copytree(case["zoo"], zoo)
    (zoo / "public" / NAME / "accuracy-check.yml").write_text(PILLOW_YML.replace("type: accuracy\n            top_k: 5",
                                                                                  "type: coco_precision"))
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", NAME, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", case["data"])
    assert result.returncode == 1 and "Measuring" not in result.stdout
    assert "metrics: 'coco_precision' does not score the 'classification' adapter's classification predictions" \
        in one_error_line(result)


def test_a_folder_of_neither_layout_is_named_as_such(tmp_path):
    """--dataset DIR with pictures but no val.txt (and no COCO layout): the line says what a data
    set folder holds, not that DIR/val2017 is missing."""
    case = classifier_case("pillow-1000")
    data = tmp_path / "pictures"
    shutil.copytree(case["data"], data)
    (data / "val.txt").unlink()
    result = accuracy(case, "--dataset", data)
    assert result.returncode == 2
    assert one_error_line(result).endswith(
        f"{data}: neither a COCO-format folder (val2017/, annotations/instances_val2017.json) nor an ImageNet-style "
        "one (val.txt beside the pictures)")


def test_the_checkers_size_arithmetic(tmp_path):
    """greater truncates the longer side (427x640 -> 256x383); Pillow's crop corner is rounded half
    to even (35 / 2 -> 18), OpenCV's crop floors it (17); central_fraction truncates the window."""
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.accuracy.preprocessing import preprocess

    yml = tmp_path / "accuracy-check.yml"
    no_crop = PILLOW_YML.replace("          - type: crop\n            size: 224\n            use_pillow: true\n", "")
    assert no_crop != PILLOW_YML
    yml.write_text(no_crop)
    config = load_accuracy_config(yml, NAME)
    picture = np.random.default_rng(1).integers(0, 256, (427, 640, 3), dtype=np.uint8)
    assert preprocess(picture, config)[0].shape == (256, 383, 3)
    square = np.arange(259 * 259 * 3, dtype=np.int64).reshape(259, 259, 3).astype(np.uint8)
    for pillow, corner in ((True, 18), (False, 17)):
        yml.write_text(OPENCV_YML.replace("""          - type: resize
            size: 256
            aspect_ratio_scale: greater
""", "").replace("size: 224\n", f"size: 224\n            use_pillow: {str(pillow).lower()}\n")
                       .replace("mean: 127.5", "mean: 0").replace("std: 127.5", "std: 1"))
        cropped, _ = preprocess(square, load_accuracy_config(yml, NAME))
        assert np.array_equal(cropped, square[corner:corner + 224, corner:corner + 224, ::-1].astype(np.float32))
    yml.write_text(TF_FRACTION_YML.replace("          - type: resize\n            size: 224\n", ""))
    assert preprocess(picture, load_accuracy_config(yml, NAME))[0].shape == (373, 560, 3)  # int(427 * .875)


def test_an_aspect_ratio_scale_we_do_not_implement_lists_those_we_do(tmp_path):
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(OPENCV_YML.replace("aspect_ratio_scale: greater", "aspect_ratio_scale: min_ratio"))
    with pytest.raises(AccuracyConfigError, match=r"aspect_ratio_scale 'min_ratio' is not implemented \(implemented: "
                       r"frcnn_keep_aspect_ratio, greater, width, height, fit_to_window, or none\)"):
        load_accuracy_config(yml, NAME)
