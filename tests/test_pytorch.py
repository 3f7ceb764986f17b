"""PyTorch models and the ovc backend (convert/pytorch.py) where torch is NOT installed: what is refused
before any export, the mo backend's refusal and the missing extra. The conversions themselves are in
tests/pytorch/ (run by .ci/run in an environment with torch, .venv-torch)."""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from conftest import run_tool
from torch_zoo import CI_PROOFS, HAVE_TORCH, SLOW_PROOFS, convert, error_line, make_tiny, omz_models


@pytest.fixture
def tiny(tmp_path):
    return make_tiny(tmp_path)


def test_a_model_parameter_that_is_not_a_literal_is_refused_before_any_work(tiny, tmp_path):
    zoo, dl, _ = tiny
    yml = zoo / "public" / "tiny" / "model.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["conversion_to_onnx_args"].append(f"--model-param=width=open({str(tmp_path / 'hit')!r}, 'w')")
    yml.write_text(yaml.safe_dump(doc, sort_keys=False))
    for extra in (["--dry_run"], []):
        result = convert(zoo, dl, tmp_path / "ir", *extra)
        assert result.returncode == 1
        line = error_line(result)
        assert "conversion_to_onnx_args: cannot read it" in line and "not a Python literal" in line, line
    assert not (tmp_path / "hit").exists()
    assert not any((tmp_path / "ir").rglob("*.xml"))


def test_model_optimizer_arguments_for_another_file_than_the_export_are_refused(tiny, tmp_path):
    zoo, dl, _ = tiny
    yml = zoo / "public" / "tiny" / "model.yml"
    doc = yaml.safe_load(yml.read_text())
    doc["model_optimizer_args"][0] = "--input_model=$conv_dir/other.onnx"
    yml.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = convert(zoo, dl, tmp_path / "ir", "--dry_run")
    assert result.returncode == 1
    assert "not the file conversion_to_onnx_args writes" in error_line(result)


def test_without_the_pytorch_extra_the_error_names_it(tiny, tmp_path):
    assert not HAVE_TORCH, "this file runs where torch is not installed (tests/pytorch/ runs where it is)"
    zoo, dl, _ = tiny
    result = convert(zoo, dl, tmp_path / "ir")
    assert result.returncode != 0
    line = error_line(result)
    assert "tiny:" in line and "'pytorch' extra" in line and "pip install 'modelzoo[pytorch]'" in line, line


def test_the_mo_backend_refuses_pytorch_models_by_name(tiny, tmp_path):
    assert importlib.util.find_spec("openvino.tools.mo") is not None, "needs openvino-dev's Model Optimizer ([mo])"
    zoo, dl, _ = tiny
    for backend in ("mo", "auto"):
        result = run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", dl, "-o", tmp_path / "ir",
                          "--backend", backend, "--allow_zoo_code", timeout=600)
        assert result.returncode == 1
        line = error_line(result)
        assert "tiny: PyTorch models are converted by the ovc backend only" in line and "--backend ovc" in line


def test_the_proofs_cover_every_torchvision_timm_and_transformers_model_of_open_model_zoo():
    from modelzoo.devtools.zoo_proof import RECIPES, provable, torchvision_models, wheel_models

    assert len(torchvision_models(omz_models())) == 6
    assert sorted(wheel_models(omz_models())) == sorted(RECIPES)  # 5 timm, 3 transformers
    assert sorted(provable(omz_models())) == sorted(CI_PROOFS + SLOW_PROOFS)
