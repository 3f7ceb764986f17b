"""What the accuracy and quantizer tests share (imported by each module; not a conftest.py, whose
name would shadow tests/conftest.py): the rebuilt retinanet-tf (256x256, random
weights) converted by the ovc backend, a COCO-format folder made from it, and the peer.

These tests need the `quantize` extra (NNCF 3.x, which needs OpenVINO 2026 or later; pycocotools,
OpenCV), so CI runs them in its second environment (`.venv-ovc`, see .ci/run), with the graph the
first run left in $MODELZOO_OVC_REFERENCE, and Open Model Zoo's accuracy_check from a third
environment (`.venv-ac`: openvino-dev 2023.3.0) named by $MODELZOO_PEER_ACCURACY_CHECK.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import run_tool
from ovc_reference import SIZE, retinanet_pb

from modelzoo.devtools.cocoset import ir_detector, pictures, write_coco_folder
from modelzoo.reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo

PEER_ENV = "MODELZOO_PEER_ACCURACY_CHECK"
MODEL = MODEL_SUBDIR


@functools.cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="modelzoo-quantize-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def rebuilt_ir() -> dict:
    """zoo (its accuracy-check.yml at 256, with coco_orig_precision added), dl, ir (FP32, FP16);
    made once per session (cached: the test modules import these fixtures each)."""
    root = _workdir() / "rebuilt"
    zoo, dl, ir = root / "zoo", root / "dl", root / "ir"
    write_reference_zoo(retinanet_pb(), zoo, SIZE)
    yml = zoo / MODEL / "accuracy-check.yml"
    yml.write_text(yml.read_text() + "          - type: coco_orig_precision\n")
    (dl / MODEL).mkdir(parents=True)
    shutil.copyfile(retinanet_pb(), dl / MODEL / PB_NAME)
    result = run_tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir,
                      "--backend", "ovc", timeout=600)
    assert result.returncode == 0, result.stderr
    return {"root": root, "zoo": zoo, "dl": dl, "ir": ir, "fp32": ir / MODEL / "FP32" / "retinanet-tf.xml"}


@functools.cache
def coco_folder() -> Path:
    """8 pictures (wider, taller, square, smaller and larger than the input) with ground truth
    near the FP32 IR's own detections (the weights are random), crowd regions and misses."""
    return write_coco_folder(_workdir() / "coco", pictures(8), ir_detector(rebuilt_ir()["fp32"], SIZE))


@pytest.fixture
def rebuilt() -> dict:
    return rebuilt_ir()


@pytest.fixture
def coco() -> Path:
    return coco_folder()


@pytest.fixture
def peer_accuracy_check() -> Path:
    path = os.environ.get(PEER_ENV)
    if not path or not Path(path).is_file():
        pytest.fail(f"${PEER_ENV} must name Open Model Zoo's accuracy_check (openvino-dev 2023.3.0 with "
                    "pycocotools in an environment of its own; .ci/run builds .venv-ac)")
    return Path(path)
