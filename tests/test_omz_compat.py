"""Every descriptor Open Model Zoo ships (inside openvino-dev) loads with our loader, and our
info_dumper says the same as omz_info_dumper about each model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelzoo.catalog import Catalog
from modelzoo.errors import DescriptorError
from modelzoo.info import model_info

pytest.importorskip("omz_tools")
from modelzoo.devtools.peer import omz_models_root  # noqa: E402

# Deliberate differences, each explained in docs/compatibility.md.
EXPECTED_REJECTIONS = {
    # a misspelt key ('oroginal_source'); omz_tools ignores unknown keys, we name them
    "modnet-webcam-portrait-matting": "files[4].oroginal_source",
}


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

    rejected = {}
    for name in names:
        try:
            ours = model_info(catalog.load(name), catalog.root)
        except DescriptorError as exc:
            rejected[name] = exc.key
            continue
        assert ours == peer_infos[name], name
    assert rejected == EXPECTED_REJECTIONS


def test_info_dumper_cli_matches_peer_for_retinanet(peer_infos):
    from conftest import run_tool

    result = run_tool("info_dumper", "--models_dir", omz_models_root(), "--name", "retinanet-tf,action-recognition-0001")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    assert ours == [peer_infos["retinanet-tf"], peer_infos["action-recognition-0001"]]
