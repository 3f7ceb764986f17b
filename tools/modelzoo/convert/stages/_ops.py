"""The OpenVINO opset the stages build with (its module moved between 2024 and 2025)."""

from __future__ import annotations

from typing import Any


def opset() -> Any:
    """openvino's opset13 module, wherever this OpenVINO keeps it."""
    try:
        import openvino.opset13 as ops  # OpenVINO 2025 and later
    except ImportError:
        import openvino.runtime.opset13 as ops  # 2024.x
    return ops
