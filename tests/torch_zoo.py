"""A tiny PyTorch model in a zoo, served from loopback and downloaded: shared by tests/test_pytorch.py
(the main environment, no torch) and tests/pytorch/ (the torch environment, .venv-torch in CI)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import run_tool

from modelzoo.devtools.loopback import LoopbackServer
from modelzoo.devtools.zoo_proof import CI_PROOFS, SLOW_PROOFS  # noqa: F401 - the proofs' lists, for tests

HAVE_TORCH = importlib.util.find_spec("torch") is not None
ROOT = Path(__file__).resolve().parents[1]

MODEL_PY = textwrap.dedent('''
    import collections
    import os
    import signal

    import torch


    class StateDict(collections.OrderedDict):
        """A checkpoint class of the model's own: torch.load(weights_only=True) refuses it."""


    class Net(torch.nn.Module):
        def __init__(self, width=4, crash=False):
            super().__init__()
            if crash:
                os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
            self.emb = torch.nn.Embedding(10, width)
            self.proj = torch.nn.Linear(width, 3)

        def forward(self, ids, mask):
            h = self.emb(ids) * mask.unsqueeze(-1).to(torch.float32)
            return self.proj(h), h.sum(-1)
''')


def tiny_zoo(root: Path, url: str, weights: bytes, onnx_extra: list[str] = (), mo_extra: list[str] = (),
             model_py: str = MODEL_PY) -> Path:
    """A zoo with one PyTorch model `tiny` (two int64 inputs, two outputs, dynamic batch and length)."""
    zoo = root / "zoo"
    folder = zoo / "public" / "tiny"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(model_py)
    doc = {
        "description": "a tiny PyTorch model", "task_type": "classification", "framework": "pytorch",
        "license": "https://example.com/LICENSE",
        "files": [{"name": "tiny.pth", "size": len(weights), "checksum": hashlib.sha384(weights).hexdigest(),
                   "source": url}],
        "conversion_to_onnx_args": [
            "--model-path=$config_dir", "--model-name=Net", "--import-module=model", "--model-param=width=5",
            "--weights=$dl_dir/tiny.pth", "--input-shape=[1,6],[1,6]", "--inputs-dtype=long",
            "--output-file=$conv_dir/tiny.onnx", "--input-names=ids,mask", "--output-names=logits,pooled",
            '--conversion-param=dynamic_axes={"ids": {0: "batch", 1: "len"}, "mask": {0: "batch", 1: "len"}}',
            *onnx_extra],
        "model_optimizer_args": ["--input_model=$conv_dir/tiny.onnx", "--input=ids,mask", "--output=pooled,logits",
                                 *mo_extra],
    }
    (folder / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return zoo


def tiny_weights(path: Path, seed: int = 0) -> bytes:
    """A checkpoint of Net(width=5) pickled as the model's own StateDict class."""
    import sys

    import torch

    sys.path.insert(0, str(path.parent))
    (path.parent / "model.py").write_text(MODEL_PY)
    try:
        import model  # noqa: F401 - the class must be importable to be pickled by reference

        torch.manual_seed(seed)
        net = model.Net(width=5)
        torch.save(model.StateDict(net.state_dict()), path)
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop("model", None)
    return path.read_bytes()


def error_line(result) -> str:
    """A failed model's one line (the run's `failed:` summary follows it), no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 2 and lines[1] == "modelzoo-converter: failed: tiny", result.stderr
    return lines[0]


def download(zoo: Path, dl: Path) -> None:
    result = run_tool("downloader", "--models_dir", zoo, "--name", "tiny", "-o", dl)
    assert result.returncode == 0, result.stderr


def convert(zoo: Path, dl: Path, out: Path, *extra: str):
    return run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", dl, "-o", out, "--backend", "ovc",
                    "--allow_zoo_code", *extra, timeout=600)


def omz_models() -> Path:
    if os.environ.get("MODELZOO_OMZ_MODELS"):
        return Path(os.environ["MODELZOO_OMZ_MODELS"])
    found = sorted(ROOT.glob(".venv/lib/python3*/site-packages/omz_tools/models"))
    if not found:
        pytest.fail("Open Model Zoo's descriptors are needed: set MODELZOO_OMZ_MODELS to omz_tools/models "
                    "(openvino-dev 2024.6), or build .venv as .ci/run does")
    return found[0]




def make_tiny(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """(zoo, download folder, the checkpoint's bytes): served from loopback and downloaded, verified."""
    (tmp_path / "make").mkdir()
    weights = tiny_weights(tmp_path / "make" / "tiny.pth") if HAVE_TORCH else b"not a checkpoint"
    with LoopbackServer() as server:
        zoo = tiny_zoo(tmp_path, server.add("/tiny.pth", weights), weights)
        download(zoo, tmp_path / "dl")
    return zoo, tmp_path / "dl", weights


