"""A COCO-format folder made here (no download): synthetic scenes of several sizes and aspect
ratios as val2017/*.png, and annotations/instances_val2017.json with COCO's 80 categories and
their real ids (1..90 with gaps, so a label is a category's position, not its id).

The ground truth comes from a detector given by the caller (the rebuilt network has random
weights, so its own FP32 detections, jittered, thinned and mixed with extra boxes and a crowd
region, are what a meaningful score can be measured against).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..reference.scene import make_scene
from ..resources import read_class_names

COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]

# (height, width): wider, taller, square and smaller than a 256 input, and larger ones
SIZES = [(180, 320), (320, 180), (200, 200), (120, 90), (480, 640), (427, 640), (640, 480), (300, 301)]

# Detections of one picture: rows [label (0..79), score, x_min, y_min, x_max, y_max] in pixels.
Detector = Callable[[np.ndarray], np.ndarray]


def categories() -> list[dict]:
    names = read_class_names()[1:]  # line 0 is the background
    return [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in zip(COCO_IDS, names)]


def pictures(count: int, seed: int = 0, sizes: list[tuple[int, int]] | None = None) -> list[np.ndarray]:
    sizes = sizes or SIZES
    return [make_scene(*sizes[i % len(sizes)], seed=seed * 1000 + i) for i in range(count)]


def ground_truth_from(dets: np.ndarray, rng: np.random.Generator, width: int, height: int,
                      keep: int = 12) -> list[tuple[int, list[float], int]]:
    """(label, [x, y, w, h], iscrowd) boxes near the best detections, a few extra, maybe a crowd."""
    boxes = []
    for row in dets[np.argsort(-dets[:, 1], kind="stable")][:keep]:
        if rng.random() < 0.2:
            continue  # a miss
        x1, y1, x2, y2 = row[2:6]
        w, h = max(2.0, x2 - x1), max(2.0, y2 - y1)
        jitter = rng.normal(0, 0.06, 4) * [w, h, w, h]
        x, y = np.clip([x1 + jitter[0], y1 + jitter[1]], 0, [width - 2, height - 2])
        w, h = min(max(2.0, w + jitter[2]), width - x), min(max(2.0, h + jitter[3]), height - y)
        boxes.append((int(row[0]), [round(float(v), 2) for v in (x, y, w, h)], 0))
    for _ in range(2):  # objects the detector does not find
        w, h = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        boxes.append((int(rng.integers(0, 80)), [round(float(v), 2) for v in (x, y, w, h)], 0))
    if len(dets) and rng.random() < 0.5:
        row = dets[0]
        boxes.append((int(row[0]), [round(float(row[2]), 2), round(float(row[3]), 2),
                                    round(float(max(1.0, row[4] - row[2])), 2),
                                    round(float(max(1.0, row[5] - row[3])), 2)], 1))
    return boxes


def write_coco_folder(root: Path, images: list[np.ndarray], detector: Detector, seed: int = 0) -> Path:
    """root/val2017/<id>.png and root/annotations/instances_val2017.json; returns root."""
    import cv2

    (root / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cats = categories()
    doc: dict = {"info": {"description": "modelzoo synthetic COCO-format set"}, "images": [], "annotations": [],
                 "categories": cats}
    for i, picture in enumerate(images, start=1):
        name = f"{i:012d}.png"
        if not cv2.imwrite(str(root / "val2017" / name), picture):
            raise OSError(f"cannot write {root / 'val2017' / name}")
        height, width = picture.shape[:2]
        doc["images"].append({"id": i, "file_name": name, "width": width, "height": height})
        for label, bbox, crowd in ground_truth_from(detector(picture), rng, width, height):
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i,
                                       "category_id": cats[label]["id"], "bbox": bbox, "iscrowd": crowd,
                                       "area": round(bbox[2] * bbox[3], 2),
                                       "segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1],
                                                         bbox[0] + bbox[2], bbox[1] + bbox[3], bbox[0],
                                                         bbox[1] + bbox[3]]]})
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    return root


def ir_detector(xml: Path, side: int) -> Detector:
    """An IR's detections (f32), letterboxed as reference/scene.py does, in picture pixels."""
    import openvino as ov

    from ..reference.scene import letterbox

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    nchw = list(compiled.inputs[0].get_shape())[1] == 3

    def detect(picture: np.ndarray) -> np.ndarray:
        padded, scale = letterbox(picture, side)
        data = padded.transpose(2, 0, 1)[None] if nchw else padded[None]
        out = compiled(data.astype(np.float32))[0].reshape(-1, 7)
        out = out[(out[:, 0] >= 0) & (out[:, 2] > 0.05)]
        rows = np.zeros((len(out), 6))
        rows[:, 0], rows[:, 1] = out[:, 1], out[:, 2]
        rows[:, 2:] = out[:, 3:7] * side / scale
        return rows

    return detect
