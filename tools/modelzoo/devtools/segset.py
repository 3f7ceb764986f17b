"""Segmentation sets made here (no download) in the layouts Open Model Zoo's accuracy_check
converts: CamVid (SegNet's val.txt pairs), Cityscapes (train-id masks, the download's folders or the
checker's), ADE20K (ADEChallengeData2016 with objectInfo150.txt) and the road / ADAS sets of
common_semantic_segmentation (images/*.JPEG, a masks folder with dataset_meta.json). The networks
(devtools/vocset.py's segmentation_ir) have random weights, so each mask is made from the
network's own labels for the picture, then changed (vocset.mask_from's way), so every metric is a
number that can move.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from .vocset import _grid_head, _save, at_size

Labeller = Callable[[np.ndarray], np.ndarray]
"""the labels [H, W] of one BGR uint8 picture (at any size: they are brought to the picture's)."""


def truth(labels: np.ndarray, classes: int, rng: np.random.Generator, low: int = 0, border: int | None = None
          ) -> np.ndarray:
    """A mask from a network's labels: some regions relabelled, a rectangle of another class (labels
    in low..classes-1), and with ``border`` that value around class changes (VOC's and Cityscapes'
    "not annotated" 255)."""
    mask = labels.astype(np.int64).copy()
    span = classes - low
    present = np.unique(mask)
    for label in present[rng.random(present.size) < 0.3]:
        mask[labels == label] = low + (int(label) - low + 1 + int(rng.integers(span - 1))) % span
    h, w = mask.shape
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    mask[y:y + h // 3, x:x + w // 3] = int(rng.integers(low, classes))
    if border is not None:
        edge = np.zeros_like(mask, dtype=bool)
        edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
        edge[1:, :] |= mask[1:, :] != mask[:-1, :]
        mask[edge] = border
    return mask.astype(np.uint8)


def _labels(label: Labeller, picture: np.ndarray) -> np.ndarray:
    return at_size(label(picture), *picture.shape[:2])


def _save_mask(path: Path, mask: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask, "RGB" if mask.ndim == 3 else "L").save(path)


def _save_picture(path: Path, picture: np.ndarray) -> None:
    """PNG, or JPEG for a .jpg / .JPEG name (ADE20K's and the road set's own)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg" if path.suffix.lower() in (".jpg", ".jpeg") else ".png", picture)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the picture")
    path.write_bytes(data.tobytes())


def colored(mask: np.ndarray, colors: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """A label mask painted with the set's colours (a label without one black)."""
    out = np.zeros(mask.shape + (3,), dtype=np.uint8)
    for label, color in enumerate(colors):
        out[mask == label] = color
    return out


def write_camvid(root: Path, pictures: list[np.ndarray], label: Labeller, seed: int = 0) -> Path:
    """root/CamVid as SegNet's tutorial ships it: val/*.png, valannot/*.png (the labels 0..11) and
    val.txt naming each pair by SegNet's absolute paths. Returns the CamVid folder."""
    from ..accuracy.dataset import CAMVID_CLASSES

    rng = np.random.default_rng(seed)
    camvid = root / "CamVid"
    lines = []
    for i, picture in enumerate(pictures):
        name = f"0016E5_{i + 1:05d}.png"
        _save_picture(camvid / "val" / name, picture)
        _save_mask(camvid / "valannot" / name, truth(_labels(label, picture), len(CAMVID_CLASSES), rng))
        lines.append(f"/SegNet/CamVid/val/{name} /SegNet/CamVid/valannot/{name}\n")
    (camvid / "val.txt").write_text("".join(lines))
    return camvid


def write_cityscapes(root: Path, pictures: list[np.ndarray], label: Labeller, seed: int = 0,
                     images: str = "leftImg8bit/val", colour: bool = False) -> Path:
    """root/`images`/CITY/*_leftImg8bit.png (the download's folder, or the checker's
    imgsFine/leftImg8bit/val) and gtFine/val/CITY/*_gtFine_labelTrainIds.png: train ids 0..18 with
    255 borders, or with ``colour`` the train ids' colours (what the checker's
    encode_segmentation_mask can read). Two cities. Returns root."""
    from ..accuracy.dataset import CITYSCAPES_COLORS

    rng = np.random.default_rng(seed)
    for i, picture in enumerate(pictures):
        city = ("frankfurt", "lindau")[i % 2]
        stem = f"{city}_000000_{i + 1:06d}"
        _save_picture(root / images / city / f"{stem}_leftImg8bit.png", picture)
        mask = truth(_labels(label, picture), 19, rng, border=None if colour else 255)
        _save_mask(root / "gtFine/val" / city / f"{stem}_gtFine_labelTrainIds.png",
                   colored(mask, CITYSCAPES_COLORS) if colour else mask)
    return root


def write_ade20k(root: Path, pictures: list[np.ndarray], label: Labeller, seed: int = 0) -> Path:
    """root/ADEChallengeData2016: images/validation/*.jpg, annotations/validation/*.png (0 the
    background, 1..150 the classes: the network's class c is c + 1, as hrnet's `shift: -1` reads
    them) and objectInfo150.txt. Returns the ADEChallengeData2016 folder."""
    rng = np.random.default_rng(seed)
    ade = root / "ADEChallengeData2016"
    for i, picture in enumerate(pictures):
        name = f"ADE_val_{i + 1:08d}"
        _save_picture(ade / "images/validation" / f"{name}.jpg", picture)
        _save_mask(ade / "annotations/validation" / f"{name}.png",
                   truth(_labels(label, picture).astype(np.int64) + 1, 151, rng))
    rows = ["Idx\tRatio\tTrain\tVal\tName"] + [f"{i}\t0.001\t100\t10\tclass{i};thing{i}" for i in range(1, 151)]
    (ade / "objectInfo150.txt").write_text("\n".join(rows) + "\n")
    return ade


def write_common(root: Path, pictures: list[np.ndarray], label: Labeller, masks: str, classes: list[str],
                 colors: list[tuple[int, int, int]], seed: int = 0) -> Path:
    """root/segmentation: images/*.JPEG and `masks`/*.png painted with ``colors`` (the sets'
    configurations encode the annotation's colours), with `masks`/dataset_meta.json. Returns the
    segmentation folder."""
    rng = np.random.default_rng(seed)
    folder = root / "segmentation"
    for i, picture in enumerate(pictures):
        name = f"frame_{i + 1:04d}"
        _save_picture(folder / "images" / f"{name}.JPEG", picture)
        _save_mask(folder / masks / f"{name}.png",
                   colored(truth(_labels(label, picture), len(classes), rng), tuple(colors)))
    meta = {"label_map": {str(i): name for i, name in enumerate(classes)},
            "segmentation_colors": [list(c) for c in colors]}
    (folder / masks / "dataset_meta.json").write_text(json.dumps(meta, indent=1))
    return folder


def write_erfnet(root: Path, pictures: list[np.ndarray], label: Labeller, seed: int = 0) -> Path:
    """root/erfnet_data as erfnet's release unpacks: JPEGImages/DRIVE/*.jpg, Annotations/DRIVE/*.png
    (lane labels 0..4, one channel), val.txt naming `DRIVE/ID` a line and erfnet_meta_zxw.json.
    Returns the erfnet_data folder."""
    rng = np.random.default_rng(seed)
    folder = root / "erfnet_data"
    ids = []
    for i, picture in enumerate(pictures):
        lane_id = f"driver_{i % 2 + 1}/{i + 1:05d}"
        _save_picture(folder / "JPEGImages" / f"{lane_id}.jpg", picture)
        _save_mask(folder / "Annotations" / f"{lane_id}.png", truth(_labels(label, picture), 5, rng))
        ids.append(lane_id)
    (folder / "val.txt").write_text("".join(f"{i}\n" for i in ids))
    meta = {"label_map": {"0": "background", "1": "lane1", "2": "lane2", "3": "lane3", "4": "lane4"}}
    (folder / "erfnet_meta_zxw.json").write_text(json.dumps(meta))
    return folder


def large_labels_ir(xml: Path, classes: int, height: int, width: int, seed: int = 0, spread: float = 0.2) -> Path:
    """A [1,3,height,width] network whose output is the best class of every pixel [1,1,height,width]
    (int32), chosen on an 8x8 grid and brought back by nearest neighbour: the labels of a large
    input (semantic-segmentation-adas' 2048x1024) without class maps of that size."""
    import openvino as ov
    import openvino.opset1 as ops1
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="image")
    best = ops.topk(_grid_head(picture, 8, classes, rng, spread), ops.constant(np.int64(1)), 1, "max", "none",
                    "i32").output(1)
    grown = ops1.interpolate(ops.convert(best, "f32"), ops.constant(np.array([height, width], np.int64)),
                             {"axes": [2, 3], "mode": "nearest", "align_corners": False, "antialias": False})
    out = ops.convert(grown, "i32").output(0)
    out.get_tensor().set_names({"mask"})
    return _save(ov.Model([out], [picture], "tiny-large-labels"), xml)
