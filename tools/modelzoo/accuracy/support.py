"""Whether modelzoo-accuracy can measure a model, read from its accuracy-check.yml alone (no IR,
no data set): the same reading a measurement starts with, so a model said "no" here is refused
by a run with the same entry named."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import AccuracyConfigError
from .config import load_accuracy_config

CONFIG_NAME = "accuracy-check.yml"


def unsupported(yml: Path, model_name: str) -> str | None:
    """None when the model's entry is one this package implements; else the first entry that is
    not (as `where: problem`, without the file's name and the list of what is implemented)."""
    if not yml.is_file():
        return f"no {CONFIG_NAME}"
    try:
        load_accuracy_config(yml, model_name)
    except AccuracyConfigError as exc:
        text = str(exc)
        prefix = f"{yml}: "
        text = text[len(prefix):] if text.startswith(prefix) else text
        return re.sub(r" \(implemented: [^)]*\)", "", text)
    return None


def verdict_line(name: str, yml: Path) -> str:
    """`NAME: yes` or `NAME: no: <the first entry not implemented>`."""
    why = unsupported(yml, name)
    return f"{name}: yes" if why is None else f"{name}: no: {why}"
