"""A deterministic synthetic picture (numpy only): a gradient with coloured shapes.

Used to calibrate random weights and as the demo's test picture, so that no image has to be
downloaded.
"""

from __future__ import annotations

import numpy as np


def make_scene(height: int = 480, width: int = 640, seed: int = 7) -> np.ndarray:
    """An HxWx3 uint8 BGR picture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([60 + 120 * yy / height, 90 + 80 * xx / width, 150 - 60 * yy / height], axis=-1)
    for _ in range(14):
        color = rng.uniform(0, 255, 3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.04, 0.22) * width, rng.uniform(0.04, 0.22) * height
        if rng.random() < 0.5:
            mask = (np.abs(xx - cx) < rx) & (np.abs(yy - cy) < ry)
        else:
            mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        img[mask] = color
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def letterbox(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio so the longer side is `side`, pad right/bottom with 0
    (Open Model Zoo's preprocessing for this model). Returns the padded image and the scale."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    ys = np.minimum((np.arange(nh) / scale).astype(int), h - 1)
    xs = np.minimum((np.arange(nw) / scale).astype(int), w - 1)
    out = np.zeros((side, side, 3), np.uint8)
    out[:nh, :nw] = image[ys][:, xs]
    return out, scale
