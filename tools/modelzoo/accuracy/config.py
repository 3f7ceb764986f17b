"""A model's accuracy-check.yml (Open Model Zoo's accuracy checker configuration), read strictly.

Only what this package implements is accepted: every adapter, pre- or post-processing step,
metric and option is checked here, so an entry we do not implement is an error naming it before
any image is read or any inference runs. Nothing is silently dropped: an option we do not know
is refused too, since ignoring it could change the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AccuracyConfigError

# The dataset definitions a model's yml may name: the kind of data set (dataset.LOADERS reads it)
# and how its classes become the model's labels (for COCO: the position in the annotation file's
# category list, plus one when the model has a background class at 0). A new task's data set is
# an entry here and a loader there.
DATASETS: dict[str, tuple[str, int]] = {
    "ms_coco_detection_80_class_without_background": ("coco", 0),
    "ms_coco_detection_80_class_with_background": ("coco", 1),
    # COCO's own category ids as the labels (the checker's use_full_label_map): 1..90 with gaps,
    # the background (91 classes) at 0 or none
    "ms_coco_detection_91_classes": ("coco", 1),
    "ms_coco_detection_90_class_without_background": ("coco", 0),
    # ImageNet's val.txt labels are 0..999; a model with a background class at 0 (1001 outputs)
    # sees them one higher, as the checker's `imagenet` converter with has_background makes them
    "imagenet_1000_classes": ("imagenet", 0),
    "imagenet_1001_classes": ("imagenet", 1),
    # Pascal VOC's XML annotations (the checker's `voc_detection` converter): the 20 classes in
    # VOC's order, from 1 with the background at 0, or from 0 without it
    "VOC2012": ("voc", 1),
    "VOC2012_without_background": ("voc", 0),
    "VOC2007_detection_no_bkgr": ("voc", 0),
    # VOC's segmentation masks (the checker's voc_segmentation: 21 labels, the background at 0)
    "VOC2012_Segmentation": ("voc_segmentation", 0),
    # WIDER FACE's bbx_gt file (the checker's `wider` converter): one class, the face, labelled 1
    # (its label_start; the background at 0), or 0 without the background (label_start: 0)
    "wider": ("wider", 1),
    "wider_without_bkgr": ("wider", 0),
    # image-to-image (dataset.IMAGE_SETS says how each pairs its files): the checker's
    # super_resolution converter (low-res, bicubic-upscaled and high-res files told by their names'
    # suffixes) and its image_processing converter (the input and target told by suffixes)
    "super_resolution_x3": ("super_resolution_x3", 0),
    "super_resolution_x4": ("super_resolution_x4", 0),
    "text_super_resolution_x3": ("text_super_resolution_x3", 0),
    "LIVE_1": ("LIVE_1", 0),
    "imagenet_colorization": ("imagenet_colorization", 0),
    "ms_coco_style_transfer": ("ms_coco_style_transfer", 0),
    "inpainting_rect_masks": ("inpainting_rect_masks", 0),
}

# What Open Model Zoo's dataset definitions (omz_tools/data/dataset_definitions.yml, which
# accuracy_check merges into a model's entry: the entry's own keys win, a list whole) give these
# data sets where the model's entry says nothing: the checker run as the zoo runs it
# (`-d dataset_definitions.yml`) resizes the pictures to the network's inputs and its prediction
# back to the high-resolution picture's size.
DEFINITION_STEPS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "super_resolution_x3": {"preprocessing": [{"type": "auto_resize"}],
                            "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    "super_resolution_x4": {"preprocessing": [{"type": "auto_resize"}],
                            "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    "text_super_resolution_x3": {"preprocessing": [{"type": "bgr_to_gray"}, {"type": "auto_resize"}],
                                 "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    "inpainting_rect_masks": {"preprocessing": [{"type": "auto_resize"}, {"type": "rect_mask"}],
                              "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    # (the zoo's faster_rcnn_*_coco entries give none of their own: the definition fits the
    # picture into 1024x600, pads it and brings the boxes back)
    "ms_coco_detection_91_classes": {
        "preprocessing": [{"type": "resize", "aspect_ratio_scale": "fit_to_window", "dst_height": 600,
                           "dst_width": 1024},
                          {"type": "padding", "dst_height": 600, "dst_width": 1024, "pad_type": "right_bottom"}],
        "postprocessing": [{"type": "faster_rcnn_postprocessing_resize", "dst_height": 600, "dst_width": 1024}]},
    "VOC2012": {"postprocessing": [{"type": "resize_prediction_boxes"}]},
    "VOC2012_without_background": {"postprocessing": [{"type": "resize_prediction_boxes"}]},
}

FULL_LABEL_MAP = frozenset({"ms_coco_detection_91_classes", "ms_coco_detection_90_class_without_background"})

# step type -> accepted options (with their defaults)
PREPROCESSING: dict[str, dict[str, Any]] = {
    "resize": {"size": None, "dst_width": None, "dst_height": None, "aspect_ratio_scale": None,
               "interpolation": "LINEAR", "use_pillow": False, "resize_realization": "opencv"},
    "padding": {"size": None, "dst_width": None, "dst_height": None, "pad_type": "center",
                "pad_value": "0,0,0", "stride": 1, "use_numpy": False, "numpy_pad_mode": "constant"},
    "bgr_to_rgb": {},
    "rgb_to_bgr": {},
    "crop": {"size": None, "dst_width": None, "dst_height": None, "use_pillow": False, "central_fraction": None},
    "normalization": {"mean": None, "std": None},
    # the picture to the network input's own size (each input's, where there are several)
    "auto_resize": {},
    "bgr_to_gray": {"cast_to_float": True},
    "jpeg_compression": {"quality_factor": None},
    "bgr_to_lab": {},
    "select_channel": {"channel": None},
    # inpainting: a rectangle in the middle painted white, and the mask of it for the second input
    "rect_mask": {"size": None, "dst_width": None, "dst_height": None, "inverse_mask": False, "concat_mask": False},
}
NUMPY_PAD_MODES = ("constant", "edge", "maximum", "minimum", "mean", "median", "symmetric", "wrap")
ASPECT_RATIO_SCALES = (None, "frcnn_keep_aspect_ratio", "greater", "width", "height", "fit_to_window")
# the checker's named normalization values (its Normalize.PRECOMPUTED_MEANS / _STDS)
NORMALIZATION_PRESETS = {"imagenet": (104.00698793, 116.66876762, 122.67891434),
                         "cifar10": (125.307, 122.961, 113.8575)}
PILLOW_INTERPOLATIONS = ("NEAREST", "LINEAR", "BILINEAR", "CUBIC", "BICUBIC")
READERS = ("opencv_imread", "pillow_imread")
PAD_TYPES = ("right_bottom", "center")
INTERPOLATIONS = ("NEAREST", "LINEAR", "BILINEAR", "CUBIC", "BICUBIC", "AREA", "LANCZOS4")
POSTPROCESSING: dict[str, dict[str, Any]] = {
    "faster_rcnn_postprocessing_resize": {"size": None, "dst_width": None, "dst_height": None, "rescale": False},
    "resize_prediction_boxes": {"rescale": False},
    "nms": {"overlap": 0.5, "include_boundaries": True, "keep_top_k": None, "use_min_area": False},
    "cast_to_int": {"apply_to": "all", "round_policy": "nearest"},
    # the mask side (segmentation): the network's mask back to the picture, the annotation's colours to labels
    "crop_padded_prediction": {},
    "resize_segmentation_mask": {"apply_to": "all", "size": None, "dst_width": None, "dst_height": None,
                                 "to_dst_image_size": False},
    "encode_segmentation_mask": {"apply_to": "all"},
    # the picture side (image-to-image): the predicted picture to the target's size (Pillow's
    # bicubic), or both cut to the input picture's size from a corner
    "resize": {"apply_to": "prediction", "size": None, "dst_width": None, "dst_height": None,
               "resize_realization": "pillow"},
    "corner_crop_image": {"apply_to": "all", "size": None, "dst_width": None, "dst_height": None,
                          "corner_type": "top_left"},
    # colorization: the target's lightness with the predicted colour (a, b) made a BGR picture
    "colorization_recovery": {},
    # style transfer: the target (the picture itself) resized to the network's output, Pillow's bicubic
    "resize_style_transfer": {"dst_width": None, "dst_height": None},
    # the checker's filter: each criterion in the yml's order; what it catches is removed
    # (remove_filtered) or kept as an ignored box (the `map` metric's difficult ones)
    "filter": {"apply_to": "prediction", "remove_filtered": False, "min_confidence": None, "height_range": None,
               "width_range": None, "is_empty": None, "aspect_ratio": None, "min_visibility": None},
    "clip_boxes": {"apply_to": "prediction", "size": None, "dst_width": None, "dst_height": None,
                   "boxes_normalized": False},
}
METRICS: dict[str, dict[str, Any]] = {
    "coco_precision": {"reference": None, "max_detections": 20, "threshold": ".50:.05:.95", "name": None,
                       "abs_threshold": None, "rel_threshold": None},
    "coco_orig_precision": {"reference": None, "threshold": ".50:.05:.95", "name": None, "include_boundaries": True,
                            "abs_threshold": None, "rel_threshold": None},
    "accuracy": {"reference": None, "top_k": 1, "name": None, "abs_threshold": None, "rel_threshold": None},
    # Pascal VOC's average precision, per class, averaged (the checker's `map`)
    "map": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "integral": "max",
            "overlap_threshold": 0.5, "ignore_difficult": True, "include_boundaries": True, "distinct_conf": False,
            "allow_multiple_matches_per_ignored": False, "use_filtered_tp": False},
    # segmentation: one confusion matrix over every pixel of every picture
    "mean_iou": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "use_argmax": True,
                 "ignore_label": None},
    "segmentation_accuracy": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None,
                              "use_argmax": True, "ignore_label": None},
    # image-to-image: per picture, then the mean over the pictures (the checker also prints the std)
    "psnr": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "scale_border": 4,
             "color_order": "RGB", "normalized_images": False, "unweighted_average": False, "max_error": False},
    "ssim": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "max_error": False},
}
# options every metric may carry that change no number (how the checker prints it)
PRESENTATION = {"presenter": ("print_scalar", "print_vector")}
# coco_precision's IoU thresholds by how a yml writes them (the checker's COCO_THRESHOLDS)
COCO_THRESHOLDS = {"0.5": (0.5,), "0.75": (0.75,), "0.5:0.05:0.95": tuple(0.5 + 0.05 * i for i in range(10))}
MAP_INTEGRALS = ("11point", "max")
ROUND_POLICIES = ("nearest", "nearest_to_zero", "lower", "greater")
# adapter type -> accepted options with the checker's defaults (the functions are adapter.ADAPTERS)
ADAPTERS: dict[str, dict[str, Any]] = {
    "ssd": {}, "classification": {"argmax_output": False, "block": False},
    "yolo_v2": {"classes": 20, "coords": 4, "num": 5, "anchors": "yolo_v2", "cells": 13, "raw_output": False,
                "output_format": "BHW"},
    "yolo_v3": {"classes": 80, "coords": 4, "num": 3, "anchors": "yolo_v3", "threshold": 0.001, "outputs": None,
                "anchor_masks": None, "cells": [13, 26, 52], "raw_output": False, "output_format": "BHW",
                "multiple_labels": False},
    "yolo_v3_onnx": {"boxes_out": None, "scores_out": None, "indices_out": None},
    "yolox": {"threshold": 0.001, "num": 5, "output_name": None},
    "segmentation": {"make_argmax": False},
    "class_agnostic_detection": {"scale": 1.0, "output_blob": None},
    "image_processing": {"reverse_channels": False, "mean": 0, "std": 255, "target_out": None,
                         "cast_to_uint8": True},
    "super_resolution": {"reverse_channels": False, "mean": 0, "std": 255, "target_out": None,
                         "cast_to_uint8": True},
    "style_transfer": {},
    "inpainting": {},
}
# the checker's named anchor sets (its adapters' PRECOMPUTED_ANCHORS)
ANCHORS = {
    "yolo_v2": (1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071),
    "tiny_yolo_v2": (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52),
    "yolo_v3": (10.0, 13.0, 16.0, 30.0, 33.0, 23.0, 30.0, 61.0, 62.0, 45.0, 59.0, 119.0, 116.0, 90.0, 156.0, 198.0,
                373.0, 326.0),
    "tiny_yolo_v3": (10.0, 14.0, 23.0, 27.0, 37.0, 58.0, 81.0, 82.0, 135.0, 169.0, 344.0, 319.0),
}
MAX_CLASSES = 100_000
# The largest side (and padding stride) a step may ask for: Open Model Zoo's detectors stay below
# 2000; a picture of this side is 200 MB as float32 already, and a bigger number would reach
# OpenCV as an allocation it refuses with a traceback (or an integer it cannot hold).
MAX_SIDE = 4096
MAX_DETECTIONS = 100_000
MAX_CONFIG = 1 << 20  # bytes of an accuracy-check.yml (Open Model Zoo's are a few hundred)


@dataclass(frozen=True)
class Step:
    type: str
    options: dict[str, Any]

    def size(self) -> tuple[int | None, int | None]:
        """(height, width) as the checker reads `size` / `dst_height` / `dst_width`."""
        size = self.options.get("size")
        if size is not None:
            return int(size), int(size)
        h, w = self.options.get("dst_height"), self.options.get("dst_width")
        return (int(h) if h is not None else None), (int(w) if w is not None else None)


@dataclass(frozen=True)
class Metric:
    type: str
    name: str
    reference: float | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccuracyConfig:
    path: Path
    model: str
    adapter: str
    dataset: str
    label_offset: int
    preprocessing: tuple[Step, ...]
    postprocessing: tuple[Step, ...]
    metrics: tuple[Metric, ...]
    dataset_kind: str = "coco"  # dataset.LOADERS' key
    adapter_options: dict[str, Any] = field(default_factory=dict)
    reader: str = "opencv_imread"
    full_label_map: bool = False  # a COCO category's label is its id (DATASETS' FULL_LABEL_MAP)
    # the launcher's INPUT entries: (the network input's name, the pattern the file's name must
    # match, re.match, or None); empty: the network's one input takes the picture
    inputs: tuple[tuple[str, str | None], ...] = ()
    subsample: int | None = None  # the dataset's subsample_size: its first N pictures are measured
    reshape: bool = False  # the launcher's allow_reshape_input: the network takes each picture's size

    def input_size(self) -> tuple[int, int] | None:
        """(height, width) of the image the preprocessing hands the network, when it is fixed."""
        size: tuple[int | None, int | None] = (None, None)
        for step in self.preprocessing:
            if step.type == "padding" or (step.type in ("resize", "crop") and step.options.get("aspect_ratio_scale")
                                          is None and step.options.get("central_fraction") is None):
                h, w = step.size()
                size = (h if h is not None else size[0], w if w is not None else size[1])
            elif step.type in ("resize", "crop"):  # a size that depends on the picture's
                size = (None, None)
        return (size[0], size[1]) if None not in size else None  # type: ignore[return-value]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(path: Path, where: str, problem: str) -> AccuracyConfigError:
    return AccuracyConfigError(f"{path}: {where}: {problem}")


def _steps(path: Path, where: str, entries: Any, known: dict[str, dict[str, Any]]) -> tuple[Step, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise _fail(path, where, "must be a list")
    steps = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise _fail(path, f"{where}[{i}]", "must be a mapping with a 'type'")
        kind = entry["type"]
        if kind not in known:
            raise _fail(path, f"{where}[{i}]", f"{kind!r} is not implemented by modelzoo-accuracy "
                        f"(implemented: {', '.join(known)})")
        options = dict(known[kind])
        for key, value in entry.items():
            if key == "type":
                continue
            if key not in known[kind]:
                raise _fail(path, f"{where}[{i}] ({kind})", f"option {key!r} is not implemented")
            options[key] = value
        if kind == "filter":  # (the checker applies its criteria in the yml's order)
            options["criteria"] = tuple(key for key in entry if key in FILTERS)
        _check_step(path, f"{where}[{i}] ({kind})", kind, options)
        steps.append(Step(kind, options))
    return tuple(steps)


def _check_step(path: Path, where: str, kind: str, options: dict[str, Any]) -> None:
    def positive(key: str) -> None:
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise _fail(path, where, f"{key} must be a positive integer (got {value!r})")
        if value is not None and value > MAX_SIDE:
            raise _fail(path, where, f"{key} {value} is larger than {MAX_SIDE} (pixels)")

    for key in ("size", "dst_width", "dst_height", "stride"):
        positive(key)
    if where.startswith("postprocessing"):
        _check_image_step(path, where, kind, options)
        if kind in ("resize", "corner_crop_image", "colorization_recovery", "resize_style_transfer"):
            return
    if kind == "padding":
        if not isinstance(options["use_numpy"], bool):
            raise _fail(path, where, f"use_numpy must be true or false (got {options['use_numpy']!r})")
        if options["numpy_pad_mode"] not in NUMPY_PAD_MODES:
            raise _fail(path, where, f"numpy_pad_mode {options['numpy_pad_mode']!r} is not one of "
                        f"{', '.join(NUMPY_PAD_MODES)}")
    if kind == "jpeg_compression":
        quality = options["quality_factor"]
        if not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100:
            raise _fail(path, where, f"quality_factor must be an integer in 0..100 (got {quality!r})")
    if kind == "select_channel":
        channel = options["channel"]
        if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel <= 2:
            raise _fail(path, where, f"channel must be 0, 1 or 2 (got {channel!r})")
    if kind == "rect_mask":
        for key in ("inverse_mask", "concat_mask"):
            if not isinstance(options[key], bool):
                raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")
        if options["concat_mask"]:
            raise _fail(path, where, "concat_mask: true is not implemented (the picture and the mask to two inputs)")
    if kind == "bgr_to_gray" and not isinstance(options["cast_to_float"], bool):
        raise _fail(path, where, f"cast_to_float must be true or false (got {options['cast_to_float']!r})")
    if kind == "resize":
        if options["aspect_ratio_scale"] not in ASPECT_RATIO_SCALES:
            raise _fail(path, where, f"aspect_ratio_scale {options['aspect_ratio_scale']!r} is not implemented "
                        f"(implemented: {', '.join(str(a) for a in ASPECT_RATIO_SCALES[1:])}, or none)")
        if str(options["interpolation"]).upper() not in INTERPOLATIONS:
            raise _fail(path, where, f"interpolation {options['interpolation']!r} is not implemented")
        if options["resize_realization"] != "opencv":
            raise _fail(path, where, "resize_realization: only opencv is implemented (or use_pillow: true)")
        if not isinstance(options["use_pillow"], bool):
            raise _fail(path, where, f"use_pillow must be true or false (got {options['use_pillow']!r})")
        if options["use_pillow"] and str(options["interpolation"]).upper() not in PILLOW_INTERPOLATIONS:
            raise _fail(path, where, f"interpolation {options['interpolation']!r} is not implemented with "
                        f"use_pillow (implemented: {', '.join(PILLOW_INTERPOLATIONS)})")
        h, w = Step(kind, options).size()
        if (h, w) == (None, None) or (options["aspect_ratio_scale"] != "frcnn_keep_aspect_ratio" and None in (h, w)):
            raise _fail(path, where, "needs size or dst_width and dst_height")
    if kind == "crop":
        fraction = options["central_fraction"]
        if not isinstance(options["use_pillow"], bool):
            raise _fail(path, where, f"use_pillow must be true or false (got {options['use_pillow']!r})")
        if fraction is not None:
            if not _finite(fraction) or not 0 < fraction <= 1:
                raise _fail(path, where, f"central_fraction must be a number in (0, 1] (got {fraction!r})")
            if Step(kind, options).size() != (None, None):
                raise _fail(path, where, "give a size or a central_fraction, not both")
        elif None in Step(kind, options).size():
            raise _fail(path, where, "needs size, dst_width and dst_height, or central_fraction")
    if kind == "normalization":
        if options["mean"] is None and options["std"] is None:
            raise _fail(path, where, "needs mean or std")
        for key in ("mean", "std"):
            if options[key] is not None:
                options[key] = _channel_values(path, where, key, options[key])
                if key == "std" and 0 in options[key]:
                    raise _fail(path, where, "std must not contain 0")
    if kind == "padding":
        if options["pad_type"] not in PAD_TYPES:
            raise _fail(path, where, f"pad_type {options['pad_type']!r} is not implemented "
                        f"(implemented: {', '.join(PAD_TYPES)})")
        try:
            values = [float(v) for v in str(options["pad_value"]).split(",")]
        except ValueError:
            values = []
        if not all(math.isfinite(v) for v in values):
            values = []
        if len(values) not in (1, 3):
            raise _fail(path, where, f"pad_value {options['pad_value']!r} is not implemented (a number or three)")
        options["pad_value"] = tuple(values * 3 if len(values) == 1 else values)
    if kind in ("filter", "clip_boxes") and options["apply_to"] not in ("prediction", "annotation", "all"):
        raise _fail(path, where, f"apply_to {options['apply_to']!r} is not implemented (prediction, annotation, all)")
    if kind == "filter":
        _check_filter(path, where, options)
    if kind == "faster_rcnn_postprocessing_resize" and options["rescale"]:
        raise _fail(path, where, "rescale: true is not implemented")
    if kind == "resize_prediction_boxes" and not isinstance(options["rescale"], bool):
        raise _fail(path, where, f"rescale must be true or false (got {options['rescale']!r})")
    if kind == "nms":
        if not _finite(options["overlap"]) or not 0 <= options["overlap"] <= 1:
            raise _fail(path, where, f"overlap must be a number in [0, 1] (got {options['overlap']!r})")
        for key in ("include_boundaries", "use_min_area"):
            if not isinstance(options[key], bool):
                raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")
        top = options["keep_top_k"]
        if top is not None and not (isinstance(top, int) and not isinstance(top, bool) and top >= 0):
            raise _fail(path, where, f"keep_top_k must be an integer of 0 or more (got {top!r})")
    if kind == "resize_segmentation_mask":
        if options["apply_to"] != "prediction" or options["to_dst_image_size"]:
            raise _fail(path, where, "only apply_to: prediction (the network's mask to the picture's size, or to "
                        "size / dst_width and dst_height) is implemented")
    if kind == "encode_segmentation_mask" and options["apply_to"] != "annotation":
        raise _fail(path, where, "only apply_to: annotation (the mask's colours to labels) is implemented")
    if kind == "cast_to_int":
        if options["round_policy"] not in ROUND_POLICIES:
            raise _fail(path, where, f"round_policy {options['round_policy']!r} is not implemented "
                        f"({', '.join(ROUND_POLICIES)})")
        if options["apply_to"] not in ("prediction", "annotation", "all"):
            raise _fail(path, where, f"apply_to {options['apply_to']!r} is not implemented (prediction, annotation, "
                        "all)")


CORNERS = ("top_left",)


def _check_image_step(path: Path, where: str, kind: str, options: dict[str, Any]) -> None:
    """The picture-side post-processing: what the checker does with an image prediction."""
    if kind == "resize":
        if options["apply_to"] != "prediction":
            raise _fail(path, where, "only apply_to: prediction (the predicted picture to the target's size) is "
                        "implemented")
        if options["resize_realization"] not in ("pillow", "opencv"):
            raise _fail(path, where, f"resize_realization {options['resize_realization']!r} is not implemented "
                        "(pillow, opencv)")
    if kind == "resize_style_transfer" and None in (options["dst_width"], options["dst_height"]):
        raise _fail(path, where, "needs dst_width and dst_height")
    if kind == "corner_crop_image":
        if options["corner_type"] not in CORNERS:
            raise _fail(path, where, f"corner_type {options['corner_type']!r} is not one of {', '.join(CORNERS)}")
        if options["apply_to"] not in ("prediction", "annotation", "all"):
            raise _fail(path, where, f"apply_to {options['apply_to']!r} is not implemented (prediction, annotation, "
                        "all)")


FILTERS = ("min_confidence", "height_range", "width_range", "is_empty", "aspect_ratio", "min_visibility")
VISIBILITY_LEVELS = ("heavy occluded", "partially occluded", "visible")


def _range(path: Path, where: str, key: str, value: Any) -> tuple[float, ...]:
    """A range as the checker reads it: "low, high" or [low, high] (high excluded), or one number
    (at least it); a high of 0 is no bound."""
    if isinstance(value, str):
        try:
            values = [float(v) for v in value.strip().strip("()[]").split(",")]
        except ValueError:
            values = []
    elif isinstance(value, list):
        values = list(value) if all(_finite(v) for v in value) else []
    else:
        values = [value] if _finite(value) else []
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise _fail(path, where, f"{key} {value!r} is neither a number nor two (low, high)")
    return tuple(float(v) for v in values)


def _check_filter(path: Path, where: str, options: dict[str, Any]) -> None:
    """Each criterion made a number or a range; at least one; the order of the yml kept."""
    if not isinstance(options["remove_filtered"], bool):
        raise _fail(path, where, f"remove_filtered must be true or false (got {options['remove_filtered']!r})")
    given = [key for key in FILTERS if options[key] is not None]
    if not given:
        raise _fail(path, where, f"needs one of {', '.join(FILTERS)}")
    if options["min_confidence"] is not None and not _finite(options["min_confidence"]):
        raise _fail(path, where, f"min_confidence must be a number (got {options['min_confidence']!r})")
    for key in ("height_range", "width_range", "aspect_ratio"):
        if options[key] is not None:
            options[key] = _range(path, where, key, options[key])
    if options["is_empty"] is not None and options["is_empty"] is not True:
        raise _fail(path, where, f"is_empty {options['is_empty']!r}: the checker filters empty boxes whatever "
                    "the value; write true or leave it out")
    if options["min_visibility"] is not None and options["min_visibility"] not in VISIBILITY_LEVELS:
        raise _fail(path, where, f"min_visibility {options['min_visibility']!r} is not one of "
                    f"{', '.join(VISIBILITY_LEVELS)}")


def _coco_thresholds(path: Path, where: str, value: Any) -> tuple[float, ...]:
    """The IoU thresholds of a coco metric, written as the checker accepts them ("0.5", .5,
    ".50:.05:.95"): each number read as a float, then looked up among COCO's three."""
    try:
        text = ":".join(str(float(v)) for v in str(value).replace(" ", "").split(":"))
    except ValueError:
        text = None
    if text not in COCO_THRESHOLDS:
        raise _fail(path, where, f"threshold {value!r} is not implemented (0.5, 0.75 or .50:.05:.95)")
    return COCO_THRESHOLDS[text]


def _check_image_metric(path: Path, where: str, options: dict[str, Any]) -> None:
    for key in ("normalized_images", "unweighted_average", "max_error"):
        if key in options and not isinstance(options[key], bool):
            raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")
    if options.get("max_error"):
        raise _fail(path, where, "max_error: true is not implemented (the mean over the pictures is reported)")
    border = options.get("scale_border", 0)
    if not isinstance(border, int) or isinstance(border, bool) or not 0 <= border <= MAX_SIDE:
        raise _fail(path, where, f"scale_border must be an integer of 0 or more (got {border!r})")
    if options.get("color_order", "RGB") not in ("RGB", "BGR"):
        raise _fail(path, where, f"color_order {options['color_order']!r} is not implemented (RGB, BGR)")


def _check_map(path: Path, where: str, options: dict[str, Any]) -> None:
    if options["integral"] not in MAP_INTEGRALS:
        raise _fail(path, where, f"integral {options['integral']!r} is not implemented (11point, max)")
    if not _finite(options["overlap_threshold"]) or not 0 <= options["overlap_threshold"] <= 1:
        raise _fail(path, where, f"overlap_threshold must be a number in [0, 1] (got {options['overlap_threshold']!r})")
    for key in ("ignore_difficult", "include_boundaries", "distinct_conf", "allow_multiple_matches_per_ignored",
                "use_filtered_tp"):
        if not isinstance(options[key], bool):
            raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")


def _count(value: Any, largest: int = MAX_CLASSES) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= largest


def _anchors(path: Path, where: str, value: Any) -> tuple[float, ...]:
    """A named set (ANCHORS) or "w1, h1, w2, h2, ..." (or a list of numbers)."""
    if isinstance(value, str) and value.strip() in ANCHORS:
        return ANCHORS[value.strip()]
    try:
        values = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        values = []
    if not values or len(values) % 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise _fail(path, where, f"anchors {str(value)[:80]!r} are neither {', '.join(ANCHORS)} nor pairs of "
                    "positive numbers")
    return tuple(values)


def _check_adapter(path: Path, kind: str, options: dict[str, Any]) -> None:
    """Each adapter option of the type the checker reads; anchors and masks made into numbers."""
    where = f"launchers[].adapter ({kind})"
    for key, value in options.items():
        default = ADAPTERS[kind][key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise _fail(path, where, f"{key} must be true or false (got {value!r})")
        if key in ("classes", "coords", "num", "cells") and not isinstance(value, list) and not _count(value):
            raise _fail(path, where, f"{key} must be a positive integer of at most {MAX_CLASSES} (got {value!r})")
        if key == "threshold" and not (_finite(value) and value >= 0):
            raise _fail(path, where, f"threshold must be a number of 0 or more (got {value!r})")
        if key == "output_format" and value not in ("BHW", "HWB"):
            raise _fail(path, where, f"output_format {value!r} is not implemented (BHW, HWB)")
        if key.endswith("_out") or key == "output_name":
            if value is None and key.endswith("_out") and key != "target_out":
                raise _fail(path, where, f"needs {key} (an output's name)")
            if value is not None and not isinstance(value, str):
                raise _fail(path, where, f"{key} must be an output's name (got {value!r})")
    if "anchors" in options:
        options["anchors"] = _anchors(path, where, options["anchors"])
    if kind in ("image_processing", "super_resolution"):
        for key in ("mean", "std"):
            options[key] = _channel_values(path, where, key, options[key])
        if 0 in options["std"]:
            raise _fail(path, where, "std must not contain 0")
        if options["target_out"] is not None and not isinstance(options["target_out"], str):
            raise _fail(path, where, f"target_out must be an output's name (got {options['target_out']!r})")
        if options["reverse_channels"] and not options["cast_to_uint8"]:
            raise _fail(path, where, "reverse_channels with cast_to_uint8: false is not implemented (accuracy_check "
                        "makes a Pillow picture of the floats there)")
    if kind == "class_agnostic_detection":
        scale = options["scale"]
        # the checker's: one number for every coordinate, or [x, y] (its list doubled to x, y, x, y)
        if _finite(scale) and scale > 0:
            options["scale"] = (float(scale),) * 4
        elif isinstance(scale, list) and len(scale) == 2 and all(_finite(v) and v > 0 for v in scale):
            options["scale"] = tuple(float(v) for v in scale) * 2
        else:
            raise _fail(path, where, f"scale {scale!r} is not implemented (a positive number, or [x, y])")
    if kind == "yolo_v3":
        outputs = options["outputs"]
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
            raise _fail(path, where, "needs outputs, a list of the network's output names")
        cells = options["cells"]
        if not isinstance(cells, list) or not all(_count(c, MAX_SIDE) for c in cells):
            raise _fail(path, where, f"cells must be a list of positive integers (got {cells!r})")
        masks = options["anchor_masks"]
        if masks is not None:
            pairs = len(options["anchors"]) // 2
            if (not isinstance(masks, list) or len(masks) != len(outputs) or not all(
                    isinstance(m, list) and m and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < pairs
                                                      for i in m) for m in masks)):
                raise _fail(path, where, f"anchor_masks must be one list of anchor indices (0..{pairs - 1}) per "
                            "output")
            options["anchor_masks"] = tuple(tuple(m) for m in masks)
        options["outputs"], options["cells"] = tuple(outputs), tuple(cells)
    elif kind == "yolo_v2" and len(options["anchors"]) < 2 * options["num"]:
        raise _fail(path, where, f"{len(options['anchors']) // 2} anchors for num {options['num']}")


def _channel_values(path: Path, where: str, key: str, value: Any) -> tuple[float, ...]:
    """A number, a list, "(a, b, c)" / "a,b,c", or a preset name: one value or one per channel."""
    if isinstance(value, str) and value.strip().lower() in NORMALIZATION_PRESETS:
        return NORMALIZATION_PRESETS[value.strip().lower()]
    if isinstance(value, str):
        try:
            values = [float(v) for v in value.strip().strip("()[]").split(",")]
        except ValueError:
            values = []
    elif isinstance(value, list):
        values = list(value) if all(_finite(v) for v in value) else []
    else:
        values = [value] if _finite(value) else []
    if len(values) not in (1, 3) or not all(math.isfinite(v) for v in values):
        raise _fail(path, where, f"{key} {value!r} is not a number, three numbers or one of "
                    f"{', '.join(NORMALIZATION_PRESETS)}")
    return tuple(float(v) for v in values)


def _picture_inputs(path: Path, inputs: Any) -> tuple[tuple[str, str | None], ...]:
    """Each INPUT's name and file pattern (two-stream super-resolution: the low-res picture to one
    input, the bicubic-upscaled one to the other, told by their names)."""
    import re

    found = []
    for i, entry in enumerate(inputs if isinstance(inputs, list) else []):
        name, value = entry.get("name"), entry.get("value")
        if not isinstance(name, str):
            raise _fail(path, f"launchers[].inputs[{i}]", "needs a name (the network input's)")
        if value is not None:
            if not isinstance(value, str):
                raise _fail(path, f"launchers[].inputs[{i}]", f"value {value!r} is not implemented (a pattern of "
                            "the file's name)")
            try:
                re.compile(value)
            except re.error as exc:
                raise _fail(path, f"launchers[].inputs[{i}]", f"value {value!r} is not a regular expression: "
                            f"{exc}") from None
        found.append((name, value))
    if len(found) > 1 and any(v is None for _, v in found):
        raise _fail(path, "launchers[].inputs", "several INPUTs, each needs a value (the pattern of its file)")
    return tuple(found)


def _reference(path: Path, where: str, value: Any) -> float | None:
    """A number, or the checker's vector form {mean: .., std: ..}: the mean is judged (the std
    describes the spread over pictures, not the model)."""
    if isinstance(value, dict):
        if "mean" not in value or set(value) - {"mean", "std", "max_error"}:
            raise _fail(path, where, f"reference {value!r} is not implemented (a number, or mean and std)")
        value = value["mean"]
    if value is not None and not _finite(value):
        raise _fail(path, where, f"reference must be a number (got {value!r})")
    return None if value is None else float(value)


def _metrics(path: Path, entries: Any) -> tuple[Metric, ...]:
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "metrics", "must be a non-empty list")
    metrics = []
    for i, entry in enumerate(entries):
        where = f"metrics[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise _fail(path, where, "must be a mapping with a 'type'")
        kind = entry["type"]
        if kind not in METRICS:
            raise _fail(path, where, f"{kind!r} is not implemented by modelzoo-accuracy "
                        f"(implemented: {', '.join(METRICS)})")
        options = dict(METRICS[kind])
        for key, value in entry.items():
            if key in PRESENTATION:
                if value not in PRESENTATION[key]:
                    raise _fail(path, f"{where} ({kind})", f"{key} {value!r} is not implemented")
                continue
            if key != "type" and key not in options:
                raise _fail(path, f"{where} ({kind})", f"option {key!r} is not implemented")
            options[key] = value
        if kind == "map":
            _check_map(path, f"{where} ({kind})", options)
        if kind in ("mean_iou", "segmentation_accuracy"):
            if not isinstance(options["use_argmax"], bool):
                raise _fail(path, f"{where} ({kind})",
                            f"use_argmax must be true or false (got {options['use_argmax']!r})")
            label = options["ignore_label"]
            if label is not None and not (isinstance(label, int) and not isinstance(label, bool) and label >= 0):
                raise _fail(path, f"{where} ({kind})", f"ignore_label must be an integer of 0 or more (got {label!r})")
        top_k = options.get("top_k", 1)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise _fail(path, f"{where} ({kind})", f"top_k must be a positive integer (got {top_k!r})")
        if "threshold" in options:
            options["threshold"] = _coco_thresholds(path, f"{where} ({kind})", options["threshold"])
            if kind == "coco_orig_precision" and len(options["threshold"]) != 10:
                raise _fail(path, f"{where} ({kind})", f"threshold {entry['threshold']!r} is not implemented "
                            "(COCO's .50:.05:.95)")
        reference = _reference(path, f"{where} ({kind})", options.pop("reference"))
        if kind in ("psnr", "ssim"):
            _check_image_metric(path, f"{where} ({kind})", options)
        for key in ("abs_threshold", "rel_threshold"):
            if options[key] is not None and not (_finite(options[key]) and options[key] >= 0):
                raise _fail(path, f"{where} ({kind})", f"{key} must be a number of 0 or more (got {options[key]!r})")
        max_det = options.get("max_detections")
        if max_det is not None and (not isinstance(max_det, int) or isinstance(max_det, bool) or max_det <= 0
                                    or max_det > MAX_DETECTIONS):
            raise _fail(path, f"{where} ({kind})", f"max_detections must be a positive integer of at most "
                        f"{MAX_DETECTIONS} (got {max_det!r})")
        metrics.append(Metric(kind, options.pop("name") or kind, reference, options))
    return tuple(metrics)


def load_accuracy_config(path: Path, model_name: str) -> AccuracyConfig:
    """The entry for `model_name` in an accuracy-check.yml (its one launcher and one dataset)."""
    from .. import strict_yaml

    from .. import fsio

    try:  # as the manifest and --list are read: a FIFO or a device is refused, never waited on
        raw = fsio.read_small(Path(path), MAX_CONFIG + 1)
        if len(raw) > MAX_CONFIG:
            raise AccuracyConfigError(f"{path}: larger than {MAX_CONFIG:,} bytes; not read")
        data = strict_yaml.load(raw.decode("utf-8"))
    except OSError as exc:
        raise AccuracyConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (strict_yaml.YamlProblem, UnicodeDecodeError) as exc:
        raise AccuracyConfigError(f"{path}: not valid YAML: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if models is None and isinstance(data, dict) and "evaluations" in data:  # a pipeline of networks
        raise _fail(path, "evaluations", "a composite model's evaluation (several networks and a custom evaluator) "
                    "is not implemented by modelzoo-accuracy (one network a model only)")
    if not isinstance(models, list) or not models:
        raise _fail(path, "models", "must be a non-empty list")
    named = [m for m in models if isinstance(m, dict) and m.get("name") == model_name]
    if not named:
        raise _fail(path, "models", f"no entry named {model_name!r}")
    # Open Model Zoo lists a model twice where it has a framework's launcher and an OpenVINO one
    # (efficientnet-b0: tf, then openvino): the entry measured is the one that runs the IR
    entry = next((m for m in named if isinstance(m.get("launchers"), list) and any(
        isinstance(x, dict) and x.get("framework") in ("openvino", "dlsdk") for x in m["launchers"])), named[0])
    launchers = entry.get("launchers")
    if not isinstance(launchers, list) or not launchers or not isinstance(launchers[0], dict):
        raise _fail(path, "launchers", "must be a non-empty list")
    launcher = next((x for x in launchers if isinstance(x, dict) and x.get("framework") in ("openvino", "dlsdk")),
                    None)
    if launcher is None:
        raise _fail(path, "launchers", "no OpenVINO launcher (framework: openvino)")
    inputs = launcher.get("inputs") or []  # the picture's (INPUT: its name and layout, read from the IR itself)
    kinds = [i.get("type") if isinstance(i, dict) else None for i in inputs] if isinstance(inputs, list) else [None]
    other = [k for k in kinds if k != "INPUT"]
    if other:  # an input fed from elsewhere (a constant, the picture's size, a recurrent state)
        raise _fail(path, "launchers[].inputs", f"{other[0]!r} is not implemented by modelzoo-accuracy "
                    "(the picture's INPUT only)")
    picture_inputs = _picture_inputs(path, inputs)
    adapter = launcher.get("adapter")
    adapter_type = adapter.get("type") if isinstance(adapter, dict) else adapter
    if adapter_type not in ADAPTERS:
        raise _fail(path, "launchers[].adapter", f"{adapter_type!r} is not implemented by modelzoo-accuracy "
                    f"(implemented: {', '.join(ADAPTERS)})")
    unknown = sorted(set(adapter) - {"type"} - set(ADAPTERS[adapter_type])) if isinstance(adapter, dict) else []
    if unknown:
        raise _fail(path, "launchers[].adapter", f"option {unknown[0]!r} is not implemented")
    adapter_options = dict(ADAPTERS[adapter_type])
    adapter_options.update({k: v for k, v in adapter.items() if k != "type"} if isinstance(adapter, dict) else {})
    _check_adapter(path, adapter_type, adapter_options)
    datasets = entry.get("datasets")
    if not isinstance(datasets, list) or len(datasets) != 1 or not isinstance(datasets[0], dict):
        raise _fail(path, "datasets", "must be a list of one dataset")
    dataset = datasets[0]
    name = dataset.get("name")
    if name not in DATASETS:
        raise _fail(path, "datasets[0].name", f"{name!r} is not implemented by modelzoo-accuracy "
                    f"(implemented: {', '.join(DATASETS)})")
    dataset = {**DEFINITION_STEPS.get(name, {}), **dataset}  # (as accuracy_check -d merges the definition)
    unknown = set(dataset) - {"name", "preprocessing", "postprocessing", "metrics", "reader", "subsample_size",
                              "shuffle"}
    if unknown:
        raise _fail(path, "datasets[0]", f"option {sorted(unknown)[0]!r} is not implemented")
    subsample = dataset.get("subsample_size")
    if subsample is not None:  # (the checker's first N pictures; shuffled, a random N)
        if not isinstance(subsample, int) or isinstance(subsample, bool) or subsample < 1:
            raise _fail(path, "datasets[0]", f"subsample_size {subsample!r} is not implemented (a number of pictures)")
        if dataset.get("shuffle", True) is not False:
            raise _fail(path, "datasets[0]", "subsample_size without shuffle: false (a random subset) is not "
                        "implemented")
    elif "shuffle" in dataset and not isinstance(dataset["shuffle"], bool):
        raise _fail(path, "datasets[0]", f"shuffle must be true or false (got {dataset['shuffle']!r})")
    reader = dataset.get("reader", "opencv_imread")
    if isinstance(reader, dict) and set(reader) == {"type"}:
        reader = reader["type"]
    if reader not in READERS:
        raise _fail(path, "datasets[0].reader", f"{reader!r} is not implemented ({', '.join(READERS)})")
    pre = dataset.get("preprocessing")
    if isinstance(pre, list) and any(isinstance(e, dict) and e.get("type") == "rect_mask" for e in pre[:-1]):
        raise _fail(path, "preprocessing", "a step after rect_mask is not implemented (it makes the two pictures "
                    "the network takes)")
    config = AccuracyConfig(
        path=Path(path), model=model_name, adapter=adapter_type, dataset=name, dataset_kind=DATASETS[name][0],
        label_offset=DATASETS[name][1], adapter_options=adapter_options, reader=reader,
        full_label_map=name in FULL_LABEL_MAP, inputs=picture_inputs, subsample=subsample,
        reshape=launcher.get("allow_reshape_input") is True,
        preprocessing=_steps(path, "preprocessing", dataset.get("preprocessing"), PREPROCESSING),
        postprocessing=_steps(path, "postprocessing", dataset.get("postprocessing"), POSTPROCESSING),
        metrics=_metrics(path, dataset.get("metrics")))
    _check_task(config)
    return config


# what each adapter predicts: the metrics, data sets and post-processing that read it
TASK_OF_ADAPTER = {"ssd": "detection", "classification": "classification", "yolo_v2": "detection",
                   "yolo_v3": "detection", "yolo_v3_onnx": "detection", "yolox": "detection",
                   "segmentation": "segmentation", "class_agnostic_detection": "detection",
                   "image_processing": "image", "super_resolution": "image", "style_transfer": "image",
                   "inpainting": "image"}
TASK_OF_METRIC = {"coco_precision": "detection", "coco_orig_precision": "detection", "accuracy": "classification",
                  "map": "detection", "mean_iou": "segmentation", "segmentation_accuracy": "segmentation",
                  "psnr": "image", "ssim": "image"}
TASK_OF_DATASET_KIND = {"coco": "detection", "imagenet": "classification", "voc": "detection",
                        "voc_segmentation": "segmentation", "wider": "detection", "super_resolution_x3": "image",
                        "super_resolution_x4": "image", "text_super_resolution_x3": "image", "LIVE_1": "image",
                        "imagenet_colorization": "image", "ms_coco_style_transfer": "image",
                        "inpainting_rect_masks": "image"}
TASK_OF_POSTPROCESSING = {"crop_padded_prediction": "segmentation", "resize_segmentation_mask": "segmentation",
                          "encode_segmentation_mask": "segmentation", "resize": "image",
                          "corner_crop_image": "image", "colorization_recovery": "image",
                          "resize_style_transfer": "image"}  # (the others: box steps)


def _check_task(config: AccuracyConfig) -> None:
    """The adapter's predictions are what the metrics, data set and post-processing read."""
    task = TASK_OF_ADAPTER[config.adapter]
    for metric in config.metrics:
        if TASK_OF_METRIC[metric.type] != task:
            raise _fail(config.path, "metrics", f"{metric.type!r} does not score the {config.adapter!r} "
                        f"adapter's {task} predictions")
    if TASK_OF_DATASET_KIND[config.dataset_kind] != task:
        raise _fail(config.path, "datasets[0].name", f"{config.dataset!r} has no {task} annotations for the "
                    f"{config.adapter!r} adapter")
    ignoring = [s for s in config.postprocessing if s.type == "filter" and not s.options["remove_filtered"]
                and not (s.options["apply_to"] == "annotation" and s.options["criteria"] == ("min_confidence",))]
    other = [m.type for m in config.metrics if m.type != "map"]
    if ignoring and other:  # (only `map` reads ignored boxes here; the checker's COCO metrics do too)
        raise _fail(config.path, "postprocessing", f"a filter that keeps what it catches as ignored boxes "
                    f"(remove_filtered: false) is implemented for the map metric, not {other[0]!r}")
    marked = False  # (a prediction marked ignored by a filter before this step)
    for i, step in enumerate(config.postprocessing):
        removes = step.type == "nms" or step.type == "filter" and step.options["remove_filtered"]
        if step.type == "filter" and step.options["remove_filtered"] and step.options["apply_to"] != "prediction":
            # the checker's remove() rebuilds an annotation's ignored (difficult) list wrongly: a
            # removal of nothing empties it, a removed ignored box passes its mark to the next one
            raise _fail(config.path, f"postprocessing[{i}] (filter)", "remove_filtered: true on the annotation is "
                        "not implemented (accuracy_check loses the annotation's ignored boxes there)")
        if removes and marked:
            raise _fail(config.path, f"postprocessing[{i}] ({step.type})", "removing predictions after a filter "
                        "marked some ignored is not implemented (accuracy_check moves the marks to other boxes)")
        if step.type == "filter" and not step.options["remove_filtered"] and step.options["apply_to"] != "annotation":
            marked = True
    for step in config.postprocessing:
        step_task = TASK_OF_POSTPROCESSING.get(step.type, "detection")
        if step_task != task:
            raise _fail(config.path, "postprocessing", f"{step.type!r} is a {step_task} step; the "
                        f"{config.adapter!r} adapter predicts no "
                        f"{ {'detection': 'boxes', 'segmentation': 'masks'}.get(step_task, 'pictures')}")
