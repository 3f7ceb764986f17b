"""The quantizer with a read-only --cache_dir that has no ir/ folder (a team's read-only download
cache, issue 24): it serves nothing, writes nothing there, and the INT8 IR is made beside it."""

from __future__ import annotations

import subprocess

from qtools import MODEL
from test_quantizer_cache import INT8, ir_dir_copy, quantize, runs


def test_a_read_only_cache_without_an_ir_folder_quantizes_beside_it(tmp_path):
    ir = ir_dir_copy(tmp_path)
    cache = tmp_path / "ro"
    cache.mkdir()
    # (root ignores modes; a read-only mount stops it)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(cache)], check=True)
    try:
        log = tmp_path / "nncf.log"
        result = quantize(ir, tmp_path / "out", log, "--cache_dir", cache)
        assert result.returncode == 0, result.stderr
        assert runs(log) == 1 and (tmp_path / "out" / MODEL / INT8 / "retinanet-tf.xml").is_file()
        assert not (cache / "ir").exists()
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)
