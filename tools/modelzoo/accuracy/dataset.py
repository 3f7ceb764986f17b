"""Images and their COCO annotations, checked before anything runs.

A COCO-format folder is `DIR/val2017/*.jpg` with `DIR/annotations/instances_val2017.json` (the
layout of COCO's own download), or any image folder with any annotation file. Labels follow Open
Model Zoo's dataset definitions: a category's label is its position in the file's `categories`
list (plus one for a model with a background class), as accuracy_check's `mscoco_detection`
converter numbers them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DatasetError

if TYPE_CHECKING:  # (imported where arrays are made: listing a data set needs no numpy)
    import numpy as np

COCO_IMAGES = "val2017"
COCO_ANNOTATIONS = "annotations/instances_val2017.json"


@dataclass(frozen=True)
class GroundTruth:
    """One image's boxes as [x_min, y_min, x_max, y_max] in pixels, labels and crowd flags."""

    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray


@dataclass(frozen=True)
class Sample:
    image_id: int
    path: Path


@dataclass
class Dataset:
    """The images to run (in image-id order) and, when annotated, the COCO document."""

    samples: list[Sample]
    coco: dict[str, Any] | None = None
    annotations_path: Path | None = None

    @property
    def annotated(self) -> bool:
        return self.coco is not None

    def categories(self) -> list[dict[str, Any]]:
        return list(self.coco["categories"]) if self.coco else []

    def subset(self, n: int | None) -> "Dataset":
        """The first n images (all of them when there are fewer; the caller warns)."""
        if n is None or n >= len(self.samples):
            return self
        return Dataset(self.samples[:n], self.coco, self.annotations_path)

    def ground_truth(self, label_offset: int) -> dict[int, GroundTruth]:
        import numpy as np

        assert self.coco is not None
        label_of = {c["id"]: i + label_offset for i, c in enumerate(self.coco["categories"])}
        per_image: dict[int, list[dict]] = {s.image_id: [] for s in self.samples}
        for ann in self.coco["annotations"]:
            if ann["image_id"] in per_image:
                per_image[ann["image_id"]].append(ann)
        result = {}
        for image_id, anns in per_image.items():
            boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=np.float64).reshape(-1, 4)
            result[image_id] = GroundTruth(boxes, np.array([label_of[a["category_id"]] for a in anns], dtype=int),
                                           np.array([int(a.get("iscrowd", 0)) for a in anns], dtype=int))
        return result


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 picture as OpenCV reads it (accuracy_check's default reader)."""
    import cv2
    import numpy as np

    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        raise DatasetError(f"{path}: not an image (OpenCV cannot decode it)")
    return image


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such image folder")
    try:
        files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list: {exc.strerror or exc}") from exc
    if not files:
        raise DatasetError(f"{folder}: no images in the folder")
    return files


def _problem(path: Path, where: str, what: str) -> DatasetError:
    return DatasetError(f"{path}: not a COCO annotation file: {where}: {what}")


def _check_coco(path: Path, doc: Any) -> None:
    if not isinstance(doc, dict):
        raise _problem(path, "top level", "not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _problem(path, key, "missing or not a list")
    if not doc["categories"]:
        raise _problem(path, "categories", "empty")
    cats = set()
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise _problem(path, f"categories[{i}]", "needs an integer id and a name")
        cats.add(c["id"])
    ids = set()
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            raise _problem(path, f"images[{i}]", "needs an integer id and a file_name")
        if im["id"] in ids:
            raise _problem(path, f"images[{i}]", f"image id {im['id']} appears twice")
        if Path(im["file_name"]).name != im["file_name"]:
            raise _problem(path, f"images[{i}]", f"file_name {im['file_name']!r} is not a plain file name")
        ids.add(im["id"])
    for i, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict):
            raise _problem(path, f"annotations[{i}]", "not an object")
        bbox = a.get("bbox")
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise _problem(path, f"annotations[{i}]", "bbox must be [x, y, width, height]")
        if a.get("image_id") not in ids:
            raise _problem(path, f"annotations[{i}]", f"image_id {a.get('image_id')!r} is not in images")
        if a.get("category_id") not in cats:
            raise _problem(path, f"annotations[{i}]", f"category_id {a.get('category_id')!r} is not in categories")
        if not isinstance(a.get("id", 0), int):
            raise _problem(path, f"annotations[{i}]", "id must be an integer")


def load_annotated(images: Path, annotations: Path) -> Dataset:
    """Images named by a COCO annotation file; every one must be in `images`."""
    files = {p.name: p for p in _images_in(images)}
    try:
        text = annotations.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{annotations}: cannot read the annotations: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{annotations}: not a COCO annotation file: not JSON ({exc})") from exc
    _check_coco(annotations, doc)
    samples = []
    for im in sorted(doc["images"], key=lambda im: im["id"]):
        if im["file_name"] not in files:
            raise DatasetError(f"{annotations}: names image {im['file_name']!r}, which is not in {images}")
        samples.append(Sample(im["id"], files[im["file_name"]]))
    if not samples:
        raise DatasetError(f"{annotations}: names no images")
    return Dataset(samples, doc, annotations)


def load_images(images: Path) -> Dataset:
    """Every file of a folder (sorted by name), for calibration without annotations."""
    return Dataset([Sample(i, p) for i, p in enumerate(_images_in(images), start=1)])


def resolve(dataset: Path | None, images: Path | None, annotations: Path | None, *, need_annotations: bool) -> Dataset:
    """--dataset DIR, or --images DIR [--annotations FILE]."""
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        if not dataset.is_dir():
            raise DatasetError(f"{dataset}: no such dataset folder")
        return load_annotated(dataset / COCO_IMAGES, dataset / COCO_ANNOTATIONS)
    if images is None:
        raise DatasetError("no images: give --dataset DIR (COCO layout) or --images DIR")
    if annotations is not None:
        return load_annotated(images, annotations)
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations FILE or --dataset DIR")
    return load_images(images)
