"""A zoo from outside (issue 29): its descriptors name no path outside the model's folders, run
no code the user did not allow, cannot make the Model Optimizer run code or write elsewhere,
and cannot hang, flood or crash the downloader. Through the real command lines; the mo ones need
openvino-dev (CI's first environment)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import one_error_line, run_tool, sha384, write_model
from ovc_reference import tiny_pb

BACKENDS = ["mo", "ovc"]


def tiny_model(zoo: Path, dl: Path, name: str, mo_args: list[str], **extra) -> Path:
    """A model whose one file, tiny.pb (a convolution: x [1,8,8,3] -> y), is already downloaded."""
    pb = dl / "public" / name / "tiny.pb"
    pb.parent.mkdir(parents=True, exist_ok=True)
    pb.write_bytes(tiny_pb(0).read_bytes())
    write_model(zoo, name, [{"name": "tiny.pb", "data": pb.read_bytes(), "url": "http://127.0.0.1:9/tiny.pb"}],
                framework="tf", model_optimizer_args=mo_args, **extra)
    return pb


def convert(zoo: Path, dl: Path, out: Path, *args: str | Path, timeout: float = 600):
    return run_tool("converter", "--models_dir", zoo, "-d", dl, "-o", out, *args, timeout=timeout)


def refused(result, model: str, *named: str) -> str:
    """A refused model: its one error line (naming what is refused), the failed line, exit 1."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1] == f"modelzoo-converter: failed: {model}", result.stderr
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------
# 1. every path a descriptor names lies below the model's own folders


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A model file somewhere else on the machine (what a hostile descriptor would point at)."""
    pb = tmp_path / "elsewhere" / "secret.pb"
    pb.parent.mkdir()
    pb.write_bytes(tiny_pb(1).read_bytes())
    return pb


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["absolute", "climbing", "separate word", "transformations config"])
def test_a_path_outside_the_model_folders_is_refused(tmp_path, zoo, elsewhere, backend, how):
    dl, out = tmp_path / "dl", tmp_path / "out"
    value = {"absolute": f"--input_model={elsewhere}",
             "climbing": "--input_model=$dl_dir/../../../elsewhere/secret.pb",
             "separate word": "--input_model",
             "transformations config": f"--transformations_config={elsewhere}"}[how]
    args = [value, str(elsewhere)] if how == "separate word" else [value]
    if how == "transformations config":
        args = ["--input_model=$dl_dir/tiny.pb", *args]
    tiny_model(zoo, dl, "tiny", [*args, "--output=y"])
    for dry in ([], ["--dry_run"]):
        result = convert(zoo, dl, out, "--name", "tiny", "--backend", backend, *dry)
        line = refused(result, "tiny", value.replace("$dl_dir", str(dl / "public/tiny")), "refused")
        if how != "separate word":
            assert "is not below the model's folders ($dl_dir, $config_dir, $conv_dir, $mo_dir)" in line
        assert "Conversion command" not in result.stdout  # nothing started
    assert not out.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_link_in_the_download_folder_to_elsewhere_is_refused(tmp_path, zoo, elsewhere, backend):
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "tiny", ["--input_model=$dl_dir/link.pb", "--output=y"])
    (dl / "public/tiny/link.pb").symlink_to(elsewhere)
    result = convert(zoo, dl, out, "--name", "tiny", "--backend", backend)
    refused(result, "tiny", "--input_model=", f"(it leads to {elsewhere})")
    assert not out.exists()


def test_paths_below_the_model_folders_still_convert(tmp_path, zoo):
    """$dl_dir, $config_dir and $conv_dir (also through a link that stays inside), mo's own
    transformation configs: converted as before."""
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "in-dl", ["--input_model=$dl_dir/sub/../tiny.pb", "--output=y"])
    (dl / "public/in-dl/sub").mkdir()
    tiny_model(zoo, dl, "in-config", ["--input_model=$config_dir/graph.pb", "--output=y"])
    (zoo / "public/in-config/graph.pb").write_bytes(tiny_pb(0).read_bytes())
    tiny_model(zoo, dl, "in-conv", ["--input_model=$conv_dir/graph.pb", "--output=y"])
    (out / "public/in-conv").mkdir(parents=True)
    (out / "public/in-conv/graph.pb").write_bytes(tiny_pb(0).read_bytes())
    tiny_model(zoo, dl, "in-link", ["--input_model=$dl_dir/link.pb", "--output=y"])
    (dl / "public/in-link/link.pb").symlink_to("tiny.pb")
    result = convert(zoo, dl, out, "--all", "--backend", "ovc")
    assert result.returncode == 0, result.stderr
    for name in ("in-dl", "in-config", "in-conv", "in-link"):
        assert (out / f"public/{name}/FP16/{name}.xml").is_file()
