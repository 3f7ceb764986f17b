"""A WIDER FACE folder made here (no download) and tiny face detectors built with OpenVINO's Python
API, for proving the `wider` data sets, the `ssd` and `class_agnostic_detection` adapters and the
face configurations' filters against Open Model Zoo's own accuracy_check.

The folder is WIDER FACE's own layout (`WIDER_val/images/<event>/*.jpg` beside
`wider_face_split/wider_face_val_bbx_gt.txt`), the pictures of several sizes (some wider or taller
than the 1024 pixels the face configurations clip the ground truth to). The networks' weights
are random, so the faces are made from a network's own detections (as devtools/vocset.py does):
some as they are, some moved, some left out; with tiny faces, faces of no width and a face as
tall as the picture, which the configurations' filters ignore, and a picture of no face.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .vocset import _save

# (height, width): WIDER's pictures are 1024 wide; some here are wider or taller, one is 1024 tall
SIZES = [(768, 1024), (700, 1100), (480, 640), (1024, 700), (600, 800), (1024, 1024), (360, 1024)]
EVENTS = ("0--Parade", "1--Handshaking", "2--Demonstration")
IMAGES = "WIDER_val/images"
ANNOTATIONS = "wider_face_split/wider_face_val_bbx_gt.txt"

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(scores [N], boxes [N, 4] in the picture's pixels) of one BGR uint8 picture."""


def pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    from ..reference.scene import make_scene

    return [make_scene(*SIZES[i % len(SIZES)], seed=seed * 1000 + i) for i in range(count)]


def _head(height: int, width: int, seed: int):
    """The picture parameter and, per 32x32 cell, (score logit, sigmoid x, y offsets in the cell,
    box width and height as parts of the picture): five [1, N] rows and the grid's size."""
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="image")
    pooled = ops.avg_pool(picture, [32, 32], [0, 0], [0, 0], [32, 32], exclude_pad=True)
    pooled = ops.divide(ops.subtract(pooled, ops.constant(np.float32(128))), ops.constant(np.float32(48)))
    weights = rng.normal(0, 0.9, (5, 3, 1, 1)).astype(np.float32)
    bias = rng.normal(0, 0.3, (1, 5, 1, 1)).astype(np.float32)
    head = ops.add(ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1]),
                   ops.constant(bias))
    rows, cols = height // 32, width // 32
    flat = ops.reshape(head, ops.constant(np.array([5, rows * cols], np.int64)), False)
    logit, *rest = [ops.squeeze(p, ops.constant(np.array([0], np.int64)))
                    for p in ops.split(flat, ops.constant(np.int64(0)), 5).outputs()]
    dx, dy, bw, bh = (ops.sigmoid(r) for r in rest)
    col = np.tile(np.arange(cols, dtype=np.float32), rows)
    row = np.repeat(np.arange(rows, dtype=np.float32), cols)
    cx = ops.divide(ops.add(dx, ops.constant(col)), ops.constant(np.float32(cols)))
    cy = ops.divide(ops.add(dy, ops.constant(row)), ops.constant(np.float32(rows)))
    # box sides 1.5 % .. 45 % of the picture, most small (the square of a sigmoid)
    half_w, half_h = (ops.multiply(ops.add(ops.multiply(b, b), ops.constant(np.float32(0.03))),
                                   ops.constant(np.float32(0.25))) for b in (bw, bh))
    corners = [ops.subtract(cx, half_w), ops.subtract(cy, half_h), ops.add(cx, half_w), ops.add(cy, half_h)]
    return picture, logit, corners, rows * cols


def ssd_ir(xml: Path, height: int, width: int, label: int, seed: int = 0) -> Path:
    """A [1,3,H,W] network whose output is DetectionOutput's [1, 1, N, 7] rows [0, label, score,
    x_min, y_min, x_max, y_max] (boxes as parts of the picture), one per 32x32 cell."""
    import openvino as ov
    import openvino.opset8 as ops

    picture, logit, corners, count = _head(height, width, seed)
    score = ops.sigmoid(logit)
    zeros = ops.multiply(score, ops.constant(np.float32(0)))
    columns = [zeros, ops.add(zeros, ops.constant(np.float32(label))), score, *corners]
    rows = ops.concat([ops.unsqueeze(c, ops.constant(np.array([1], np.int64))) for c in columns], 1)
    out = ops.reshape(rows, ops.constant(np.array([1, 1, count, 7], np.int64)), False)
    out.output(0).get_tensor().set_names({"detection_out"})
    return _save(ov.Model([out], [picture], "tiny-face-ssd"), xml)


def class_agnostic_ir(xml: Path, height: int, width: int, seed: int = 0) -> Path:
    """A [1,3,H,W] network with the outputs of Open Model Zoo's class-agnostic detectors: `labels`
    [N] first, then `boxes` [N, 5] rows [x_min, y_min, x_max, y_max, score] in the input's pixels,
    the score 0 on about a third of them (rows the adapter drops)."""
    import openvino as ov
    import openvino.opset8 as ops

    picture, logit, corners, count = _head(height, width, seed)
    score = ops.relu(ops.subtract(ops.sigmoid(logit), ops.constant(np.float32(0.35))))
    scale = (width, height, width, height)
    columns = [ops.multiply(c, ops.constant(np.float32(s))) for c, s in zip(corners, scale)] + [score]
    boxes = ops.concat([ops.unsqueeze(c, ops.constant(np.array([1], np.int64))) for c in columns], 1)
    boxes.output(0).get_tensor().set_names({"boxes"})
    labels = ops.convert(ops.greater(score, ops.constant(np.float32(-1))), "i64")
    labels.output(0).get_tensor().set_names({"labels"})
    return _save(ov.Model([labels, boxes], [picture], "tiny-face-agnostic"), xml)


def detector(xml: Path, yml: Path, model: str) -> Detector:
    """The IR's detections on a picture as the accuracy tool makes them with the model's yml."""
    from .vocset import detector as voc_detector

    detect = voc_detector(xml, yml, model)

    def faces(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, scores, boxes = detect(picture)
        return scores, boxes

    return faces


def faces_from(scores: np.ndarray, boxes: np.ndarray, height: int, width: int, index: int,
               rng: np.random.Generator) -> list[list[int]]:
    """A picture's faces, WIDER's lines [x, y, w, h, blur, expression, illumination, invalid,
    occlusion, pose], from a detector's boxes: the best ones as they are or moved, every fourth
    left out, a face no detector found, an invalid face of no width; on a picture 1024 tall a
    face as tall as it, on one wider than 1024 a face across the 1024th column."""
    faces = []
    for k, i in enumerate(np.argsort(-scores)[:10]):
        if k % 4 == 3:
            continue
        box = boxes[i].copy()
        if k % 4 == 1:
            bw, bh = box[2] - box[0], box[3] - box[1]
            box = box + rng.uniform(-0.3, 0.3, 4) * np.array([bw, bh, bw, bh])
        x0, x1 = sorted(np.clip(np.round(box[[0, 2]]), 0, width - 1))
        y0, y1 = sorted(np.clip(np.round(box[[1, 3]]), 0, height - 1))
        faces.append([int(x0), int(y0), int(x1 - x0), int(y1 - y0)])
    w, h = int(rng.integers(20, 200)), int(rng.integers(20, 200))
    faces.append([int(rng.integers(0, width - w)), int(rng.integers(0, height - h)), w, h])
    faces.append([int(rng.integers(0, width - 10)), int(rng.integers(0, height - 30)), 0, 25])
    if height == 1024:
        faces.append([10, 0, width // 2, 1024])
    if width > 1024:
        faces.append([990, 100, 100, 150])
    lines = []
    for j, face in enumerate(faces):
        invalid = int(face[2] == 0 or face[3] == 0)
        lines.append(face + [j % 3, j % 2, 0, invalid, j % 3, (j + index) % 2])
    return lines


def write_wider_folder(root: Path, images: list[np.ndarray], detectors: list[Detector], seed: int = 0,
                       empty: int = 2) -> Path:
    """root/WIDER_val/images/<event>/*.jpg and root/wider_face_split/wider_face_val_bbx_gt.txt,
    each picture's faces made from one of ``detectors`` in turn; picture ``empty`` has none
    (its count 0 and WIDER's line of zeros). Returns root."""
    import cv2

    rng = np.random.default_rng(seed)
    lines = []
    for i, image in enumerate(images):
        event = EVENTS[i % len(EVENTS)]
        name = f"{event}/{event.split('--')[1]}_{i + 1}.jpg"
        path = root / IMAGES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        height, width = image.shape[:2]
        faces = [] if i == empty else faces_from(*detectors[i % len(detectors)](image), height, width, i, rng)
        lines += [name, str(len(faces))]
        lines += [" ".join(map(str, face)) + " " for face in faces] or ["0 0 0 0 0 0 0 0 0 0 "]
    (root / ANNOTATIONS).parent.mkdir(parents=True, exist_ok=True)
    (root / ANNOTATIONS).write_text("\n".join(lines) + "\n")
    return root
