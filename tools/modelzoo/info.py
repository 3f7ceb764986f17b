"""The JSON facts info_dumper prints: the same fields and values as omz_info_dumper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .descriptor import Model


def model_info(model: Model, models_root: Path) -> dict[str, Any]:
    folder = Path(models_root) / model.subdirectory
    accuracy = folder / "accuracy-check.yml"
    config = folder / "model.yml"
    info = {
        "name": model.name,
        "composite_model_name": model.composite_model_name,
        "description": model.description,
        "framework": model.framework,
        "license_url": model.license_url,
        "accuracy_config": str(accuracy) if accuracy.exists() else None,
        "model_config": str(config) if config.exists() else None,
        "precisions": sorted(model.precisions),
        "subdirectory": str(model.subdirectory),
        "task_type": model.task_type,
        "input_info": [{"name": i.name, "shape": list(i.shape), "layout": i.layout} for i in model.input_info],
        "model_stages": [model_info(stage, models_root) for stage in model.stages],
    }
    if model.quantization_output_precisions:  # omz's schema key; omz_info_dumper 2024.6 had no model with it
        info["quantization_output_precisions"] = sorted(model.quantization_output_precisions)
    return info
