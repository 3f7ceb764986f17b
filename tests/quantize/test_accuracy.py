"""modelzoo-accuracy (tools/downloader/accuracy_check.py) through its real command line, on the
rebuilt retinanet-tf's ovc IR and a generated COCO-format folder, against Open Model Zoo's own
accuracy_check (openvino-dev 2023.3.0) on the same IR and data."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SCRIPTS, one_error_line, run_tool
from qtools import MODEL, coco, peer_accuracy_check, rebuilt  # noqa: F401 (fixtures)

from modelzoo.devtools.peer_accuracy import run_peer


def accuracy(rebuilt, *args, **kw):
    return run_tool("accuracy_check", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf",
                    "--ir_dir", rebuilt["ir"], *args, **kw)


def test_the_same_number_as_accuracy_check(rebuilt, coco, peer_accuracy_check, tmp_path):
    ours = accuracy(rebuilt, "--dataset", coco, "--precisions", "FP32,FP16", "--json", tmp_path / "r.json")
    assert ours.returncode == 0, ours.stderr
    records = json.loads((tmp_path / "r.json").read_text())
    assert {(r["precision"], r["metric"]) for r in records} == {
        (p, m) for p in ("FP32", "FP16") for m in ("coco_precision", "coco_orig_precision")}
    yml = rebuilt["zoo"] / MODEL / "accuracy-check.yml"
    for precision in ("FP32", "FP16"):
        xml = rebuilt["ir"] / MODEL / precision / "retinanet-tf.xml"
        theirs, _, out = run_peer(peer_accuracy_check, yml, "retinanet-tf", xml, coco / "val2017",
                                  coco / "annotations" / "instances_val2017.json")
        for r in (r for r in records if r["precision"] == precision):
            assert r["images"] == 8 and r["seconds"] > 0
            assert 0.02 < r["value"] < 0.98, r  # a number that can move
            assert abs(100 * r["value"] - 100 * theirs[r["metric"]]) <= 0.1, (r, out)


def test_the_resize_is_the_checkers_truncation(rebuilt, coco):
    """Sizes truncated, not rounded (the checker's frcnn_keep_aspect_ratio), and boxes scaled back
    per axis: a 427x640 picture becomes 170x256 (170.8 truncated), boxes x 640/256, y 427/170."""
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.accuracy.preprocessing import preprocess

    config = load_accuracy_config(rebuilt["zoo"] / MODEL / "accuracy-check.yml", "retinanet-tf")
    picture = np.zeros((427, 640, 3), np.uint8)
    picture[:, :320] = 200
    data, geometry = preprocess(picture, config)
    assert data.shape == (256, 256, 3) and data.dtype == np.float32
    resize = geometry.operations[0][1]
    assert (resize["scale_x"], resize["scale_y"]) == (256 / 640, 170 / 427)
    assert (data[:170, :128] == 200).all() and (data[170:] == 0).all() and (data[:, 128:] == 0).all()


def test_outputs_json_detections_table_and_drawings(rebuilt, coco, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    result = accuracy(rebuilt, "--dataset", coco, "--precisions", "FP32", "--json", tmp_path / "r.json",
                      "--detections_out", tmp_path / "dets.json", "--draw", "3", "--draw_dir", tmp_path / "draw")
    assert result.returncode == 0, result.stderr
    records = {r["metric"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    table = [line.split() for line in result.stdout.splitlines() if line.startswith("retinanet-tf")]
    assert [row[:4] for row in table] == [["retinanet-tf", "FP32", "8", "coco_precision"],
                                         ["retinanet-tf", "FP32", "8", "coco_orig_precision"]]
    assert table[0][4] == f"{100 * records['coco_precision']['value']:.2f}" and table[0][6] == "33.15"
    assert records["coco_precision"]["reference"] == 0.3315
    # the detections file is COCO results in the pictures' pixels: COCOeval on it gives our value
    gt = COCO(str(coco / "annotations" / "instances_val2017.json"))
    dets = json.loads((tmp_path / "dets.json").read_text())
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt.dataset["images"]}
    # (no clip_boxes in the yml: a box may reach into the padding, beyond the picture's edge)
    assert all(d["bbox"][0] + d["bbox"][2] <= max(sizes[d["image_id"]]) * 1.01 for d in dets)
    assert {d["category_id"] for d in dets} <= set(gt.getCatIds()) and min(d["score"] for d in dets) >= 0.05
    # coco_orig_precision counts a box's last pixel (the checker's include_boundaries)
    wider = [dict(d, bbox=[d["bbox"][0], d["bbox"][1], d["bbox"][2] + 1, d["bbox"][3] + 1]) for d in dets]
    evaluator = COCOeval(gt, gt.loadRes(wider), "bbox")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert abs(evaluator.stats[0] - records["coco_orig_precision"]["value"]) < 2e-3  # boxes rounded to 1e-3
    assert sorted(p.name for p in (tmp_path / "draw").iterdir()) == [
        f"retinanet-tf-FP32-{i:012d}.png" for i in (1, 2, 3)]


def test_check_fails_below_the_reference(rebuilt, coco):
    result = accuracy(rebuilt, "--dataset", coco, "--precisions", "FP32", "--check")
    assert result.returncode == 1
    assert "MISSED" in result.stdout
    assert one_error_line(result).startswith("accuracy_check: below the reference: retinanet-tf FP32 coco_precision")


def test_subset_larger_than_the_dataset_warns_and_uses_all(rebuilt, coco):
    result = accuracy(rebuilt, "--dataset", coco, "--precisions", "FP32", "--subset", "50")
    assert result.returncode == 0, result.stderr
    assert one_error_line(result) == ("accuracy_check: warning: --subset 50: the dataset has only 8 images; "
                                      "using all of them")
    assert " 8 " in [line for line in result.stdout.splitlines() if line.startswith("retinanet-tf")][0]
    few = accuracy(rebuilt, "--dataset", coco, "--precisions", "FP32", "--subset", "3")
    assert [line.split()[2] for line in few.stdout.splitlines() if line.startswith("retinanet-tf")] == ["3", "3"]


def bad_images(coco: Path, tmp: Path, case: str) -> list[str]:
    images, ann = tmp / "images", tmp / "ann.json"
    shutil.copytree(coco / "val2017", images)
    doc = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    if case == "missing folder":
        return ["--images", str(tmp / "nowhere"), "--annotations", str(coco / "annotations/instances_val2017.json")]
    if case == "empty folder":
        shutil.rmtree(images)
        images.mkdir()
    if case == "not an image":
        (images / "000000000002.png").write_bytes(b"not a picture at all")
    if case == "not json":
        ann.write_text("{images: [")
        return ["--images", str(images), "--annotations", str(ann)]
    if case == "not coco":
        doc = {"images": doc["images"], "categories": doc["categories"]}
    if case == "image not there":
        (images / "000000000005.png").unlink()
    if case == "unknown category":
        doc["annotations"][0]["category_id"] = 12345
    ann.write_text(json.dumps(doc))
    return ["--images", str(images), "--annotations", str(ann)]


@pytest.mark.parametrize("case,code,needle", [
    ("missing folder", 2, "no such image folder"),
    ("empty folder", 2, "no images in the folder"),
    ("not an image", 2, "000000000002.png: not an image"),
    ("not json", 2, "not a COCO annotation file: not JSON"),
    ("not coco", 2, "not a COCO annotation file: annotations: missing or not a list"),
    ("image not there", 2, "names image '000000000005.png', which is not in"),
    ("unknown category", 2, "category_id 12345 is not in categories"),
])
def test_bad_data_is_one_line_and_nothing_written(rebuilt, coco, tmp_path, case, code, needle):
    args = bad_images(coco, tmp_path, case)
    result = accuracy(rebuilt, *args, "--precisions", "FP32", "--json", tmp_path / "out" / "r.json",
                      "--detections_out", tmp_path / "out" / "d.json")
    assert result.returncode == code, result.stderr
    line = one_error_line(result)
    assert line.startswith("accuracy_check: error: ") and needle in line, line
    assert not (tmp_path / "out").exists()


def zoo_with(rebuilt, tmp_path: Path, old: str, new: str) -> Path:
    zoo = tmp_path / "zoo"
    shutil.copytree(rebuilt["zoo"], zoo)
    yml = zoo / MODEL / "accuracy-check.yml"
    text = yml.read_text()
    assert old in text
    yml.write_text(text.replace(old, new))
    return zoo


@pytest.mark.parametrize("old,new,needle", [
    ("type: coco_precision", "type: miss_rate", "metrics[0]: 'miss_rate' is not implemented by modelzoo-accuracy"),
    ("adapter: ssd", "adapter: narnmt", "launchers[].adapter: 'narnmt' is not implemented"),
    ("pad_type: right_bottom", "pad_type: left_top", "pad_type 'left_top' is not implemented"),
    ("min_confidence: 0.05", "min_confidence: 0.05\n            interpolation: CUBIC",
     "(filter): option 'interpolation' is not implemented"),
    ("size: 256", "size: 320", "is 256x256 (HxW), but"),
])
def test_an_entry_we_do_not_implement_is_refused_before_inference(rebuilt, coco, tmp_path, old, new, needle):
    zoo = zoo_with(rebuilt, tmp_path, old, new)
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", rebuilt["ir"],
                      "--dataset", coco, "--json", tmp_path / "r.json")
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert needle in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_no_ir_and_no_annotations(rebuilt, coco, tmp_path):
    result = run_tool("accuracy_check", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf",
                      "--ir_dir", tmp_path, "--dataset", coco)
    assert result.returncode == 1 and "no IR under" in one_error_line(result)
    result = accuracy(rebuilt, "--images", coco / "val2017")
    assert result.returncode == 2 and "measuring accuracy needs annotations" in one_error_line(result)


def read_terminal(terminal: int, screen: bytearray, timeout: float) -> bool:
    """Add what the program drew on the terminal to ``screen``: False once it has closed it
    (a read on the other side then fails with EIO)."""
    if not select.select([terminal], [], [], timeout)[0]:
        raise AssertionError(f"nothing drawn on the terminal in {timeout} s: {bytes(screen)!r}")
    try:
        chunk = os.read(terminal, 1 << 16)
    except OSError:
        return False
    screen += chunk
    return bool(chunk)


def test_ctrl_c_during_evaluation(rebuilt, coco, tmp_path):
    """Ctrl-C at a terminal while the progress bar moves (some pictures done, not all): exit 130
    with one line, no traceback, no results file. (A Ctrl-C while the IR compiles proves less:
    nothing of OpenVINO is running yet. Through an AsyncInferQueue with a Python callback, this
    hung at exit 7 times in 15.)"""
    images = tmp_path / "many"
    images.mkdir()
    doc = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    many = {"images": [], "annotations": [], "categories": doc["categories"]}
    for copy in range(40):  # long enough to be interrupted in the middle
        for im in doc["images"]:
            name = f"{copy:03d}-{im['file_name']}"
            os.link(coco / "val2017" / im["file_name"], images / name)
            many["images"].append(dict(im, id=copy * 100 + im["id"], file_name=name))
    (tmp_path / "many.json").write_text(json.dumps(many))
    total = len(many["images"])
    terminal, stderr = pty.openpty()  # the progress bar is drawn on a terminal only (with columns)
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "accuracy_check.py"), "--models_dir", str(rebuilt["zoo"]),
                             "--name", "retinanet-tf", "--ir_dir", str(rebuilt["ir"]), "--images", str(images),
                             "--annotations", str(tmp_path / "many.json"), "--precisions", "FP32",
                             "--json", str(tmp_path / "r.json")],
                            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
    os.close(stderr)
    screen = bytearray()
    try:
        done = 0
        while not 0 < done < total // 2:  # interrupted with some pictures done, and at most half
            assert read_terminal(terminal, screen, 120), f"ended before it was interrupted: {screen!r}"
            done = max([0, *(int(n) for n in re.findall(rb"\| *(\d+)/%d \[" % total, screen))])
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        while read_terminal(terminal, screen, 60):
            pass
        proc.wait(timeout=60)
    finally:
        os.close(terminal)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert time.monotonic() - started < 20
    text = screen.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert text.replace("\r", "\n").strip().splitlines()[-1].strip() == "accuracy_check: interrupted", text
    assert not (tmp_path / "r.json").exists()
