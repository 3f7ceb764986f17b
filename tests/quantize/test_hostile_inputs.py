"""Issue 24's hostile inputs to modelzoo-accuracy and the quantizer (and `mirror.py sync --ir
FP16-INT8`'s data set), through their real command lines: outputs that would replace inputs, a
FIFO as the annotations, annotations that are not COCO or are malformed, huge numbers in the
accuracy-check.yml, a corrupt IR, outputs that cannot be written. Each is one line on stderr and
refused before any picture is measured or quantized."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import one_error_line, run_tool
from qtools import MODEL, coco, rebuilt  # noqa: F401 (fixtures)

NAME = "retinanet-tf"
HANG_GUARD = 120  # seconds: far more than a refusal takes; a FIFO read would wait for ever


def accuracy(rebuilt, *args, ir_dir: Path | None = None, zoo: Path | None = None, **kw):
    return run_tool("accuracy_check", "--models_dir", zoo or rebuilt["zoo"], "--name", NAME,
                    "--ir_dir", ir_dir or rebuilt["ir"], "--precisions", "FP32", *args, **kw)


def quantize(rebuilt, out: Path, *args, ir_dir: Path | None = None, **kw):
    kw.setdefault("timeout", 900)
    return run_tool("quantizer", "--models_dir", rebuilt["zoo"], "--name", NAME, "--ir_dir", ir_dir or rebuilt["ir"],
                    "-o", out, "--subset", "2", *args, **kw)


def tool(which: str, rebuilt, tmp: Path, *args, **kw):
    if which == "accuracy_check":
        return accuracy(rebuilt, *args, "--json", tmp / "out" / "r.json", **kw)
    return quantize(rebuilt, tmp / "out", *args, **kw)


def prog(which: str) -> str:
    return "accuracy_check" if which == "accuracy_check" else "modelzoo-quantizer"


def annotations(coco: Path) -> dict:
    return json.loads((coco / "annotations" / "instances_val2017.json").read_text())


def ir_copy(rebuilt, tmp: Path) -> Path:
    """The FP32 IR in a folder of the test's own (so that a run which writes over it harms no other test)."""
    ir = tmp / "ir"
    shutil.copytree(rebuilt["ir"] / MODEL / "FP32", ir / MODEL / "FP32")
    return ir


def no_hang(run, *args, **kw):
    try:
        return run(*args, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {HANG_GUARD} s: the FIFO was opened and waited on")


# hole 3: an output never replaces an input


@pytest.mark.parametrize("flag", ["--detections_out", "--json"])
def test_an_output_naming_the_annotations_is_refused(rebuilt, coco, tmp_path, flag):
    ann = tmp_path / "ann.json"
    shutil.copyfile(coco / "annotations" / "instances_val2017.json", ann)
    before = ann.read_bytes()
    result = accuracy(rebuilt, "--images", coco / "val2017", "--annotations", ann, flag, ann)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"accuracy_check: error: {flag} {ann}: is the input {ann}"), line
    assert "Measuring" not in result.stdout
    assert ann.read_bytes() == before


def test_json_naming_the_ir_xml_is_refused(rebuilt, coco, tmp_path):
    ir = ir_copy(rebuilt, tmp_path)
    xml = ir / MODEL / "FP32" / f"{NAME}.xml"
    before = xml.read_bytes()
    result = accuracy(rebuilt, "--dataset", coco, "--json", xml, ir_dir=ir)
    assert result.returncode == 2, result.stderr
    assert f"--json {xml}: is the input {xml}" in one_error_line(result)
    assert xml.read_bytes() == before and "Measuring" not in result.stdout


def test_an_output_that_is_a_link_to_an_input_or_another_output_is_refused(rebuilt, coco, tmp_path):
    ann = tmp_path / "ann.json"
    shutil.copyfile(coco / "annotations" / "instances_val2017.json", ann)
    os.link(ann, tmp_path / "hard.json")
    (tmp_path / "soft.json").symlink_to(ann)
    for link in ("hard.json", "soft.json"):
        result = accuracy(rebuilt, "--images", coco / "val2017", "--annotations", ann,
                          "--detections_out", tmp_path / link)
        assert result.returncode == 2, result.stderr
        assert f"--detections_out {tmp_path / link}: is the input {ann}" in one_error_line(result)
    both = tmp_path / "both.json"
    result = accuracy(rebuilt, "--dataset", coco, "--json", both, "--detections_out", both)
    assert result.returncode == 2, result.stderr
    assert f"--detections_out {both}: is also --json {both}" in one_error_line(result)
    assert not both.exists()


def test_the_quantizer_does_not_replace_a_folder_that_holds_its_annotations(rebuilt, coco, tmp_path):
    out = tmp_path / "out"
    ann = out / MODEL / "FP16-INT8" / "ann.json"
    ann.parent.mkdir(parents=True)
    shutil.copyfile(coco / "annotations" / "instances_val2017.json", ann)
    result = quantize(rebuilt, out, "--images", coco / "val2017", "--annotations", ann)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"modelzoo-quantizer: error: -o {out / MODEL / 'FP16-INT8'}: this run replaces that "
                           f"folder, which holds the input {ann}"), line
    assert ann.is_file() and sorted(p.name for p in ann.parent.iterdir()) == ["ann.json"]


# hole 5: a FIFO as --annotations


@pytest.mark.parametrize("which", ["accuracy_check", "quantizer"])
def test_a_fifo_as_annotations_is_refused_not_waited_on(rebuilt, coco, tmp_path, which):
    fifo = tmp_path / "ann.json"
    os.mkfifo(fifo)
    result = no_hang(tool, which, rebuilt, tmp_path, "--images", coco / "val2017", "--annotations", fifo,
                     timeout=HANG_GUARD)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result) == (f"{prog(which)}: error: {fifo}: cannot read the annotations: "
                                      "not a regular file")
    assert not (tmp_path / "out").exists()


def test_mirror_sync_int8_refuses_a_fifo_as_annotations(rebuilt, coco, tmp_path):
    fifo = tmp_path / "ann.json"
    os.mkfifo(fifo)
    result = no_hang(run_tool, "mirror", "sync", "--models_dir", rebuilt["zoo"], "--name", NAME,
                     "--to", tmp_path / "dest", "--cache_dir", tmp_path / "cache", "--ir", "FP16-INT8", "--offline",
                     "--images", coco / "val2017", "--annotations", fifo, timeout=HANG_GUARD)
    assert result.returncode == 2, result.stderr
    assert f"{fifo}: cannot read the annotations: not a regular file" in one_error_line(result)
    assert not (tmp_path / "dest").exists() and not (tmp_path / "cache").exists()


# also seen: mirror sync --ir FP16-INT8 checks its pictures before the download


def test_mirror_sync_int8_refuses_a_non_picture_before_any_download(rebuilt, coco, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(coco / "val2017", images)
    (images / "000000000002.png").write_bytes(b"not a picture at all")
    result = run_tool("mirror", "sync", "--models_dir", rebuilt["zoo"], "--name", NAME, "--to", tmp_path / "dest",
                      "--cache_dir", tmp_path / "cache", "--ir", "FP16-INT8", "--offline", "--images", images,
                      timeout=600)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert line == f"modelzoo-mirror: error: {images / '000000000002.png'}: not an image (OpenCV cannot decode it)", line
    assert not (tmp_path / "dest").exists() and not (tmp_path / "cache").exists()


# holes 8 and 9: annotations that are not COCO, or malformed


def _doc_case(doc: dict, case: str) -> str | dict:
    if case == "nan box":
        doc["annotations"][0]["bbox"][2] = float("nan")
    elif case == "infinite box":
        doc["annotations"][1]["bbox"][0] = float("inf")
    elif case == "category twice":
        doc["categories"].append(dict(doc["categories"][0], name="again"))
    elif case == "deep":
        return "[" * 200_000 + "]" * 200_000
    elif case == "image_id a list":
        doc["annotations"][0]["image_id"] = [doc["annotations"][0]["image_id"]]
    elif case == "category_id an object":
        doc["annotations"][0]["category_id"] = {"id": doc["annotations"][0]["category_id"]}
    elif case == "iscrowd yes":
        doc["annotations"][0]["iscrowd"] = "yes"
    return doc


BAD_ANNOTATIONS = [
    ("nan box", "annotations[0]: bbox must be [x, y, width, height], four finite numbers"),
    ("infinite box", "annotations[1]: bbox must be [x, y, width, height], four finite numbers"),
    ("category twice", "categories[80]: category id 1 appears twice"),
    ("deep", "not a COCO annotation file: JSON nested too deep"),
    ("image_id a list", "annotations[0]: image_id [1] is not in images"),
    ("category_id an object", "annotations[0]: category_id {'id': "),
    ("iscrowd yes", "annotations[0]: iscrowd must be 0 or 1 (got 'yes')"),
]


@pytest.mark.parametrize("which", ["accuracy_check", "quantizer"])
@pytest.mark.parametrize("case,needle", BAD_ANNOTATIONS)
def test_annotations_that_are_not_coco_are_one_line(rebuilt, coco, tmp_path, which, case, needle):
    ann = tmp_path / "ann.json"
    made = _doc_case(annotations(coco), case)
    ann.write_text(made if isinstance(made, str) else json.dumps(made))
    assert case != "category twice" or annotations(coco)["categories"][0]["id"] == 1
    assert case != "image_id a list" or annotations(coco)["annotations"][0]["image_id"] == 1
    result = tool(which, rebuilt, tmp_path, "--images", coco / "val2017", "--annotations", ann)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"{prog(which)}: error: {ann}: "), line
    assert needle in line, line
    assert not (tmp_path / "out").exists()


# hole 10: huge numbers in accuracy-check.yml


def zoo_with(rebuilt, tmp: Path, old: str, new: str) -> Path:
    zoo = tmp / "zoo"
    shutil.copytree(rebuilt["zoo"], zoo)
    yml = zoo / MODEL / "accuracy-check.yml"
    text = yml.read_text()
    assert old in text
    yml.write_text(text.replace(old, new, 1))
    return zoo


@pytest.mark.parametrize("old,new,needle", [
    ("pad_type: right_bottom", "pad_type: right_bottom\n            stride: 100000000000000000000",
     "preprocessing[1] (padding): stride 100000000000000000000 is larger than 4096"),
    ("frcnn_keep_aspect_ratio\n            size: 256", "frcnn_keep_aspect_ratio\n            size: 1000000000",
     "preprocessing[0] (resize): size 1000000000 is larger than 4096"),
])
def test_huge_numbers_in_the_yml_are_refused_when_it_is_read(rebuilt, coco, tmp_path, old, new, needle):
    zoo = zoo_with(rebuilt, tmp_path, old, new)
    result = accuracy(rebuilt, "--dataset", coco, "--json", tmp_path / "r.json", zoo=zoo)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert line == f"accuracy_check: error: {zoo / MODEL / 'accuracy-check.yml'}: {needle} (pixels)", line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


# hole 11: a corrupt IR says OpenVINO's reason, and nothing else


def corrupt(rebuilt, tmp: Path, how: str) -> tuple[Path, Path]:
    ir = ir_copy(rebuilt, tmp)
    xml = ir / MODEL / "FP32" / f"{NAME}.xml"
    if how == "bin cut short":
        data = xml.with_suffix(".bin").read_bytes()
        xml.with_suffix(".bin").write_bytes(data[:len(data) // 2])
    else:
        xml.write_text("this is not an IR at all\n")
    return ir, xml


@pytest.mark.parametrize("which", ["accuracy_check", "quantizer"])
@pytest.mark.parametrize("how,reason", [
    ("bin cut short", "Incorrect weights in bin file!"),
    ("xml not xml", "Unable to read the model"),
])
def test_a_corrupt_ir_is_one_line_with_openvinos_reason(rebuilt, coco, tmp_path, which, how, reason):
    ir, xml = corrupt(rebuilt, tmp_path, how)
    result = tool(which, rebuilt, tmp_path, "--dataset", coco, ir_dir=ir)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"{prog(which)}: error: {xml}: not a readable IR: "), line
    assert reason in line and "core.cpp" not in line, line
    assert not (tmp_path / "out").exists()


# hole 12: an output that cannot be written is said before the first inference


@pytest.mark.parametrize("flag", ["--json", "--detections_out"])
@pytest.mark.parametrize("where,needle", [
    ("a folder", "a folder, not a file"),
    ("below a file", "is not a folder"),
])
def test_an_output_that_cannot_be_written_is_refused_before_measuring(rebuilt, coco, tmp_path, flag, where, needle):
    (tmp_path / "file").write_text("x")
    path = tmp_path if where == "a folder" else tmp_path / "file" / "r.json"
    result = accuracy(rebuilt, "--dataset", coco, flag, path)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"accuracy_check: error: {flag} {path}: ") and needle in line, line
    assert "Measuring" not in result.stdout


def test_draw_dir_below_a_file_is_refused_before_measuring(rebuilt, coco, tmp_path):
    (tmp_path / "file").write_text("x")
    result = accuracy(rebuilt, "--dataset", coco, "--draw", "2", "--draw_dir", tmp_path / "file" / "d")
    assert result.returncode == 2, result.stderr
    assert f"--draw_dir {tmp_path / 'file' / 'd'}: {tmp_path / 'file'} is not a folder" in one_error_line(result)
    assert "Measuring" not in result.stdout


def test_a_quantizer_output_below_a_file_is_refused_before_nncf(rebuilt, coco, tmp_path):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out"
    result = quantize(rebuilt, out, "--dataset", coco)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result) == f"modelzoo-quantizer: error: -o {out}: {tmp_path / 'file'} is not a folder"
    assert "Quantizing" not in result.stdout
