"""Where the bundled zoo and class-name files live: inside the installed package
(package data) or, when running from a checkout, at the repository's top level."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]  # tools/modelzoo -> repository root


def _first_existing(*candidates: Path) -> Path:
    for path in candidates:
        if path.is_dir():
            return path
    return candidates[-1]


def default_models_dir() -> Path:
    """The zoo that ships with modelzoo (models/ in a checkout)."""
    return _first_existing(_PACKAGE / "zoo", _CHECKOUT / "models")


def dataset_classes_dir() -> Path:
    """Class-name files such as coco_80cl_bkgr.txt (data/dataset_classes/ in a checkout)."""
    return _first_existing(_PACKAGE / "dataset_classes", _CHECKOUT / "data" / "dataset_classes")


def read_class_names(filename: str = "coco_80cl_bkgr.txt") -> list[str]:
    """One name a line; line 0 of the COCO file is the background entry."""
    text = (dataset_classes_dir() / filename).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def demo_picture_path() -> Path:
    """The bundled test picture (data/demo/scene.png: the synthetic scene of reference/scene.py)."""
    return _first_existing(_PACKAGE / "demo_data", _CHECKOUT / "data" / "demo") / "scene.png"
