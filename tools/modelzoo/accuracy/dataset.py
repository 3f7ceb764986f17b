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
    def palette_as_colours(picture: Any) -> Any:
        if picture.mode == "P" and reader == "scipy":
            return picture.convert("RGBA" if "transparency" in picture.info else "RGB")
        return picture

    return pillow_pixels(path, "a mask picture", palette_as_colours)


def pillow_pixels(path: Path, what: str, convert: Callable[[Any], Any] = lambda picture: picture) -> np.ndarray:
    """A picture's 8-bit pixels as Pillow decodes it (after ``convert``); one DatasetError naming
    the file when it cannot be read or is not ``what``."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return np.array(convert(picture)).astype(np.uint8)
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError) or not exc.strerror:
            raise DatasetError(f"{path}: not {what} (Pillow cannot decode it)") from exc
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
        if self.loader == "opencv":
            return read_image(self.path)
        if self.loader == "pillow_rgb":
            return read_image(self.path, "pillow_imread")
        return pillow_pixels(self.path, "a picture")


@dataclass(frozen=True)
class ReidTruth:
    """One re-identification picture: whose it is (a person's or vehicle's id from its file name;
    Market-1501's 0 is a distractor, which matches no query), the camera (counted from 0, as the
    checker's converters make it) and its side, a query or the gallery searched for it."""

    identity: int
    camera: int
    query: bool


@dataclass(frozen=True)
class PairTruth:
    """One face picture's pairs, as LFW's pairs.txt lists them from it: the image ids of the
    pictures of the same person and of another person it is compared with."""

    same: tuple[int, ...]
    other: tuple[int, ...]


@dataclass(frozen=True)
class PlaceTruth:
    """One place-recognition picture: where it was taken (UTM easting, northing, metres) and its
    side, a query or the database searched for it."""

    easting: float
    northing: float
    query: bool


@dataclass(frozen=True)
class Sample:
    image_id: int
    path: Path
    keypoints: tuple[float, ...] | None = None  # x, y of each landmark (LFW's 5), for point_alignment
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
    annotation_parts: tuple[Path, ...] = ()  # a VOC set's XML files (masks; a CVAT XML's labels files)
    masks: dict[int, Path] | None = None  # a segmentation set's, by image id
    label_map: dict[int, str] | None = None  # labels fixed by the data (a CVAT labels file): label -> name
    labels_file: Path | None = None  # a CVAT set's labels file given by hand (--labels), for every model
    reid: dict[int, ReidTruth] | None = None  # a re-identification set's, by image id
    pairs: dict[int, PairTruth] | None = None  # a face verification set's, by image id
    places: dict[int, PlaceTruth] | None = None  # a place-recognition set's, by image id
    # how it was read (resolve's arguments: dataset, images, annotations, need_annotations, kind), so
    # that a job on another machine reads it again from the shared folder instead of being sent it
    origin: tuple | None = None
    colors: tuple[tuple[int, int, int], ...] = ()  # a segmentation set's colours, label 0 first
    mask_reader: str = "scipy"  # how its masks are read (MaskTruth.reader)
    targets: dict[int, ImageTruth] | None = None  # an image-to-image set's, by image id

    @property
    def annotated(self) -> bool:
        return (self.coco is not None or self.labels is not None or self.boxes is not None or self.masks is not None
                or self.reid is not None or self.pairs is not None or self.places is not None
                or self.targets is not None)

    def categories(self) -> list[dict[str, Any]]:
        if self.label_map is not None:
            return [{"id": label, "name": name} for label, name in sorted(self.label_map.items())]
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
        itself (its use_full_label_map); a label map fixed by the data is its own."""
        if self.label_map is not None:
            return {label: label for label in sorted(self.label_map)}
        return {c["id"]: (c["id"] if full_label_map else i + label_offset) for i, c in enumerate(self.categories())}

    def for_config(self, config: Any) -> "Dataset":
        """The data set as one model's yml labels it: a CVAT set whose definition names a labels
        file (or given one with --labels) keeps the boxes of the labels that file maps, numbered
        as it says; every other set is the same for every model.

        Raises:
            DatasetError: the labels file is not there or not one (one line naming it).
        """
        if self.kind != "cvat" or self.label_map is not None or self.boxes is None:
            return self
        assert self.annotations_path is not None
        path = self.labels_file
        if path is None and config.labels_file is not None:
            path = self.annotations_path.parent / config.labels_file
            if not path.is_file():
                raise DatasetError(f"{path}: no such file: {config.model}'s data set {config.dataset!r} numbers its "
                                   f"labels by it (put it beside {self.annotations_path.name}, or give --labels FILE)")
        if path is None:
            return self
        return _cvat_relabelled(self, path)

    def ground_truth(self, label_offset: int, full_label_map: bool = False) -> dict[int, Any]:
        """By image id: a GroundTruth (COCO, VOC) or a ClassLabel (ImageNet)."""
        import dataclasses

        import numpy as np

        if self.labels is not None:
            return {s.image_id: ClassLabel(self.labels[s.image_id] + label_offset) for s in self.samples}
        if self.masks is not None:
            return {s.image_id: MaskTruth(self.masks[s.image_id], self.mask_reader) for s in self.samples}
        if self.reid is not None:
            return {s.image_id: self.reid[s.image_id] for s in self.samples}
        if self.pairs is not None:
            return {s.image_id: self.pairs[s.image_id] for s in self.samples}
        if self.places is not None:
            return {s.image_id: self.places[s.image_id] for s in self.samples}
        if self.targets is not None:
            return {s.image_id: self.targets[s.image_id] for s in self.samples}
        if self.boxes is not None:
            offset = 0 if self.label_map is not None else label_offset
            return {s.image_id: dataclasses.replace(self.boxes[s.image_id],
                                                    labels=self.boxes[s.image_id].labels + offset)
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


def rle_runs(counts: str) -> list[int] | None:
    """The run lengths of COCO's compressed RLE string (six bits a character from "0", five of
    them the value and one "more follows"; a run after the second is stored as its difference
    from the run two before), or None when the string is not one. Read here, not by pycocotools,
    whose C decoder writes as many pixels as the runs say, whatever the picture's size."""
    runs: list[int] = []
    at = 0
    while at < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if at >= len(counts):
                return None
            code = ord(counts[at]) - 48
            if not 0 <= code < 64:
                return None
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            at += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _segmentation_problem(segm: Any, height: int, width: int) -> str | None:
    """Why an annotation's `segmentation` is not one pycocotools can make a mask of (polygons:
    lists of x, y pairs, three points or more, near the picture; RLE: {"size": [h, w],
    "counts"} of the picture's size, compressed or a list of run lengths covering it), or None."""
    if isinstance(segm, list):
        if not segm:
            return "segmentation is an empty list of polygons"
        for k, polygon in enumerate(segm):
            if not isinstance(polygon, list) or not all(_number(v) for v in polygon):
                return f"segmentation polygon {k} is not a list of finite numbers"
            if len(polygon) < 6 or len(polygon) % 2:
                return f"segmentation polygon {k} has {len(polygon)} numbers (x, y pairs, three points or more)"
            xs, ys = polygon[0::2], polygon[1::2]
            # (pycocotools draws every edge pixel by pixel: a point far away would be millions of them)
            if min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height:
                return f"segmentation polygon {k} has a point far outside the {width}x{height} picture"
        return None
    if not isinstance(segm, dict) or set(segm) != {"size", "counts"}:
        return "segmentation is neither a list of polygons nor an RLE {size, counts}"
    if segm["size"] != [height, width]:
        return f"segmentation RLE size {segm['size']!r} is not the picture's [height, width] [{height}, {width}]"
    counts = segm["counts"]
    if isinstance(counts, str):
        counts = rle_runs(counts)
        if counts is None:
            return "segmentation RLE counts are not COCO's compressed string"
    elif not isinstance(counts, list) or not all(_integer(c) for c in counts):
        return "segmentation RLE counts are neither a list of integers nor a compressed string"
    if any(c < 0 for c in counts) or sum(counts) != height * width:
        return f"segmentation RLE counts do not cover the {height}x{width} picture"
    return None


def check_instance_masks(dataset: "Dataset") -> None:
    """Every annotation of a COCO set has a mask (the checker's mscoco_mask_rcnn converter reads
    each one's `segmentation`), every picture its size in `images`, and that size is the picture's
    own (the predicted masks are made at the picture's size, the annotated ones at the file's).

    Raises:
        DatasetError: one line naming the annotation file and the entry.
    """
    assert dataset.coco is not None and dataset.annotations_path is not None
    path, doc = dataset.annotations_path, dataset.coco
    sizes = {}
    for i, im in enumerate(doc["images"]):
        if not (_integer(im.get("height")) and _integer(im.get("width")) and im["height"] > 0 and im["width"] > 0):
            raise _problem(path, f"images[{i}]", "needs a positive integer width and height (masks are made at "
                           "the picture's size)")
        sizes[im["id"]] = (im["height"], im["width"])
    for i, a in enumerate(doc["annotations"]):
        if "segmentation" not in a:
            raise _problem(path, f"annotations[{i}]", "no segmentation (an instance mask data set)")
        why = _segmentation_problem(a["segmentation"], *sizes[a["image_id"]])
        if why:
            raise _problem(path, f"annotations[{i}]", why)
    by_id = {im["id"]: im for im in doc["images"]}
    for sample in dataset.samples:
        width, height = _picture_size(sample.path)
        if (height, width) != sizes[sample.image_id]:
            h, w = sizes[sample.image_id]
            raise DatasetError(f"{path}: image {by_id[sample.image_id]['file_name']!r} is {h}x{w} (HxW) in the "
                               f"file, but {sample.path} is {height}x{width}")


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


# A re-identification set as its archive unpacks (the checker's market1501_reid and veri776_reid
# converters): the queries' folder, the gallery's, and the file name's pattern, searched for in the
# name: the identity, then the camera (from 1). Market-1501: 0002_c1s1_000451_03.jpg (-1_c1... is
# junk, left out; 0000_... a distractor, kept); VeRi-776: 0002_c002_00030600_0.jpg.
REID_LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "market1501": ("query", "bounding_box_test", r"([-\d]+)_c(\d)", "0002_c1s1_000451_03.jpg"),
    "veri776": ("image_query", "image_test", r"([-\d]+)_c([-\d]+)_", "0002_c002_00030600_0.jpg"),
}
REID_FOLDERS = {"market1501": "Market-1501-v15.09.15", "veri776": "VeRi-776"}
REID_JUNK = -1


def reid_root(folder: Path, kind: str) -> Path | None:
    """The folder that holds the set's query and gallery folders: `folder` itself or the one its
    archive unpacks to inside it."""
    query, gallery = REID_LAYOUTS[kind][:2]
    for candidate in (folder, folder / REID_FOLDERS[kind]):
        if (candidate / query).is_dir() and (candidate / gallery).is_dir():
            return candidate
    return None


def _reid_pictures(folder: Path, pattern: "re.Pattern[str]", example: str) -> list[tuple[Path, int, int]]:
    """(picture, identity, camera from 0) of every .jpg of a folder, by name from the last (the
    checker's order), junk left out; a name that does not say both ids is refused by its file."""
    try:
        names = sorted((p.name for p in folder.iterdir() if p.name.endswith(".jpg") and p.is_file()), reverse=True)
    except OSError as exc:
        raise DatasetError(f"{folder}: cannot list: {exc.strerror or exc}") from exc
    found = []
    for name in names:
        match = pattern.search(name)
        try:
            identity, camera = (int(g) for g in match.groups()) if match else (None, None)
        except ValueError:
            identity = camera = None
        if identity is None or camera is None:
            raise DatasetError(f"{folder / name}: the file name does not say the identity and camera "
                               f"(expected a name like {example})")
        if identity == REID_JUNK:
            continue
        found.append((folder / name, identity, camera - 1))
    if not found:
        raise DatasetError(f"{folder}: no .jpg pictures of an identity")
    return found


def load_reid(root: Path, kind: str) -> Dataset:
    """A Market-1501 or VeRi-776 folder: the gallery, then the queries, each by name from the last
    (the checker's annotation order, so ties in distance fall alike)."""
    import re

    query, gallery, pattern, example = REID_LAYOUTS[kind]
    compiled = re.compile(pattern)
    samples, truth = [], {}
    for folder, is_query in ((root / gallery, False), (root / query, True)):
        for path, identity, camera in _reid_pictures(folder, compiled, example):
            samples.append(Sample(len(samples) + 1, path))
            truth[len(samples)] = ReidTruth(identity, camera, is_query)
    return Dataset(samples, None, None, kind=kind, reid=truth)


def _reid_loader(kind: str) -> "Loader":
    def resolve_reid(dataset: Path | None, images: Path | None, annotations: Path | None,
                     need_annotations: bool) -> Dataset:
        query, gallery = REID_LAYOUTS[kind][:2]
        if annotations is not None:
            raise DatasetError(f"a {REID_FOLDERS[kind]} set has no annotation file (its file names are the "
                               f"annotations): give --dataset DIR")
        if dataset is not None and images is not None:
            raise DatasetError("give --dataset DIR or --images DIR, not both")
        folder = dataset if dataset is not None else images
        if folder is None:
            raise DatasetError(f"no images: give --dataset DIR ({query}/ and {gallery}/ inside)")
        root = reid_root(folder, kind) if folder.is_dir() else None
        if root is None:
            raise DatasetError(f"{folder}: not a {REID_FOLDERS[kind]} folder ({query}/ and {gallery}/ inside)")
        return load_reid(root, kind)

    return resolve_reid


# An image-retrieval set (the checker's image_retrieval converter; Open Model Zoo's textile_crops):
# gallery/ and queries/, each with a list of `FILE ID` lines (FILE inside that folder, or a path
# from the set's root when it has a "/"), under Open Model Zoo's names or the converter's own.
RETRIEVAL_LISTS = (("gallery/gallery.txt", "queries/quieries.txt"), ("gallery/list.txt", "queries/list.txt"))


def retrieval_lists(folder: Path) -> tuple[Path, Path] | None:
    for gallery, queries in RETRIEVAL_LISTS:
        if (folder / gallery).is_file() and (folder / queries).is_file():
            return folder / gallery, folder / queries
    return None


def load_retrieval(root: Path, gallery_list: Path, queries_list: Path) -> Dataset:
    """The gallery's pictures, then the queries', in their lists' order (the checker's): the
    gallery on camera 0, the queries on camera 1 (so no gallery picture is left out for a query),
    the ids as the lists write them."""
    samples, truth, ids = [], {}, {}
    for listed, is_query in ((gallery_list, False), (queries_list, True)):
        raw = _read_annotations(listed, MAX_LIST, "a picture list")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{listed}: not a picture list: not UTF-8 text") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split()
            where = f"{listed}: line {number}"
            if len(fields) != 2:
                raise DatasetError(f"{where}: expected 'FILE ID', got {line.strip()[:80]!r}")
            name, identity = fields
            relative = Path(name) if "/" in name else Path(listed.parent.name) / name
            if relative.is_absolute() or ".." in relative.parts:
                raise DatasetError(f"{where}: {name!r} is not a path inside {root}")
            if not (root / relative).is_file():
                raise DatasetError(f"{where}: names picture {name!r}, which is not in {root}")
            samples.append(Sample(len(samples) + 1, root / relative))
            truth[len(samples)] = ReidTruth(ids.setdefault(identity, len(ids)), int(is_query), is_query)
    if not any(t.query for t in truth.values()) or all(t.query for t in truth.values()):
        raise DatasetError(f"{root}: the gallery or the queries list no pictures")
    return Dataset(samples, None, None, kind="image_retrieval", reid=truth,
                   annotation_parts=(gallery_list, queries_list))


def _resolve_retrieval(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                       ) -> Dataset:
    folder = dataset if dataset is not None else images
    if annotations is not None or (dataset is not None and images is not None):
        raise DatasetError("an image-retrieval set is one folder: give --dataset DIR")
    if folder is None:
        raise DatasetError("no images: give --dataset DIR (gallery/ and queries/ with their lists inside)")
    lists = retrieval_lists(folder) if folder.is_dir() else None
    if lists is None:
        raise DatasetError(f"{folder}: not an image-retrieval folder ({' and '.join(RETRIEVAL_LISTS[0])}, or "
                           f"{' and '.join(RETRIEVAL_LISTS[1])})")
    return load_retrieval(folder, *lists)


# LFW as Open Model Zoo's `lfw` definition lays it out: the pictures in lfw/PERSON/PERSON_NNNN.jpg,
# annotation/pairs.txt (a header line, then `PERSON N M` for two pictures of one person and
# `PERSON N OTHER M` for two people), and annotation/lfw_landmark.txt (`PICTURE<tab>x1<tab>y1...`,
# five points) for point_alignment. lfw_mtcnn_align's pictures are PNG files (the faces cut out
# by MTCNN): a picture is PERSON_NNNN.jpg, else PERSON_NNNN.png.
LFW_PICTURES, LFW_PAIRS, LFW_LANDMARKS = "lfw", "annotation/pairs.txt", "annotation/lfw_landmark.txt"
LFW_POINTS = 5


def lfw_picture(person: str, number: str, extension: str = "jpg") -> str:
    """PERSON/PERSON_NNNN.jpg, the number padded to four digits (the checker's naming)."""
    return f"{person}/{person}_{'0' * (4 - len(number))}{number}.{extension}"


def _lfw_landmarks(path: Path) -> dict[str, tuple[float, ...]]:
    raw = _read_annotations(path, MAX_LIST, "a landmarks file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a landmarks file: not UTF-8 text") from None
    found = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        try:
            points = tuple(float(int(v)) for v in fields[1:])
        except ValueError:
            points = ()
        if len(points) != 2 * LFW_POINTS:
            raise DatasetError(f"{path}: line {number}: expected 'PICTURE' and {2 * LFW_POINTS} integers separated "
                               f"by tabs, got {line.strip()[:80]!r}")
        found[fields[0]] = points
    return found


def load_lfw(images: Path, pairs_file: Path, landmarks_file: Path | None, extension: str = "jpg") -> Dataset:
    """The pictures pairs.txt names, each once, in the checker's order (every same-person pair's
    two, then every two-person pair's), with the pairs each one starts."""
    raw = _read_annotations(pairs_file, MAX_LIST, "a pairs file")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{pairs_file}: not a pairs file: not UTF-8 text") from None
    same, other = [], []
    for number, line in enumerate(lines[1:], start=2):  # (the first line is the header: folds, pairs)
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 3:
            same.append((lfw_picture(fields[0], fields[1], extension), lfw_picture(fields[0], fields[2], extension)))
        elif len(fields) == 4:
            other.append((lfw_picture(fields[0], fields[1], extension), lfw_picture(fields[2], fields[3], extension)))
        else:
            raise DatasetError(f"{pairs_file}: line {number}: expected 'PERSON N M' or 'PERSON N OTHER M', got "
                               f"{line.strip()[:80]!r}")
    order: dict[str, int] = {}
    for first, second in same + other:
        for name in (first, second):
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise DatasetError(f"{pairs_file}: {name!r} is not a path inside {images}")
            order.setdefault(name, len(order) + 1)
    if not order:
        raise DatasetError(f"{pairs_file}: names no pairs")
    landmarks = _lfw_landmarks(landmarks_file) if landmarks_file is not None else {}
    samples = []
    for name, image_id in order.items():
        path = images / name
        if not path.is_file() and path.with_suffix(".png").is_file():  # (lfw_mtcnn_align's pictures)
            path = path.with_suffix(".png")
        if not path.is_file():
            raise DatasetError(f"{pairs_file}: names picture {name!r}, which is not in {images}")
        if landmarks_file is not None and name not in landmarks:
            raise DatasetError(f"{landmarks_file}: no landmarks for {name!r} (point_alignment needs them)")
        samples.append(Sample(image_id, path, landmarks.get(name)))
    partners: dict[int, tuple[list[int], list[int]]] = {i: ([], []) for i in order.values()}
    for k, pairs in enumerate((same, other)):
        for first, second in pairs:
            if order[second] not in partners[order[first]][k]:  # (a pair listed twice counts once)
                partners[order[first]][k].append(order[second])
    truth = {i: PairTruth(tuple(s), tuple(o)) for i, (s, o) in partners.items()}
    parts = (pairs_file,) + ((landmarks_file,) if landmarks_file is not None else ())
    return Dataset(samples, None, None, kind="lfw", pairs=truth, annotation_parts=parts)


def _resolve_lfw(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                 ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations pairs.txt, not both")
        if not (dataset / LFW_PAIRS).is_file() or not (dataset / LFW_PICTURES).is_dir():
            raise DatasetError(f"{dataset}: not an LFW folder ({LFW_PICTURES}/, {LFW_PAIRS})")
        landmarks = dataset / LFW_LANDMARKS
        return load_lfw(dataset / LFW_PICTURES, dataset / LFW_PAIRS, landmarks if landmarks.is_file() else None)
    if images is None or annotations is None:
        raise DatasetError("give --dataset DIR (an LFW folder: lfw/, annotation/pairs.txt) or --images DIR with "
                           "--annotations pairs.txt")
    landmarks = annotations.parent / Path(LFW_LANDMARKS).name
    return load_lfw(images, annotations, landmarks if landmarks.is_file() else None)


# LFW as insightface packs it (Open Model Zoo's lfw_bin, the checker's face_recognition_bin): one
# pickle of (the pictures' encoded bytes, one "same person" flag per two pictures). Picture 2k and
# 2k + 1 are a pair. It is read without letting the pickle name any class or function (a pickle
# that does is refused), and the pictures are decoded into a temporary folder as the checker
# writes them (PNG), removed when the process ends.
LFW_BIN = "lfw.bin"
MAX_BIN = 1 << 30


def _plain_pickle(path: Path, raw: bytes) -> Any:
    """A pickle's value, built of plain values only (bytes, lists, tuples, bools, numbers): one
    that names a class or function is refused, never imported (but codecs.encode, which protocol 2
    names to make bytes)."""
    import io
    import pickle

    class Plain(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("_codecs", "encode"):  # (protocol 2's bytes from Python 3: text to bytes)
                import codecs

                return codecs.encode
            raise DatasetError(f"{path}: not an lfw.bin of plain values: it names {module}.{name}")

    try:
        return Plain(io.BytesIO(raw), encoding="bytes").load()
    except DatasetError:
        raise
    except Exception as exc:  # (pickle's errors are of many kinds: any means "not this file")
        raise DatasetError(f"{path}: not an lfw.bin: {type(exc).__name__}: {str(exc)[:120]}") from None


def load_lfw_bin(bin_file: Path) -> Dataset:
    """The pictures of an lfw.bin in its order, decoded into a temporary folder (0.png, 1.png,
    ...), each even one with the pair it starts."""
    import atexit
    import shutil
    import tempfile

    import cv2
    import numpy as np

    doc = _plain_pickle(bin_file, _read_annotations(bin_file, MAX_BIN, "an lfw.bin"))
    if not (isinstance(doc, (tuple, list)) and len(doc) == 2 and isinstance(doc[0], (list, tuple))
            and isinstance(doc[1], (list, tuple))):
        raise DatasetError(f"{bin_file}: not an lfw.bin: expected (pictures, same-person flags)")
    bins, same = doc
    if not same or len(bins) < 2 * len(same):
        raise DatasetError(f"{bin_file}: not an lfw.bin: {len(bins)} pictures for {len(same)} pairs")
    folder = Path(tempfile.mkdtemp(prefix="modelzoo-lfw-bin-"))
    atexit.register(shutil.rmtree, folder, True)
    samples, truth = [], {}
    for k, flag in enumerate(same):
        if not isinstance(flag, (bool, int)) or flag not in (0, 1):
            raise DatasetError(f"{bin_file}: not an lfw.bin: pair {k}'s flag is {flag!r}")
        for index in (2 * k, 2 * k + 1):
            data = bins[index]
            picture = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) \
                if isinstance(data, (bytes, bytearray)) and data else None
            if picture is None:
                raise DatasetError(f"{bin_file}: picture {index} is not an image (OpenCV cannot decode it)")
            path = folder / f"{index}.png"
            cv2.imwrite(str(path), picture)
            samples.append(Sample(index + 1, path))
        truth[2 * k + 1] = PairTruth((2 * k + 2,), ()) if flag else PairTruth((), (2 * k + 2,))
        truth[2 * k + 2] = PairTruth((), ())
    return Dataset(samples, None, None, kind="lfw_bin", pairs=truth, annotation_parts=(bin_file,))


def _resolve_lfw_bin(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                     ) -> Dataset:
    if images is not None or (dataset is not None and annotations is not None):
        raise DatasetError(f"an lfw.bin holds its pictures: give --dataset DIR (with {LFW_BIN}) or --annotations "
                           f"{LFW_BIN}")
    bin_file = annotations if annotations is not None else (dataset / LFW_BIN if dataset is not None else None)
    if bin_file is None or not bin_file.is_file():
        raise DatasetError(f"{bin_file or 'no --dataset'}: no {LFW_BIN}")
    return load_lfw_bin(bin_file)


# Pittsburgh 250k as NetVLAD's authors ship it (Open Model Zoo's pitts30k_val, the checker's
# place_recognition converter): DIR/datasets/pitts30k_val.mat, a MATLAB struct `dbStruct` with the
# database's picture names (dbImageFns, from DIR) and UTM positions (utmDb, 2 x N), the queries'
# (qImageFns, from DIR/queries_real/; utmQ).
PITTS_SPLIT = "datasets/pitts30k_val.mat"
PITTS_QUERIES = "queries_real"


def _mat_strings(path: Path, value: Any, field: str) -> list[str]:
    import numpy as np

    try:
        return [str(np.asarray(v).ravel()[0]) if np.asarray(v).size else "" for v in np.asarray(value).ravel()]
    except (TypeError, ValueError, IndexError):
        raise DatasetError(f"{path}: not a place-recognition split: {field} is not a list of names") from None


def _mat_positions(path: Path, value: Any, field: str, count: int) -> "np.ndarray":
    import numpy as np

    try:
        positions = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        positions = np.zeros((0, 0))
    if positions.shape != (2, count) or not np.isfinite(positions).all():
        raise DatasetError(f"{path}: not a place-recognition split: {field} must be 2 x {count} finite numbers "
                           f"(got shape {list(positions.shape)})")
    return positions.T


def load_places(root: Path, split: Path) -> Dataset:
    """The queries, then the database, in the split's order (the checker's), each with its position."""
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError as exc:
        raise DatasetError(f"{split}: reading a MATLAB file needs scipy (pip install scipy)") from exc
    _read_annotations(split, MAX_ANNOTATIONS, "a MATLAB split file")  # (a FIFO, a device or a huge file: refused)
    try:
        doc = loadmat(str(split), squeeze_me=True)
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DatasetError(f"{split}: not a MATLAB file scipy can read ({str(exc)[:120]})") from None
    db = doc.get("dbStruct")
    fields = getattr(getattr(db, "dtype", None), "names", None) or ()
    missing = [f for f in ("dbImageFns", "utmDb", "qImageFns", "utmQ") if f not in fields]
    if missing:
        raise DatasetError(f"{split}: not a place-recognition split: no dbStruct.{missing[0]}")
    record = db[()] if db.shape == () else db.ravel()[0]
    sides = []
    for names_field, utm_field, folder, is_query in (("qImageFns", "utmQ", PITTS_QUERIES, True),
                                                     ("dbImageFns", "utmDb", "", False)):
        names = _mat_strings(split, record[names_field], names_field)
        sides.append((names, _mat_positions(split, record[utm_field], utm_field, len(names)), folder, is_query))
    samples, truth = [], {}
    for names, positions, folder, is_query in sides:
        for name, (east, north) in zip(names, positions):
            relative = Path(folder) / name if folder else Path(name)
            if not name or relative.is_absolute() or ".." in relative.parts:
                raise DatasetError(f"{split}: {name!r} is not a path inside {root}")
            if not (root / relative).is_file():
                raise DatasetError(f"{split}: names picture {str(relative)!r}, which is not in {root}")
            samples.append(Sample(len(samples) + 1, root / relative))
            truth[len(samples)] = PlaceTruth(float(east), float(north), is_query)
    if not any(t.query for t in truth.values()) or all(t.query for t in truth.values()):
        raise DatasetError(f"{split}: the queries or the database list no pictures")
    return Dataset(samples, None, None, kind="pitts30k_val", places=truth, annotation_parts=(split,))


def _resolve_places(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                    ) -> Dataset:
    if images is not None or annotations is not None or dataset is None:
        raise DatasetError(f"a place-recognition set is one folder: give --dataset DIR (with {PITTS_SPLIT})")
    if not (dataset / PITTS_SPLIT).is_file():
        raise DatasetError(f"{dataset}: not a Pittsburgh folder (no {PITTS_SPLIT})")
    return load_places(dataset, dataset / PITTS_SPLIT)


def kind_of(dataset: Path | None, annotations: Path | None) -> str:
    """The data set's kind by its annotation: a val.txt (ImageNet's, or CamVid's pairs), WIDER
    FACE's bbx_gt, a VOC image set (a .txt in ImageSets/, or a VOC folder), LFW's pairs.txt, a
    CVAT XML, a folder of masks, or a COCO JSON file; by its folder's layout for --dataset (a
    re-identification, image-retrieval, LFW, CVAT or segmentation one too). (The tools pass the
    kind the models' ymls name when they agree: this is the guess without one.)"""
    if annotations is not None and annotations.name == Path(LFW_PAIRS).name:
        return "lfw"
    if annotations is not None and annotations.suffix == ".bin":
        return "lfw_bin"
    if annotations is not None:
        if annotations.suffix.lower() == ".xml":
            return "cvat"
        if annotations.suffix.lower() == ".txt":
            if annotations.absolute().parent.parent.name == "ImageSets":
                return "voc_segmentation" if annotations.absolute().parent.name == "Segmentation" else "voc"
            if (annotations.absolute().parent / ERFNET_META).is_file():
                return "erfnet_data"
            if _looks_wider(annotations):
                return "wider"
            return "camvid" if _camvid_list(annotations) else "imagenet"
        for kind, masks in COMMON_MASKS.items():
            if annotations.name == masks:
                return kind
        if annotations.is_dir():
            return "ade20k" if (annotations.absolute().parents[1] / ADE20K_INFO).is_file() else "cityscapes"
        return "coco"
    if dataset is None or not dataset.is_dir() or (dataset / COCO_ANNOTATIONS).exists():
        return "coco"
    if wider_root(dataset) is not None:
        return "wider"
    for kind in ("cityscapes", "ade20k", *COMMON_MASKS, "erfnet_data"):
        if LAYOUTS[kind].root(dataset) is not None:
            return kind
    if (dataset / CAMVID_LIST).is_file() and _camvid_list(dataset / CAMVID_LIST):
        return "camvid"
    if (dataset / IMAGENET_ANNOTATIONS).is_file():
        return "imagenet"
    for kind in REID_LAYOUTS:
        if reid_root(dataset, kind) is not None:
            return kind
    if retrieval_lists(dataset) is not None:
        return "image_retrieval"
    if (dataset / LFW_PAIRS).is_file():
        return "lfw"
    if (dataset / LFW_BIN).is_file():
        return "lfw_bin"
    if (dataset / PITTS_SPLIT).is_file():
        return "pitts30k_val"
    if LAYOUTS["camvid"].root(dataset) is not None:
        return "camvid"
    root = voc_root(dataset)
    if root is not None:  # detection when it has the Main image set, else segmentation when it has that one
        return "voc_segmentation" if not (root / VOC_IMAGESET).is_file() and (root / VOC_SEGMENTATION_SET).is_file() \
            else "voc"
    if dataset is not None and dataset.is_dir() and not (dataset / COCO_ANNOTATIONS).exists() \
            and not (dataset / COCO_IMAGES).exists() and any(dataset.glob("*.xml")):
        return "cvat"
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
        samples.append(Sample(len(samples) + 1, path, others=others))
        targets[len(samples)] = ImageTruth(target, spec.loader)
    if not samples:
        what = f"ending {', '.join(spec.extensions)}" if spec.extensions else f"whose name holds {spec.source!r}"
        raise DatasetError(f"{folder}: no picture {what} (the {kind} definition's inputs)")
    return Dataset(samples, None, folder, kind=kind, targets=targets)


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


MAX_CVAT = 1 << 28  # bytes of a CVAT XML (a whole task's boxes: Open Model Zoo's are a few MB)
MAX_LABELS = 1 << 20  # bytes of a labels file
CVAT_SHAPES = ("polygon", "polyline", "points", "cuboid", "tag", "mask", "skeleton", "ellipse")


def _cvat_problem(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path}: not a CVAT annotation: {what}")


def _cvat_number(path: Path, where: str, node: Any, key: str) -> float:
    text = node.get(key)
    if text is None:
        raise _cvat_problem(path, f"{where}: no {key}")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _cvat_problem(path, f"{where}: {key} {text[:40]!r} is not a number")
    return value


def read_cvat_xml(path: Path, images: Path) -> tuple[tuple[str, ...], list[tuple[Path, "GroundTruth"]]]:
    """CVAT's "for images" XML as the checker's cvat_object_detection reads it: the labels its
    <meta> declares (in order), and each <image>'s picture (its name's last part, in ``images``)
    with its boxes (labels as positions among the declared ones; an occluded box is a difficult
    one). An XML that does not parse, a box with a label the meta does not declare or outside its
    picture, a shape other than a box, or a picture that is not there: one DatasetError naming
    the file."""
    import xml.etree.ElementTree as ET

    import numpy as np

    raw = _read_annotations(path, MAX_CVAT, "a CVAT annotation")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:  # (no entity is expanded: none is needed)
        raise _cvat_problem(path, "declares a DOCTYPE or entities")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise _cvat_problem(path, f"XML does not parse ({exc})") from None
    meta = root.find("meta")
    declared: list[str] = []
    for label in (meta.iter("label") if meta is not None else ()):
        name = (label.findtext("name") or "").strip()
        if not name:
            continue
        if name in declared:
            raise _cvat_problem(path, f"<meta> declares the label {name[:40]!r} twice")
        declared.append(name)
    if not declared:
        raise _cvat_problem(path, "its <meta> declares no labels (meta/task/labels/label/name)")
    pictures: list[tuple[Path, GroundTruth]] = []
    seen: set[str] = set()
    for number, image in enumerate(root.iter("image"), start=1):
        name = (image.get("name") or "").split("/")[-1]
        where = f"image {number} ({name[:80]!r})" if name else f"image {number}"
        if not name or name in (".", ".."):
            raise _cvat_problem(path, f"{where}: no picture name")
        if name in seen:
            raise _cvat_problem(path, f"{where}: the picture is listed twice")
        seen.add(name)
        picture = images / name
        if not picture.is_file():
            raise DatasetError(f"{path}: {where}: the picture is not in {images}")
        if image.get("width") is not None and image.get("height") is not None:
            width, height = (_cvat_number(path, where, image, key) for key in ("width", "height"))
        else:
            width, height = _picture_size(picture)
        boxes, labels, occluded = [], [], []
        for shape in image:
            if shape.tag in CVAT_SHAPES:
                raise _cvat_problem(path, f"{where}: a <{shape.tag}> (label {shape.get('label', '')[:40]!r}): "
                                    "only <box> shapes are read")
            if shape.tag != "box":
                continue
            kind = shape.get("label")
            if kind is None or kind not in declared:
                raise _cvat_problem(path, f"{where}: box {len(boxes) + 1}: label {str(kind)[:40]!r} is not one "
                                    "its <meta> declares")
            x0, y0, x1, y1 = (_cvat_number(path, where, shape, key) for key in ("xtl", "ytl", "xbr", "ybr"))
            if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
                raise _cvat_problem(path, f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the "
                                    f"{width:g}x{height:g} picture")
            flag = shape.get("occluded", "0").strip()
            if flag not in ("0", "1"):
                raise _cvat_problem(path, f"{where}: occluded {flag[:20]!r} is neither 0 nor 1")
            boxes.append([x0, y0, x1, y1])
            labels.append(declared.index(kind))
            occluded.append(flag == "1")
        pictures.append((picture, GroundTruth(np.array(boxes, dtype=np.float64).reshape(-1, 4),
                                              np.array(labels, dtype=int), np.zeros(len(labels), dtype=int),
                                              np.array(occluded, dtype=bool))))
    if not pictures:
        raise _cvat_problem(path, "no <image>")
    return tuple(declared), pictures


def read_cvat_labels(path: Path) -> dict[str, int]:
    """A labels file as the checker's cvat_object_detection reads it: {"labels": {name: id}}."""
    raw = _read_annotations(path, MAX_LABELS, "a labels file")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DatasetError(f"{path}: not a labels file: not JSON") from None
    labels = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise DatasetError(f'{path}: not a labels file: needs "labels", an object of label name -> id')
    for name, value in labels.items():
        if not (_integer(value) and 0 <= value <= 100_000):
            raise DatasetError(f"{path}: not a labels file: label {name[:40]!r}: id {value!r} is not an integer "
                               "in 0..100000")
    return dict(labels)


def _cvat_relabelled(dataset: Dataset, path: Path) -> Dataset:
    """The boxes whose label the labels file maps, numbered by it (the others are not this
    data set's: one XML serves Open Model Zoo's pedestrian and vehicle sets)."""
    import dataclasses

    import numpy as np

    ids = read_cvat_labels(path)
    if not set(ids) & set(dataset.classes):
        raise DatasetError(f"{path}: maps none of the labels {dataset.annotations_path} declares "
                           f"({', '.join(dataset.classes)[:200]})")
    assert dataset.boxes is not None
    table = np.array([ids.get(name, -1) for name in dataset.classes], dtype=int)
    boxes = {}
    for image_id, truth in dataset.boxes.items():
        labels = table[truth.labels] if truth.labels.size else truth.labels
        keep = labels >= 0
        boxes[image_id] = GroundTruth(truth.boxes[keep], labels[keep], truth.iscrowd[keep], truth.difficult[keep])
    label_map = {label: name for name, label in ids.items()}  # (two names of one id: the last, as the checker)
    return dataclasses.replace(dataset, boxes=boxes, label_map=label_map)


def load_cvat(images: Path, annotations: Path) -> Dataset:
    """A CVAT "for images" XML and the folder of its pictures."""
    if not images.is_dir():
        raise DatasetError(f"{images}: no such image folder")
    from .config import CVAT_LABELS_FILES

    classes, pictures = read_cvat_xml(annotations, images)
    samples = [Sample(i, picture) for i, (picture, _) in enumerate(pictures, start=1)]
    # the labels files beside it that a definition names: part of what the annotations are (a key's)
    parts = tuple(annotations.parent / name for name in sorted(set(CVAT_LABELS_FILES.values()))
                  if (annotations.parent / name).is_file())
    return Dataset(samples, None, annotations, kind="cvat", classes=classes, annotation_parts=parts,
                   boxes={i: truth for i, (_, truth) in enumerate(pictures, start=1)})


def _cvat_xml_in(folder: Path) -> Path | None:
    """The one CVAT XML directly in ``folder`` (None when there is none)."""
    found = sorted(p for p in folder.glob("*.xml") if p.is_file()) if folder.is_dir() else []
    if len(found) > 1:
        raise DatasetError(f"{folder}: {len(found)} XML files ({', '.join(p.name for p in found[:3])}...); "
                           "give the CVAT one with --annotations FILE.xml")
    return found[0] if found else None


def _resolve_cvat(dataset: Path | None, images: Path | None, annotations: Path | None, need_annotations: bool
                  ) -> Dataset:
    if dataset is not None:
        if images is not None or annotations is not None:
            raise DatasetError("give --dataset DIR or --images DIR with --annotations FILE, not both")
        xml = _cvat_xml_in(dataset)
        if xml is None:
            raise DatasetError(f"{dataset}: not a CVAT folder (one CVAT XML and its pictures)")
        return load_cvat(dataset, xml)
    if annotations is not None:  # the pictures beside the XML unless --images says (the checker's images_dir)
        return load_cvat(images if images is not None else annotations.absolute().parent, annotations)
    if images is None:
        raise DatasetError("no images: give --dataset DIR (a CVAT XML and its pictures) or --images DIR")
    if need_annotations:
        raise DatasetError("measuring accuracy needs annotations: give --annotations FILE.xml or --dataset DIR")
    return Dataset(load_images(images).samples, kind="cvat")


Loader = Callable[[Path | None, Path | None, Path | None, bool], Dataset]
"""loader(--dataset, --images, --annotations, annotations needed) -> the data set."""

# kind of data set (config.DATASETS) -> its loader: a new task's data set is a loader here (or a Layout)
LOADERS: dict[str, Loader] = {"coco": _resolve_coco, "imagenet": _resolve_imagenet, **LAYOUTS,
                              "wider": _resolve_wider, "cvat": _resolve_cvat,
                              "image_retrieval": _resolve_retrieval, "lfw": _resolve_lfw,
                              "lfw_bin": _resolve_lfw_bin, "pitts30k_val": _resolve_places,
                              **{kind: _reid_loader(kind) for kind in REID_LAYOUTS},
                              **{kind: _image_set_loader(kind) for kind in IMAGE_SETS}}


def resolve(dataset: Path | None, images: Path | None, annotations: Path | None, *, need_annotations: bool,
            kind: str | None = None) -> Dataset:
    """--dataset DIR, or --images DIR [--annotations FILE], read as a data set of this kind (by
    default the kind its annotation says: kind_of).

    Raises:
        DatasetError: the folder or file is not such a data set (one line naming it).
    """
    import dataclasses

    kind = kind or kind_of(dataset, annotations)
    loaded = LOADERS[kind](dataset, images, annotations, need_annotations)
    where = tuple(None if p is None else Path(p).absolute() for p in (dataset, images, annotations))
    return dataclasses.replace(loaded, origin=(*where, need_annotations, kind))
