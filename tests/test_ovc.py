"""The ovc backend (openvino.convert_model + PrePostProcessor + output stages), end to end
through the real CLIs and the real OpenVINO runtime.

These tests run twice in CI: beside openvino-dev 2024.6 and TensorFlow, and in a second
virtual environment with only the newest OpenVINO from PyPI, on the graphs, TensorFlow outputs
and mo IR that the first run left in $MODELZOO_OVC_REFERENCE (see ovc_reference.py).
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from conftest import SCRIPTS, run_tool, write_model
from ovc_reference import (SIZE, TINY_MEAN, TINY_SCALE, download_reference, ensure_mo_ir, mo_ir, retinanet_pb,
                           retinanet_tf_outputs, tiny_outputs, tiny_pb)

from modelzoo.reference import postprocess, retinanet
from modelzoo.reference.zoo import PB_NAME

MODEL = "public/retinanet-tf"
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@pytest.fixture(scope="session")
def ovc_pipeline(tmp_path_factory):
    """Serve the rebuilt graph from loopback, download it (verified), convert it with --backend ovc."""
    root = tmp_path_factory.mktemp("ovc")
    pb = retinanet_pb()
    zoo, dl = download_reference(pb, root)
    ensure_mo_ir("mo", zoo, dl, "retinanet-tf")
    ir = root / "ir"
    convert = run_tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir,
                       "--backend", "ovc", timeout=600)
    assert convert.returncode == 0, convert.stderr
    return {"root": root, "zoo": zoo, "dl": dl, "ir": ir, "convert": convert}


def read(xml: Path):
    return ov.Core().read_model(str(xml))


def run_ir(xml: Path, image: np.ndarray) -> np.ndarray:
    return ov.Core().compile_model(str(xml), "CPU", F32)(image[None].astype(np.float32))[0][0, 0]


def interface(model) -> list:
    ports = []
    for kind, group in (("in", model.inputs), ("out", model.outputs)):
        for port in group:
            node = port.get_node() if kind == "in" else port.get_node().input_value(0).get_node()
            layout = str(node.get_layout()) if kind == "in" else ""
            ports.append((kind, sorted(port.get_names()), str(port.get_partial_shape()),
                          port.get_element_type().get_type_name(), layout, node.get_friendly_name()))
    return ports


def test_the_backend_is_printed_and_nothing_else_is_left(ovc_pipeline):
    out = ovc_pipeline["convert"].stdout
    assert out.splitlines()[0].startswith("Backend: ovc (openvino.convert_model, OpenVINO ")
    assert "with the ovc backend" in out
    assert ovc_pipeline["convert"].stderr == ""  # quiet: no TensorFlow or OpenVINO chatter
    ir = ovc_pipeline["ir"] / MODEL
    assert sorted(p.name for p in ir.iterdir()) == ["FP16", "FP32"]  # no staging folder left
    for precision in ("FP32", "FP16"):
        assert sorted(p.name for p in (ir / precision).iterdir()) == ["retinanet-tf.bin", "retinanet-tf.xml"]


def test_ovc_ir_has_the_mo_ir_interface(ovc_pipeline):
    for precision in ("FP32", "FP16"):
        ours = read(ovc_pipeline["ir"] / MODEL / precision / "retinanet-tf.xml")
        theirs = read(mo_ir() / precision / "retinanet-tf.xml")
        assert interface(ours) == interface(theirs)
        [inp] = ours.inputs
        assert inp.get_any_name() in ("input_1", "input_1:0") and "input_1" in inp.get_names()
        assert list(inp.get_shape()) == [1, SIZE, SIZE, 3]  # NHWC, as the mo IR
        [out] = ours.outputs
        assert list(out.get_shape()) == [1, 1, 300, 7]
        assert "filtered_detections/map/TensorArrayStack/TensorArrayGatherV3" in out.get_names()
        assert out.get_node().input_value(0).get_node().get_friendly_name() == "DetectionOutput"
    fp32 = (ovc_pipeline["ir"] / MODEL / "FP32/retinanet-tf.bin").stat().st_size
    fp16 = (ovc_pipeline["ir"] / MODEL / "FP16/retinanet-tf.bin").stat().st_size
    assert fp32 > 1.9 * fp16
    types = {op.get_output_element_type(0).get_type_name()
             for op in read(ovc_pipeline["ir"] / MODEL / "FP32/retinanet-tf.xml").get_ops()
             if op.get_type_name() == "Constant"}
    assert "f16" not in types


def detections(out: np.ndarray) -> np.ndarray:
    """Rows before the first image_id -1, above the threshold, best first."""
    end = np.flatnonzero(out[:, 0] < 0)
    rows = out[: end[0] if len(end) else len(out)]
    rows = rows[rows[:, 2] > retinanet.SCORE_THRESHOLD]
    return rows[np.argsort(-rows[:, 2], kind="stable")]


def matches(d: np.ndarray, table: np.ndarray, tol: float, box_tol: float | None = None) -> bool:
    """Is detection d (a row of 7) in table (rows of 7): same label, conf within tol, box within box_tol?"""
    box_tol = tol if box_tol is None else box_tol
    same = (table[:, 1] == d[1]) & (np.abs(table[:, 2] - d[2]) <= tol)
    return bool((same & np.all(np.abs(table[:, 3:7] - d[3:7]) <= box_tol, axis=1)).any())


def tf_table(tf: dict[str, np.ndarray]) -> np.ndarray:
    """TensorFlow's detections as [image_id, label, conf, boxes / input size] rows."""
    keep = tf["scores"] > retinanet.SCORE_THRESHOLD
    n = int(keep.sum())
    rows = np.zeros((n, 7), np.float32)
    rows[:, 1] = tf["labels"][:n]
    rows[:, 2] = tf["scores"][:n]
    rows[:, 3:] = tf["boxes"][:n] / SIZE
    return rows


@pytest.mark.parametrize("precision,tol,need", [("FP32", 1e-3, 100), ("FP16", 2e-2, 98)])
def test_ovc_ir_computes_what_tensorflow_computes(ovc_pipeline, precision, tol, need):
    tf = retinanet_tf_outputs()
    expected = tf_table(tf)
    out = run_ir(ovc_pipeline["ir"] / MODEL / precision / "retinanet-tf.xml", tf["picture"])
    dets = detections(out)
    assert len(expected) >= 100
    if precision == "FP32":
        # the graph's own post-processing, converted: the same list, row for row
        assert len(dets) == len(expected)
        assert (out[len(dets)] == [-1, 0, 0, 0, 0, 0, 0]).all() and not out[len(dets) + 1:].any()
    else:
        assert abs(len(dets) - len(expected)) <= 0.05 * len(expected)
    top = dets[:100]
    assert (top[:, 0] == 0).all()
    found = [matches(d, expected, tol) for d in top]
    assert sum(found) >= need, f"{sum(found)} of the ovc IR's top 100 are TensorFlow's (within {tol})"


def test_ovc_ir_detects_what_the_mo_ir_detects(ovc_pipeline):
    """Same picture, same detections: where the two differ, the mo IR differs from TensorFlow by
    design (mo's DetectionOutput clips boxes after NMS, TensorFlow before), and the ovc IR does not."""
    tf = retinanet_tf_outputs()
    picture = tf["picture"]
    ours = detections(run_ir(ovc_pipeline["ir"] / MODEL / "FP32/retinanet-tf.xml", picture))
    theirs = detections(run_ir(mo_ir() / "FP32/retinanet-tf.xml", picture))
    one_pixel = 1.0 / SIZE + 1e-4  # TF clips at side-1 pixels, mo's DetectionOutput at 1.0
    top = theirs[:100]
    in_ours = [matches(d, ours, 1e-3, one_pixel) for d in top]
    assert sum(in_ours) >= 95, f"{sum(in_ours)} of the mo IR's top 100 are in the ovc IR"
    ir_b, ir_s, ir_l = postprocess.detect_ir_order(tf["regression"], tf["classification"], tf["anchors"], SIZE)
    n = int((ir_s > retinanet.SCORE_THRESHOLD).sum())
    mo_order = np.concatenate([np.zeros((n, 1)), ir_l[:n, None], ir_s[:n, None], ir_b[:n] / SIZE], axis=1)
    for d, found in zip(top, in_ours):
        if not found:  # explained: the numpy reference in mo's order (clip after NMS) makes it
            assert matches(d, mo_order, 1e-3), d


def test_dry_run_shows_the_ovc_plan_and_changes_nothing(ovc_pipeline, tmp_path):
    out = tmp_path / "ir"
    result = run_tool("converter", "--models_dir", ovc_pipeline["zoo"], "--name", "retinanet-tf", "-d",
                      ovc_pipeline["dl"], "-o", out, "--backend", "ovc", "--dry_run")
    assert result.returncode == 0, result.stderr
    plan = next(x for x in result.stdout.splitlines() if x.startswith("Conversion (ovc): "))
    assert f"input=[('input_1', [1, {SIZE}, {SIZE}, 3])]" in plan
    assert "mean [103.939, 116.779, 123.68]" in plan and "output stage of mo's front/tf/retinanet.json" in plan
    real = next(x for x in ovc_pipeline["convert"].stdout.splitlines() if x.startswith("Conversion (ovc): "))
    assert plan == real
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# Translating mo arguments, and refusing what cannot be translated


def tiny_zoo(zoo: Path, dl: Path, name: str, seed: int, mo_args: list[str], **extra) -> None:
    pb = dl / "public" / name / "tiny.pb"
    pb.parent.mkdir(parents=True, exist_ok=True)
    pb.write_bytes(tiny_pb(seed).read_bytes())
    write_model(zoo, name, [{"name": "tiny.pb", "data": pb.read_bytes(), "url": "http://127.0.0.1:9/tiny.pb"}],
                framework="tf", model_optimizer_args=mo_args, **extra)


PREPROCESSING = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--reverse_input_channels",
                 f"--mean_values=x{TINY_MEAN}".replace(" ", ""), f"--scale_values=x{TINY_SCALE}".replace(" ", "")]


def test_mean_scale_and_reverse_channels_mean_what_they_mean_to_mo(tmp_path, zoo):
    dl, ir = tmp_path / "dl", tmp_path / "ir"
    tiny_zoo(zoo, dl, "tiny-pre", 1, PREPROCESSING,
             input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-pre", "-d", dl, "-o", ir, "--backend", "ovc")
    assert result.returncode == 0, result.stderr
    ref = tiny_outputs(1)
    mo_tiny = ensure_mo_ir("tiny-mo", zoo, dl, "tiny-pre")
    for precision, tol in (("FP32", 1e-4), ("FP16", 2e-2)):
        xml = ir / f"public/tiny-pre/{precision}/tiny-pre.xml"
        model = read(xml)
        assert str(model.inputs[0].get_node().get_layout()) == "[N,H,W,C]"  # input_info's layout is kept
        got = ov.Core().compile_model(str(xml), "CPU", F32)(ref["x"])[0]
        np.testing.assert_allclose(got, ref["y_preprocessed"], rtol=tol, atol=tol * np.abs(ref["y"]).max())
        # and the Model Optimizer's IR of the same descriptor computes the same
        mo = ov.Core().compile_model(str(mo_tiny / precision / "tiny-pre.xml"), "CPU", F32)(ref["x"])[0]
        np.testing.assert_allclose(got, mo, rtol=tol, atol=tol * np.abs(ref["y"]).max())


@pytest.mark.parametrize("argument,named", [
    ("--static_shape", "--static_shape"),  # (frozen inputs are honoured now: tests/test_frontend_cuts.py)
    ("--tensorflow_object_detection_api_pipeline_config=$dl_dir/pipeline.config",  # (without an OD API config)
     "--tensorflow_object_detection_api_pipeline_config="),
    ("--input=x[1,8,8,3]{f32}", "--input=x[1,8,8,3]{f32}"),
    ("--batch=2", "--batch=2"),
])
def test_an_argument_ovc_cannot_honour_is_an_error_naming_it_and_the_model(tmp_path, zoo, argument, named):
    dl, ir = tmp_path / "dl", tmp_path / "ir"
    tiny_zoo(zoo, dl, "tiny-odd", 0, ["--input_model=$dl_dir/tiny.pb", "--output=y", argument])
    for extra in ([], ["--dry_run"]):
        result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-odd", "-d", dl, "-o", ir,
                          "--backend", "ovc", *extra)
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
        assert lines[0].startswith("modelzoo-converter: error: tiny-odd: ") and named in lines[0]
        assert "(ovc backend, model tiny-odd)" in lines[0]
        assert lines[1] == "modelzoo-converter: failed: tiny-odd"
    assert not ir.exists()


@pytest.mark.parametrize("config", ["front/tf/ssd_support_api_v1.15.json", "front/tf/yolo_v3.json"])
def test_other_transformation_configs_are_refused_by_name(tmp_path, zoo, config):
    dl = tmp_path / "dl"
    tiny_zoo(zoo, dl, "tiny-cfg", 0, ["--input_model=$dl_dir/tiny.pb", f"--transformations_config=$mo_ext_dir/{config}"])
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-cfg", "-d", dl, "--backend", "ovc")
    assert result.returncode == 1
    line = result.stderr.splitlines()[0]
    assert f"the transformation config {config} has no equivalent in the ovc backend" in line
    assert "front/tf/retinanet.json" in line.split("(supported: ", 1)[1]


def test_placeholders_conv_dir_config_dir_and_models_dir(tmp_path, zoo):
    """$conv_dir (the output folder, where pre-convert steps write), $config_dir (the descriptor's
    folder) and $models_dir (the zoo) each find the file they name."""
    out = tmp_path / "out"
    dl = tmp_path / "dl"
    cases = {"in-conv": ("$conv_dir", out / "public/in-conv"), "in-config": ("$config_dir", zoo / "public/in-config"),
             "in-models": ("$models_dir/public/in-models", zoo / "public/in-models")}
    for name, (placeholder, folder) in cases.items():
        tiny_zoo(zoo, dl, name, 0, [f"--input_model={placeholder}/graph.pb", "--output=y"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "graph.pb").write_bytes(tiny_pb(0).read_bytes())
    dry = run_tool("converter", "--models_dir", zoo, "--all", "-d", dl, "-o", out, "--backend", "ovc", "--dry_run")
    assert dry.returncode == 0, dry.stderr
    for name, (_, folder) in cases.items():
        assert f"--input_model={folder}/graph.pb" in dry.stdout
    result = run_tool("converter", "--models_dir", zoo, "--all", "-d", dl, "-o", out, "--backend", "ovc")
    assert result.returncode == 0, result.stderr
    x = tiny_outputs(0)
    for name in cases:
        got = ov.Core().compile_model(str(out / f"public/{name}/FP32/{name}.xml"), "CPU", F32)(x["x"])[0]
        np.testing.assert_allclose(got, x["y"], rtol=1e-4, atol=1e-3)


def test_auto_picks_mo_when_it_can_be_imported_and_ovc_otherwise(tmp_path, zoo):
    dl = tmp_path / "dl"
    tiny_zoo(zoo, dl, "tiny-auto", 0, ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-auto", "-d", dl, "--dry_run")
    assert result.returncode == 0, result.stderr
    # (asked of this interpreter, not of the product's own convert_mo.available(): the first CI
    # environment has openvino-dev's mo, the second does not, and .ci/run checks it with this same call)
    has_mo = importlib.util.find_spec("openvino.tools.mo") is not None
    expected = "Backend: mo " if has_mo else "Backend: ovc "
    assert result.stdout.startswith(expected)
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-auto", "-d", dl, "--backend", "ovc",
                      "--mo", "/usr/bin/mo")
    assert result.returncode == 2 and "cannot be used with --backend ovc" in result.stderr


# ------------------------------------------------------------------------------------------
# Failures: one line, an exit code, nothing half-written


def test_output_folder_that_is_a_file(tmp_path, zoo):
    dl = tmp_path / "dl"
    tiny_zoo(zoo, dl, "tiny-f", 0, ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    (tmp_path / "afile").write_text("x")
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-f", "-d", dl, "-o", tmp_path / "afile",
                      "--backend", "ovc")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first, last = result.stderr.splitlines()
    assert first.startswith("modelzoo-converter: error: tiny-f: cannot create") and "Not a directory" in first
    assert last == "modelzoo-converter: failed: tiny-f"


def test_missing_python_for_a_helper_script(tmp_path, zoo):
    dl = tmp_path / "dl"
    tiny_zoo(zoo, dl, "tiny-p", 0, ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    (zoo / "public/tiny-p/pre-convert.py").write_text("print('never runs')\n")
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-p", "-d", dl, "--backend", "ovc",
                      "-p", "/nonexistent/python", "--allow_zoo_code")
    assert result.returncode == 1
    first, last = result.stderr.splitlines()
    assert "cannot run pre-convert with /nonexistent/python: No such file or directory" in first
    assert last == "modelzoo-converter: failed: tiny-p"


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # Python ignores SIGXFSZ: writes fail


def test_save_model_failure_is_one_line_and_leaves_the_old_ir(ovc_pipeline, tmp_path):
    ir = tmp_path / "ir"
    (ir / MODEL / "FP32").mkdir(parents=True)
    (ir / MODEL / "FP32/retinanet-tf.xml").write_text("earlier")
    cmd = [sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(ovc_pipeline["zoo"]), "--name",
           "retinanet-tf", "-d", str(ovc_pipeline["dl"]), "-o", str(ir), "--backend", "ovc"]
    # files over 1 MB cannot be written by this process (as on a file system with a size limit)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size)
    assert result.returncode == 1
    first, last = result.stderr.splitlines()
    assert first.startswith(f"modelzoo-converter: error: retinanet-tf: saving {ir / MODEL}/.converting-")
    assert "FP32/retinanet-tf.xml failed: " in first
    assert last == "modelzoo-converter: failed: retinanet-tf"
    assert sorted(p.name for p in (ir / MODEL).iterdir()) == ["FP32"]
    assert (ir / MODEL / "FP32/retinanet-tf.xml").read_text() == "earlier"


def test_full_disk_after_fp32_renames_nothing(ovc_pipeline, tmpfs):
    """The FP32 IR (157 MB) fits, the FP16 IR does not: nothing is renamed, the earlier IR stays."""
    out = tmpfs("200m")
    for p in ("FP32", "FP16"):
        (out / MODEL / p).mkdir(parents=True)
        (out / MODEL / p / "retinanet-tf.xml").write_text(f"earlier {p}")
    result = run_tool("converter", "--models_dir", ovc_pipeline["zoo"], "--name", "retinanet-tf", "-d",
                      ovc_pipeline["dl"], "-o", out, "--backend", "ovc", "--no_space_check",  # (the save meets it)
                      timeout=600)
    assert result.returncode == 1
    first, last = result.stderr.splitlines()
    assert first.startswith("modelzoo-converter: error: retinanet-tf: no space left on device while saving ")
    assert "/FP16/retinanet-tf.xml" in first
    assert sorted(p.name for p in (out / MODEL).iterdir()) == ["FP16", "FP32"]
    for p in ("FP32", "FP16"):
        assert [f.name for f in (out / MODEL / p).iterdir()] == ["retinanet-tf.xml"]
        assert (out / MODEL / p / "retinanet-tf.xml").read_text() == f"earlier {p}"


def test_an_ir_that_cannot_fit_is_refused_before_converting(ovc_pipeline, tmpfs):
    """The estimate of retinanet-tf's IR (FP32 as big as the model's files, FP16 half: over 200 MB)
    does not fit on a 200 MB file system: one line before any conversion, nothing written."""
    out = tmpfs("200m")
    result = run_tool("converter", "--models_dir", ovc_pipeline["zoo"], "--name", "retinanet-tf", "-d",
                      ovc_pipeline["dl"], "-o", out, "--backend", "ovc", timeout=600)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert re.fullmatch(rf"modelzoo-converter: error: needs 2\d\d\.\d MB on {out} \(209\.\d MB free\)", line), line
    assert list(out.iterdir()) == []


def test_a_failed_fp16_move_rolls_back_fp32(tmp_path, zoo):
    """FP16's folder cannot be renamed (it is a mount point, EBUSY) after FP32 was moved in:
    FP32 goes back to the earlier IR, and no .old folder is left."""
    dl, ir = tmp_path / "dl", tmp_path / "ir"
    tiny_zoo(zoo, dl, "tiny-rb", 0, ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    folder = ir / "public/tiny-rb"
    for p in ("FP32", "FP16"):
        (folder / p).mkdir(parents=True)
        (folder / p / "tiny-rb.xml").write_text(f"earlier {p}")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder / "FP16")], check=True)
    try:
        (folder / "FP16/tiny-rb.xml").write_text("earlier FP16")
        result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-rb", "-d", dl, "-o", ir, "--backend", "ovc")
        assert result.returncode == 1
        first, last = result.stderr.splitlines()
        assert first.startswith(f"modelzoo-converter: error: tiny-rb: cannot move into place {folder}/FP16")
        assert sorted(p.name for p in folder.iterdir()) == ["FP16", "FP32"]
        assert [f.name for f in (folder / "FP32").iterdir()] == ["tiny-rb.xml"]
        assert (folder / "FP32/tiny-rb.xml").read_text() == "earlier FP32"
        assert (folder / "FP16/tiny-rb.xml").read_text() == "earlier FP16"
    finally:
        subprocess.run(["umount", "-l", str(folder / "FP16")], check=False)


def _workers(parent: int) -> list[int]:
    """The converter's worker processes (multiprocessing spawn children running spawn_main)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _started_first(pids: list[int]) -> int:
    """The process that started first, by its start time (field 22 of /proc/<pid>/stat, in clock
    ticks); PIDs (which wrap around) only break a tie within one tick."""
    def started(pid: int) -> tuple[int, int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19]), pid  # (fields[0] is field 3, the state)

    return min(pids, key=started)


def test_a_worker_that_dies_fails_only_its_model_in_one_line(ovc_pipeline, tmp_path):
    """Two models, -j 2: one worker process is killed (SIGKILL, as the OOM killer would) while it
    converts; its model fails in one line, the other is converted."""
    zoo = tmp_path / "zoo"
    text = (ovc_pipeline["zoo"] / MODEL / "model.yml").read_text()
    for name in ("rt-a", "rt-b"):
        (zoo / "public" / name).mkdir(parents=True)
        (zoo / "public" / name / "model.yml").write_text(text)
        (tmp_path / "dl/public" / name).mkdir(parents=True)
        os.link(ovc_pipeline["dl"] / MODEL / PB_NAME, tmp_path / "dl/public" / name / PB_NAME)
    cmd = [sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(zoo), "--all", "-d",
           str(tmp_path / "dl"), "-o", str(tmp_path / "ir"), "--backend", "ovc", "-j", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        workers = _workers(proc.pid)
        time.sleep(0.01)
    assert len(workers) == 2, "the converter started two worker processes"
    os.kill(_started_first(workers), signal.SIGKILL)  # the first one started: rt-a
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert err.splitlines() == ["modelzoo-converter: error: rt-a: the conversion worker process died (killed by "
                                "SIGKILL)", "modelzoo-converter: failed: rt-a"]
    assert not (tmp_path / "ir/public/rt-a/FP32").exists() and not (tmp_path / "ir/public/rt-a/FP16").exists()
    assert sorted(p.name for p in (tmp_path / "ir/public/rt-b").iterdir()) == ["FP16", "FP32"]
    # the next run converts it, and removes any staging folder the killed worker left
    (tmp_path / "ir/public/rt-a").mkdir(parents=True, exist_ok=True)
    (tmp_path / "ir/public/rt-a/.converting-999999999-left").mkdir()
    result = run_tool("converter", "--models_dir", zoo, "--name", "rt-a", "-d", tmp_path / "dl", "-o", tmp_path / "ir",
                      "--backend", "ovc")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "ir/public/rt-a").iterdir()) == ["FP16", "FP32"]


def test_no_usage_telemetry_from_a_conversion():
    """Importing openvino starts ovc's usage telemetry (a sender thread that forks; with
    TensorFlow being imported at the same time this deadlocked conversions here): the converter
    turns it off before anything imports openvino."""
    code = ("import sys, threading\nfrom pathlib import Path\n"
            "from modelzoo.convert.pipeline import ConvertOptions, Converter\n"
            "Converter(ConvertOptions(Path('.'), Path('.'), Path('.'), frozenset({'FP32'}), backend='ovc'))\n"
            "import openvino\nopenvino.convert_model\n"
            "print(sys.modules.get('openvino_telemetry'), threading.active_count())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(SCRIPTS.parent)})
    assert result.stdout.split() == ["None", "1"], result.stderr
