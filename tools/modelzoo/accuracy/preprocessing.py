"""The image side of an accuracy-check.yml: resize, padding, bgr_to_rgb, with the exact integer
arithmetic of Open Model Zoo's accuracy checker (a truncated size, not a rounded one, moves the
result by points on a detector), and the geometry the box post-processing needs to undo them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AccuracyConfigError
from .config import AccuracyConfig, Step


@dataclass
class Geometry:
    """What was done to one picture: its size, and each geometric step's facts."""

    height: int
    width: int
    operations: list[tuple[str, dict]] = field(default_factory=list)


def _frcnn_keep_aspect_ratio(dst_w: int, dst_h: int, w: int, h: int) -> tuple[int, int]:
    # The shorter side to min(dst); if the longer then exceeds max(dst), fit into the window.
    low, high = min(dst_w, dst_h), max(dst_w, dst_h)
    if h > w:
        nw, nh = low, int(low * h / w)
    else:
        nw, nh = int(low * w / h), low
    if max(nw, nh) <= high:
        return nw, nh
    scale = min(high / h, high / w)
    return int(scale * w), int(scale * h)


_INTERPOLATION = {"NEAREST": "INTER_NEAREST", "LINEAR": "INTER_LINEAR", "BILINEAR": "INTER_LINEAR",
                  "CUBIC": "INTER_CUBIC", "BICUBIC": "INTER_CUBIC", "AREA": "INTER_AREA",
                  "LANCZOS4": "INTER_LANCZOS4"}


def _resize(image: np.ndarray, step: Step, geometry: Geometry) -> np.ndarray:
    import cv2

    dst_h, dst_w = step.size()
    h, w = image.shape[:2]
    if step.options["aspect_ratio_scale"] == "frcnn_keep_aspect_ratio":
        new_w, new_h = _frcnn_keep_aspect_ratio(dst_w or dst_h, dst_h or dst_w, w, h)
        pref_w, pref_h = max(dst_w or new_w, new_w), max(dst_h or new_h, new_h)
    else:
        new_w, new_h = dst_w, dst_h
        pref_w, pref_h = new_w, new_h
    geometry.operations.append(("resize", {"scale_x": new_w / w, "scale_y": new_h / h, "original_width": w,
                                           "original_height": h, "preferable_width": pref_w,
                                           "preferable_height": pref_h}))
    flag = getattr(cv2, _INTERPOLATION[str(step.options["interpolation"]).upper()])
    out = cv2.resize(image, (new_w, new_h), interpolation=flag)  # on the uint8 picture, as the checker
    return out.astype(np.float32)


def _pad(image: np.ndarray, step: Step, geometry: Geometry) -> np.ndarray:
    dst_h, dst_w = step.size()
    h, w = image.shape[:2]
    last = geometry.operations[-1][1] if geometry.operations else {}
    pref_h = dst_h or last.get("preferable_height", h)
    pref_w = dst_w or last.get("preferable_width", w)
    h = min(h, pref_h)
    stride = int(step.options["stride"])
    pref_h = math.ceil(pref_h / stride) * stride
    pref_w = math.ceil(max(pref_w, w) / stride) * stride
    if step.options["pad_type"] == "right_bottom":
        pad = [0, 0, pref_h - h, pref_w - w]
    else:
        top, left = (pref_h - h) // 2, (pref_w - w) // 2
        pad = [top, left, pref_h - h - top, pref_w - w - left]
    geometry.operations.append(("padding", {"pad": pad, "pref_width": pref_w, "pref_height": pref_h}))
    if min(pad) < 0:
        raise AccuracyConfigError(f"padding to {pref_w}x{pref_h}: the picture is {w}x{h}, larger than the window")
    import cv2

    out = cv2.copyMakeBorder(image, pad[0], pad[2], pad[1], pad[3], cv2.BORDER_CONSTANT,
                             value=tuple(float(v) for v in step.options["pad_value"]))
    return out


def preprocess(image: np.ndarray, config: AccuracyConfig) -> tuple[np.ndarray, Geometry]:
    """HxWx3 BGR uint8 -> the network's HxWx3 float32 picture, and what was done."""
    geometry = Geometry(int(image.shape[0]), int(image.shape[1]))
    data: np.ndarray = image
    for step in config.preprocessing:
        if step.type == "resize":
            data = _resize(data, step, geometry)
        elif step.type == "padding":
            data = _pad(data, step, geometry)
        elif step.type == "bgr_to_rgb":
            data = np.ascontiguousarray(data[:, :, ::-1])
    return data.astype(np.float32, copy=False), geometry
