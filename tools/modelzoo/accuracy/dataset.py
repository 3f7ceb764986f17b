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
    at once). `reader`: "scipy" (a palette picture as RGB, as the checker reads VOC's masks) or
    "pillow" (a palette picture's indices: its mask loader for the other sets); `steps`: what the
    post-processing does to it, in order: ("encode",) the data set's colours made labels,
    ("resize", (width, height)), ("crop_or_pad", (height, width)), ("shift", value)."""

    path: Path
    reader: str = "scipy"
    steps: tuple[tuple[str, Any], ...] = ()

    def then(self, *step: Any) -> "MaskTruth":
        import dataclasses

        return dataclasses.replace(self, steps=self.steps + (tuple(step),))

    def labels(self, colors: tuple[tuple[int, int, int], ...]) -> np.ndarray:
        """The mask as the checker reads it, each step applied: an encoding makes each of
        ``colors`` its index (any other colour 0; a mask of labels stays as it is)."""
        import numpy as np

        mask = read_mask(self.path, self.reader)
        encoded = False
        for name, value in ((s[0], s[1] if len(s) > 1 else None) for s in self.steps):
            if name == "encode" and mask.ndim == 3:
                mask, encoded = encode_colors(mask, colors), True
            elif name == "resize":
                mask = resize_nearest(mask, *value)
            elif name == "crop_or_pad":
                mask = crop_or_pad(mask, *value)
            elif name == "shift" and mask.ndim == 2:
                mask = mask.astype(np.int64) + value
        if mask.ndim != 2:
            raise DatasetError(f"{self.path}: a colour mask, and the yml encodes no colours "
                               "(encode_segmentation_mask with apply_to: annotation)")
        return mask.astype(np.int64) if not encoded else mask


def crop_or_pad(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """The checker's crop_or_pad of an annotation: a side longer than the size cropped from
    (excess // 2) up to the size itself (as its code slices it: so a centred crop loses that many
    rows or columns at the end, which the padding then fills), a shorter one padded with 0 on both
    sides (half of the difference, rounded down, before)."""
    import numpy as np

    h, w = mask.shape[:2]
    top_crop, left_crop = max((h - height) // 2, 0), max((w - width) // 2, 0)
    top_pad, left_pad = max((height - h) // 2, 0), max((width - w) // 2, 0)
    cropped = mask[top_crop:min(height, h), left_crop:min(width, w)]
    ch, cw = cropped.shape[:2]
    pads = ((top_pad, height - top_pad - ch), (left_pad, width - left_pad - cw)) + ((0, 0),) * (mask.ndim - 2)
    return np.pad(cropped, pads, constant_values=0)


def encode_colors(mask: np.ndarray, colors: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """An RGB mask's colours made labels: each of ``colors`` its index, any other colour 0 (as
    8-bit signed numbers, as the checker keeps them)."""
    import numpy as np

    keys = (mask[:, :, 0].astype(np.int64) << 16) | (mask[:, :, 1].astype(np.int64) << 8) | mask[:, :, 2]
    out = np.zeros(keys.shape, dtype=np.int64)
    for label, (r, g, b) in enumerate(colors):  # (a colour listed twice is its last label, as the checker's)
        out[keys == ((r << 16) | (g << 8) | b)] = label
    return out.astype(np.int8).astype(np.int64)  # (the checker's encoded mask is 8-bit signed: 128 and up wrap)


def resize_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A mask as the checker resizes one: an 8-bit picture (labels in 0..255 as they are, other
    values stretched over 0..255), Pillow's nearest neighbour."""
    import numpy as np
    from PIL import Image

    data = mask
    if data.dtype != np.uint8:
        low, high = data.min(), data.max()
        if low >= 0 and high <= 255 and not np.issubdtype(data.dtype, np.floating):
            data = data.astype(np.uint8)
        else:
            span = (high - low) or 1
            data = ((data - low) * (255.0 / span)).clip(0, 255).__add__(0.5).astype(np.uint8)
    mode = "L" if data.ndim == 2 else ("RGB" if data.shape[2] == 3 else "RGBA")
    return np.asarray(Image.fromarray(data, mode).resize((width, height), Image.Resampling.NEAREST))


def read_mask(path: Path, reader: str = "scipy") -> np.ndarray:
    """A mask picture's pixels as Pillow reads it: a palette picture as RGB (RGBA with a
    transparent colour), as the checker's scipy-style reader does, or with ``reader`` "pillow"
    its palette indices (the checker's pillow mask loader), 8 bits either way."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            if picture.mode == "P" and reader == "scipy":
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
class Sample:
    image_id: int
    path: Path


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
    colors: tuple[tuple[int, int, int], ...] = ()  # a segmentation set's colours, label 0 first
    mask_reader: str = "scipy"  # how its masks are read (MaskTruth.reader)

    @property
    def annotated(self) -> bool:
        return self.coco is not None or self.labels is not None or self.boxes is not None or self.masks is not None

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

    def annotations_sha384(self) -> str:
        """What the annotations hold: the annotation file's SHA-384 (COCO's, a val.txt), or, for
        a set of one file a picture (VOC's XML, masks), the digest of its list or meta file and each
        part, named relative to the folder they share (so where the set lives does not matter)."""
        import os

        from ..store.ir_cache import file_sha384, files_digest

        assert self.annotations_path is not None
        if not self.annotation_parts:
            return file_sha384(self.annotations_path)
        paths = [p.absolute() for p in ([self.annotations_path] if self.annotations_path.is_file() else [])
                 + list(self.annotation_parts)]
        root = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
        return files_digest(paths, root)

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
            return {s.image_id: MaskTruth(self.masks[s.image_id], self.mask_reader) for s in self.samples}
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


def _image_set_ids(imageset: Path, nested: bool = False) -> list[tuple[int, str]]:
    """(line number, VOC id) of each line of an image-set file; an id that is not a plain name
    (with ``nested``, a relative path: the checker's voc_segmentation reads `FOLDER/ID` in the
    images' and the masks' folders), or one listed twice, is refused by its line."""
    raw = _read_annotations(imageset, MAX_LIST, "an image-set file")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{imageset}: not an image-set file: not UTF-8 text") from None
    ids, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        voc_id = line.split()[0]
        parts = Path(voc_id).parts
        if (len(parts) != 1 and not nested) or not parts or Path(voc_id).is_absolute() \
                or any(p in (".", "..") for p in parts) or voc_id.endswith("/"):
            raise DatasetError(f"{imageset}: line {number}: {voc_id[:80]!r} is not a VOC image id")
        if voc_id in seen:
            raise DatasetError(f"{imageset}: line {number}: {voc_id!r} is listed twice")
        seen.add(voc_id)
        ids.append((number, voc_id))
    return ids


def load_voc(images: Path, imageset: Path, xml_dir: Path) -> Dataset:
    """The pictures an image-set file lists (one VOC id a line, e.g. ImageSets/Main/val.txt), each
    with xml_dir/ID.xml; the picture is the file its <filename> names in `images`."""
    ids = _image_set_ids(imageset)
    samples, boxes, parts = [], {}, []
    for number, voc_id in ids:
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
# CamVid as SegNet's tutorial ships it (the checker's `camvid`): 11 classes, then 11 "Unlabelled"
CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                  "Bicyclist", "Unlabelled")
CAMVID_COLORS = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                 (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192), (0, 0, 0))
CAMVID_LIST = "val.txt"
# Cityscapes' 19 training classes by train id (the checker's `cityscapes`), then its "background"
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle", "background")
CITYSCAPES_COLORS = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
                     (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180),
                     (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230),
                     (119, 11, 32), (255, 255, 255))
CITYSCAPES_IMAGES = ("imgsFine/leftImg8bit/val", "leftImg8bit/val")  # the checker's layout, then the download's
CITYSCAPES_MASKS = "gtFine/val"
CITYSCAPES_IMAGE_SUFFIX, CITYSCAPES_MASK_SUFFIX = "_leftImg8bit", "_gtFine_labelTrainIds"
ADE20K = "ADEChallengeData2016"
ADE20K_INFO = "objectInfo150.txt"
# Open Model Zoo's road and ADAS segmentation sets (common_semantic_segmentation): the masks' folder
# beside `images/`, with the labels and colours in its dataset_meta.json
COMMON_MASKS = {"road_segmentation": "mask_road_segmentation",
                "semantic_segmentation_adas": "mask_segmentation_adas"}
COMMON_META = "dataset_meta.json"
# erfnet's lanes (Open Model Zoo's erfnet_data: VOC's folders, its own val.txt and meta file)
ERFNET = "erfnet_data"
ERFNET_META = "erfnet_meta_zxw.json"
IGNORED = 255  # a mask's "not annotated" value (VOC's borders, Cityscapes' unused classes): never counted


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


def _segmentation_set(pairs: list[tuple[Path, Path, str]], listing: Path, kind: str, classes: tuple[str, ...],
                      colors: tuple[tuple[int, int, int], ...] = (), reader: str = "pillow") -> Dataset:
    """Pictures with their masks, each pair (picture, mask, where it was named): a missing file,
    or a mask of another size than its picture, is one DatasetError naming it."""
    samples, masks = [], {}
    for picture, mask, where in pairs:
        for path, what in ((picture, "picture"), (mask, "mask")):
            if not path.is_file():
                raise DatasetError(f"{where}: no {what} {path}")
        (mw, mh), (pw, ph) = _picture_size(mask), _picture_size(picture)
        if (mw, mh) != (pw, ph):
            raise DatasetError(f"{mask}: the mask is {mw}x{mh}, its picture {picture.name} {pw}x{ph}")
        samples.append(Sample(len(samples) + 1, picture))
        masks[len(samples)] = mask
    if not samples:
        raise DatasetError(f"{listing}: names no pictures")
    return Dataset(samples, None, listing, kind=kind, classes=classes, annotation_parts=tuple(masks.values()),
                   masks=masks, colors=colors, mask_reader=reader)


def check_masks(dataset: Dataset) -> None:
    """Every mask of a segmentation set decodes and, where it holds labels (one channel), each is
    one of the set's classes or 255 (not annotated): a label out of range is one DatasetError
    naming the mask, before any inference (the checker would leave its pixels out silently)."""
    import numpy as np

    if dataset.masks is None:
        return
    for sample in dataset.samples:
        path = dataset.masks[sample.image_id]
        mask = read_mask(path, dataset.mask_reader)
        if mask.ndim != 2:
            continue
        values = np.unique(mask)
        bad = values[(values >= len(dataset.classes)) & (values != IGNORED)]
        if bad.size:
            raise DatasetError(f"{path}: label {int(bad[0])} is out of range (the set has {len(dataset.classes)} "
                               f"classes, 0..{len(dataset.classes) - 1}; {IGNORED} is not annotated)")


def load_voc_segmentation(images: Path, imageset: Path, mask_dir: Path, meta: Path | None = None,
                          kind: str = "voc_segmentation") -> Dataset:
    """The pictures an image-set file lists (ImageSets/Segmentation/val.txt), each with its mask
    (SegmentationClass/ID.png), read as the checker's voc_segmentation (palettes as colours); the
    classes and colours VOC's, or those of a dataset meta file (its dataset_meta_file)."""
    classes, colors = VOC_SEGMENTATION_CLASSES, VOC_COLORS
    if meta is not None:
        classes, colors = read_dataset_meta(meta, classes, colors)
    pairs = [(_named(images, voc_id, "jpg"), _named(mask_dir, voc_id, "png"), f"{imageset}: line {number}")
             for number, voc_id in _image_set_ids(imageset, nested=True)]
    return _segmentation_set(pairs, imageset, kind, classes, colors, "scipy")


def _inside(root: Path, name: str, where: str) -> Path:
    """The last two parts of a path a list names (the folder and the file, as the checker's camvid
    converter keeps them), under `root`."""
    parts = Path(name).parts[-2:]
    if not parts or any(p in (".", "..") for p in parts) or Path(parts[0]).is_absolute():
        raise DatasetError(f"{where}: {name[:80]!r} is not a picture's path")
    return root.joinpath(*parts)


def load_camvid(root: Path, listing: Path) -> Dataset:
    """CamVid's val.txt, `PICTURE MASK` a line (SegNet's paths: each read as its last folder and
    file under `root`, e.g. `val/0016E5_07959.png valannot/0016E5_07959.png`), the masks the 12
    labels themselves."""
    raw = _read_annotations(listing, MAX_LIST, "a CamVid list")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{listing}: not a CamVid list: not UTF-8 text") from None
    pairs, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{listing}: line {number}"
        fields = line.split()
        if len(fields) != 2:
            raise DatasetError(f"{where}: expected 'PICTURE MASK', got {line.strip()[:80]!r}")
        picture, mask = _inside(root, fields[0], where), _inside(root, fields[1], where)
        if picture in seen:
            raise DatasetError(f"{where}: {fields[0]!r} is listed twice")
        seen.add(picture)
        pairs.append((picture, mask, where))
    return _segmentation_set(pairs, listing, "camvid", CAMVID_CLASSES, CAMVID_COLORS)


def _folders_in(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such {what} folder")
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list: {exc.strerror or exc}") from exc


def load_cityscapes(images: Path, masks: Path) -> Dataset:
    """Cityscapes' validation pictures (`images/CITY/*_leftImg8bit.png`), each with its train-id
    mask `masks/CITY/*_gtFine_labelTrainIds.png` (as the checker's cityscapes converter pairs them;
    cityscapesScripts' createTrainIdLabelImgs makes them from the download's labelIds)."""
    pairs = []
    for city in _folders_in(images, "Cityscapes picture"):
        if not city.is_dir():
            continue
        for picture in sorted(city.glob(f"*{CITYSCAPES_IMAGE_SUFFIX}.png")):
            mask = masks / city.name / CITYSCAPES_MASK_SUFFIX.join(picture.name.split(CITYSCAPES_IMAGE_SUFFIX))
            where = f"{picture}"
            if not mask.is_file() and mask.with_name(mask.name.replace("TrainIds", "Ids")).is_file():
                raise DatasetError(f"{picture}: no train-id mask {mask} (only its labelIds: make the train ids "
                                   "with cityscapesScripts' createTrainIdLabelImgs)")
            pairs.append((picture, mask, where))
    return _segmentation_set(pairs, images, "cityscapes", CITYSCAPES_CLASSES, CITYSCAPES_COLORS)


def _label_names(path: Path, label_map: dict[int, str]) -> tuple[str, ...]:
    """A label map's names by label, which must be 0..n-1 (the checker counts n classes)."""
    if sorted(label_map) != list(range(len(label_map))):
        raise DatasetError(f"{path}: the labels are not 0..{len(label_map) - 1} (got {sorted(label_map)[:5]}...)")
    return tuple(label_map[i] for i in range(len(label_map)))


def read_ade20k_classes(info: Path) -> tuple[str, ...]:
    """objectInfo150.txt (tab-separated, columns Idx and Name): the classes 1..150 by Idx, and 0
    the background, as the checker's ade20k converter makes its label map."""
    import csv
    import io

    raw = _read_annotations(info, MAX_LIST, "ADE20K's object list")
    try:
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8")), delimiter="\t"))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{info}: not ADE20K's object list: {exc}") from None
    label_map = {}
    for number, row in enumerate(rows, start=2):
        try:
            label_map[int(row["Idx"])] = str(row["Name"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{info}: line {number}: needs an integer Idx and a Name (tab-separated)") from None
    label_map[0] = "background"
    return _label_names(info, label_map)


def load_ade20k(images: Path, annotations: Path, info: Path) -> Dataset:
    """ADE20K's validation pictures (`images/validation/*.jpg`), each with its mask of the same
    name in .png (`annotations/validation/`), labels 0..150 (objectInfo150.txt's, 0 the background)."""
    classes = read_ade20k_classes(info)
    pictures = [p for p in _images_in(images) if p.suffix == ".jpg"]  # (the checker's *.jpg)
    pairs = [(p, annotations / p.name.replace("jpg", "png"), f"{p}") for p in pictures]
    return _segmentation_set(pairs, annotations, "ade20k", classes)


def read_dataset_meta(path: Path, classes: tuple[str, ...] = (), colors: tuple[tuple[int, int, int], ...] = ()
                      ) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    """A dataset_meta.json's classes (`label_map` {label: name} or `labels` [names]) and colours
    (`segmentation_colors`, [r, g, b] each), as the checker reads one; without them, ``classes``
    and ``colors`` (an error when there are no classes either: the metrics need them)."""
    raw = _read_annotations(path, MAX_LIST, "a dataset meta file")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f"{path}: not a dataset meta file: not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: not a dataset meta file: not an object")
    if isinstance(doc.get("label_map"), dict):
        try:
            label_map = {int(k): str(v) for k, v in doc["label_map"].items()}
        except ValueError:
            raise DatasetError(f"{path}: label_map: a key is not an integer label") from None
    elif isinstance(doc.get("labels"), list):
        label_map = {i: str(v) for i, v in enumerate(doc["labels"])}
    elif classes:
        label_map = dict(enumerate(classes))
    else:
        raise DatasetError(f"{path}: no label_map (or labels): the metrics need the classes")
    classes = _label_names(path, label_map)
    if "segmentation_colors" not in doc:
        return classes, colors
    colors = doc["segmentation_colors"]
    if not isinstance(colors, list) or not all(
            isinstance(c, list) and len(c) == 3 and all(_integer(v) and 0 <= v <= 255 for v in c) for c in colors):
        raise DatasetError(f"{path}: segmentation_colors must be a list of [r, g, b] (0..255 each)")
    return classes, tuple(tuple(c) for c in colors)  # type: ignore[misc]


def load_common_segmentation(images: Path, masks: Path, kind: str, image_postfix: str = ".JPEG",
                             mask_postfix: str = ".png") -> Dataset:
    """Every `images/*.JPEG` with `masks/NAME.png` and the classes of `masks/dataset_meta.json`
    (the checker's common_semantic_segmentation as Open Model Zoo's road and ADAS sets use it)."""
    classes, colors = read_dataset_meta(masks / COMMON_META)
    pictures = [p for p in _images_in(images) if p.name.endswith(image_postfix)]
    pairs = [(p, masks / (p.name.split(image_postfix)[0] + mask_postfix), f"{p}") for p in pictures]
    return _segmentation_set(pairs, masks, kind, classes, colors)


@dataclass(frozen=True)
class Layout:
    """How one kind of data set is found: --dataset DIR as it unpacks (`root` finds the folder
    at or below DIR, `from_root` reads it), or --images DIR with --annotations (`from_files`)."""

    kind: str
    looks: str  # what a folder of the kind holds, for the error when it is not one
    root: Callable[[Path], Path | None]
    from_root: Callable[[Path], Dataset]
    from_files: Callable[[Path, Path], Dataset]
    annotations: str  # what --annotations names
    classes: tuple[str, ...] = ()

    def __call__(self, dataset: Path | None, images: Path | None, annotations: Path | None,
                 need_annotations: bool) -> Dataset:
        if dataset is not None:
            if images is not None or annotations is not None:
                raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
            root = self.root(dataset) if dataset.is_dir() else None
            if root is None:
                raise DatasetError(f"{dataset}: not {self.looks}")
            return self.from_root(root)
        if images is None:
            raise DatasetError(f"no images: give --dataset DIR ({self.looks}) or --images DIR")
        if annotations is not None:
            return self.from_files(images, annotations)
        if need_annotations:
            raise DatasetError(f"measuring accuracy needs annotations: give --annotations {self.annotations} or "
                               "--dataset DIR")
        return Dataset(load_images(images).samples, kind=self.kind, classes=self.classes)


def _first(folder: Path, *candidates: str, has: Callable[[Path], bool]) -> Path | None:
    """The first of `folder` itself (".") and its sub-folders named that is one `has` accepts."""
    paths = [folder if c == "." else folder / c for c in candidates]
    return next((p for p in paths if has(p)), None)


def _cityscapes_images(root: Path) -> Path:
    return next((root / c for c in CITYSCAPES_IMAGES if (root / c).is_dir()), root / CITYSCAPES_IMAGES[0])


def _has_cityscapes(root: Path) -> bool:
    return (root / CITYSCAPES_MASKS).is_dir() and any((root / c).is_dir() for c in CITYSCAPES_IMAGES)


def _common_layout(kind: str) -> Layout:
    masks = COMMON_MASKS[kind]
    return Layout(
        kind, f"a segmentation folder (images/, {masks}/{COMMON_META})",
        lambda d: _first(d, ".", "segmentation", has=lambda r: (r / "images").is_dir() and (r / masks).is_dir()),
        lambda r: load_common_segmentation(r / "images", r / masks, kind),
        lambda images, annotations: load_common_segmentation(images, annotations, kind),
        f"{masks} (the masks' folder, with {COMMON_META})")


LAYOUTS: dict[str, Layout] = {
    "voc": Layout(
        "voc", "a Pascal VOC folder (Annotations/, ImageSets/, JPEGImages/)", voc_root,
        lambda r: load_voc(r / "JPEGImages", r / VOC_IMAGESET, r / "Annotations"),
        # ImageSets/Main/val.txt: the XML files are in ../../Annotations
        lambda images, a: load_voc(images, a, a.absolute().parents[2] / "Annotations"),
        "ImageSets/Main/val.txt", VOC_CLASSES),
    "voc_segmentation": Layout(
        "voc_segmentation", "a Pascal VOC folder (ImageSets/, JPEGImages/, SegmentationClass/)", voc_root,
        lambda r: load_voc_segmentation(r / "JPEGImages", r / VOC_SEGMENTATION_SET, r / "SegmentationClass"),
        # ImageSets/Segmentation/val.txt: the masks are in ../../SegmentationClass
        lambda images, a: load_voc_segmentation(images, a, a.absolute().parents[2] / "SegmentationClass"),
        "ImageSets/Segmentation/val.txt", VOC_SEGMENTATION_CLASSES),
    "camvid": Layout(
        "camvid", f"a CamVid folder ({CAMVID_LIST}, val/, valannot/)",
        lambda d: _first(d, ".", "CamVid", has=lambda r: (r / CAMVID_LIST).is_file()),
        lambda r: load_camvid(r, r / CAMVID_LIST),
        load_camvid,  # --images: the folder the list's paths are in (the checker's data_source)
        "val.txt", CAMVID_CLASSES),
    "cityscapes": Layout(
        "cityscapes", f"a Cityscapes folder ({CITYSCAPES_IMAGES[1]}/ or {CITYSCAPES_IMAGES[0]}/, "
        f"{CITYSCAPES_MASKS}/)",
        lambda d: _first(d, ".", "data", "Cityscapes/data", has=_has_cityscapes),
        lambda r: load_cityscapes(_cityscapes_images(r), r / CITYSCAPES_MASKS),
        load_cityscapes,  # --images leftImg8bit/val --annotations gtFine/val
        CITYSCAPES_MASKS, CITYSCAPES_CLASSES),
    "ade20k": Layout(
        "ade20k", f"an {ADE20K} folder (images/validation/, annotations/validation/, {ADE20K_INFO})",
        lambda d: _first(d, ".", ADE20K, has=lambda r: (r / ADE20K_INFO).is_file()),
        lambda r: load_ade20k(r / "images/validation", r / "annotations/validation", r / ADE20K_INFO),
        # --annotations annotations/validation: objectInfo150.txt is two folders up
        lambda images, a: load_ade20k(images, a, a.absolute().parents[1] / ADE20K_INFO),
        "annotations/validation"),
    **{kind: _common_layout(kind) for kind in COMMON_MASKS},
    "erfnet_data": Layout(
        "erfnet_data", f"an {ERFNET} folder (JPEGImages/, Annotations/, val.txt, {ERFNET_META})",
        lambda d: _first(d, ".", ERFNET, has=lambda r: (r / "val.txt").is_file() and (r / "Annotations").is_dir()
                         and (r / "JPEGImages").is_dir()),
        lambda r: load_voc_segmentation(r / "JPEGImages", r / "val.txt", r / "Annotations", r / ERFNET_META,
                                        "erfnet_data"),
        # --annotations val.txt: Annotations/ and the meta file beside it
        lambda images, a: load_voc_segmentation(images, a, a.absolute().parent / "Annotations",
                                                a.absolute().parent / ERFNET_META, "erfnet_data"),
        "val.txt (with Annotations/ and erfnet_meta_zxw.json beside it)"),
}


def _camvid_list(path: Path) -> bool:
    """A .txt whose first line is two paths (CamVid's), not `FILE LABEL` (ImageNet's). Only a
    regular file is opened (a FIFO is never waited on: its loader refuses it)."""
    if not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = next((line.split() for line in f if line.strip()), [])
    except OSError:
        return False
    return len(first) == 2 and not first[1].lstrip("-").isdigit()


def kind_of(dataset: Path | None, annotations: Path | None) -> str:
    """The data set's kind by its annotation: a val.txt (ImageNet's, or CamVid's pairs), a VOC
    image set (a .txt in ImageSets/, or a VOC folder), a folder of masks, or a COCO JSON file;
    by its folder's layout for --dataset. (The tools pass the kind the models' ymls name when they
    agree: this is the guess without one.)"""
    if annotations is not None:
        if annotations.suffix.lower() == ".txt":
            if annotations.absolute().parent.parent.name == "ImageSets":
                return "voc_segmentation" if annotations.absolute().parent.name == "Segmentation" else "voc"
            if (annotations.absolute().parent / ERFNET_META).is_file():
                return "erfnet_data"
            return "camvid" if _camvid_list(annotations) else "imagenet"
        for kind, masks in COMMON_MASKS.items():
            if annotations.name == masks:
                return kind
        if annotations.is_dir():
            return "ade20k" if (annotations.absolute().parents[1] / ADE20K_INFO).is_file() else "cityscapes"
        return "coco"
    if dataset is None or not dataset.is_dir() or (dataset / COCO_ANNOTATIONS).exists():
        return "coco"
    for kind in ("cityscapes", "ade20k", *COMMON_MASKS, "erfnet_data"):
        if LAYOUTS[kind].root(dataset) is not None:
            return kind
    if (dataset / CAMVID_LIST).is_file() and _camvid_list(dataset / CAMVID_LIST):
        return "camvid"
    if (dataset / IMAGENET_ANNOTATIONS).is_file():
        return "imagenet"
    if LAYOUTS["camvid"].root(dataset) is not None:
        return "camvid"
    root = voc_root(dataset)
    if root is not None:  # detection when it has the Main image set, else segmentation when it has that one
        return "voc_segmentation" if not (root / VOC_IMAGESET).is_file() and (root / VOC_SEGMENTATION_SET).is_file() \
            else "voc"
    return "coco"


Loader = Callable[[Path | None, Path | None, Path | None, bool], Dataset]
"""loader(--dataset, --images, --annotations, annotations needed) -> the data set."""

# kind of data set (config.DATASETS) -> its loader: a new task's data set is a loader here (or a Layout)
LOADERS: dict[str, Loader] = {"coco": _resolve_coco, "imagenet": _resolve_imagenet, **LAYOUTS}


def resolve(dataset: Path | None, images: Path | None, annotations: Path | None, *, need_annotations: bool,
            kind: str | None = None) -> Dataset:
    """--dataset DIR, or --images DIR [--annotations FILE], read as a data set of this kind (by
    default the kind its annotation says: kind_of).

    Raises:
        DatasetError: the folder or file is not such a data set (one line naming it).
    """
    return LOADERS[kind or kind_of(dataset, annotations)](dataset, images, annotations, need_annotations)
