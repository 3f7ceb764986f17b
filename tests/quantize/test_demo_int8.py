"""The demo's INT8 step (tools/modelzoo/devtools/demo.py) on the rebuilt graph's ovc IR: the real
quantizer calibrated on variants of the demo picture, INT8's detections drawn beside FP32's, the
three latencies. (The whole demo also needs TensorFlow, to build the graph: tests/test_demo.py.)"""

from __future__ import annotations

import shutil
import sys

import numpy as np
from ovc_reference import SIZE
from PIL import Image
from qtools import MODEL, rebuilt  # noqa: F401 (fixture)

from modelzoo.devtools import demo
from modelzoo.resources import demo_picture_path, read_class_names


def test_the_demo_quantizes_and_draws_int8_beside_fp32(rebuilt, tmp_path, capsys):
    ir = tmp_path / "ir"
    shutil.copytree(rebuilt["ir"], ir)
    picture = np.asarray(Image.open(demo_picture_path()).convert("RGB"))[:, :, ::-1]
    names = read_class_names()
    dets, _, _ = demo.detect(ir / MODEL / "FP32" / "retinanet-tf.xml", picture, SIZE, "f32")
    demo.draw(picture, dets, names, tmp_path / "detections-FP32.png", "FP32")
    timings: dict[str, float] = {}
    latencies = demo.int8_step(sys.executable, rebuilt["zoo"], ir, tmp_path, picture, SIZE, names, timings)
    out = capsys.readouterr().out
    assert latencies is not None and set(latencies) == {"FP32", "FP16", "FP16-INT8"}
    assert all(0 < latencies[p] < float("inf") for p in latencies)  # which is faster is bench/quantize.py's
    assert (ir / MODEL / "FP16-INT8" / "retinanet-tf.xml").is_file()
    assert len(list((tmp_path / "calibration").iterdir())) == 8
    assert "8 calibration images" in out and "FP16-INT8: " in out
    both = Image.open(tmp_path / "detections-FP32-vs-INT8.png")
    assert both.width == 2 * picture.shape[1] + 8 and both.height == picture.shape[0]
    assert timings["quantize to FP16-INT8 (NNCF)"] > 0
