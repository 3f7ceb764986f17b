"""PyTorch models straight into OpenVINO through the real converter (--backend ovc): names, types,
dynamic axes, checkpoints that are (not) verified, failures of the export child, and Open Model
Zoo's torchvision, timm and transformers models against stand-ins (devtools/zoo_proof.py; the
pinned wheels come from PyPI through pip). Needs torch and torchvision ([pytorch]): .ci/run runs
this folder in .venv-torch."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest
import yaml
from torch_zoo import convert, download, error_line, make_tiny, omz_models, tiny_weights, tiny_zoo

from modelzoo.devtools import zoo_proof
from modelzoo.devtools.loopback import LoopbackServer
from modelzoo.devtools.zoo_proof import CI_PROOFS, SLOW_PROOFS


@pytest.fixture
def tiny(tmp_path):
    return make_tiny(tmp_path)


def test_pytorch_model_converts_with_the_descriptors_names_types_and_dynamic_axes(tiny, tmp_path):
    import openvino as ov
    import torch

    zoo, dl, _ = tiny
    out = tmp_path / "ir"
    result = convert(zoo, dl, out, "--log", tmp_path / "export.log")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "PyTorch export in a child process: model.Net(width=5)" in result.stdout
    assert sorted(p.name for p in (out / "public" / "tiny").iterdir()) == ["FP16", "FP32"]
    model = ov.Core().read_model(str(out / "public" / "tiny" / "FP32" / "tiny.xml"))
    assert [sorted(p.get_names()) for p in model.inputs] == [["ids"], ["mask"]]
    assert [p.get_element_type().get_type_name() for p in model.inputs] == ["i64", "i64"]
    assert [str(p.get_partial_shape()) for p in model.inputs] == ["[?,?]", "[?,?]"]
    assert [sorted(p.get_names()) for p in model.outputs] == [["pooled"], ["logits"]]  # --output's order
    # the same numbers as torch, on a batch and length other than the export's
    sys.path.insert(0, str(zoo / "public" / "tiny"))
    try:
        import model as code

        net = code.Net(width=5)
        net.load_state_dict(torch.load(dl / "public" / "tiny" / "tiny.pth", weights_only=False))
    finally:
        sys.path.pop(0)
        sys.modules.pop("model", None)
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(0, 10, (2, 9)), rng.integers(0, 2, (2, 9))
    with torch.no_grad():
        logits, pooled = (t.numpy() for t in net.eval()(torch.from_numpy(ids), torch.from_numpy(mask)))
    got = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})([ids, mask])
    assert np.abs(got[0] - pooled).max() <= 1e-5 * np.abs(pooled).max()
    assert np.abs(got[1] - logits).max() <= 1e-5 * np.abs(logits).max()


def test_a_checkpoint_that_the_descriptor_does_not_verify_is_not_unpickled(tiny, tmp_path):
    zoo, dl, _ = tiny
    # another checkpoint in the verified one's place (the same classes, other numbers): its SHA-384
    # is not the descriptor's, so torch.load runs with weights_only=True and refuses the class
    (tmp_path / "other").mkdir()
    tiny_weights(tmp_path / "other" / "tiny.pth", seed=1)
    os.replace(tmp_path / "other" / "tiny.pth", dl / "public" / "tiny" / "tiny.pth")
    result = convert(zoo, dl, tmp_path / "ir", "--log", tmp_path / "export.log")
    assert result.returncode == 1
    line = error_line(result)
    assert "tiny:" in line and "the PyTorch export failed" in line
    assert "needs unpickling" in line and "SHA-384" in line
    assert "Traceback" in (tmp_path / "export.log").read_text()
    assert not (tmp_path / "ir" / "public" / "tiny" / "FP32").exists()


def test_model_code_that_fails_to_import_is_one_line_and_its_traceback_in_the_log(tmp_path):
    weights = b"unused"
    with LoopbackServer() as server:
        zoo = tiny_zoo(tmp_path, server.add("/tiny.pth", weights), weights,
                       model_py="import torch\nimport no_such_module_here\n")
        download(zoo, tmp_path / "dl")
    result = convert(zoo, tmp_path / "dl", tmp_path / "ir", "--log", tmp_path / "export.log")
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("modelzoo-converter: error: tiny: the PyTorch export failed: importing model: "
                           "ModuleNotFoundError: No module named 'no_such_module_here'"), line
    assert str(tmp_path / "export.log") in line
    log = (tmp_path / "export.log").read_text()
    assert "Traceback" in log and "no_such_module_here" in log
    assert not (tmp_path / "ir" / "public" / "tiny").exists() or \
        not any((tmp_path / "ir" / "public" / "tiny").glob("FP*"))


def test_an_export_child_killed_like_the_oom_killer_does_is_one_line(tiny, tmp_path):
    zoo, dl, _ = tiny
    yml = zoo / "public" / "tiny" / "model.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["conversion_to_onnx_args"].append("--model-param=crash=True")
    yml.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = convert(zoo, dl, tmp_path / "ir")
    assert result.returncode == 1
    line = error_line(result)
    assert "tiny: the PyTorch export failed: killed by SIGKILL (out of memory?)" in line, line
    assert not any((tmp_path / "ir").rglob("*.xml"))


class _Batches:
    """The proofs of one library run together (one downloader and one converter run per batch,
    the wheels fetched once), on the first test that asks for one of its models."""

    def __init__(self, root):
        self.root = root
        self.done = {}

    def proof(self, name):
        models = omz_models()

        def family(n):
            return zoo_proof.recipe(n, yaml.safe_load(next(models.glob(f"*/{n}/model.yml")).read_text())).family

        key = family(name) if name in CI_PROOFS else name  # a slow one: alone
        if key not in self.done:
            batch = [n for n in CI_PROOFS if family(n) == key] or [name]
            work = self.root / key
            work.mkdir()
            try:
                self.done[key] = {p.model: p for p in zoo_proof.prove_many(batch, models, work,
                                                                           wheels=self.root / "wheels")}
            except zoo_proof.ProofError as exc:
                self.done[key] = exc
        if isinstance(self.done[key], Exception):
            raise self.done[key]
        return self.done[key][name]


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    return _Batches(tmp_path_factory.mktemp("zoo-proof"))


@pytest.mark.parametrize("name", [*CI_PROOFS, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_PROOFS)])
def test_open_model_zoo_model_against_a_stand_in(name, batches):
    """Open Model Zoo's torchvision, timm and transformers models (devtools/zoo_proof.py): the
    pinned wheels verified against the descriptors' SHA-384, a stand-in checkpoint, the real
    downloader and converter, the IR within 1e-4 of torch."""
    proof = batches.proof(name)
    assert proof.failure == "", proof.failure
    assert proof.error <= 1e-4, f"{name}: relative error {proof.error:.2e}"


def test_an_unwritable_log_is_one_line(tiny, tmp_path):
    zoo, dl, _ = tiny
    result = convert(zoo, dl, tmp_path / "ir", "--log", tmp_path / "no-such-folder" / "export.log")
    assert result.returncode == 1
    assert "cannot write the log" in error_line(result) and "no-such-folder" in error_line(result)
    assert not any((tmp_path / "ir").rglob("*.xml"))


def test_a_wheel_that_does_not_verify_against_the_descriptor_stops_the_proof(tmp_path):
    """The pinned wheels are PyPI's own files, checked against the descriptor's real SHA-384: a
    descriptor naming other bytes stops the proof before any stand-in is made."""
    source = next(omz_models().glob("*/efficientnet-v2-b0"))
    zoo = tmp_path / "zoo" / source.parent.name / source.name
    shutil.copytree(source, zoo, ignore=shutil.ignore_patterns("__pycache__"))
    doc = yaml.safe_load((zoo / "model.yml").read_text())
    wheel = next(f for f in doc["files"] if f["name"].startswith("timm-"))
    wheel["checksum"] = ("0" if wheel["checksum"][0] != "0" else "1") + wheel["checksum"][1:]
    (zoo / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(zoo_proof.ProofError) as caught:
        zoo_proof.prove_many(["efficientnet-v2-b0"], tmp_path / "zoo", tmp_path / "work", wheels=tmp_path / "wheels")
    assert str(caught.value) == ("timm-0.4.12-py3-none-any.whl: PyPI's file does not verify against the "
                                 "descriptor's size and SHA-384")
    assert not (tmp_path / "work" / "serve").exists()
