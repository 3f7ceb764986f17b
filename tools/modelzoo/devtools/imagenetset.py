"""An ImageNet-style folder made here (no download): synthetic pictures of several sizes and aspect
ratios as PNG files (decoded alike by OpenCV and Pillow) and ImageNet's `val.txt` (`FILE LABEL` a
line, labels 0..999), and a small classifier IR built with OpenVINO's Python API (average pooling
to a 4x4 grid, one fully connected layer, a softmax head) with 1000 or 1001 (background at 0)
outputs.

The classifier's weights are random, so the labels are made from its own scores on a plain
resize of each picture: some pictures get its best class, some its third, some its eighth, some
a random one, so top-1 and top-5 are numbers that can move with the preprocessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..reference.scene import make_scene

# (height, width): wider, taller, square, smaller than 224, and larger
SIZES = [(180, 320), (320, 180), (256, 256), (120, 90), (480, 640), (427, 640), (640, 480), (300, 301),
         (500, 375), (224, 224)]
SIDE = 224
RANKS = (0, 2, 7, None)  # the label is the classifier's best, third, eighth class, or a random one

Scorer = Callable[[np.ndarray], np.ndarray]
"""scores of one BGR uint8 picture, one per output class."""


def pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    return [make_scene(*SIZES[i % len(SIZES)], seed=seed * 1000 + i) for i in range(count)]


def write_imagenet_folder(root: Path, images: list[np.ndarray], scores_of: Scorer, offset: int = 0,
                          seed: int = 0) -> Path:
    """root/NNNNN.png and root/val.txt; `offset` is 1 for a classifier whose class 0 is background."""
    import cv2

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, image in enumerate(images):
        name = f"ILSVRC2012_val_{i + 1:08d}.png"
        cv2.imwrite(str(root / name), image)
        ranked = np.argsort(-scores_of(image), kind="stable")
        rank = RANKS[i % len(RANKS)]
        index = int(ranked[rank]) if rank is not None else int(rng.integers(offset, ranked.size))
        if index < offset:  # (the background is no ImageNet class)
            index = int(ranked[rank + 1]) if rank is not None else offset
        lines.append(f"{name} {index - offset}\n")
    (root / "val.txt").write_text("".join(lines))
    return root


def classifier_ir(xml: Path, classes: int = 1000, seed: int = 0) -> Path:
    """A [1,3,224,224] f32 classifier: 56x56 average pooling, [48 x classes] weights, softmax."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, SIDE, SIDE], np.float32, name="data")
    pooled = ops.avg_pool(picture, [56, 56], [0, 0], [0, 0], [56, 56], exclude_pad=True)
    flat = ops.reshape(pooled, ops.constant(np.array([1, 48], np.int64)), special_zero=False)
    weights = ops.constant(rng.normal(0, 1, (48, classes)).astype(np.float32))
    logits = ops.add(ops.matmul(flat, weights, False, False),
                     ops.constant(rng.normal(0, 0.5, (1, classes)).astype(np.float32)))
    head = ops.softmax(logits, 1)
    head.output(0).get_tensor().set_names({"prob"})
    model = ov.Model([head], [picture], "tiny-classifier")
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def ir_scorer(xml: Path) -> Scorer:
    """The IR's scores on the picture's centre (the shorter side resized to 256, 224 cropped),
    RGB, about zero-centred: near what the zoo's classifier configurations feed it."""
    import cv2
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def scores(picture: np.ndarray) -> np.ndarray:
        h, w = picture.shape[:2]
        scale = 256 / min(h, w)
        resized = cv2.resize(picture, (max(SIDE, round(w * scale)), max(SIDE, round(h * scale))))
        top, left = (resized.shape[0] - SIDE) // 2, (resized.shape[1] - SIDE) // 2
        crop = resized[top:top + SIDE, left:left + SIDE]
        data = (crop[:, :, ::-1].astype(np.float32) - 127.5) / 58.0
        return np.asarray(compiled(data.transpose(2, 0, 1)[None])[0]).reshape(-1)

    return scores
