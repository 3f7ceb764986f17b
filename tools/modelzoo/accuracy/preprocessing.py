"""The image side of an accuracy-check.yml: resize (OpenCV's or Pillow's), crop, padding,
normalization, bgr_to_rgb / rgb_to_bgr, point_alignment (faces, by their landmarks),
auto_resize (to the network's size), flip (with merge_with_original: two pictures inferred), with the exact integer
arithmetic of Open Model Zoo's accuracy checker (a truncated size, not a rounded one, moves the
result by points on a detector), and the geometry the box post-processing needs to undo them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AccuracyConfigError
from .config import FLIP_MODES, AccuracyConfig, Step


@dataclass
class Geometry:
    """What was done to one picture: its size, and each geometric step's facts."""

    height: int
    width: int
    operations: list[tuple[str, dict]] = field(default_factory=list)
    input_height: int = 0  # the network's picture (after every step)
    input_width: int = 0

    def resized(self) -> tuple[int, int]:
        """(height, width) the last resize made (the checker's `image_info`), or the picture's."""
        sizes = [(op["height"], op["width"]) for name, op in self.operations if name == "resize"]
        return sizes[-1] if sizes else (self.height, self.width)


def frcnn_coefficients(geometry: Geometry) -> tuple[float, float]:
    """faster_rcnn_postprocessing_resize's factors: from boxes normalised to the network's window
    (the padded one) to the picture's pixels."""
    ops = geometry.operations
    if len(ops) == 1 and ops[0][0] == "resize":
        return float(ops[0][1]["original_width"]), float(ops[0][1]["original_height"])
    if len(ops) == 2 and ops[0][0] == "resize" and ops[1][0] == "padding" and ops[1][1]["pad"][:2] == [0, 0]:
        resize, padding = ops[0][1], ops[1][1]
        return padding["pref_width"] / resize["scale_x"], padding["pref_height"] / resize["scale_y"]
    raise AccuracyConfigError("faster_rcnn_postprocessing_resize needs a resize, or a resize then a "
                              "right_bottom padding, as the geometric preprocessing")


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


def _aspect(kind: str, dst_w: int | None, dst_h: int | None, w: int, h: int) -> tuple[int, int]:
    """The checker's aspect_ratio_scale: (width, height) of the resized picture, truncated."""
    if kind == "width" or (kind == "greater" and not h > w):  # the shorter side (height) to dst_h
        return int(dst_w * w / h) if dst_w is not None else int(dst_h * w / h), dst_h  # type: ignore[operator]
    if kind in ("height", "greater"):
        return dst_w, int(dst_h * h / w) if dst_h is not None else int(dst_w * h / w)  # type: ignore[return-value]
    scale = min(dst_h / h, dst_w / w)  # fit_to_window  # type: ignore[operator]
    return int(scale * w), int(scale * h)


def _pillow(image: np.ndarray, step: Step) -> "Image.Image":  # noqa: F821
    from PIL import Image

    if image.dtype != np.uint8:
        raise AccuracyConfigError(f"{step.type} with use_pillow: the picture is {image.dtype} by then (Pillow "
                                  "takes the 8-bit picture: put this step before the ones that make floats)")
    return Image.fromarray(image)


_PILLOW = {"NEAREST": "NEAREST", "LINEAR": "BILINEAR", "BILINEAR": "BILINEAR", "CUBIC": "BICUBIC",
           "BICUBIC": "BICUBIC", "LANCZOS": "LANCZOS", "ANTIALIAS": "LANCZOS"}  # (ANTIALIAS: Pillow's old name)


def _resize(image: np.ndarray, step: Step, geometry: Geometry) -> np.ndarray:
    import cv2

    dst_h, dst_w = step.size()
    h, w = image.shape[:2]
    scale = step.options["aspect_ratio_scale"]
    if scale in ("greater", "width", "height", "fit_to_window"):
        # the checker passes (size, size) to width/height scaling: the unscaled side keeps dst
        new_w, new_h = _aspect(scale, dst_w, dst_h, w, h)
        pref_w, pref_h = max(dst_w or new_w, new_w), max(dst_h or new_h, new_h)
    elif scale == "frcnn_keep_aspect_ratio":
        new_w, new_h = _frcnn_keep_aspect_ratio(dst_w or dst_h, dst_h or dst_w, w, h)
        pref_w, pref_h = max(dst_w or new_w, new_w), max(dst_h or new_h, new_h)
    else:
        new_w, new_h = dst_w, dst_h
        pref_w, pref_h = new_w, new_h
    geometry.operations.append(("resize", {"scale_x": new_w / w, "scale_y": new_h / h, "original_width": w,
                                           "original_height": h, "preferable_width": pref_w,
                                           "preferable_height": pref_h, "width": new_w, "height": new_h,
                                           "dst_width": new_w, "dst_height": new_h}))
    if min(new_w, new_h) <= 0:
        raise AccuracyConfigError(f"resize: a {w}x{h} picture would become {new_w}x{new_h}")
    if step.options["use_pillow"]:  # Pillow's resampling (uint8 in, uint8 out), as the checker's pillow resizer
        from PIL import Image

        method = getattr(Image.Resampling, _PILLOW[str(step.options["interpolation"]).upper()])
        return np.asarray(_pillow(image, step).resize((new_w, new_h), method))
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
    if step.options["use_numpy"]:  # NumPy's pad: the same constant border, or one of its other modes
        widths = ((pad[0], pad[2]), (pad[1], pad[3])) + ((0, 0),) * (image.ndim - 2)
        mode = step.options["numpy_pad_mode"]
        if mode != "constant":
            return np.pad(image, widths, mode=mode)
        # (as the checker passes them: the three values are NumPy's per axis, not per channel, so
        # rows added take the first, columns the second; the same as OpenCV's for one grey value)
        values = [float(v) for v in step.options["pad_value"]]
        return np.pad(image, widths, mode="constant", constant_values=tuple((v, v) for v in values[:image.ndim]))
    import cv2

    out = cv2.copyMakeBorder(image, pad[0], pad[2], pad[1], pad[3], cv2.BORDER_CONSTANT,
                             value=tuple(float(v) for v in step.options["pad_value"]))
    return out


def _auto_resize(image: np.ndarray, size: tuple[int, int] | None, geometry: Geometry) -> np.ndarray:
    """To the network input's (height, width), OpenCV's bilinear resize on the picture as it is."""
    import cv2

    if size is None:
        raise AccuracyConfigError("auto_resize: the network's input has no fixed size to resize to")
    h, w = image.shape[:2]
    geometry.operations.append(("resize", {"scale_x": size[1] / w, "scale_y": size[0] / h, "original_width": w,
                                           "original_height": h, "preferable_width": size[1],
                                           "preferable_height": size[0], "width": size[1], "height": size[0],
                                           "dst_width": size[1], "dst_height": size[0]}))
    out = cv2.resize(image, (size[1], size[0])).astype(np.float32)
    return out[:, :, None] if out.ndim == 2 else out


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encoded as a JPEG of that quality and decoded again (the artefacts fbcnn removes)."""
    import cv2

    channels = image.shape[2] if image.ndim == 3 else 1
    ok, encoded = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise AccuracyConfigError(f"jpeg_compression: OpenCV cannot encode a {image.dtype} picture")
    out = cv2.imdecode(encoded, 0 if channels == 1 else 3)
    return out[:, :, None] if channels == 1 else out


def _rect_mask(image: np.ndarray, step: Step) -> list[np.ndarray]:
    """The checker's rect_mask: a size x size rectangle (128 by default) in the middle of the
    picture painted white, and the mask of it (1 there, HxWx1; the other way with inverse_mask)."""
    h, w = image.shape[:2]
    mask_h, mask_w = step.size()
    mask_h, mask_w = mask_h or 128, mask_w or 128
    top, left = max(0, (h - mask_h) // 2), max(0, (w - mask_w) // 2)
    mask = np.zeros((h, w), dtype=np.float32)
    mask[top:top + mask_h, left:left + mask_w] = 1
    mask = mask[:, :, None]
    painted = image * (1 - mask) + 255 * mask
    return [painted, 1 - mask if step.options["inverse_mask"] else mask]


def _gray(image: np.ndarray, cast: bool) -> np.ndarray:
    import cv2

    out = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    return out.astype(np.float32) if cast else out


def _crop(image: np.ndarray, step: Step, geometry: Geometry) -> np.ndarray:
    """The centre: a size, or central_fraction of each side (truncated)."""
    h, w = image.shape[:2]
    fraction = step.options["central_fraction"]
    if fraction is not None:
        new_h, new_w = int(h * fraction), int(w * fraction)
    else:
        new_h, new_w = step.size()  # type: ignore[assignment]
    geometry.operations.append(("crop", {}))
    if step.options["use_pillow"]:
        # Pillow's box: its corner rounded half to even, the part outside the picture black
        top, left = int(round((h - new_h) / 2.0)), int(round((w - new_w) / 2.0))
        _pillow(image, step)  # (the same refusal of floats as the checker's)
        out = np.zeros((new_h, new_w) + image.shape[2:], dtype=image.dtype)
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + new_h, h), min(left + new_w, w)
        if y1 > y0 and x1 > x0:
            out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
        return out
    if w < new_w or h < new_h:  # the checker first scales a picture smaller than the window up
        import cv2

        size = np.array([w, h], dtype=np.float64)
        if size[0] < new_w:
            size = size * new_w / size[0]
        if size[1] < new_h:
            size = size * new_h / size[1]
        image = cv2.resize(image, tuple(int(v) for v in np.ceil(size)))
        h, w = image.shape[:2]
    top, left = (h - new_h) // 2, (w - new_w) // 2
    return image[top:top + new_h, left:left + new_w]


def centernet_affine(center: tuple[float, float], side: float, out_width: int, out_height: int,
                     inverse: bool = False) -> np.ndarray:
    """CenterNet's 2x3 affine map (no rotation): the square of ``side`` around ``center`` onto the
    out_width x out_height window, its centre on the window's and its side on the window's width
    (or back, ``inverse``); from three point pairs, as OpenCV solves them in float32."""
    import cv2

    def third(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # b plus (a - b) turned a quarter
        d = a - b
        return b + np.array([-d[1], d[0]], dtype=np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = np.asarray(center, dtype=np.float32) + np.array([0, side * -0.5], dtype=np.float32)
    dst[0] = [out_width * 0.5, out_height * 0.5]
    dst[1] = dst[0] + np.array([0, out_width * -0.5], dtype=np.float32)
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


def _centernet_affine(image: np.ndarray, step: Step, geometry: Geometry) -> np.ndarray:
    """The checker's centernet_affine_transform: the picture (times ``scale``) warped bilinearly
    so that the square of its longer side, centred, fills the window (black outside)."""
    import cv2

    out_h, out_w = step.size()
    h, w = image.shape[:2]
    scale = int(step.options["scale"])
    new_w, new_h = w * scale, h * scale
    center = (np.float32(new_w / 2.0), np.float32(new_h / 2.0))
    trans = centernet_affine(center, max(h, w) * 1.0, out_w, out_h)  # type: ignore[arg-type]
    resized = cv2.resize(image, (new_w, new_h))
    geometry.operations.append(("centernet_affine_transform", {"scale": scale}))
    return cv2.warpAffine(resized, trans, (out_w, out_h), flags=cv2.INTER_LINEAR)


def _normalize(image: np.ndarray, step: Step) -> np.ndarray:
    data = image.astype(np.float64)
    if step.options["mean"] is not None:
        data = data - np.asarray(step.options["mean"], dtype=np.float64)
    if step.options["std"] is not None:
        data = data / np.asarray(step.options["std"], dtype=np.float64)
    return data


# Where point_alignment puts the five landmarks (eyes, nose, mouth corners), as shares of the
# picture's width and height: the checker's reference (the 96x112 face of its face models).
REFERENCE_LANDMARKS = np.array([[30.2946 / 96, 51.6963 / 112], [65.5318 / 96, 51.5014 / 112],
                                [48.0252 / 96, 71.7366 / 112], [33.5493 / 96, 92.3655 / 112],
                                [62.7299 / 96, 92.2041 / 112]], dtype=np.float64)


def similarity_transform(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The checker's 2x3 matrix from ``reference`` to ``points`` (Procrustes: rotation and scale
    by SVD). As the checker does, both point sets are divided by the reference's spread (its
    ratio of spreads carries the scale)."""
    ref, pts = reference.astype(np.float64), points.astype(np.float64)
    c1, c2 = ref.mean(axis=0, keepdims=True), pts.mean(axis=0, keepdims=True)
    ref, pts = ref - c1, pts - c2
    s1, s2 = np.std(ref), np.std(pts)
    spread = np.maximum(s1, np.finfo(float).eps)
    u, _, vt = np.linalg.svd((ref / spread).T @ (pts / spread))
    rotation = (u @ vt).T
    ratio = s2 / spread
    return np.hstack((ratio * rotation, c2.T - ratio * rotation @ c1.T))


def _point_alignment(image: np.ndarray, step: Step, keypoints: tuple[float, ...] | None,
                     geometry: Geometry) -> np.ndarray:
    """The picture resized to the step's size (OpenCV, bilinear) and warped so that its landmarks
    (given in the picture's pixels; scaled with the resize when `normalize`) land on
    REFERENCE_LANDMARKS."""
    import cv2

    if not keypoints:
        raise AccuracyConfigError("point_alignment: the picture has no landmarks (the data set's landmarks file)")
    dst_h, dst_w = step.size()
    points = np.array(keypoints, dtype=np.float64).reshape(-1, 2)
    if len(points) != len(REFERENCE_LANDMARKS):
        raise AccuracyConfigError(f"point_alignment: {len(points)} landmarks; the reference has "
                                  f"{len(REFERENCE_LANDMARKS)}")
    in_h, in_w = (image.shape[0], image.shape[1]) if step.options["normalize"] else (1, 1)
    points[:, 0] *= float(dst_w) / in_w  # type: ignore[operator]
    points[:, 1] *= float(dst_h) / in_h  # type: ignore[operator]
    reference = REFERENCE_LANDMARKS * np.array([dst_w, dst_h], dtype=np.float64)
    matrix = similarity_transform(reference, points)
    resized = cv2.resize(image, (dst_w, dst_h))
    geometry.operations.append(("point_alignment", {}))
    return cv2.warpAffine(resized, matrix, (dst_w, dst_h), flags=cv2.WARP_INVERSE_MAP)


def preprocess(image: np.ndarray, config: AccuracyConfig, keypoints: tuple[float, ...] | None = None,
               network_size: tuple[int, int] | None = None) -> tuple[np.ndarray, Geometry]:
    """HxWx3 BGR uint8 -> the network's HxWx3 float32 picture, and what was done; ``keypoints``:
    the picture's landmarks (x, y, ...), for point_alignment; ``network_size``: the network's
    (height, width), for auto_resize. With a flip merged with the original: the original."""
    pictures, geometry = preprocess_views(image, config, keypoints, network_size)
    return pictures[0], geometry


def preprocess_views(image: np.ndarray, config: AccuracyConfig, keypoints: tuple[float, ...] | None = None,
                     network_size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], Geometry]:
    """Every picture the network is given for this one (config.views(): the picture, and its
    mirror after a flip with merge_with_original, the last step), and what was done."""
    import cv2

    geometry = Geometry(int(image.shape[0]), int(image.shape[1]))
    data: np.ndarray = image
    views: list[np.ndarray] = []
    for step in config.preprocessing:
        if step.type == "auto_resize":
            data = _auto_resize(data, network_size, geometry)
        elif step.type == "jpeg_compression":
            data = _jpeg(data, int(step.options["quality_factor"]))
        elif step.type == "rect_mask":  # (the last step: the picture and its mask, for two inputs)
            data = _rect_mask(data, step)
            geometry.input_height, geometry.input_width = int(data[0].shape[0]), int(data[0].shape[1])
            return [[d.astype(np.float32, copy=False) for d in data]], geometry  # type: ignore[list-item]
        elif step.type == "bgr_to_lab":  # (accuracy_check 2023.3 registers its RGB-to-Lab under this name
            # last, so that is what runs; the picture is BGR all the same)
            data = cv2.cvtColor(np.asarray(data, dtype=np.float32) / 255, cv2.COLOR_RGB2LAB)
        elif step.type == "select_channel":
            data = data[:, :, int(step.options["channel"]), None]
        elif step.type == "bgr_to_gray":
            data = _gray(data, step.options["cast_to_float"])
        elif step.type == "flip":
            flipped = cv2.flip(data, FLIP_MODES[step.options["mode"]])
            geometry.operations.append(("flip", {"mode": FLIP_MODES[step.options["mode"]]}))
            if step.options["merge_with_original"]:
                views = [data, flipped]
            else:
                data = flipped
        elif step.type == "point_alignment":
            data = _point_alignment(data, step, keypoints, geometry)
        elif step.type == "resize":
            data = _resize(data, step, geometry)
        elif step.type == "padding":
            data = _pad(data, step, geometry)
        elif step.type == "crop":
            data = _crop(data, step, geometry)
        elif step.type == "centernet_affine_transform":
            data = _centernet_affine(data, step, geometry)
        elif step.type == "normalization":
            data = _normalize(data, step)
        elif step.type in ("bgr_to_rgb", "rgb_to_bgr"):
            data = np.ascontiguousarray(data[:, :, ::-1])
    geometry.input_height, geometry.input_width = int(data.shape[0]), int(data.shape[1])
    return [v.astype(np.float32, copy=False) for v in (views or [data])], geometry
