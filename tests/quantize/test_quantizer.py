"""modelzoo-quantizer (tools/downloader/quantizer.py) through its real command line: NNCF on the
rebuilt retinanet-tf's FP32 IR (256x256), the INT8 IR checked in OpenVINO, its accuracy measured
by modelzoo-accuracy."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from conftest import SCRIPTS, one_error_line, run_tool
from ovc_reference import SIZE, mo_ir
from qtools import MODEL, _workdir, coco, coco_folder, rebuilt, rebuilt_ir  # noqa: F401 (fixtures)

from modelzoo.devtools.cocoset import ir_detector
from modelzoo.convert.quantize import postprocessing_nodes
from modelzoo.resources import demo_picture_path
from modelzoo.verify import file_digest

COMPUTE = {"Convolution", "GroupConvolution", "MatMul"}


def quantize(zoo: Path, ir: Path, out: Path, *args, **kw):
    return run_tool("quantizer", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", ir, "-o", out, *args,
                    timeout=900, **kw)


@functools.cache
def quantized() -> dict:
    """FP16-INT8 and FP32-INT8 of the rebuilt graph, calibrated on the COCO-format folder."""
    built = rebuilt_ir()
    out = _workdir() / "int8"
    result = quantize(built["zoo"], built["ir"], out, "--dataset", coco_folder(), "--precisions",
                      "FP16-INT8,FP32-INT8")
    assert result.returncode == 0, result.stderr
    return {"out": out, "result": result}


def ops_of(xml: Path) -> list:
    return list(ov.Core().read_model(str(xml)).get_ops())


def test_the_ir_holds_int8_and_the_output_stage_stays_in_float(rebuilt):
    q = quantized()
    folder = q["out"] / MODEL
    assert sorted(p.name for p in folder.iterdir()) == ["FP16-INT8", "FP32-INT8"]  # no staging left
    for precision in ("FP16-INT8", "FP32-INT8"):
        assert sorted(p.name for p in (folder / precision).iterdir()) == [
            "quantization.json", "retinanet-tf.bin", "retinanet-tf.xml"]
    ops = ops_of(folder / "FP16-INT8" / "retinanet-tf.xml")
    fq = [op for op in ops if op.get_type_name() == "FakeQuantize"]
    int8_weights = [op for op in ops if op.get_type_name() == "Constant"
                    and op.get_output_element_type(0).get_type_name() == "i8"]
    assert len(fq) > 50 and len(int8_weights) > 50
    tail = set(postprocessing_nodes(ov.Core().read_model(str(rebuilt["fp32"]))))
    assert len(tail) > 20
    for op in fq:  # nothing after the last convolution is quantized or fed by a quantized value
        consumers = {t.get_node().get_friendly_name() for out in op.outputs() for t in out.get_target_inputs()}
        assert op.get_friendly_name() not in tail and not consumers & tail, (op.get_friendly_name(), consumers)
    loops = [op for op in ops if op.get_type_name() == "Loop"]
    assert loops and all(op.get_friendly_name() in tail for op in loops)
    for loop in loops:  # NMS and the output stage inside the Loop stay float
        assert not any(o.get_type_name() == "FakeQuantize" for o in loop.get_function().get_ops())
    fp32_bin = rebuilt["fp32"].with_suffix(".bin").stat().st_size
    int8_bin = (folder / "FP32-INT8" / "retinanet-tf.bin").stat().st_size
    assert int8_bin < 0.35 * fp32_bin
    assert (folder / "FP16-INT8" / "retinanet-tf.bin").stat().st_size <= int8_bin


def test_quantization_json_says_what_was_done(rebuilt, coco):
    q = quantized()
    record = json.loads((q["out"] / MODEL / "FP16-INT8" / "quantization.json").read_text())
    import nncf

    assert record["nncf"] == nncf.__version__ and record["openvino"] == ov.get_version()
    assert record["precision"] == "FP16-INT8" and record["options"]["preset"] == "performance"
    assert record["input_ir"]["xml_sha384"] == file_digest(rebuilt["fp32"])[1]
    assert record["input_ir"]["bin_sha384"] == file_digest(rebuilt["fp32"].with_suffix(".bin"))[1]
    assert record["calibration"]["images"] == 8 and len(record["calibration"]["files_sha384"]) == 96
    accuracy = record["accuracy"]
    assert accuracy["metric"] == "coco_precision" and accuracy["drop"] == pytest.approx(
        accuracy["fp32"] - accuracy["int8"])
    assert f"drop {100 * accuracy['drop']:.2f} points" in q["result"].stdout


def test_int8_runs_on_int8_kernels_and_keeps_detections(rebuilt):
    """What holds on any CPU: the compiled INT8 IR executes its convolutions in 8 bits (the plugin's
    runtime precision), and its detections on a picture agree with FP32's better than the FP32 IR's
    own detections of another picture do: the bar is measured in the same run, not assumed.
    Speed is the benchmark's business (bench/quantize.py), never a test's."""
    from PIL import Image

    int8 = quantized()["out"] / MODEL / "FP16-INT8" / "retinanet-tf.xml"
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(int8)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    precisions = {op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ops()
                  if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    assert precisions & {"i8", "u8"}, precisions
    picture = np.asarray(Image.open(demo_picture_path()).convert("RGB"))[:, :, ::-1]
    fp32_dets = ir_detector(rebuilt["fp32"], SIZE)(picture)
    int8_dets = ir_detector(int8, SIZE)(picture)
    other_dets = ir_detector(rebuilt["fp32"], SIZE)(np.ascontiguousarray(picture[::-1, ::-1]))
    best = fp32_dets[np.argsort(-fp32_dets[:, 1], kind="stable")][:20]
    assert len(best) == 20

    def found(d: np.ndarray, dets: np.ndarray) -> bool:
        same = dets[dets[:, 0] == d[0]][:, 2:6]
        x1, y1 = np.maximum(d[2], same[:, 0]), np.maximum(d[3], same[:, 1])
        x2, y2 = np.minimum(d[4], same[:, 2]), np.minimum(d[5], same[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = (d[4] - d[2]) * (d[5] - d[3]) + (same[:, 2] - same[:, 0]) * (same[:, 3] - same[:, 1]) - inter
        return bool((inter / union >= 0.5).any())

    kept = sum(found(d, int8_dets) for d in best)
    chance = sum(found(d, other_dets) for d in best)  # what agreement by chance looks like here
    assert kept > chance, (kept, chance)


def measured(zoo: Path, ir: Path, precision: str, coco: Path, tmp: Path) -> float:
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", ir,
                      "--precisions", precision, "--dataset", coco, "--json", tmp / f"{precision}.json")
    assert result.returncode == 0, result.stderr
    return next(r["value"] for r in json.loads((tmp / f"{precision}.json").read_text())
                if r["metric"] == "coco_precision")


def test_max_drop_keeps_its_promise(rebuilt, coco, tmp_path):
    out = tmp_path / "out"
    result = quantize(rebuilt["zoo"], rebuilt["ir"], out, "--dataset", coco, "--max_drop", "0.05")
    assert result.returncode == 0, result.stderr
    drop = measured(rebuilt["zoo"], rebuilt["ir"], "FP32", coco, tmp_path) - measured(
        rebuilt["zoo"], out, "FP16-INT8", coco, tmp_path)
    assert drop <= 0.05
    record = json.loads((out / MODEL / "FP16-INT8" / "quantization.json").read_text())
    assert record["options"]["max_drop"] == 0.05 and record["accuracy"]["drop"] <= 0.05
    assert abs(record["accuracy"]["drop"] - drop) < 0.002  # the same measurement (FP16 vs f32 storage)


@pytest.mark.slow
def test_max_drop_that_needs_operations_back_in_float(rebuilt, coco, tmp_path):
    """A budget below the plain INT8 drop: NNCF's accuracy control puts operations back into float
    until the accuracy tool measures the drop within it (minutes: it ranks every group)."""
    out = tmp_path / "out"
    result = quantize(rebuilt["zoo"], rebuilt["ir"], out, "--dataset", coco, "--max_drop", "0.005",
                      "--max_iterations", "40")
    if result.returncode == 0:
        drop = measured(rebuilt["zoo"], rebuilt["ir"], "FP32", coco, tmp_path) - measured(
            rebuilt["zoo"], out, "FP16-INT8", coco, tmp_path)
        assert drop <= 0.005
    else:
        assert result.returncode == 1 and "cannot be met" in one_error_line(result)
        assert not out.exists()


def test_a_budget_that_cannot_be_met_writes_nothing(rebuilt, coco, tmp_path):
    """The budget comes from what this run measured, never from a number assumed for every CPU
    (INT8's drop differs between AMX, VNNI and AVX2 machines): half the plain INT8 drop that the
    same calibration gave here, so plain INT8 (--max_iterations 0) cannot meet it. Where INT8
    lost nothing on this CPU no budget is below its drop; then every convolution is kept in float
    (--ignored_scope), which leaves no operation in INT8 and cannot meet any budget either."""
    q = json.loads((quantized()["out"] / MODEL / "FP16-INT8" / "quantization.json").read_text())
    drop = q["accuracy"]["drop"]
    out = tmp_path / "out"
    if drop > 0:
        budget = repr(drop / 2)
        extra: list[str] = []
        expected = f"--max_drop {float(budget):g} cannot be met: the INT8 IR loses "
    else:
        budget = "0"
        convolutions = [op.get_friendly_name() for op in ops_of(rebuilt["fp32"])
                        if op.get_type_name() in COMPUTE]
        extra = [arg for name in convolutions for arg in ("--ignored_scope", name)]
        expected = "--max_drop 0 cannot be met with any operation in INT8"
    result = quantize(rebuilt["zoo"], rebuilt["ir"], out, "--dataset", coco, "--max_drop", budget,
                      "--max_iterations", "0", *extra)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert line.startswith(f"modelzoo-quantizer: error: retinanet-tf: {expected}"), line
    assert line.endswith("nothing written"), line
    assert not out.exists()


def test_images_without_annotations_and_a_subset_larger_than_the_folder(rebuilt, coco, tmp_path):
    out = tmp_path / "out"
    result = quantize(rebuilt["zoo"], rebuilt["ir"], out, "--images", coco / "val2017", "--subset", "50",
                      "--precisions", "FP32-INT8")
    assert result.returncode == 0, result.stderr
    assert one_error_line(result) == ("modelzoo-quantizer: warning: --subset 50: there are only 8 images; "
                                      "calibrating on all of them")
    assert "8 calibration images" in result.stdout and "drop" not in result.stdout
    record = json.loads((out / MODEL / "FP32-INT8" / "quantization.json").read_text())
    assert record["accuracy"] is None and record["calibration"]["images"] == 8
    assert any(op.get_type_name() == "FakeQuantize" for op in ops_of(out / MODEL / "FP32-INT8" / "retinanet-tf.xml"))


def test_the_mo_backends_ir_keeps_detection_output_in_float(rebuilt, coco, tmp_path):
    ir = tmp_path / "ir"
    shutil.copytree(mo_ir(), ir / MODEL)
    out = tmp_path / "out"
    result = quantize(rebuilt["zoo"], ir, out, "--images", coco / "val2017", "--subset", "4")
    assert result.returncode == 0, result.stderr
    ops = ops_of(out / MODEL / "FP16-INT8" / "retinanet-tf.xml")
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 50
    [detection_output] = [op for op in ops if op.get_type_name() == "DetectionOutput"]
    for value in detection_output.input_values():  # its inputs are float computations, no FakeQuantize
        assert value.get_node().get_type_name() != "FakeQuantize"
        assert value.get_element_type().get_type_name() in ("f32", "f16")


def int8_ir_dir(tmp_path: Path) -> Path:
    ir = tmp_path / "int8-as-fp32"
    (ir / MODEL).mkdir(parents=True)
    shutil.copytree(quantized()["out"] / MODEL / "FP32-INT8", ir / MODEL / "FP32")
    return ir


@pytest.mark.parametrize("case,code,needle", [
    ("missing folder", 2, "no such image folder"),
    ("empty folder", 2, "no images in the folder"),
    ("not an image", 2, "000000000003.png: not an image"),
    ("not coco", 2, "not a COCO annotation file: images[0]: needs an integer id and a file_name"),
    ("image not there", 2, "which is not in"),
    ("already int8", 1, "already INT8"),
    ("inputs do not match", 1, "is 256x256 (HxW), but"),
    ("no fp32 ir", 1, "no such IR"),
    ("unknown ignored node", 1, "--ignored_scope no_such_node: the IR has no node of that name"),
    ("int8 name only", 2, "--precisions FP32: the quantizer writes FP16-INT8, FP32-INT8"),
])
def test_bad_input_is_one_line_and_nothing_at_o(rebuilt, coco, tmp_path, case, code, needle):
    images = tmp_path / "images"
    shutil.copytree(coco / "val2017", images)
    zoo, ir = rebuilt["zoo"], rebuilt["ir"]
    ann = tmp_path / "ann.json"
    doc = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    args = ["--images", str(images)]
    if case == "missing folder":
        args = ["--images", str(tmp_path / "nowhere")]
    elif case == "empty folder":
        shutil.rmtree(images)
        images.mkdir()
    elif case == "not an image":
        (images / "000000000003.png").write_bytes(b"\x89PNG but not really")
    elif case == "not coco":
        doc["images"][0] = {"name": "x"}
        ann.write_text(json.dumps(doc))
        args += ["--annotations", str(ann)]
    elif case == "image not there":
        (images / "000000000007.png").unlink()
        args += ["--annotations", str(coco / "annotations" / "instances_val2017.json")]
    elif case == "already int8":
        ir = int8_ir_dir(tmp_path)
    elif case == "inputs do not match":
        zoo = tmp_path / "zoo"
        shutil.copytree(rebuilt["zoo"], zoo)
        yml = zoo / MODEL / "accuracy-check.yml"
        yml.write_text(yml.read_text().replace("size: 256", "size: 320"))
    elif case == "no fp32 ir":
        ir = tmp_path / "empty-ir"
    elif case == "unknown ignored node":
        args += ["--ignored_scope", "no_such_node"]
    elif case == "int8 name only":
        args += ["--precisions", "FP32"]
    out = tmp_path / "out"
    result = quantize(zoo, ir, out, *args)
    assert result.returncode == code, result.stderr
    line = one_error_line(result)
    assert line.startswith("modelzoo-quantizer: error: ") and needle in line, line
    assert not out.exists()


def test_ctrl_c_during_calibration(rebuilt, coco, tmp_path):
    images = tmp_path / "many"
    images.mkdir()
    for copy in range(40):
        for picture in sorted((coco / "val2017").iterdir()):
            os.link(picture, images / f"{copy:03d}-{picture.name}")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "quantizer.py"), "--models_dir", str(rebuilt["zoo"]),
                             "--name", "retinanet-tf", "--ir_dir", str(rebuilt["ir"]), "-o", str(out),
                             "--images", str(images)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("Quantizing retinanet-tf")
    time.sleep(2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 30
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line.strip()] == ["modelzoo-quantizer: interrupted"]
    assert not out.exists()


def test_offline_quantizes_in_a_namespace_without_network(rebuilt, coco, tmp_path):
    """--offline like the other commands: the whole run (NNCF, OpenVINO, the accuracy pipeline)
    inside a network namespace with no interface, and a bad MODELZOO_OFFLINE refused first."""
    assert os.geteuid() == 0, "unshare -n needs root (CI runs as root; so must these tests)"
    out = tmp_path / "out"
    args = ["--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--ir_dir", rebuilt["ir"], "-o", out,
            "--images", coco / "val2017", "--subset", "2", "--precisions", "FP32-INT8"]
    bad = run_tool("quantizer", *args, env={"MODELZOO_OFFLINE": "maybe"})
    assert bad.returncode == 2
    assert one_error_line(bad) == "modelzoo-quantizer: error: MODELZOO_OFFLINE='maybe': expected 1 (offline) or 0"
    assert not out.exists()
    result = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPTS / "quantizer.py"), *map(str, args),
                             "--offline"], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    xml = out / MODEL / "FP32-INT8" / "retinanet-tf.xml"
    assert any(op.get_type_name() == "FakeQuantize" for op in ops_of(xml))


def test_a_job_in_a_process_of_its_own_gives_the_same_ir(rebuilt, tmp_path):
    """-j 2: the model is quantized as a job of the local-process executor (executors.py, the seam
    a cluster engine plugs into): the same INT8 IR, byte for byte, as the run in this process;
    a job's own error keeps its line and exit code."""
    q = quantized()
    out = tmp_path / "out"
    result = quantize(rebuilt["zoo"], rebuilt["ir"], out, "--dataset", coco_folder(), "--precisions",
                      "FP16-INT8,FP32-INT8", "-j", "2")
    assert result.returncode == 0, result.stderr
    for precision in ("FP16-INT8", "FP32-INT8"):
        ours, theirs = out / MODEL / precision, q["out"] / MODEL / precision
        assert (ours / "retinanet-tf.bin").read_bytes() == (theirs / "retinanet-tf.bin").read_bytes()
        assert (ours / "retinanet-tf.xml").read_bytes() == (theirs / "retinanet-tf.xml").read_bytes()
    args = ["--images", coco_folder() / "val2017", "--ignored_scope", "no-such-node"]  # refused inside the job
    bad = quantize(rebuilt["zoo"], rebuilt["ir"], tmp_path / "bad", *args, "-j", "2")
    single = quantize(rebuilt["zoo"], rebuilt["ir"], tmp_path / "bad1", *args)
    assert single.returncode == 1 and "no-such-node" in one_error_line(single)
    assert (bad.returncode, one_error_line(bad)) == (single.returncode, one_error_line(single))
    assert not (tmp_path / "bad").exists()
