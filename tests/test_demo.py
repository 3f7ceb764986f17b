"""The offline demo at full size (1333x1333): every step, as README's first command runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest



@pytest.mark.slow
def test_offline_demo(tmp_path):
    result = subprocess.run([sys.executable, "-m", "modelzoo.devtools.demo", "--out", str(tmp_path)], capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SHA-384 verified" in result.stdout
    for precision in ("FP32", "FP16"):
        assert (tmp_path / f"ir/public/retinanet-tf/{precision}/retinanet-tf.xml").is_file()
        picture = tmp_path / f"detections-{precision}.png"
        assert picture.stat().st_size > 10_000
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"{precision}: "))
        count = int(line.split()[1])
        assert 20 <= count <= 300, line
    assert "=== timings" in result.stdout
