"""Reference files that the converter tests share across two virtual environments.

CI runs the converter tests twice: with openvino-dev 2024.6 + TensorFlow (which can build the
rebuilt retinanet-tf graph, run it in TensorFlow and convert it with the Model Optimizer), and
with the newest OpenVINO from PyPI alone (no TensorFlow, no mo). The first run writes here what
the second cannot make itself; `MODELZOO_OVC_REFERENCE` names the folder (without it, a
temporary folder of this test session, removed when the session ends):

    retinanet.pb            the rebuilt graph, 256x256, random weights (seed 0)
    retinanet-tf.npz        the test picture and TensorFlow's outputs on it
    mo/FP32|FP16/...        the mo backend's IR of that graph
    tiny-<seed>.pb          a one-convolution TF graph
    tiny-<seed>.npz         an input x and TensorFlow's output for the preprocessed x
    tiny-mo/FP32|FP16/...   the mo backend's IR of a tiny descriptor with mean/scale/reverse

Nothing is skipped: in an environment without TensorFlow a missing file is a test failure that
says which run should have written it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_tool

ENV = "MODELZOO_OVC_REFERENCE"
SIZE = 256
TINY_SEEDS = (0, 1, 7)
TINY_MEAN = [10.0, 20.0, 30.0]
TINY_SCALE = [2.0, 4.0, 8.0]
_session_dir: Path | None = None


def reference_dir() -> Path:
    """The shared folder: $MODELZOO_OVC_REFERENCE (kept: .ci/run's second run reads it), or one
    temporary folder per session, removed when the session ends (~370 MB each)."""
    global _session_dir
    if os.environ.get(ENV):
        path = Path(os.environ[ENV])
    else:
        if _session_dir is None:
            _session_dir = Path(tempfile.mkdtemp(prefix="modelzoo-ovc-reference-"))
            atexit.register(_remove_session_dir, os.getpid())
        path = _session_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove_session_dir(owner: int) -> None:
    if os.getpid() == owner and _session_dir is not None:  # (never from a forked child that exits normally)
        shutil.rmtree(_session_dir, ignore_errors=True)


def can_prepare() -> bool:
    """This environment has TensorFlow and the Model Optimizer (the first CI run)."""
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "openvino.tools.mo"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: in an environment without TensorFlow and openvino-dev the converter "
                    f"tests need the reference files of a first run ({ENV}, see .ci/run)")
    return path


def retinanet_pb() -> Path:
    """The rebuilt 256x256 graph, built by the real reproduce CLI (once per folder)."""
    pb = reference_dir() / "retinanet.pb"
    if not pb.exists() and can_prepare():
        tmp = pb.with_suffix(".pb.part")
        result = run_tool("reproduce", "retinanet-tf", "--random-weights", "--input-size", SIZE, "-o", tmp,
                          timeout=600)
        assert result.returncode == 0, result.stderr
        os.replace(tmp, pb)
    return _require(pb)


TF_FETCH = ("regression", "classification", "anchors", "boxes", "scores", "labels")


def retinanet_tf_outputs() -> dict[str, np.ndarray]:
    """TensorFlow's outputs on the test picture: regression, classification, anchors, boxes,
    scores, labels (batch dimension removed) and the picture itself."""
    path = reference_dir() / "retinanet-tf.npz"
    if not path.exists() and can_prepare():
        from modelzoo.reference import retinanet

        tf = retinanet._tf()
        _, graph = retinanet.load_pb(retinanet_pb())
        image = retinanet.test_picture(SIZE)
        fetch = ["regression/concat:0", "classification/concat:0", "anchors/concat:0",
                 *(n + ":0" for n in retinanet.OUTPUT_NAMES)]
        with tf.compat.v1.Session(graph=graph) as sess:
            values = sess.run(fetch, {"input_1:0": retinanet.preprocess(image)[None]})
        np.savez(path, picture=image, **{k: v[0] for k, v in zip(TF_FETCH, values)})
    with np.load(_require(path)) as data:
        return {k: data[k] for k in data.files}


def store_mo_ir(ir_model_dir: Path, name: str = "mo") -> None:
    """Keep a mo IR (FP32 and FP16 folders of one model) for the run without mo."""
    dest = reference_dir() / name
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(ir_model_dir, tmp, ignore=shutil.ignore_patterns(".*"))
        os.replace(tmp, dest)


def ensure_mo_ir(name: str, zoo: Path, dl: Path, model: str) -> Path:
    """The mo backend's IR of `model` (from `zoo`, files in `dl`), converted once by the run
    that has mo and kept as `name`."""
    if not (reference_dir() / name).exists() and can_prepare():
        out = Path(tempfile.mkdtemp(prefix="mo-ir-", dir=reference_dir()))
        try:
            result = run_tool("converter", "--models_dir", zoo, "--name", model, "-d", dl, "-o", out,
                              "--backend", "mo", timeout=900)
            assert result.returncode == 0, result.stderr
            store_mo_ir(out / "public" / model, name)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    return mo_ir(name)


def mo_ir(name: str = "mo") -> Path:
    """The folder with FP32/ and FP16/ of a stored mo IR."""
    return _require(reference_dir() / name)


def tiny_pb(seed: int) -> Path:
    """A frozen TF graph with one 3x3 convolution and a ReLU: x [1,8,8,3] -> y [1,8,8,4]."""
    pb = reference_dir() / f"tiny-{seed}.pb"
    if not pb.exists() and can_prepare():
        from modelzoo.reference import retinanet

        tf = retinanet._tf()
        graph = tf.Graph()
        rng = np.random.default_rng(seed)
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="x")
            kernel = tf.constant(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
            tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), name="y")
        data = graph.as_graph_def().SerializeToString(deterministic=True)
        x_value = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
        # what an IR with --reverse_input_channels, mean TINY_MEAN and scale TINY_SCALE computes
        pre = (x_value[..., ::-1] - np.float32(TINY_MEAN)) / np.float32(TINY_SCALE)
        with tf.compat.v1.Session(graph=graph) as sess:
            raw, prepped = (sess.run("y:0", {"x:0": v}) for v in (x_value, pre))
        np.savez(pb.with_suffix(".npz"), x=x_value, y=raw, y_preprocessed=prepped)
        pb.write_bytes(data)
    return _require(pb)


def tiny_outputs(seed: int) -> dict[str, np.ndarray]:
    tiny_pb(seed)
    with np.load(_require(reference_dir() / f"tiny-{seed}.npz")) as data:
        return {k: data[k] for k in data.files}


def environment() -> str:
    """What this run is, for messages."""
    import openvino

    return f"OpenVINO {openvino.__version__.split('-')[0]}, Python {sys.version.split()[0]}"


def download_reference(pb: Path, root: Path) -> tuple[Path, Path]:
    """Serve the rebuilt graph from loopback and download it (verified) with the real
    downloader, as a user would: returns (zoo, download folder)."""
    from modelzoo.devtools.loopback import LoopbackServer
    from modelzoo.reference.zoo import PB_NAME, write_reference_zoo

    with LoopbackServer() as server:
        server.add(f"/models/{PB_NAME}", pb)
        zoo = root / "zoo"
        write_reference_zoo(pb, zoo, SIZE, source_url=server.url(f"/models/{PB_NAME}"))
        dl = root / "dl"
        result = run_tool("downloader", "--models_dir", zoo, "--name", "retinanet-tf", "-o", dl)
        assert result.returncode == 0, result.stderr
    return zoo, dl
