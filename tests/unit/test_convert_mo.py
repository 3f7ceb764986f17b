"""convert/mo.py's child environment: the Model Optimizer processes we start (and the peer's)
import a stand-in openvino_telemetry that refuses to load, so no GA4 sender forks from a thread
while TensorFlow is being imported (that deadlocked mo here)."""

from __future__ import annotations

import subprocess
import sys

from modelzoo.convert.mo import NO_TELEMETRY_DIR, child_env


def test_the_stand_in_is_where_the_child_environment_points():
    assert (NO_TELEMETRY_DIR / "openvino_telemetry.py").is_file()
    assert str(NO_TELEMETRY_DIR) in child_env()["PYTHONPATH"].split(":")


def test_a_child_cannot_import_openvino_telemetry():
    result = subprocess.run([sys.executable, "-c", "import openvino_telemetry"], env=child_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "openvino_telemetry is disabled by modelzoo" in result.stderr
