"""Every descriptor Open Model Zoo ships (inside openvino-dev) loads with our loader, and our
info_dumper says the same as omz_info_dumper about each model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelzoo.catalog import Catalog
from modelzoo.devtools.peer import omz_models_root  # omz_tools comes with the [convert] extra, as CI installs
from modelzoo.info import model_info


@pytest.fixture(scope="module")
def peer_infos():
    root = omz_models_root()
    result = subprocess.run([sys.executable, "-m", "modelzoo.devtools.peer", "info_dumper", str(root), "--all"],
                            capture_output=True, text=True, timeout=300, check=True)
    return {m["name"]: m for m in json.loads(result.stdout)}


def test_every_omz_descriptor(peer_infos):
    catalog = Catalog(omz_models_root())
    names = catalog.names()
    assert len(names) >= 240, "the Open Model Zoo descriptor set was not found"
    assert sorted(peer_infos) == names  # same models found, composites counted once

    loaded = catalog.load_each(names)
    assert loaded.failed == {}
    assert [model_info(m, catalog.root) for m in loaded.models] == [peer_infos[n] for n in names]
    # The one imperfection in openvino-dev's set (docs/compatibility.md): a misspelt key, a warning.
    assert [(w.key, w.problem) for w in loaded.warnings] == [
        ("files[4].oroginal_source", "unknown key, ignored (did you mean 'original_source'?)")]
    assert "modnet-webcam-portrait-matting/model.yml" in loaded.warnings[0].path


def test_info_dumper_all_equals_omz_info_dumper_all(peer_infos):
    from conftest import run_tool

    result = run_tool("info_dumper", "--models_dir", omz_models_root(), "--all")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    assert len(ours) == len(peer_infos) == 248
    assert ours == list(peer_infos.values())  # same order too: both sort by name
    [warning] = result.stderr.splitlines()
    assert warning == (f"modelzoo-info: warning: {omz_models_root()}/public/modnet-webcam-portrait-matting/"
                       "model.yml: files[4].oroginal_source: unknown key, ignored (did you mean 'original_source'?)")

    strict = run_tool("info_dumper", "--models_dir", omz_models_root(), "--all", "--strict")
    assert strict.returncode == 2 and strict.stdout == ""
    assert "files[4].oroginal_source: unknown key" in strict.stderr


def test_info_dumper_cli_matches_peer_for_retinanet(peer_infos):
    from conftest import run_tool

    result = run_tool("info_dumper", "--models_dir", omz_models_root(), "--name", "retinanet-tf,action-recognition-0001")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    assert ours == [peer_infos["retinanet-tf"], peer_infos["action-recognition-0001"]]


def test_mirror_plan_of_the_whole_open_model_zoo_set(tmp_path):
    """The dry run of a first mirror of openvino-dev's zoo: every file and the total, no network."""
    from conftest import run_tool

    result = run_tool("mirror", "sync", "--models_dir", omz_models_root(), "--all", "--to", tmp_path / "m",
                      "--dry_run", "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    [plan] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (plan["fetch"], plan["fetch_bytes"], plan["check"], plan["present"], plan["delete"]) == \
        (1215, 38_792_226_540, 0, 0, 0)
    assert len(set(plan["files"])) == 1215 and "public/retinanet-tf/retinanet_resnet50_coco_best_v2.1.0.pb" in plan["files"]
    [warning] = result.stderr.splitlines()
    assert "modnet-webcam-portrait-matting/model.yml: files[4].oroginal_source: unknown key" in warning
    assert not (tmp_path / "m").exists()
