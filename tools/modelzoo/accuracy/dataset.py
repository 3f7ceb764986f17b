"""Images and their COCO annotations, checked before anything runs.

A COCO-format folder is `DIR/val2017/*.jpg` with `DIR/annotations/instances_val2017.json` (the
layout of COCO's own download), or any image folder with any annotation file. Labels follow Open
Model Zoo's dataset definitions: a category's label is its position in the file's `categories`
list (plus one for a model with a background class), as accuracy_check's `mscoco_detection`
converter numbers them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import DatasetError

if TYPE_CHECKING:  # (imported where arrays are made: listing a data set needs no numpy)
    import numpy as np

COCO_IMAGES = "val2017"
COCO_ANNOTATIONS = "annotations/instances_val2017.json"
MAX_ANNOTATIONS = 1 << 30  # bytes: COCO's largest instances file (train2017) is under half of it


@dataclass(frozen=True)
class GroundTruth:
    """One image's boxes as [x_min, y_min, x_max, y_max] in pixels, labels and crowd flags."""

    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray
    difficult: np.ndarray = field(default_factory=lambda: _flags(0))  # Pascal VOC's, one per box (or none)


def _flags(count: int) -> np.ndarray:
    import numpy as np

    return np.zeros(count, dtype=bool)


@dataclass(frozen=True)
class MaskTruth:
    """One picture's annotated mask, read when it is scored (a data set's masks are not all held
    at once); `encode`: its colours are VOC's palette, to be made labels (encode_segmentation_mask)."""

    path: Path
    encode: bool = False

    def labels(self, colors: tuple[tuple[int, int, int], ...]) -> np.ndarray:
        """The mask as the checker reads it (Pillow; a palette picture as RGB) and, with `encode`,
        each of ``colors`` made its index (any other colour 0)."""
        import numpy as np

        mask = read_mask(self.path)
        if not self.encode:
            if mask.ndim != 2:
                raise DatasetError(f"{self.path}: a colour mask, and the yml encodes no colours "
                                   "(encode_segmentation_mask with apply_to: annotation)")
            return mask.astype(np.int64)
        if mask.ndim != 3:
            return mask.astype(np.int64)
        keys = (mask[:, :, 0].astype(np.int64) << 16) | (mask[:, :, 1].astype(np.int64) << 8) | mask[:, :, 2]
        palette = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], dtype=np.int64)
        order = np.argsort(palette, kind="stable")
        at = np.searchsorted(palette[order], keys).clip(0, len(palette) - 1)
        found = palette[order][at] == keys
        return np.where(found, order[at], 0).astype(np.int64)


def read_mask(path: Path) -> np.ndarray:
    """A mask picture's pixels as Pillow reads it: a palette picture as RGB (RGBA with a
    transparent colour), as the checker's scipy-style reader does."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            if picture.mode == "P":
                picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
            return np.array(picture).astype(np.uint8)
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError) or not exc.strerror:
            raise DatasetError(f"{path}: not a mask picture (Pillow cannot decode it)") from exc
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc


@dataclass(frozen=True)
class ClassLabel:
    """One picture's class, as the model numbers it (the val.txt label plus the dataset's offset)."""

    label: int


@dataclass(frozen=True)
class ImageTruth:
    """One picture's target (the high-resolution or clean picture), read when it is scored, as the
    checker's converters read it: Pillow's pixels as they are (RGB, or one channel for a grey
    picture), or OpenCV's (BGR)."""

    path: Path
    loader: str = "pillow"

    def pixels(self) -> np.ndarray:
        import numpy as np

        if self.loader == "opencv":
            return read_image(self.path)
        if self.loader == "pillow_rgb":
            return read_image(self.path, "pillow_imread")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.path) as picture:
                return np.array(picture).astype(np.uint8)
        except OSError as exc:
            if isinstance(exc, UnidentifiedImageError) or not exc.strerror:
                raise DatasetError(f"{self.path}: not a picture (Pillow cannot decode it)") from exc
            raise DatasetError(f"{self.path}: cannot read: {exc.strerror}") from exc


@dataclass(frozen=True)
class Sample:
    image_id: int
    path: Path
    others: tuple[Path, ...] = ()  # more pictures for the network's other inputs (the upscaled one)

    def files(self) -> list[Path]:
        return [self.path, *self.others]


@dataclass
class Dataset:
    """The images to run (in image-id order) and, when annotated, the COCO document."""

    samples: list[Sample]
    coco: dict[str, Any] | None = None
    annotations_path: Path | None = None
    labels: dict[int, int] | None = None  # an ImageNet-style set's: image id -> val.txt label
    kind: str = "coco"  # LOADERS' key
    boxes: dict[int, GroundTruth] | None = None  # a VOC set's, by image id (labels from 0)
    classes: tuple[str, ...] = ()  # a VOC set's class names, label 0 first
    annotation_parts: tuple[Path, ...] = ()  # a VOC set's XML files, beside its image-set file
    masks: dict[int, Path] | None = None  # a segmentation set's, by image id
    targets: dict[int, ImageTruth] | None = None  # an image-to-image set's, by image id

    @property
    def annotated(self) -> bool:
        return (self.coco is not None or self.labels is not None or self.boxes is not None or self.masks is not None
                or self.targets is not None)

    def categories(self) -> list[dict[str, Any]]:
        if self.classes:
            return [{"id": i, "name": name} for i, name in enumerate(self.classes)]
        return list(self.coco["categories"]) if self.coco else []

    def subset(self, n: int | None) -> "Dataset":
        """The first n images (all of them when there are fewer; the caller warns)."""
        if n is None or n >= len(self.samples):
            return self
        return self.with_samples(self.samples[:n])

    def with_samples(self, samples: list[Sample]) -> "Dataset":
        """The same annotations over other samples (a subset, a shard, NNCF's choice)."""
        import dataclasses

        return dataclasses.replace(self, samples=list(samples))

    def label_of_category(self, label_offset: int, full_label_map: bool = False) -> dict[int, int]:
        """Category id -> the label the model gives it: the category's position plus the offset
        (the checker's mscoco_detection and voc converters), or with ``full_label_map`` COCO's id
        itself (its use_full_label_map)."""
        return {c["id"]: (c["id"] if full_label_map else i + label_offset) for i, c in enumerate(self.categories())}

    def ground_truth(self, label_offset: int, full_label_map: bool = False) -> dict[int, Any]:
        """By image id: a GroundTruth (COCO, VOC) or a ClassLabel (ImageNet)."""
        import dataclasses

        import numpy as np

        if self.labels is not None:
            return {s.image_id: ClassLabel(self.labels[s.image_id] + label_offset) for s in self.samples}
        if self.masks is not None:
            return {s.image_id: MaskTruth(self.masks[s.image_id]) for s in self.samples}
        if self.targets is not None:
            return {s.image_id: self.targets[s.image_id] for s in self.samples}
        if self.boxes is not None:
            return {s.image_id: dataclasses.replace(self.boxes[s.image_id],
                                                    labels=self.boxes[s.image_id].labels + label_offset)
                    for s in self.samples}

        assert self.coco is not None
        label_of = self.label_of_category(label_offset, full_label_map)
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


def read_image(path: Path, reader: str = "opencv_imread") -> np.ndarray:
    """A BGR uint8 picture as OpenCV reads it (accuracy_check's default reader), or with
    `pillow_imread` an RGB one as Pillow decodes it (the configs that resize with Pillow read so)."""
    import cv2
    import numpy as np

    if reader == "pillow_imread":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as picture:
                return np.array(picture.convert("RGB"))
        except OSError as exc:  # (UnidentifiedImageError and a truncated file are OSErrors)
            if isinstance(exc, UnidentifiedImageError) or not exc.strerror:
                raise DatasetError(f"{path}: not an image (Pillow cannot decode it)") from exc
            raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc

    try:
        raw = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        raise DatasetError(f"{path}: not an image (OpenCV cannot decode it)")
    return image


def check_pictures(dataset: Dataset) -> None:
    """Every picture of the data set is one OpenCV can decode: a file that is not is refused
    (DatasetError) before any work, not after a download, a conversion or a measurement."""
    for sample in dataset.samples:
        read_image(sample.path)


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


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    """A finite JSON number (NaN and Infinity are not JSON, but Python's json reads them)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_coco(path: Path, doc: Any) -> None:
    """The document is COCO's instances format as far as scoring reads it: anything else is
    refused by its entry, never scored (a NaN box or a category listed twice gave a number)."""
    if not isinstance(doc, dict):
        raise _problem(path, "top level", "not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _problem(path, key, "missing or not a list")
    if not doc["categories"]:
        raise _problem(path, "categories", "empty")
    cats = set()
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not _integer(c.get("id")) or not isinstance(c.get("name"), str):
            raise _problem(path, f"categories[{i}]", "needs an integer id and a name")
        if c["id"] in cats:
            raise _problem(path, f"categories[{i}]", f"category id {c['id']} appears twice")
        cats.add(c["id"])
    ids = set()
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not _integer(im.get("id")) or not isinstance(im.get("file_name"), str):
            raise _problem(path, f"images[{i}]", "needs an integer id and a file_name")
        if im["id"] in ids:
            raise _problem(path, f"images[{i}]", f"image id {im['id']} appears twice")
        if Path(im["file_name"]).name != im["file_name"]:
            raise _problem(path, f"images[{i}]", f"file_name {im['file_name']!r} is not a plain file name")
        ids.add(im["id"])
    ann_ids = set()
    for i, a in enumerate(doc["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            raise _problem(path, where, "not an object")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_number(v) for v in bbox):
            raise _problem(path, where, f"bbox must be [x, y, width, height], four finite numbers (got {bbox!r})")
        if not _integer(a.get("image_id")) or a["image_id"] not in ids:
            raise _problem(path, where, f"image_id {a.get('image_id')!r} is not in images")
        if not _integer(a.get("category_id")) or a["category_id"] not in cats:
            raise _problem(path, where, f"category_id {a.get('category_id')!r} is not in categories")
        if "id" in a:
            if not _integer(a["id"]):
                raise _problem(path, where, f"id must be an integer (got {a['id']!r})")
            if a["id"] in ann_ids:
                raise _problem(path, where, f"annotation id {a['id']} appears twice")
            ann_ids.add(a["id"])
        if "iscrowd" in a and not (_integer(a["iscrowd"]) and a["iscrowd"] in (0, 1)):
            raise _problem(path, where, f"iscrowd must be 0 or 1 (got {a['iscrowd']!r})")
        if "area" in a and not (_number(a["area"]) and a["area"] >= 0):
            raise _problem(path, where, f"area must be a finite number of 0 or more (got {a['area']!r})")


def _read_annotations(path: Path, limit: int, what: str) -> bytes:
    """An annotation file's bytes, read as the manifest and --list are (a FIFO or a device is
    refused, never waited on), at most ``limit``; one DatasetError line otherwise."""
    from .. import fsio

    try:
        raw = fsio.read_small(path, limit + 1)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the annotations: {exc.strerror or exc}") from exc
    if len(raw) > limit:
        raise DatasetError(f"{path}: larger than {limit:,} bytes; not read as {what}")
    return raw


def load_annotated(images: Path, annotations: Path) -> Dataset:
    """Images named by a COCO annotation file; every one must be in `images`."""
    files = {p.name: p for p in _images_in(images)}
    text = _read_annotations(annotations, MAX_ANNOTATIONS, "annotations")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{annotations}: not a COCO annotation file: not JSON ({exc})") from exc
    except RecursionError as exc:
        raise DatasetError(f"{annotations}: not a COCO annotation file: JSON nested too deep") from exc
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


def _resolve_coco(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                  ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        if not dataset.is_dir():
            raise DatasetError(f"{dataset}: no such dataset folder")
        if not (dataset / COCO_IMAGES).exists() and not (dataset / COCO_ANNOTATIONS).exists():
            raise DatasetError(f"{dataset}: neither a COCO-format folder ({COCO_IMAGES}/, {COCO_ANNOTATIONS}) nor "
                               f"an ImageNet-style one ({IMAGENET_ANNOTATIONS} beside the pictures)")
        return load_annotated(dataset / COCO_IMAGES, dataset / COCO_ANNOTATIONS)
    if images is None:
        raise DatasetError("no images: give --dataset DIR (COCO layout) or --images DIR")
    if annotations is not None:
        return load_annotated(images, annotations)
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations FILE or --dataset DIR")
    return load_images(images)


IMAGENET_ANNOTATIONS = "val.txt"
IMAGENET_CLASSES = 1000
MAX_LIST = 1 << 28  # bytes of a val.txt (ImageNet's 50,000 lines are 1.5 MB)


def load_imagenet(images: Path, annotations: Path) -> Dataset:
    """ImageNet's val.txt, `FILE LABEL` a line (the file relative to `images`, the label 0..999),
    as the checker's `imagenet` converter reads it; a picture that is not there, a label out of
    range or a line that is not two fields is refused by its line."""
    if not images.is_dir():
        raise DatasetError(f"{images}: no such image folder")
    raw = _read_annotations(annotations, MAX_LIST, "a val.txt")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{annotations}: not a val.txt: not UTF-8 text") from exc
    samples, labels, seen = [], {}, set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{annotations}: line {number}"
        if len(fields) != 2:
            raise DatasetError(f"{where}: expected 'FILE LABEL', got {line.strip()[:80]!r}")
        name, label = fields
        try:
            value = int(label)
        except ValueError:
            raise DatasetError(f"{where}: label {label[:40]!r} is not an integer") from None
        if not 0 <= value < IMAGENET_CLASSES:
            raise DatasetError(f"{where}: label {value} is out of range (0..{IMAGENET_CLASSES - 1})")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{where}: {name!r} is not a path inside {images}")
        if name in seen:
            raise DatasetError(f"{where}: {name!r} is listed twice")
        seen.add(name)
        path = images / relative
        if not path.is_file():
            raise DatasetError(f"{where}: names picture {name!r}, which is not in {images}")
        samples.append(Sample(len(samples) + 1, path))
        labels[len(samples)] = value
    if not samples:
        raise DatasetError(f"{annotations}: names no pictures")
    return Dataset(samples, None, annotations, labels, "imagenet")


def _resolve_imagenet(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                      ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        return load_imagenet(dataset, dataset / IMAGENET_ANNOTATIONS)
    if images is None:
        raise DatasetError("no images: give --dataset DIR (with val.txt) or --images DIR")
    if annotations is not None:
        return load_imagenet(images, annotations)
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations val.txt or --dataset DIR")
    return Dataset(load_images(images).samples, kind="imagenet")


# Pascal VOC's 20 detection classes in its order (the checker's voc_detection labels them so)
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOC_IMAGESET = "ImageSets/Main/val.txt"
MAX_XML = 1 << 20  # bytes of one VOC annotation (VOC's own are about 1 kB)


def voc_root(folder: Path) -> Path | None:
    """The VOC year folder (Annotations/, JPEGImages/, ImageSets/) at or below `folder`:
    `VOC2012/`, or a `VOCdevkit/VOC20xx` inside it, as VOC's own download unpacks."""
    candidates = [folder] + sorted(folder.glob("VOC20*")) + sorted(folder.glob("VOCdevkit/VOC20*"))
    return next((c for c in candidates if (c / "ImageSets").is_dir() and (c / "JPEGImages").is_dir()), None)


def _xml_problem(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path}: not a Pascal VOC annotation: {what}")


def _text(node: Any, tag: str, path: Path, where: str) -> str:
    found = node.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise _xml_problem(path, f"{where}: no <{tag}>")
    return found.text.strip()


def _number_in(node: Any, tag: str, path: Path, where: str) -> float:
    text = _text(node, tag, path, where)
    try:
        value = float(text)
    except ValueError:
        raise _xml_problem(path, f"{where}: <{tag}> {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise _xml_problem(path, f"{where}: <{tag}> {text[:40]!r} is not a number")
    return value


def read_voc_xml(path: Path) -> tuple[str, "GroundTruth"]:
    """One VOC annotation: the picture's file name and its boxes as the checker converts them
    (each corner minus 1: VOC counts pixels from 1), labels from 0, difficult flags. An XML that
    does not parse, a class VOC does not have or a box outside the picture (by <size>) is one
    DatasetError naming the file."""
    import xml.etree.ElementTree as ET

    import numpy as np

    raw = _read_annotations(path, MAX_XML, "a VOC annotation")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:  # (no entity is expanded: none is needed)
        raise _xml_problem(path, "declares a DOCTYPE or entities")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise _xml_problem(path, f"XML does not parse ({exc})") from None
    name = _text(root, "filename", path, "annotation")
    if Path(name).name != name:
        raise _xml_problem(path, f"<filename> {name!r} is not a plain file name")
    size = root.find("size")
    width = _number_in(size, "width", path, "size") if size is not None else math.inf
    height = _number_in(size, "height", path, "size") if size is not None else math.inf
    boxes, labels, difficult = [], [], []
    for i, obj in enumerate(root.findall("object")):
        where = f"object {i + 1}"
        kind = _text(obj, "name", path, where)
        if kind not in VOC_CLASSES:
            raise _xml_problem(path, f"{where}: class {kind[:40]!r} is not one of VOC's 20")
        box = obj.find("bndbox")
        if box is None:
            raise _xml_problem(path, f"{where}: no <bndbox>")
        x0, y0, x1, y1 = (_number_in(box, t, path, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
            raise _xml_problem(path, f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the "
                               f"{width:g}x{height:g} picture")
        flag = obj.find("difficult")
        difficult.append(flag is not None and (flag.text or "0").strip() == "1")
        boxes.append([x0 - 1, y0 - 1, x1 - 1, y1 - 1])
        labels.append(VOC_CLASSES.index(kind))
    return name, GroundTruth(np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(labels, dtype=int),
                             np.zeros(len(labels), dtype=int), np.array(difficult, dtype=bool))


def load_voc(images: Path, imageset: Path, xml_dir: Path) -> Dataset:
    """The pictures an image-set file lists (one VOC id a line, e.g. ImageSets/Main/val.txt), each
    with xml_dir/ID.xml; the picture is the file its <filename> names in `images`."""
    raw = _read_annotations(imageset, MAX_LIST, "an image-set file")
    try:
        ids = [line.split()[0] for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise DatasetError(f"{imageset}: not an image-set file: not UTF-8 text") from None
    samples, boxes, seen, parts = [], {}, set(), []
    for number, voc_id in enumerate(ids, start=1):
        if Path(voc_id).name != voc_id or voc_id in (".", ".."):
            raise DatasetError(f"{imageset}: line {number}: {voc_id[:80]!r} is not a VOC image id")
        if voc_id in seen:
            raise DatasetError(f"{imageset}: line {number}: {voc_id!r} is listed twice")
        seen.add(voc_id)
        xml = xml_dir / f"{voc_id}.xml"
        if not xml.is_file():
            raise DatasetError(f"{imageset}: line {number}: no annotation {xml}")
        name, truth = read_voc_xml(xml)
        parts.append(xml)
        if not (images / name).is_file():
            raise DatasetError(f"{xml}: names picture {name!r}, which is not in {images}")
        samples.append(Sample(len(samples) + 1, images / name))
        boxes[len(samples)] = truth
    if not samples:
        raise DatasetError(f"{imageset}: names no pictures")
    return Dataset(samples, None, imageset, kind="voc", boxes=boxes, classes=VOC_CLASSES,
                   annotation_parts=tuple(parts))


# the checker's VOC segmentation labels: the background, then the 20 classes; and their colours
VOC_SEGMENTATION_CLASSES = ("__background__",) + VOC_CLASSES
VOC_COLORS = ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
              (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
              (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0), (0, 64, 128))
VOC_SEGMENTATION_SET = "ImageSets/Segmentation/val.txt"


def _picture_size(path: Path) -> tuple[int, int]:
    """(width, height) from the picture's header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return picture.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path}: not a picture ({exc.strerror or 'Pillow cannot decode it'})") from exc


def _named(folder: Path, stem: str, default: str) -> Path:
    """folder/stem.default, else folder/stem.* (the first, by name): as the checker finds them."""
    if (folder / f"{stem}.{default}").is_file():
        return folder / f"{stem}.{default}"
    found = sorted(folder.glob(f"{glob_escape(stem)}.*"))
    return found[0] if found else folder / f"{stem}.{default}"


def glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def load_voc_segmentation(images: Path, imageset: Path, mask_dir: Path) -> Dataset:
    """The pictures an image-set file lists (ImageSets/Segmentation/val.txt), each with its mask
    (SegmentationClass/ID.png): a missing one, or one of another size than its picture, is one
    DatasetError naming it."""
    raw = _read_annotations(imageset, MAX_LIST, "an image-set file")
    try:
        ids = [line.split()[0] for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise DatasetError(f"{imageset}: not an image-set file: not UTF-8 text") from None
    samples, masks, seen = [], {}, set()
    for number, voc_id in enumerate(ids, start=1):
        if Path(voc_id).name != voc_id or voc_id in (".", ".."):
            raise DatasetError(f"{imageset}: line {number}: {voc_id[:80]!r} is not a VOC image id")
        if voc_id in seen:
            raise DatasetError(f"{imageset}: line {number}: {voc_id!r} is listed twice")
        seen.add(voc_id)
        picture, mask = _named(images, voc_id, "jpg"), _named(mask_dir, voc_id, "png")
        for path, what in ((picture, "picture"), (mask, "mask")):
            if not path.is_file():
                raise DatasetError(f"{imageset}: line {number}: no {what} {path}")
        if _picture_size(mask) != _picture_size(picture):
            (mw, mh), (pw, ph) = _picture_size(mask), _picture_size(picture)
            raise DatasetError(f"{mask}: the mask is {mw}x{mh}, its picture {picture.name} {pw}x{ph}")
        samples.append(Sample(len(samples) + 1, picture))
        masks[len(samples)] = mask
    if not samples:
        raise DatasetError(f"{imageset}: names no pictures")
    return Dataset(samples, None, imageset, kind="voc_segmentation", classes=VOC_SEGMENTATION_CLASSES,
                   annotation_parts=tuple(masks.values()), masks=masks)


def _resolve_voc_segmentation(dataset: Path | None, images: Path | None, annotations: Path | None,
                              need_annotations: bool) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        root = voc_root(dataset) if dataset.is_dir() else None
        if root is None:
            raise DatasetError(f"{dataset}: not a Pascal VOC folder (ImageSets/, JPEGImages/, SegmentationClass/)")
        return load_voc_segmentation(root / "JPEGImages", root / VOC_SEGMENTATION_SET, root / "SegmentationClass")
    if images is None:
        raise DatasetError("no images: give --dataset DIR (a VOC folder) or --images DIR")
    if annotations is not None:  # ImageSets/Segmentation/val.txt: the masks are in ../../SegmentationClass
        return load_voc_segmentation(images, annotations, annotations.absolute().parents[2] / "SegmentationClass")
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations "
                           "ImageSets/Segmentation/val.txt or --dataset DIR")
    return Dataset(load_images(images).samples, kind="voc_segmentation", classes=VOC_SEGMENTATION_CLASSES)


def _resolve_voc(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                 ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        root = voc_root(dataset) if dataset.is_dir() else None
        if root is None:
            raise DatasetError(f"{dataset}: not a Pascal VOC folder (Annotations/, ImageSets/, JPEGImages/)")
        return load_voc(root / "JPEGImages", root / VOC_IMAGESET, root / "Annotations")
    if images is None:
        raise DatasetError("no images: give --dataset DIR (a VOC folder) or --images DIR")
    if annotations is not None:  # ImageSets/Main/val.txt: the XML files are in ../../Annotations
        return load_voc(images, annotations, annotations.absolute().parents[2] / "Annotations")
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations ImageSets/Main/val.txt or "
                           "--dataset DIR")
    return Dataset(load_images(images).samples, kind="voc", classes=VOC_CLASSES)


# WIDER FACE as its two downloads unpack side by side (the checker's `wider` definitions' paths)
WIDER_IMAGES = "WIDER_val/images"
WIDER_ANNOTATIONS = "wider_face_split/wider_face_val_bbx_gt.txt"
WIDER_CLASSES = ("face",)


def _wider_problem(path: Path, number: int, what: str) -> DatasetError:
    return DatasetError(f"{path}: line {number}: not WIDER FACE's bbx_gt format: {what}")


def read_wider(path: Path) -> list[tuple[str, int, "np.ndarray"]]:
    """WIDER FACE's wider_face_*_bbx_gt.txt: per picture its path (below the image folder), a line
    with the count of faces, then one line per face: x y w h and six flags (blur expression
    illumination invalid occlusion pose); a picture of no face has one line of zeros after its 0.
    As the checker's `wider` converter reads it: a box is [x, y, x + w, y + h] and the flags are
    not read (an `invalid` face is ground truth like any other; the yml's filters decide what is
    ignored). Returns (picture, the line naming it, boxes [N, 4]) in the file's order; a line that
    is not of the format, or a count the lines after it do not match, is one DatasetError naming
    the file and the line."""
    import numpy as np

    raw = _read_annotations(path, MAX_LIST, "a WIDER FACE annotation file")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not WIDER FACE's bbx_gt format: not UTF-8 text") from None
    numbered = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    pictures, at = [], 0
    while at < len(numbered):
        number, name = numbered[at]
        if len(name.split()) != 1 or name.replace(".", "").isdigit():
            hint = " (a face beyond the count of the picture before?)" if len(name.split()) in (4, 10) else ""
            raise _wider_problem(path, number, f"expected a picture's path, got {name[:80]!r}{hint}")
        if at + 1 >= len(numbered):
            raise _wider_problem(path, number, f"{name!r} has no line with its count of faces")
        count_number, count = numbered[at + 1]
        if not count.isdigit():
            raise _wider_problem(path, count_number, f"expected the count of faces of {name!r}, got {count[:80]!r}")
        rows = numbered[at + 2:at + 2 + int(count)]
        boxes = []
        for row_number, row in rows:
            fields = row.split()
            try:
                values = [float(v) for v in fields]
            except ValueError:
                values = []
            if len(fields) not in (4, 10) or len(values) != len(fields) or not all(math.isfinite(v) for v in values):
                more = (f" ({name!r} says {int(count)} faces; {len(boxes)} follow)"
                        if len(fields) == 1 else "")
                raise _wider_problem(path, row_number, f"expected a face: x y w h and 6 flags, got "
                                     f"{row[:80]!r}{more}")
            x, y, w, h = values[:4]
            if w < 0 or h < 0:
                raise _wider_problem(path, row_number, f"a face of negative size ({w:g}x{h:g})")
            boxes.append([x, y, x + w, y + h])
        if len(rows) < int(count):
            raise _wider_problem(path, count_number, f"{name!r} says {int(count)} faces; the file ends after "
                                 f"{len(rows)}")
        at += 2 + int(count)
        if int(count) == 0 and at < len(numbered) and len(numbered[at][1].split()) == 10 \
                and set(numbered[at][1].split()) == {"0"}:
            at += 1  # (the line of zeros a picture of no face has)
        pictures.append((name, number, np.array(boxes, dtype=np.float64).reshape(-1, 4)))
    return pictures


def load_wider(images: Path, annotations: Path) -> Dataset:
    """The pictures a WIDER FACE bbx_gt file lists, each below ``images`` (WIDER_val/images), each
    face labelled 0 (the dataset's offset makes it the model's face label)."""
    import numpy as np

    if not images.is_dir():
        raise DatasetError(f"{images}: no such image folder")
    samples, boxes, seen = [], {}, set()
    for name, number, found in read_wider(annotations):
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise DatasetError(f"{annotations}: line {number}: {name[:80]!r} is not a path inside {images}")
        if name in seen:
            raise DatasetError(f"{annotations}: line {number}: {name!r} is listed twice")
        seen.add(name)
        if not (images / relative).is_file():
            raise DatasetError(f"{annotations}: line {number}: names picture {name!r}, which is not in {images}")
        samples.append(Sample(len(samples) + 1, images / relative))
        boxes[len(samples)] = GroundTruth(found, np.zeros(len(found), dtype=int), np.zeros(len(found), dtype=int))
    if not samples:
        raise DatasetError(f"{annotations}: names no pictures")
    return Dataset(samples, None, annotations, kind="wider", boxes=boxes, classes=WIDER_CLASSES)


def wider_root(folder: Path) -> tuple[Path, Path] | None:
    """(images, annotation file) of a WIDER FACE folder: the one holding WIDER_val/ and
    wider_face_split/, or WIDER_val/ itself with wider_face_split/ beside or inside it."""
    for root, images in ((folder, folder / WIDER_IMAGES), (folder.parent, folder / "images"),
                         (folder, folder / "images")):
        if images.is_dir() and (root / WIDER_ANNOTATIONS).is_file():
            return images, root / WIDER_ANNOTATIONS
    return None


def _resolve_wider(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                   ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        found = wider_root(dataset) if dataset.is_dir() else None
        if found is None:
            raise DatasetError(f"{dataset}: not a WIDER FACE folder ({WIDER_IMAGES}/ and {WIDER_ANNOTATIONS})")
        return load_wider(*found)
    if images is None:
        raise DatasetError("no images: give --dataset DIR (a WIDER FACE folder) or --images DIR")
    if annotations is not None:
        return load_wider(images, annotations)
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations wider_face_val_bbx_gt.txt or "
                           "--dataset DIR")
    return Dataset(load_images(images).samples, kind="wider", classes=WIDER_CLASSES)


def _looks_wider(annotations: Path) -> bool:
    """WIDER's bbx_gt file: its first line one path, its second a count (ImageNet's val.txt
    lines are a name and a label)."""
    try:
        with open(annotations, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace").split("\n")
    except OSError:
        return False
    lines = [line.strip() for line in head if line.strip()]
    return len(lines) >= 2 and len(lines[0].split()) == 1 and lines[1].isdigit()


def kind_of(dataset: Path | None, annotations: Path | None) -> str:
    """The data set's kind by its annotation: a val.txt (ImageNet's), a VOC image set (a .txt
    in ImageSets/, or a VOC folder), or a COCO JSON file."""
    if annotations is not None:
        if annotations.suffix.lower() == ".txt":
            if annotations.absolute().parent.parent.name != "ImageSets":
                return "wider" if _looks_wider(annotations) else "imagenet"
            return "voc_segmentation" if annotations.absolute().parent.name == "Segmentation" else "voc"
        return "coco"
    if dataset is not None and dataset.is_dir() and wider_root(dataset) is not None \
            and not (dataset / COCO_ANNOTATIONS).exists():
        return "wider"
    if dataset is not None and (dataset / IMAGENET_ANNOTATIONS).is_file() and not (dataset / COCO_ANNOTATIONS).exists():
        return "imagenet"
    root = voc_root(dataset) if dataset is not None and dataset.is_dir() and not (dataset / COCO_ANNOTATIONS).exists() \
        else None
    if root is not None:  # detection when it has the Main image set, else segmentation when it has that one
        return "voc_segmentation" if not (root / VOC_IMAGESET).is_file() and (root / VOC_SEGMENTATION_SET).is_file() \
            else "voc"
    return "coco"


@dataclass(frozen=True)
class ImageSet:
    """How one of Open Model Zoo's image-to-image definitions pairs the files of its folder (the
    checker's super_resolution and image_processing converters): every file whose name holds
    ``source`` is an input; its target's name is the same with ``target`` in place of ``source``
    (and its upscaled picture's with ``upsampled``); the target read by ``loader``; ``scale``: the
    target is that many times the input's size (0: the checker says nothing)."""

    folder: str  # the definition's data_source (what --dataset names)
    source: str
    target: str
    upsampled: str | None = None
    loader: str = "pillow"
    scale: int = 0
    extensions: tuple[str, ...] = ()  # instead of source: every file of these (any case), its own target


IMAGE_SETS = {
    "super_resolution_x3": ImageSet("super_resolution", "lr_x3", "hr", "upsample_x3", scale=3),
    "super_resolution_x4": ImageSet("super_resolution", "lr_x4", "hr", "upsample_x4", scale=4),
    "text_super_resolution_x3": ImageSet("super_resolution", "lr_x3", "hr_gray", scale=3),
    "LIVE_1": ImageSet("LIVE_1", ".bmp", ".bmp"),
    "imagenet_colorization": ImageSet("ImageNet", ".JPEG", ".JPEG", loader="opencv"),
    "ms_coco_style_transfer": ImageSet("val2017", "", "", loader="pillow_rgb",
                                       extensions=(".png", ".jpg", ".jpeg", ".tiff", ".bmp", ".gif")),
    "inpainting_rect_masks": ImageSet("VOCdevkit/VOC2012/JPEGImages", "", "", loader="opencv",
                                      extensions=(".png", ".jpg", ".jpeg", ".tiff", ".bmp", ".gif")),
}


def load_image_set(folder: Path, kind: str) -> Dataset:
    """The input pictures of ``folder`` (sorted by name) with their targets (and upscaled
    pictures): a missing one, or a target whose size is not the input's times the scale, is one
    DatasetError naming the file."""
    spec = IMAGE_SETS[kind]
    files = _images_in(folder)
    names = {p.name for p in files}
    samples, targets = [], {}
    for path in files:
        if spec.extensions:
            if not path.name.lower().endswith(spec.extensions):
                continue
            parts = [path.name]
        elif spec.source not in path.name:
            continue
        else:
            parts = path.name.split(spec.source)
        target = folder / spec.target.join(parts)
        others = (folder / spec.upsampled.join(parts),) if spec.upsampled else ()
        for needed, what in [(target, "target")] + [(o, "upscaled picture") for o in others]:
            if needed.name not in names:
                raise DatasetError(f"{path}: no {what} {needed.name} beside it (the {kind} definition pairs "
                                   f"*{spec.source}* with *{spec.target if what == 'target' else spec.upsampled}*)")
        if spec.scale:
            (w, h), (tw, th) = _picture_size(path), _picture_size(target)
            if (tw, th) != (w * spec.scale, h * spec.scale):
                raise DatasetError(f"{target}: {tw}x{th}, not {spec.scale} times its low-resolution picture "
                                   f"{path.name} ({w}x{h} -> {w * spec.scale}x{h * spec.scale})")
            for other in others:
                if _picture_size(other) != (tw, th):
                    ow, oh = _picture_size(other)
                    raise DatasetError(f"{other}: {ow}x{oh}, not the size of its target {target.name} ({tw}x{th})")
        samples.append(Sample(len(samples) + 1, path, others))
        targets[len(samples)] = ImageTruth(target, spec.loader)
    if not samples:
        what = f"ending {', '.join(spec.extensions)}" if spec.extensions else f"whose name holds {spec.source!r}"
        raise DatasetError(f"{folder}: no picture {what} (the {kind} definition's inputs)")
    return Dataset(samples, None, folder, kind=kind, targets=targets)


def image_set_kind(ymls: list[Path], names: list[str]) -> tuple[str | None, int | None]:
    """The image-to-image definition every one of these models names (their pictures are told
    apart by the names' suffixes, not by the folder: one super_resolution folder holds the x3 and
    x4 sets), or None (the data set's kind is told by its folder); and the subsample_size they
    all give (None: all the pictures)."""
    from ..errors import ModelzooError
    from .config import load_accuracy_config

    kinds, subsamples = set(), set()
    for yml, name in zip(ymls, names):
        try:
            config = load_accuracy_config(yml, name)
            kinds.add(config.dataset_kind)
            subsamples.add(config.subsample)
        except ModelzooError:
            kinds.add(None)
            subsamples.add(None)
    found = kinds.pop() if len(kinds) == 1 else None
    return (found if found in IMAGE_SETS else None), (subsamples.pop() if len(subsamples) == 1 else None)


def _image_set_loader(kind: str) -> "Loader":
    def load(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
             ) -> Dataset:
        if annotations is not None:
            raise DatasetError(f"{annotations}: the {kind} data set has no annotation file (the targets are "
                               "pictures beside the inputs): give --dataset DIR")
        if dataset is not None and images is not None:
            raise DatasetError("give --dataset DIR or --images DIR, not both")
        folder = dataset if dataset is not None else images
        if folder is None:
            raise DatasetError(f"no pictures: give --dataset DIR (the {kind} folder, {IMAGE_SETS[kind].folder}/)")
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no such dataset folder")
        # the folder that holds it (as the definition's data_source), or one of its parents
        # (VOC2012/ for VOCdevkit/VOC2012/JPEGImages), or the folder itself
        parts = Path(IMAGE_SETS[kind].folder).parts
        inner = next((folder.joinpath(*parts[i:]) for i in range(len(parts)) if folder.joinpath(*parts[i:]).is_dir()),
                     folder)
        return load_image_set(inner, kind)
    return load


Loader = Callable[[Path | None, Path | None, Path | None, bool], Dataset]
"""loader(--dataset, --images, --annotations, annotations needed) -> the data set."""

# kind of data set (config.DATASETS) -> its loader: a new task's data set is a loader here
LOADERS: dict[str, Loader] = {"coco": _resolve_coco, "imagenet": _resolve_imagenet, "voc": _resolve_voc,
                              "voc_segmentation": _resolve_voc_segmentation, "wider": _resolve_wider,
                              **{kind: _image_set_loader(kind) for kind in IMAGE_SETS}}


def resolve(dataset: Path | None, images: Path | None, annotations: Path | None, *, need_annotations: bool,
            kind: str | None = None) -> Dataset:
    """--dataset DIR, or --images DIR [--annotations FILE], read as a data set of this kind (by
    default the kind its annotation says: kind_of).

    Raises:
        DatasetError: the folder or file is not such a data set (one line naming it).
    """
    return LOADERS[kind or kind_of(dataset, annotations)](dataset, images, annotations, need_annotations)
