"""The strict descriptor loader, through the real info_dumper CLI and the loader itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, one_error_line, run_tool

from modelzoo.descriptor import GoogleDriveSource, HttpSource, InputInfo, Model, load_model
from modelzoo.errors import DescriptorError

CHECKSUM = "ab" * 48
GOOD = f"""\
description: a model
task_type: detection
files:
  - name: model.pb
    size: 10
    checksum: {CHECKSUM}
    source: https://example.com/model.pb
  - name: extra.tar.gz
    size: 20
    checksum: {CHECKSUM}
    source: https://example.com/extra.tar.gz
postprocessing:
  - $type: unpack_archive
    file: extra.tar.gz
    format: gztar
model_optimizer_args:
  - --input_model=$dl_dir/model.pb
  - --transformations_config=${{mo_ext_dir}}/front/tf/x.json
framework: tf
license: https://example.com/LICENSE
"""

# (what to change, expected key path, expected words)
BROKEN = {
    "wrong type": (GOOD.replace("size: 10", "size: '10'"), "files[0].size", "expected a non-negative integer"),
    "negative size": (GOOD.replace("size: 10", "size: -1"), "files[0].size", "got -1"),
    "bad checksum": (GOOD.replace(CHECKSUM, "abc", 1), "files[0].checksum", "expected 96 hex digits"),
    "absolute name": (GOOD.replace("name: model.pb", "name: /etc/passwd"), "files[0].name", "relative path"),
    "climbing name": (GOOD.replace("name: model.pb", "name: ../../x.pb"), "files[0].name", "'..'"),
    "unknown placeholder": (GOOD.replace("$dl_dir", "$download_dir"), "model_optimizer_args[0]",
                            "unknown placeholder $download_dir"),
    "postproc of unknown file": (GOOD.replace("file: extra.tar.gz", "file: other.tar.gz"), "postprocessing[0].file",
                                 "not one of the files"),
    "yaml tag": (GOOD.replace("description: a model", "description: !!python/name:os.system ''"), "line 1",
                 "YAML tags are not allowed"),
    "duplicate key": (GOOD + "framework: onnx\n", "line 21", "duplicate key 'framework'"),
    "not a mapping": ("- just\n- a list\n", None, "expected a mapping at the top level, got a list"),
    "missing key": (GOOD.replace("description: a model\n", ""), "description", "required key is missing"),
    "bad framework": (GOOD.replace("framework: tf", "framework: caffe2"), "framework", "expected one of"),
    "bad url": (GOOD.replace("https://example.com/model.pb", "ftp://example.com/model.pb"), "files[0].source",
                "http:// or https:// URL"),
    "url with a space": (GOOD.replace("https://example.com/model.pb", "'https://example.com/my model.pb'"),
                         "files[0].source", "http:// or https:// URL"),
    "alias": (GOOD.replace("license: https://example.com/LICENSE", "license: &l https://example.com/LICENSE\n"
                           "quantized: *l"), "line 21", "aliases are not allowed"),
    "bad regex": (GOOD.replace("""  - $type: unpack_archive
    file: extra.tar.gz
    format: gztar""", """  - $type: regex_replace
    file: model.pb
    pattern: '(unclosed'
    replacement: x"""), "postprocessing[0].pattern", "invalid regular expression"),
    "bad archive format": (GOOD.replace("format: gztar", "format: rar"), "postprocessing[0].format", "expected one of"),
    "duplicate file": (GOOD.replace("name: extra.tar.gz", "name: model.pb").replace("file: extra.tar.gz",
                                                                                     "file: model.pb"),
                       "files[1].name", "duplicate file name"),
    "name key": (GOOD + "name: other\n", "name", "not allowed"),
    # what PyYAML or Python itself refuse, still one line naming the file
    "control character": (GOOD.replace("description: a model", "description: a \x01 model"), None,
                          "characters are not allowed"),
    "integer too long to convert": (GOOD.replace("size: 10", "size: " + "9" * 5000), None, "4300"),
    "huge negative integer": (GOOD.replace("size: 10", "size: -0x" + "f" * 4000), "files[0].size",
                              "got an integer of about 4816 digits"),
    "nested too deeply": (GOOD + "model_info:\n  labels: " + "[" * 5000 + "]" * 5000 + "\n", None,
                          "nest"),  # libyaml: "exceeded maximum nesting depth"; Python's: "nested too deeply"
}


def _zoo_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "zoo" / "public" / "broken-model"
    folder.mkdir(parents=True)
    (folder / "model.yml").write_text(text)
    return tmp_path / "zoo"


def test_records_compare_by_kind_and_value_and_share_no_defaults():
    """The records are plain classes and NamedTuples (start-up time): what a dataclass gave
    must still hold."""
    assert HttpSource("x") == HttpSource("x") and hash(HttpSource("x")) == hash(HttpSource("x"))
    assert HttpSource("x") != HttpSource("y")
    assert HttpSource("x") != GoogleDriveSource("x") and GoogleDriveSource("x") != HttpSource("x")
    assert len({HttpSource("x"), GoogleDriveSource("x"), HttpSource("x")}) == 2
    assert InputInfo("data") == InputInfo("data", (), "")
    facts = dict(subdirectory=Path("public/m"), config_path=Path("m.yml"), description="d", framework="tf",
                 license_url="https://example.com", task_type="detection", precisions=frozenset({"FP32"}))
    a, b = Model(name="a", **facts), Model(name="b", **facts)
    assert (a.files, a.postprocessing, a.input_info, a.model_info, a.stages, a.warnings) == ([], [], [], {}, [], [])
    assert a.quantization_output_precisions == [] and a.mo_args is None and a.quantizable is None
    a.files.append("f"), a.warnings.append("w"), a.model_info.update(k=1), a.stages.append(b)
    assert (b.files, b.warnings, b.model_info, b.stages) == ([], [], {}, [])  # nothing shared between models


def test_good_descriptor_loads(tmp_path):
    zoo = _zoo_with(tmp_path, GOOD)
    model = load_model(zoo / "public/broken-model/model.yml", zoo)
    assert model.name == "broken-model" and str(model.subdirectory) == "public/broken-model"
    assert [str(f.name) for f in model.files] == ["model.pb", "extra.tar.gz"]
    assert model.files[0].source == HttpSource("https://example.com/model.pb")
    assert model.precisions == {"FP16", "FP32"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_descriptor_is_one_line_naming_file_and_key(tmp_path, case):
    text, key, words = BROKEN[case]
    zoo = _zoo_with(tmp_path, text)
    config = zoo / "public/broken-model/model.yml"
    with pytest.raises(DescriptorError) as info:
        load_model(config, zoo)
    assert info.value.path == str(config)
    if key is not None:
        assert info.value.key == key
    assert words in info.value.problem

    # by default the model fails (one error line, then the failure summary), exit 1
    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "broken-model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error, summary = result.stderr.splitlines()
    prefix = f"modelzoo-info: error: {config}: " + (f"{key}: " if key else "")
    assert error.startswith(prefix), error
    assert words in error
    assert summary == "modelzoo-info: failed: broken-model"
    assert json.loads(result.stdout) == []

    # --strict refuses the run as a whole: one line, exit 2, nothing on stdout
    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "broken-model", "--strict")
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(prefix) and words in line, line
    assert result.stdout == ""


UNKNOWN_KEYS = {
    # where, replaced by what, the key path named in the warning
    "top level": ("license: https://example.com/LICENSE\n", "license: https://example.com/LICENSE\ncolour: blue\n",
                  "colour"),
    "in a file": ("    source: https://example.com/model.pb\n",
                  "    source: https://example.com/model.pb\n    oroginal_source: https://example.com/o.pb\n",
                  "files[0].oroginal_source"),
    "in a step": ("    format: gztar\n", "    format: gztar\n    strip: 1\n", "postprocessing[0].strip"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_KEYS))
def test_unknown_key_is_a_warning_and_strict_refuses_it(tmp_path, case):
    old, new, key = UNKNOWN_KEYS[case]
    assert old in GOOD
    zoo = _zoo_with(tmp_path, GOOD.replace(old, new, 1))
    config = zoo / "public/broken-model/model.yml"

    model = load_model(config, zoo)
    [warning] = model.warnings
    assert (warning.path, warning.key) == (str(config), key) and "unknown key, ignored" in warning.problem
    assert [str(f.name) for f in model.files] == ["model.pb", "extra.tar.gz"]  # the model still loads
    with pytest.raises(DescriptorError) as info:
        load_model(config, zoo, strict=True)
    assert info.value.key == key and "unknown key" in info.value.problem

    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "broken-model")
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"modelzoo-info: warning: {config}: {key}: unknown key, ignored"), line
    assert [m["name"] for m in json.loads(result.stdout)] == ["broken-model"]

    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "broken-model", "--strict")
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"modelzoo-info: error: {config}: {key}: unknown key (")
    assert result.stdout == ""


def test_unknown_key_suggests_the_known_one(tmp_path):
    zoo = _zoo_with(tmp_path, GOOD.replace("    source: https://example.com/model.pb\n",
                                           "    source: https://example.com/model.pb\n    orignal_source: x\n"))
    [warning] = load_model(zoo / "public/broken-model/model.yml", zoo).warnings
    assert "did you mean 'original_source'?" in warning.problem


def test_known_keys_stay_strict_next_to_an_unknown_one(tmp_path):
    """An unknown key does not loosen anything else: a bad value beside it still fails the model."""
    text = GOOD.replace("size: 10", "size: -1") + "colour: blue\n"
    zoo = _zoo_with(tmp_path, text)
    with pytest.raises(DescriptorError) as info:
        load_model(zoo / "public/broken-model/model.yml", zoo)
    assert info.value.key == "files[0].size"


def test_unknown_model_info_key_is_not_passed_on(tmp_path):
    text = GOOD + "model_info:\n  model_type: ssd\n  colour: blue\n"
    zoo = _zoo_with(tmp_path, text)
    model = load_model(zoo / "public/broken-model/model.yml", zoo)
    assert model.model_info == {"model_type": "ssd"}
    assert [w.key for w in model.warnings] == ["model_info.colour"]


def test_shipped_retinanet_descriptor_values():
    result = run_tool("info_dumper", "--name", "retinanet-tf")
    assert result.returncode == 0, result.stderr
    [info] = json.loads(result.stdout)
    assert info["name"] == "retinanet-tf" and info["framework"] == "tf" and info["task_type"] == "detection"
    assert info["subdirectory"] == "public/retinanet-tf"
    assert info["precisions"] == ["FP16", "FP32"]
    assert info["license_url"] == "https://raw.githubusercontent.com/fizyr/keras-retinanet/master/LICENSE"
    assert Path(info["model_config"]) == REPO / "models/public/retinanet-tf/model.yml"

    model = load_model(REPO / "models/public/retinanet-tf/model.yml", REPO / "models")
    [f] = model.files
    assert str(f.name) == "retinanet_resnet50_coco_best_v2.1.0.pb"
    assert f.size == 152890076
    assert f.sha384 == ("0f51df51f4a58c5e0fe65e9ed69f7bb07819e73ebf975c86783e7a176634357b"
                        "15c212a839c80a31f99a751c88d21683")
    assert f.source == HttpSource("https://storage.openvinotoolkit.org/repositories/open_model_zoo/public/2022.1/"
                                  "retinanet-tf/retinanet_resnet50_coco_best_v2.1.0.pb")
    assert model.mo_args == [
        "--input_shape=[1,1333,1333,3]",
        "--input=input_1",
        "--mean_values=[103.939,116.779,123.68]",
        "--output=filtered_detections/map/TensorArrayStack/TensorArrayGatherV3,"
        "filtered_detections/map/TensorArrayStack_1/TensorArrayGatherV3,"
        "filtered_detections/map/TensorArrayStack_2/TensorArrayGatherV3",
        "--transformations_config=$mo_ext_dir/front/tf/retinanet.json",
        "--input_model=$dl_dir/retinanet_resnet50_coco_best_v2.1.0.pb",
    ]
    assert model.quantizable is True


def test_coco_class_file():
    lines = (REPO / "data/dataset_classes/coco_80cl_bkgr.txt").read_text().splitlines()
    assert len(lines) == 81
    assert lines[0] == "background"
    assert lines[1] == "person" and lines[2] == "bicycle" and lines[80] == "toothbrush"
    assert len(set(lines)) == 81


def test_composite_model(tmp_path):
    zoo = tmp_path / "zoo"
    top = zoo / "intel" / "combo"
    for stage in ("combo-encoder", "combo-decoder"):
        (top / stage).mkdir(parents=True)
        (top / stage / "model.yml").write_text(f"""\
description: {stage}
task_type: detection
files:
  - name: FP32/{stage}.xml
    size: 1
    checksum: {CHECKSUM}
    source: https://example.com/{stage}.xml
  - name: FP32/{stage}.bin
    size: 1
    checksum: {CHECKSUM}
    source: https://example.com/{stage}.bin
framework: dldt
license: https://example.com/LICENSE
""")
    composite = """\
description: two stages
task_type: detection
framework: dldt
license: https://example.com/LICENSE
stages_order:
  - combo-encoder
  - combo-decoder
"""
    (top / "composite-model.yml").write_text(composite)
    result = run_tool("info_dumper", "--models_dir", zoo, "--all")
    assert result.returncode == 0, result.stderr
    [info] = json.loads(result.stdout)
    assert info["name"] == "combo" and info["precisions"] == ["FP32"]
    assert [s["name"] for s in info["model_stages"]] == ["combo-encoder", "combo-decoder"]
    assert info["model_stages"][0]["composite_model_name"] == "combo"
    # a stage can be selected on its own
    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "combo-dec*")
    assert [i["name"] for i in json.loads(result.stdout)] == ["combo-decoder"]
    # a stage named in stages_order must exist
    (top / "composite-model.yml").write_text(composite + "  - combo-postproc\n")
    result = run_tool("info_dumper", "--models_dir", zoo, "--all", "--strict")
    assert result.returncode == 2
    assert "stages_order[2]: no stage folder combo-postproc/model.yml" in one_error_line(result)
    # without --strict the composite fails, and so does a stage selected through it
    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "combo,combo-encoder")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "modelzoo-info: failed: combo, combo-encoder"
    assert json.loads(result.stdout) == []


@pytest.mark.skipif(not __import__("yaml").__with_libyaml__, reason="PyYAML without libyaml has one loader only")
def test_libyaml_and_pure_python_loaders_agree(tmp_path, monkeypatch):
    """With libyaml the loader parses in C; without it, in Python. Same verdicts either way (for
    two texts both refuse in their own words: a control character, nesting too deep)."""
    import modelzoo.strict_yaml as strict_yaml

    worded_apart = {"control character", "nested too deeply"}
    verdicts = {}
    for fast in (True, False):
        monkeypatch.setattr(strict_yaml, "_LIBYAML", fast)
        for case, (text, _, _) in sorted(BROKEN.items()) + [("good", (GOOD, None, None))]:
            zoo = _zoo_with(tmp_path / f"{case}-{fast}", text)
            try:
                verdicts.setdefault(case, []).append(load_model(zoo / "public/broken-model/model.yml", zoo).files)
            except DescriptorError as exc:
                verdicts.setdefault(case, []).append("refused" if case in worded_apart else (exc.key, exc.problem))
    assert all(a == b for a, b in verdicts.values()), verdicts
    assert all(verdicts[case] == ["refused", "refused"] for case in worded_apart)
    # and the two runs really used two parsers: they word a control character differently
    problems = []
    for fast in (True, False):
        monkeypatch.setattr(strict_yaml, "_LIBYAML", fast)
        with pytest.raises(strict_yaml.YamlProblem) as info:
            strict_yaml.load("a: \x01\n")
        problems.append(info.value.problem)
    assert "control characters" in problems[0] and "special characters" in problems[1], problems


def test_info_dumper_reports_quantization_output_precisions_and_the_accuracy_config(tmp_path):
    """omz's schema key appears where a descriptor has it (and only there, as omz_info_dumper's
    output has no such key for its models); the shipped retinanet-tf names its accuracy-check.yml."""
    zoo = _zoo_with(tmp_path, GOOD + "quantization_output_precisions: [FP32-INT8, FP16-INT8]\n")
    result = run_tool("info_dumper", "--models_dir", zoo, "--name", "broken-model")
    assert result.returncode == 0, result.stderr
    [info] = json.loads(result.stdout)
    assert info["quantization_output_precisions"] == ["FP16-INT8", "FP32-INT8"]
    assert info["accuracy_config"] is None
    [shipped] = json.loads(run_tool("info_dumper", "--name", "retinanet-tf").stdout)
    assert "quantization_output_precisions" not in shipped
    assert shipped["accuracy_config"].endswith("public/retinanet-tf/accuracy-check.yml")
    assert Path(shipped["accuracy_config"]).is_file()
