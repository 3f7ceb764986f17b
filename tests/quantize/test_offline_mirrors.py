"""The quantizer's --mirror offline: an http://, an https:// and an s3:// mirror (all pointing at
a listener on 127.0.0.1 that counts the connections it accepts) are each refused in one line
without a connection, and the IR is quantized here."""

from __future__ import annotations

from conftest import error_lines, run_tool
from qtools import MODEL, coco, rebuilt  # noqa: F401 (fixtures)
from test_offline_everywhere import OFFLINE_WORDS, listener, mirrors  # noqa: F401 (fixture)


def test_every_network_mirror_is_refused_offline_and_the_ir_made_here(rebuilt, coco, listener, tmp_path):
    chosen = mirrors(listener)
    env = {k: v for _, extra in chosen.values() for k, v in extra.items()}
    out = tmp_path / "out"
    args = [a for url, _ in chosen.values() for a in ("--mirror", url)]
    result = run_tool("quantizer", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--ir_dir",
                      rebuilt["ir"], "-o", out, "--images", coco / "val2017", "--subset", "2", "--precisions",
                      "FP32-INT8", "--cache_dir", tmp_path / "cache", "--offline", *args, env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    lines = error_lines(result)
    assert len(lines) == 3, result.stderr
    for (url, _), line in zip(chosen.values(), lines):
        assert url in line and OFFLINE_WORDS in line and line.endswith("quantizing locally"), line
    assert (out / MODEL / "FP32-INT8" / "retinanet-tf.xml").is_file()
    assert listener.accepted == 0
