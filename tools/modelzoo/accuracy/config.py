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
    # other COCO-format files the checker's mscoco_detection converts: Intel's crossroad sets
    # (positions from 0, no background), COCO's person_keypoints file (the ids, background at 0)
    "crossroad_extra_untagged": ("coco", 0),
    "crossroad_extra_untagged_person": ("coco", 0),
    "crossroad_extra_untagged_vehicle": ("coco", 0),
    "person_detection": ("coco", 1),
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
    # COCO with its instances' masks (the checker's mscoco_mask_rcnn converter: polygons or RLE in
    # every annotation, the pictures' sizes in `images`); labels as for the detection sets
    "ms_coco_mask_rcnn": ("coco", 1),
    "ms_coco_mask_rcnn_short_80_classes": ("coco", 1),
    "ms_coco_mask_rcnn_short_80_classes_without_background": ("coco", 0),
    "ms_coco_mask_rcnn_short_91_classes": ("coco", 1),
    "COCO2017_mask_rcnn_person": ("coco", 0),  # (its file: instances_val2017_persons.json)
    # CVAT's "for images" XML (the checker's cvat_object_detection, has_background): the labels the
    # XML declares from 1 in its order, or, where the definition names a labels file
    # (CVAT_LABELS_FILES), the ids that file gives each label name
    "vehicle_license_plate_detection": ("cvat", 1),
    "pedestrian_and_vehicle_dataset": ("cvat", 1),
    "pedestrian_detection_dataset": ("cvat", 1),
    "crossroad_dataset_0078": ("cvat", 1),
    "crossroad_dataset_1016": ("cvat", 1),
    "vehicle_detection_dataset": ("cvat", 1),
    "barrier_vehicle_detection_dataset_index_class_2": ("cvat", 1),
    # re-identification: the identity and camera from each picture's file name (the checker's
    # market1501_reid and veri776_reid converters; reid_dataset is Market-1501 under another name)
    "market1501": ("market1501", 0),
    "reid_dataset": ("market1501", 0),
    "veri776": ("veri776", 0),
    # queries and a gallery listed with their ids (the checker's image_retrieval converter)
    "image_retrieval": ("image_retrieval", 0),
    # LFW's pairs.txt (the checker's lfw converter), with its landmarks when the folder has them
    "lfw": ("lfw", 0),
    "lfw_mtcnn_align": ("lfw", 0),
    "lfw_bin": ("lfw_bin", 0),
    # Pittsburgh's queries and database with their UTM positions (the checker's place_recognition)
    "pitts30k_val": ("pitts30k_val", 0),
    # the other segmentation sets (each kind a Layout in dataset.LAYOUTS; labels as the masks hold them)
    "CamVid": ("camvid", 0),
    "cityscapes": ("cityscapes", 0),
    "ADEChallengeData2016": ("ade20k", 0),
    "road_segmentation": ("road_segmentation", 0),
    "semantic_segmentation_adas": ("semantic_segmentation_adas", 0),
    "erfnet_data": ("erfnet_data", 0),
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
FULL_LABEL_MAP = frozenset({"ms_coco_detection_91_classes", "ms_coco_detection_90_class_without_background",
                            "ms_coco_mask_rcnn_short_91_classes", "person_detection"})
MASK_DATASETS = frozenset(name for name in DATASETS if "mask_rcnn" in name)
# the labels file Open Model Zoo's dataset definition names for a CVAT set ({"labels": {name: id}}):
# looked for beside the XML (or given with --labels)
CVAT_LABELS_FILES: dict[str, str] = {
    "pedestrian_and_vehicle_dataset": "pedestrian-and-vehicle-labels.json",
    "pedestrian_detection_dataset": "pedestrian-detection-labels.json",
    "crossroad_dataset_0078": "person-vehicle-bike-detection-crossroad-0078-labels.json",
    "crossroad_dataset_1016": "person-vehicle-bike-detection-crossroad-1016-labels.json",
    "vehicle_detection_dataset": "vehicle-detection-labels.json",
    "barrier_vehicle_detection_dataset_index_class_2": "vehicle-detection-labels.json",
}

# names Open Model Zoo's configurations give that no annotation converter defines: why, for the refusal
UNDEFINED_DATASETS = {
    "product_detection": "its definition has no annotation conversion, only Intel's own converted "
                         "annotation (product_detection.pickle), which is not published and, a pickle, not loaded here",
    "crossroad_dataset_1020": "Open Model Zoo's dataset_definitions.yml does not define it (accuracy_check "
                              "cannot run this configuration either)",
}

# What Open Model Zoo's dataset_definitions.yml gives a data set beside the files: the checker
# takes each of these keys from there when the model's own entry does not have it (its
# whole value, not merged step by step). Faster R-CNN's 91-class entries, for one, name no
# preprocessing and get the 600x1024 window from here.
_FRCNN_91 = {"preprocessing": [{"type": "resize", "aspect_ratio_scale": "fit_to_window", "dst_height": 600,
                                "dst_width": 1024},
                               {"type": "padding", "dst_height": 600, "dst_width": 1024, "pad_type": "right_bottom"}],
             "postprocessing": [{"type": "faster_rcnn_postprocessing_resize", "dst_height": 600, "dst_width": 1024}]}
_MASK_RCNN_91 = {"preprocessing": [{"type": "resize", "aspect_ratio_scale": "fit_to_window", "dst_height": 800,
                                    "dst_width": 1365},
                                   {"type": "padding", "dst_height": 800, "dst_width": 1365,
                                    "pad_type": "right_bottom"}],
                 "postprocessing": [{"type": "faster_rcnn_postprocessing_resize", "dst_height": 800,
                                     "dst_width": 1365}]}
_VOC = {"postprocessing": [{"type": "resize_prediction_boxes"}],
        "metrics": [{"type": "map", "integral": "11point", "ignore_difficult": True, "presenter": "print_scalar"}]}
_IMAGENET = {"metrics": [{"name": "accuracy@top1", "type": "accuracy", "top_k": 1},
                         {"name": "accuracy@top5", "type": "accuracy", "top_k": 5}]}
_SUPER_RESOLUTION = {"preprocessing": [{"type": "auto_resize"}],
                     "postprocessing": [{"type": "resize", "apply_to": "prediction"}]}
DEFINITION_DEFAULTS: dict[str, dict[str, Any]] = {
    "ms_coco_detection_91_classes": _FRCNN_91, "ms_coco_mask_rcnn_short_91_classes": _MASK_RCNN_91,
    "VOC2012": _VOC, "VOC2012_without_background": _VOC,
    "imagenet_1000_classes": _IMAGENET, "imagenet_1001_classes": _IMAGENET,
    # image-retrieval-0001's yml has no preprocessing, and is measured with its definition's
    "image_retrieval": {"preprocessing": [{"type": "resize", "size": 224}]},
    # the segmentation sets' definitions (road, ADAS): their steps and metrics
    "road_segmentation": {
        "preprocessing": [{"type": "resize", "dst_width": 896, "dst_height": 512}],
        "postprocessing": [{"type": "encode_segmentation_mask", "apply_to": "annotation"},
                           {"type": "resize_segmentation_mask", "apply_to": "annotation", "dst_width": 896,
                            "dst_height": 512}],
        "metrics": [{"type": "mean_iou", "presenter": "print_vector"},
                    {"type": "mean_accuracy", "presenter": "print_vector"}]},
    "semantic_segmentation_adas": {
        "preprocessing": [{"type": "resize", "dst_width": 2048, "dst_height": 1024}],
        "postprocessing": [{"type": "encode_segmentation_mask", "apply_to": "annotation"},
                           {"type": "resize_segmentation_mask", "apply_to": "annotation", "dst_width": 2048,
                            "dst_height": 1024}]},
    # image-to-image: the checker run as the zoo runs it (`-d dataset_definitions.yml`) resizes
    # the pictures to the network's inputs and its prediction back to the high-resolution picture's size
    "super_resolution_x3": _SUPER_RESOLUTION, "super_resolution_x4": _SUPER_RESOLUTION,
    "text_super_resolution_x3": {"preprocessing": [{"type": "bgr_to_gray"}, {"type": "auto_resize"}],
                                 "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    "inpainting_rect_masks": {"preprocessing": [{"type": "auto_resize"}, {"type": "rect_mask"}],
                              "postprocessing": [{"type": "resize", "apply_to": "prediction"}]},
    "ms_coco_style_transfer": {"metrics": [{"type": "psnr", "scale_border": 0, "presenter": "print_vector"},
                                           {"type": "ssim", "presenter": "print_vector"}]},
}


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
    "centernet_affine_transform": {"size": None, "dst_width": None, "dst_height": None, "scale": 1},
    # the network's own input size (each picture input's, where there are several; OpenCV,
    # bilinear); a mirror (the checker's `vertical` is
    # left-right, code 1 of cv2.flip; its `horizontal` upside down, code 0), or with
    # merge_with_original both the picture and its mirror inferred, their embeddings joined
    "auto_resize": {},
    "flip": {"mode": "horizontal", "merge_with_original": False},
    # the face's landmarks (the data set's) moved onto fixed places of a size x size picture
    "point_alignment": {"size": None, "dst_width": None, "dst_height": None, "normalize": True,
                        "draw_points": False},
    "bgr_to_gray": {"cast_to_float": True},
    "jpeg_compression": {"quality_factor": None},
    "bgr_to_lab": {},
    "select_channel": {"channel": None},
    # inpainting: a rectangle in the middle painted white, and the mask of it for the second input
    "rect_mask": {"size": None, "dst_width": None, "dst_height": None, "inverse_mask": False, "concat_mask": False},
}
ASPECT_RATIO_SCALES = (None, "frcnn_keep_aspect_ratio", "greater", "width", "height", "fit_to_window")
# the checker's named normalization values (its Normalize.PRECOMPUTED_MEANS / _STDS)
NORMALIZATION_PRESETS = {"imagenet": (104.00698793, 116.66876762, 122.67891434),
                         "cifar10": (125.307, 122.961, 113.8575)}
# (ANTIALIAS: Pillow's old name of LANCZOS, as the checker maps it)
PILLOW_INTERPOLATIONS = ("NEAREST", "LINEAR", "BILINEAR", "CUBIC", "BICUBIC", "LANCZOS", "ANTIALIAS")
READERS = ("opencv_imread", "pillow_imread")
PAD_TYPES = ("right_bottom", "center")
NUMPY_PAD_MODES = ("constant", "edge", "maximum", "minimum", "mean", "median", "symmetric", "wrap")
INTERPOLATIONS = ("NEAREST", "LINEAR", "BILINEAR", "CUBIC", "BICUBIC", "AREA", "LANCZOS4")
POSTPROCESSING: dict[str, dict[str, Any]] = {
    "faster_rcnn_postprocessing_resize": {"size": None, "dst_width": None, "dst_height": None, "rescale": False},
    "resize_prediction_boxes": {"rescale": False},
    "nms": {"overlap": 0.5, "include_boundaries": True, "keep_top_k": None, "use_min_area": False},
    "class_aware_nms": {"overlap": 0.5, "include_boundaries": True, "keep_top_k": None, "use_min_area": False},
    # greedy as nms, the overlap less (distance between centres / enclosing box's diagonal) ** 0.6
    "diou_nms": {"overlap": 0.5, "include_boundaries": True, "keep_top_k": None},
    "shift_labels": {"offset": None},  # every predicted label plus offset (the annotation's untouched)
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
    "shift": {"apply_to": "all", "shift_value": 0},
    "crop_or_pad": {"size": None, "dst_width": None, "dst_height": None},
    "clip_boxes": {"apply_to": "prediction", "size": None, "dst_width": None, "dst_height": None,
                   "boxes_normalized": False},
}
METRICS: dict[str, dict[str, Any]] = {
    "coco_precision": {"reference": None, "max_detections": 20, "threshold": ".50:.05:.95", "name": None,
                       "abs_threshold": None, "rel_threshold": None},
    "coco_orig_precision": {"reference": None, "threshold": ".50:.05:.95", "name": None, "include_boundaries": True,
                            "abs_threshold": None, "rel_threshold": None},
    # the same over the instances' masks (COCOeval's segm)
    "coco_orig_segm_precision": {"reference": None, "threshold": ".50:.05:.95", "name": None,
                                 "include_boundaries": True, "abs_threshold": None, "rel_threshold": None},
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
    # re-identification: queries against the gallery (single_gallery_shot, the checker's random
    # draw of one gallery picture per identity, is refused: a number that changes run to run)
    "cmc": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "top_k": 1,
            "separate_camera_set": False, "single_gallery_shot": False, "first_match_break": True,
            "number_single_shot_repeats": 10},
    "reid_map": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None,
                 "interpolated_auc": True},
    # place recognition: a query is right when one of its top_k nearest pictures was taken within
    # distance_threshold metres of it
    "localization_recall": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None,
                            "top_k": 1, "distance_threshold": 25},
    # face verification: pairs of pictures, "same" when their distance is below a threshold
    "pairwise_accuracy_subsets": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None,
                                  "subset_number": 10, "min_score": "train_median",
                                  "distance_method": "euclidian_distance", "subtract_mean": False},
    # the mean over classes of each one's share of its pixels labelled right
    "mean_accuracy": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None,
                      "use_argmax": True, "ignore_label": None},
    # image-to-image: per picture, then the mean over the pictures (the checker also prints the std)
    "psnr": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "scale_border": 4,
             "color_order": "RGB", "normalized_images": False, "unweighted_average": False, "max_error": False},
    "ssim": {"reference": None, "name": None, "abs_threshold": None, "rel_threshold": None, "max_error": False},
}
MIN_SCORES = ("train_median", "best_train_threshold")
FLIP_MODES = {"horizontal": 0, "vertical": 1}  # the checker's names -> cv2.flip's code
DISTANCE_METHODS = ("euclidian_distance", "cosine_distance")
SEGMENTATION_METRICS = ("mean_iou", "segmentation_accuracy", "mean_accuracy")
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
    "yolof": {"classes": 80, "coords": 4, "num": 3, "anchors": "yolo_v3", "threshold": 0.001, "outputs": None,
              "anchor_masks": None, "cells": [13, 26, 52], "raw_output": False, "output_format": "BHW",
              "multiple_labels": False},
    # (anchors and classes: the checker's yolox declares neither and ignores both; so do we)
    "yolox": {"threshold": 0.001, "num": 5, "output_name": None, "anchors": None, "classes": None},
    "segmentation": {"make_argmax": False},
    "class_agnostic_detection": {"scale": 1.0, "output_blob": None},
    # instance segmentation: Intel's models (boxes_out [N, 5] with the score, classes_out, raw_masks_out
    # [N, h, w]) or the Object Detection API's (detection_out [N, 7], raw_masks_out [N, classes, h, w])
    "mask_rcnn": {"classes_out": None, "scores_out": None, "boxes_out": None, "raw_masks_out": None,
                  "detection_out": None},
    "ultra_lightweight_face_detection": {"boxes_out": None, "scores_out": None, "score_threshold": 0.7},
    "faceboxes": {"boxes_out": None, "scores_out": None},
    "retinaface_pytorch": {"bboxes_output": None, "scores_output": None, "landmarks_output": None,
                           "include_boundaries": False, "keep_top_k": 750, "nms_threshold": 0.4,
                           "confidence_threshold": 0.02},
    "ssd_onnx": {"labels_out": None, "bboxes_out": None, "scores_out": None},
    "detr": {"scores_out": None, "boxes_out": None},
    "nanodet": {"num_classes": 80, "confidence_threshold": 0.05, "nms_threshold": 0.6, "max_detections": 100,
                "reg_max": 7, "strides": [8, 16, 32], "is_legacy": False},
    "faster_rcnn_onnx": {"boxes_out": None, "labels_out": None, "scores_out": None},
    "ctdet": {"center_heatmap_out": None, "width_height_out": None, "regression_out": None},
    "reid": {"grn_workaround": True, "joining_method": "sum", "target_out": None, "keep_shape": False},
    "image_processing": {"reverse_channels": False, "mean": 0, "std": 255, "target_out": None,
                         "cast_to_uint8": True},
    "super_resolution": {"reverse_channels": False, "mean": 0, "std": 255, "target_out": None,
                         "cast_to_uint8": True},
    "style_transfer": {},
    "inpainting": {},
}
# the output names an adapter may go without (the rest are needed)
OPTIONAL_OUTPUTS = {("ssd_onnx", "scores_out"), ("faster_rcnn_onnx", "labels_out"),
                    ("faster_rcnn_onnx", "scores_out"), ("retinaface_pytorch", "landmarks_output"),
                    # mask_rcnn: one of its two forms' outputs (checked by the adapter against the network)
                    *(("mask_rcnn", key) for key in ("classes_out", "scores_out", "boxes_out", "raw_masks_out",
                                                     "detection_out"))}
# the checker's named anchor sets (its adapters' PRECOMPUTED_ANCHORS)
ANCHORS = {
    "yolo_v2": (1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071),
    "tiny_yolo_v2": (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52),
    "yolo_v3": (10.0, 13.0, 16.0, 30.0, 33.0, 23.0, 30.0, 61.0, 62.0, 45.0, 59.0, 119.0, 116.0, 90.0, 156.0, 198.0,
                373.0, 326.0),
    "tiny_yolo_v3": (10.0, 14.0, 23.0, 27.0, 37.0, 58.0, 81.0, 82.0, 135.0, 169.0, 344.0, 319.0),
}
MAX_CLASSES = 100_000
# launcher input type -> its options besides name and type: what the checker feeds an input
# other than the picture (INPUT, whose layout is read from the IR and whose other keys are not
# read here), per picture or once
LAUNCHER_INPUTS: dict[str, frozenset[str]] = {
    "CONST_INPUT": frozenset({"value", "shape"}),  # the same numbers for every picture
    "ORIG_IMAGE_INFO": frozenset(),  # the picture's own [height, width] (as read, before any step)
    "IMAGE_INFO": frozenset(),  # [height, width] of the last resize's result (the picture's, with none)
}
MAX_CONST_VALUES = 1 << 20
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
class LauncherInput:
    """A network input fed besides the picture: ``kind`` one of LAUNCHER_INPUTS; a CONST_INPUT's
    numbers flattened in order (the checker reshapes them to the input's shape)."""

    kind: str
    name: str
    value: tuple[float, ...] = ()


@dataclass(frozen=True)
class Metric:
    type: str
    name: str
    reference: float | None
    options: dict[str, Any] = field(default_factory=dict)
    presenter: str = "print_scalar"  # print_vector: a map's AP per class is reported too (NAME@class)
    class_references: dict[str, float] = field(default_factory=dict)  # a reference's per-class values


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
    labels_file: str | None = None  # a CVAT set's labels file, by the name its definition gives it
    inputs: tuple[LauncherInput, ...] = ()  # fed besides the picture
    # every INPUT entry: (the network input's name, the pattern its file's name must match,
    # re.match, or None); several: each picture input takes the sample's file its pattern names
    pictures: tuple[tuple[str, str | None], ...] = ()
    subsample: int | None = None  # the dataset's subsample_size: its first N pictures are measured
    reshape: bool = False  # the launcher's allow_reshape_input: the network takes each picture's size
    picture_input: str | None = None  # the (first) INPUT entry's name, when the yml gives one

    def views(self) -> int:
        """Pictures inferred per picture of the data set: 2 when a flip is merged with the original."""
        return 2 if any(s.type == "flip" and s.options["merge_with_original"] for s in self.preprocessing) else 1

    def input_size(self) -> tuple[int, int] | None:
        """(height, width) of the image the preprocessing hands the network, when it is fixed."""
        size: tuple[int | None, int | None] = (None, None)
        for step in self.preprocessing:
            fixed = step.type in ("resize", "crop") and step.options.get("aspect_ratio_scale") is None \
                and step.options.get("central_fraction") is None
            if step.type in ("padding", "point_alignment", "centernet_affine_transform") or fixed:
                h, w = step.size()
                size = (h if h is not None else size[0], w if w is not None else size[1])
            elif step.type in ("resize", "crop", "auto_resize"):  # a size that depends on the picture's (or
                size = (None, None)                                 # is the network's own)
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
        if not options["use_pillow"] and str(options["interpolation"]).upper() not in INTERPOLATIONS:
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
    if kind == "flip":
        if options["mode"] not in FLIP_MODES:
            raise _fail(path, where, f"mode {options['mode']!r} is not one of {', '.join(FLIP_MODES)}")
        if not isinstance(options["merge_with_original"], bool):
            raise _fail(path, where, "merge_with_original must be true or false "
                        f"(got {options['merge_with_original']!r})")
    if kind == "point_alignment":
        if None in Step(kind, options).size():
            raise _fail(path, where, "needs size, or dst_width and dst_height")
        for key in ("normalize", "draw_points"):
            if not isinstance(options[key], bool):
                raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")
        if options["draw_points"]:
            raise _fail(path, where, "draw_points: true is not implemented (it draws the landmarks into the picture)")
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
    if kind == "centernet_affine_transform":
        if None in Step(kind, options).size():
            raise _fail(path, where, "needs size, or dst_width and dst_height")
        positive("scale")
        if options["scale"] > 64:
            raise _fail(path, where, f"scale {options['scale']} is larger than 64")
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
        if not isinstance(options["use_numpy"], bool):
            raise _fail(path, where, f"use_numpy must be true or false (got {options['use_numpy']!r})")
        if options["numpy_pad_mode"] not in NUMPY_PAD_MODES:
            raise _fail(path, where, f"numpy_pad_mode {options['numpy_pad_mode']!r} is not one of "
                        f"{', '.join(NUMPY_PAD_MODES)}")
        if options["numpy_pad_mode"] != "constant" and not options["use_numpy"]:
            raise _fail(path, where, "numpy_pad_mode needs use_numpy: true")
        options["pad_value"] = tuple(values * 3 if len(values) == 1 else values)
    if kind in ("filter", "clip_boxes") and options["apply_to"] not in ("prediction", "annotation", "all"):
        raise _fail(path, where, f"apply_to {options['apply_to']!r} is not implemented (prediction, annotation, all)")
    if kind == "filter":
        _check_filter(path, where, options)
    if kind == "faster_rcnn_postprocessing_resize" and options["rescale"]:
        raise _fail(path, where, "rescale: true is not implemented")
    if kind == "resize_prediction_boxes" and not isinstance(options["rescale"], bool):
        raise _fail(path, where, f"rescale must be true or false (got {options['rescale']!r})")
    if kind in ("nms", "class_aware_nms", "diou_nms"):
        if not _finite(options["overlap"]) or not 0 <= options["overlap"] <= 1:
            raise _fail(path, where, f"overlap must be a number in [0, 1] (got {options['overlap']!r})")
        for key in ("include_boundaries", "use_min_area"):
            if key in options and not isinstance(options[key], bool):
                raise _fail(path, where, f"{key} must be true or false (got {options[key]!r})")
        top = options["keep_top_k"]
        if top is not None and not (isinstance(top, int) and not isinstance(top, bool) and top >= 0):
            raise _fail(path, where, f"keep_top_k must be an integer of 0 or more (got {top!r})")
    if kind == "shift_labels":
        offset = options["offset"]
        if not (isinstance(offset, int) and not isinstance(offset, bool) and abs(offset) <= MAX_CLASSES):
            raise _fail(path, where, f"needs offset, an integer (got {offset!r})")
    if kind in ("resize_segmentation_mask", "shift") and options["apply_to"] not in ("prediction", "annotation",
                                                                                       "all"):
        raise _fail(path, where, f"apply_to {options['apply_to']!r} is not implemented (prediction, annotation, all)")
    if kind == "resize_segmentation_mask" and not isinstance(options["to_dst_image_size"], bool):
        raise _fail(path, where, f"to_dst_image_size must be true or false (got {options['to_dst_image_size']!r})")
    if kind == "crop_or_pad" and None in Step(kind, options).size():
        raise _fail(path, where, "needs size, or dst_width and dst_height")
    if kind == "shift" and not (isinstance(options["shift_value"], int) and not isinstance(options["shift_value"],
                                                                                            bool)):
        raise _fail(path, where, f"shift_value must be an integer (got {options['shift_value']!r})")
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


def _numbers(value: Any) -> list[float]:
    """The finite numbers a yml writes as one number, a list, or "a, b" / "(a, b)" (empty when it
    is none of these), as the checker reads ranges and per-channel values."""
    if isinstance(value, str):
        try:
            values = [float(v) for v in value.strip().strip("()[]").split(",")]
        except ValueError:
            return []
    elif isinstance(value, list):
        values = list(value) if all(_finite(v) for v in value) else []
    else:
        values = [value] if _finite(value) else []
    return [float(v) for v in values] if all(math.isfinite(v) for v in values) else []


def _range(path: Path, where: str, key: str, value: Any) -> tuple[float, ...]:
    """A range as the checker reads it: "low, high" or [low, high] (high excluded), or one number
    (at least it); a high of 0 is no bound."""
    values = _numbers(value)
    if len(values) not in (1, 2):
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
    if kind == "yolox":  # read by no one: the checker's yolox declares neither, so it ignores both
        options.pop("anchors"), options.pop("classes")
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
        names_output = (key.endswith("_out") and key != "target_out") or key in (
            "bboxes_output", "scores_output", "landmarks_output")
        if names_output or key == "output_name":
            if value is None and names_output and (kind, key) not in OPTIONAL_OUTPUTS:
                raise _fail(path, where, f"needs {key} (an output's name)")
            if value is not None and not isinstance(value, str):
                raise _fail(path, where, f"{key} must be an output's name (got {value!r})")
        if key in ("score_threshold", "confidence_threshold", "nms_threshold") and not (
                _finite(value) and value >= 0):
            raise _fail(path, where, f"{key} must be a number of 0 or more (got {value!r})")
        if key in ("keep_top_k", "max_detections", "num_classes") and not _count(value, MAX_DETECTIONS):
            raise _fail(path, where, f"{key} must be a positive integer (got {value!r})")
        if key == "reg_max" and not _count(value, 1000):
            raise _fail(path, where, f"reg_max must be a positive integer (got {value!r})")
        if key == "strides" and not (isinstance(value, list) and value and all(_count(s, MAX_SIDE) for s in value)):
            raise _fail(path, where, f"strides must be a list of positive integers (got {value!r})")
    if kind == "faster_rcnn_onnx" and options["scores_out"] and not options["labels_out"]:
        raise _fail(path, where, "scores_out without labels_out (the checker reads all three outputs, boxes_out "
                    "and labels_out, or boxes_out alone)")
    if kind == "reid":
        if options["joining_method"] not in ("sum", "concatenation"):
            raise _fail(path, where, f"joining_method {options['joining_method']!r} is not sum or concatenation")
        if options["keep_shape"]:
            raise _fail(path, where, "keep_shape: true is not implemented (the embeddings are flattened)")
        if options["target_out"] is not None and not isinstance(options["target_out"], str):
            raise _fail(path, where, f"target_out must be an output's name (got {options['target_out']!r})")
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
    if kind in ("yolo_v3", "yolof"):
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
    elif kind == "mask_rcnn":
        boxes = ("classes_out", "scores_out", "boxes_out")
        if options["detection_out"] is not None and any(options[k] is not None for k in boxes):
            raise _fail(path, where, f"give detection_out or {', '.join(boxes)}, not both")
        if options["detection_out"] is None and options["boxes_out"] is None:
            raise _fail(path, where, "needs boxes_out (and classes_out, raw_masks_out) or detection_out "
                        "(an output's name)")
        if options["detection_out"] is not None and options["raw_masks_out"] is None:
            raise _fail(path, where, "detection_out needs raw_masks_out (the masks of every class)")


def _launcher_inputs(path: Path, entries: Any) -> tuple[tuple[tuple[str, str | None], ...],
                                                       tuple[LauncherInput, ...]]:
    """The launcher's `inputs`: the picture INPUTs (each one's name, if given, and the pattern of
    its file's name, its `value`: with several, two-stream super-resolution's low-res and upscaled
    pictures, or inpainting's picture and mask, each input takes the file its pattern matches) and
    the inputs fed besides them (LAUNCHER_INPUTS); any other type (a recurrent state, ...) is
    refused by name."""
    import re

    if entries is None:
        return (), ()
    if not isinstance(entries, list):
        raise _fail(path, "launchers[].inputs", "must be a list")
    pictures, extra, names = [], [], set()
    for i, entry in enumerate(entries):
        where = f"launchers[].inputs[{i}]"
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind != "INPUT" and kind not in LAUNCHER_INPUTS:
            raise _fail(path, where, f"{kind!r} is not implemented by modelzoo-accuracy "
                        f"(implemented: INPUT, {', '.join(LAUNCHER_INPUTS)})")
        name = entry.get("name")
        if not (isinstance(name, str) and name) and not (kind == "INPUT" and name is None):
            raise _fail(path, where, f"{kind} needs name, the network input's name (got {name!r})")
        if name in names:
            raise _fail(path, where, f"input {name!r} is named twice")
        names.add(name)
        if kind == "INPUT":
            pattern = entry.get("value")
            if pattern is not None:
                if not isinstance(pattern, str):
                    raise _fail(path, where, f"value {pattern!r} is not implemented (a pattern of the file's name)")
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise _fail(path, where, f"value {pattern!r} is not a regular expression: {exc}") from None
            pictures.append((name or "", pattern))
            continue
        unknown = sorted(set(entry) - {"name", "type"} - LAUNCHER_INPUTS[kind])
        if unknown:
            raise _fail(path, f"{where} ({kind})", f"option {unknown[0]!r} is not implemented")
        value: tuple[float, ...] = ()
        if kind == "CONST_INPUT":
            value = _const_value(path, f"{where} ({name})", entry.get("value"), entry.get("shape"))
        extra.append(LauncherInput(kind, name, value))
    if len(pictures) > 1 and any(not name or pattern is None for name, pattern in pictures):
        raise _fail(path, "launchers[].inputs", "several INPUTs: each needs a name and a value (the pattern of "
                    "its file's name)")
    return tuple(pictures), tuple(extra)


def _const_value(path: Path, where: str, value: Any, shape: Any) -> tuple[float, ...]:
    """A CONST_INPUT's numbers in order: a (nested) list of numbers, or one number and a shape
    (the number repeated), as the checker builds its array."""
    import numpy as np

    if shape is not None:
        if not (isinstance(shape, list) and shape and all(_count(d, MAX_CONST_VALUES) for d in shape)):
            raise _fail(path, where, f"shape must be a list of positive integers (got {shape!r})")
        if not _finite(value):
            raise _fail(path, where, f"value must be one number with a shape (got {str(value)[:80]!r})")
        size = math.prod(shape)
        if size > MAX_CONST_VALUES:
            raise _fail(path, where, f"shape {shape} holds more than {MAX_CONST_VALUES} values")
        return (float(value),) * size
    problem = f"value must be a list of numbers (or one number and a shape) (got {str(value)[:80]!r})"
    if not isinstance(value, list):
        raise _fail(path, where, problem)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged, or not numbers
        raise _fail(path, where, problem) from exc
    if array.size == 0 or array.size > MAX_CONST_VALUES or not np.isfinite(array).all():
        raise _fail(path, where, problem)
    flat: list[Any] = list(value)
    while any(isinstance(v, list) for v in flat):
        flat = [w for v in flat for w in (v if isinstance(v, list) else [v])]
    if any(isinstance(v, bool) for v in flat):
        raise _fail(path, where, problem)
    return tuple(float(v) for v in array.ravel())


def _channel_values(path: Path, where: str, key: str, value: Any) -> tuple[float, ...]:
    """A number, a list, "(a, b, c)" / "a,b,c", or a preset name: one value or one per channel."""
    if isinstance(value, str) and value.strip().lower() in NORMALIZATION_PRESETS:
        return NORMALIZATION_PRESETS[value.strip().lower()]
    values = _numbers(value)
    if len(values) not in (1, 3):
        raise _fail(path, where, f"{key} {value!r} is not a number, three numbers or one of "
                    f"{', '.join(NORMALIZATION_PRESETS)}")
    return tuple(float(v) for v in values)


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
        presenter = "print_scalar"
        for key, value in entry.items():
            if key in PRESENTATION:
                if value not in PRESENTATION[key]:
                    raise _fail(path, f"{where} ({kind})", f"{key} {value!r} is not implemented")
                presenter = value
                continue
            if key != "type" and key not in options:
                raise _fail(path, f"{where} ({kind})", f"option {key!r} is not implemented")
            options[key] = value
        if kind == "map":
            _check_map(path, f"{where} ({kind})", options)
        if kind in SEGMENTATION_METRICS:
            if not isinstance(options["use_argmax"], bool):
                raise _fail(path, f"{where} ({kind})",
                            f"use_argmax must be true or false (got {options['use_argmax']!r})")
            label = options["ignore_label"]
            if label is not None and not (isinstance(label, int) and not isinstance(label, bool) and label >= 0):
                raise _fail(path, f"{where} ({kind})", f"ignore_label must be an integer of 0 or more (got {label!r})")
        if kind in ("cmc", "reid_map"):
            for key in ("separate_camera_set", "single_gallery_shot", "first_match_break", "interpolated_auc"):
                if key in options and not isinstance(options[key], bool):
                    raise _fail(path, f"{where} ({kind})", f"{key} must be true or false (got {options[key]!r})")
            if options.get("single_gallery_shot"):
                raise _fail(path, f"{where} ({kind})", "single_gallery_shot: true is not implemented (a random "
                            "gallery picture per identity: a number that changes from run to run)")
        if kind == "pairwise_accuracy_subsets":
            here = f"{where} ({kind})"
            if not _count(options["subset_number"]):
                raise _fail(path, here, f"subset_number must be a positive integer (got {options['subset_number']!r})")
            if options["min_score"] not in MIN_SCORES and not _finite(options["min_score"]):
                raise _fail(path, here, f"min_score must be a number or one of {', '.join(MIN_SCORES)} "
                            f"(got {options['min_score']!r})")
            if options["distance_method"] not in DISTANCE_METHODS:
                raise _fail(path, here, f"distance_method {options['distance_method']!r} is not one of "
                            f"{', '.join(DISTANCE_METHODS)}")
            if not isinstance(options["subtract_mean"], bool):
                raise _fail(path, here, f"subtract_mean must be true or false (got {options['subtract_mean']!r})")
        if kind == "localization_recall" and not (_finite(options["distance_threshold"])
                                                   and options["distance_threshold"] >= 0):
            raise _fail(path, f"{where} ({kind})", f"distance_threshold must be a number of 0 or more (got "
                        f"{options['distance_threshold']!r})")
        top_k = options.get("top_k", 1)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise _fail(path, f"{where} ({kind})", f"top_k must be a positive integer (got {top_k!r})")
        if "threshold" in options:
            options["threshold"] = _coco_thresholds(path, f"{where} ({kind})", options["threshold"])
            if kind.startswith("coco_orig") and len(options["threshold"]) != 10:
                raise _fail(path, f"{where} ({kind})", f"threshold {entry['threshold']!r} is not implemented "
                            "(COCO's .50:.05:.95)")
        reference = options.pop("reference")
        class_references: dict[str, float] = {}
        if isinstance(reference, dict) and kind == "map" and presenter == "print_vector":
            # (the checker's vector reference: the mean, and each class's AP by its name)
            if not reference or not all(isinstance(k, str) and _finite(v) for k, v in reference.items()):
                raise _fail(path, f"{where} ({kind})", "reference must be a number, or class names (and 'mean') "
                            "with numbers")
            class_references = {k: float(v) for k, v in reference.items() if k != "mean"}
            reference = reference.get("mean")
        if isinstance(reference, dict) and kind in SEGMENTATION_METRICS:
            # print_vector's reference, a value per class and the mean: the mean is what is measured
            # and judged (the classes' values are not reported one by one)
            if "mean" not in reference:
                raise _fail(path, f"{where} ({kind})", "a reference per class without its 'mean' is not implemented")
            reference = reference["mean"]
        if isinstance(reference, dict) and kind in ("psnr", "ssim"):
            reference = _reference(path, f"{where} ({kind})", reference)  # (the checker's {mean, std})
        if kind in ("psnr", "ssim"):
            _check_image_metric(path, f"{where} ({kind})", options)
        if reference is not None and not _finite(reference):
            raise _fail(path, f"{where} ({kind})", f"reference must be a number (got {reference!r})")
        for key in ("abs_threshold", "rel_threshold"):
            if options[key] is not None and not (_finite(options[key]) and options[key] >= 0):
                raise _fail(path, f"{where} ({kind})", f"{key} must be a number of 0 or more (got {options[key]!r})")
        max_det = options.get("max_detections")
        if max_det is not None and (not isinstance(max_det, int) or isinstance(max_det, bool) or max_det <= 0
                                    or max_det > MAX_DETECTIONS):
            raise _fail(path, f"{where} ({kind})", f"max_detections must be a positive integer of at most "
                        f"{MAX_DETECTIONS} (got {max_det!r})")
        metrics.append(Metric(kind, options.pop("name") or kind, None if reference is None else float(reference),
                              options, presenter, class_references))
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
    if not named:  # erfnet's entries are "ERFNet": the checker finds the IR by the folder, not the name
        named = [m for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)
                 and m["name"].lower() == model_name.lower()]
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
    if name in UNDEFINED_DATASETS:
        raise _fail(path, "datasets[0].name", f"{name!r} is not implemented by modelzoo-accuracy: "
                    f"{UNDEFINED_DATASETS[name]}")
    if isinstance(name, str) and name in DEFINITION_DEFAULTS:  # (what the checker takes from the definition)
        dataset = {**DEFINITION_DEFAULTS[name], **dataset}
    if name not in DATASETS:
        raise _fail(path, "datasets[0].name", f"{name!r} is not implemented by modelzoo-accuracy "
                    f"(implemented: {', '.join(DATASETS)})")
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
    # (read after the adapter and data set: an INPUT of another task, and
    # that is the entry to name first)
    pictures, extra_inputs = _launcher_inputs(path, launcher.get("inputs"))
    config = AccuracyConfig(
        path=Path(path), model=model_name, adapter=adapter_type, dataset=name, dataset_kind=DATASETS[name][0],
        label_offset=DATASETS[name][1], adapter_options=adapter_options, reader=reader,
        full_label_map=name in FULL_LABEL_MAP, labels_file=CVAT_LABELS_FILES.get(name),
        inputs=extra_inputs, picture_input=(pictures[0][0] or None) if pictures else None,
        pictures=pictures,
        subsample=subsample, reshape=launcher.get("allow_reshape_input") is True,
        preprocessing=_steps(path, "preprocessing", dataset.get("preprocessing"), PREPROCESSING),
        postprocessing=_steps(path, "postprocessing", dataset.get("postprocessing"), POSTPROCESSING),
        metrics=_metrics(path, dataset.get("metrics")))
    _check_task(config)
    return config


def _configured(ymls: list[tuple[Path, str]]) -> list[AccuracyConfig | None]:
    """Each model's config, None where it cannot be read (said when the model is planned)."""
    configs: list[AccuracyConfig | None] = []
    for yml, name in ymls:
        try:
            configs.append(load_accuracy_config(yml, name))
        except AccuracyConfigError:
            configs.append(None)
    return configs


def configured_kind(ymls: list[tuple[Path, str]]) -> str | None:
    """The kind of segmentation or image-to-image set the models' ymls (path, model name) name,
    when those that can be read agree on one (then --dataset is read as that kind, not guessed
    from its folder: a VOC folder holds detection and segmentation image sets, an images/ folder
    the road and the ADAS masks, one super_resolution folder the x3 and x4 sets); else None (the
    kind is guessed, and a set of another task said as such)."""
    kinds = {c.dataset_kind for c in _configured(ymls) if c is not None}
    kind = kinds.pop() if len(kinds) == 1 else None
    return kind if kind is not None and TASK_OF_DATASET_KIND[kind] in ("segmentation", "image") else None


def configured_subsample(ymls: list[tuple[Path, str]]) -> int | None:
    """The subsample_size (its first N pictures) every one of the models' ymls gives; None (all
    the pictures) when one gives none, differs, or cannot be read."""
    subsamples = {c.subsample if c is not None else None for c in _configured(ymls)}
    return subsamples.pop() if len(subsamples) == 1 else None


# what each adapter predicts: the metrics, data sets and post-processing that read it
TASK_OF_ADAPTER = {"ssd": "detection", "classification": "classification", "yolo_v2": "detection",
                   "yolo_v3": "detection", "yolo_v3_onnx": "detection", "yolox": "detection",
                   "segmentation": "segmentation", "class_agnostic_detection": "detection",
                   "mask_rcnn": "instances",
                   **{kind: "detection" for kind in ("ultra_lightweight_face_detection", "faceboxes",
                                                     "retinaface_pytorch", "ssd_onnx", "detr", "nanodet",
                                                     "faster_rcnn_onnx", "yolof", "ctdet")},
                   "reid": "reid", "image_processing": "image", "super_resolution": "image",
                   "style_transfer": "image", "inpainting": "image"}
TASK_OF_METRIC = {"coco_precision": "detection", "coco_orig_precision": "detection", "accuracy": "classification",
                  "map": "detection", **{m: "segmentation" for m in SEGMENTATION_METRICS},
                  "coco_orig_segm_precision": "instances", "cmc": "reid", "reid_map": "reid",
                  "pairwise_accuracy_subsets": "reid", "localization_recall": "reid", "psnr": "image",
                  "ssim": "image"}
TASK_OF_DATASET_KIND = {"coco": "detection", "imagenet": "classification", "voc": "detection",
                        "voc_segmentation": "segmentation", "camvid": "segmentation", "cityscapes": "segmentation",
                        "ade20k": "segmentation", "road_segmentation": "segmentation",
                        "semantic_segmentation_adas": "segmentation", "erfnet_data": "segmentation",
                        "wider": "detection", "cvat": "detection",
                        "market1501": "reid", "veri776": "reid", "image_retrieval": "reid", "lfw": "reid",
                        "lfw_bin": "reid", "pitts30k_val": "reid",
                        **{kind: "image" for kind in ("super_resolution_x3", "super_resolution_x4",
                                                      "text_super_resolution_x3", "LIVE_1", "imagenet_colorization",
                                                      "ms_coco_style_transfer", "inpainting_rect_masks")}}
# what an embedding metric compares (identities of queries and a gallery, or listed pairs), and
# what each embedding data set annotates
TRUTH_OF_METRIC = {"cmc": "identities", "reid_map": "identities", "pairwise_accuracy_subsets": "pairs",
                   "localization_recall": "places"}
TRUTH_OF_DATASET_KIND = {"market1501": "identities", "veri776": "identities", "image_retrieval": "identities",
                         "lfw": "pairs", "lfw_bin": "pairs", "pitts30k_val": "places"}
TASK_OF_POSTPROCESSING = {"crop_padded_prediction": "segmentation", "resize_segmentation_mask": "segmentation",
                          "encode_segmentation_mask": "segmentation", "shift": "segmentation",
                          "crop_or_pad": "segmentation", "resize": "image", "corner_crop_image": "image",
                          "colorization_recovery": "image", "resize_style_transfer": "image"}  # (the others: box steps)
# instances (boxes with masks) are detections too: box metrics score their boxes; the box steps
# that keep every box as it is (moved, not dropped) are the ones the checker applies to both
INSTANCE_METRICS = ("coco_orig_precision", "coco_orig_segm_precision")
INSTANCE_POSTPROCESSING = ("faster_rcnn_postprocessing_resize",)


def _check_task(config: AccuracyConfig) -> None:
    """The adapter's predictions are what the metrics, data set and post-processing read."""
    merged = [i for i, s in enumerate(config.preprocessing) if s.type == "flip" and s.options["merge_with_original"]]
    if merged and config.adapter != "reid":
        raise _fail(config.path, f"preprocessing[{merged[0]}] (flip)", "merge_with_original is implemented for the "
                    "reid adapter only (it joins the two embeddings)")
    if merged and merged[0] != len(config.preprocessing) - 1:
        raise _fail(config.path, f"preprocessing[{merged[0] + 1}]", "a step after a flip with merge_with_original is "
                    "not implemented")
    task = TASK_OF_ADAPTER[config.adapter]
    if task == "instances":
        _check_instances(config)
        return
    for metric in config.metrics:
        if TASK_OF_METRIC[metric.type] != task:
            raise _fail(config.path, "metrics", f"{metric.type!r} does not score the {config.adapter!r} "
                        f"adapter's {task} predictions")
    for metric in config.metrics:
        wanted, annotated = TRUTH_OF_METRIC.get(metric.type), TRUTH_OF_DATASET_KIND.get(config.dataset_kind)
        if wanted and annotated and wanted != annotated:
            raise _fail(config.path, "metrics", f"{metric.type!r} compares {wanted}; {config.dataset!r} annotates "
                        f"{annotated}")
    if TASK_OF_DATASET_KIND[config.dataset_kind] != task:
        raise _fail(config.path, "datasets[0].name", f"{config.dataset!r} has no {task} annotations for the "
                    f"{config.adapter!r} adapter")
    ignoring = [s for s in config.postprocessing if s.type == "filter" and not s.options["remove_filtered"]
                and not (s.options["apply_to"] == "annotation" and s.options["criteria"] == ("min_confidence",))]
    # only `map` reads ignored boxes here; the checker's coco_orig_precision scores every box, marked
    # or not (its COCO file's, and each prediction); its coco_precision reads them, not implemented here
    other = [m.type for m in config.metrics if m.type not in ("map", "coco_orig_precision")]
    if ignoring and other:
        raise _fail(config.path, "postprocessing", f"a filter that keeps what it catches as ignored boxes "
                    f"(remove_filtered: false) is implemented for the map metric (and coco_orig_precision, which "
                    f"scores every box), not {other[0]!r}")
    marked = False  # (a prediction marked ignored by a filter before this step)
    for i, step in enumerate(config.postprocessing):
        removes = step.type in ("nms", "class_aware_nms") or step.type == "filter" and step.options["remove_filtered"]
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



def _check_instances(config: AccuracyConfig) -> None:
    """The mask_rcnn adapter's boxes and masks: COCO's metrics over the original annotation
    file, a COCO data set, and only the post-processing that moves boxes (the checker applies the
    box steps to the boxes alone, so one that drops boxes would part them from their masks)."""
    for metric in config.metrics:
        if metric.type not in INSTANCE_METRICS:
            raise _fail(config.path, "metrics", f"{metric.type!r} does not score the 'mask_rcnn' adapter's "
                        f"instances (implemented: {', '.join(INSTANCE_METRICS)})")
        if metric.type == "coco_orig_segm_precision" and config.adapter_options.get("raw_masks_out") is None:
            raise _fail(config.path, "metrics", "coco_orig_segm_precision scores masks: the adapter needs "
                        "raw_masks_out")
    if config.dataset_kind != "coco":
        raise _fail(config.path, "datasets[0].name", f"{config.dataset!r} has no COCO annotations for the "
                    "'mask_rcnn' adapter")
    if any(m.type == "coco_orig_segm_precision" for m in config.metrics) and config.dataset not in MASK_DATASETS:
        raise _fail(config.path, "datasets[0].name", f"{config.dataset!r} has no instance masks for "
                    "coco_orig_segm_precision")
    geometric = [s for s in config.preprocessing if s.type in ("resize", "padding", "crop")]
    if config.adapter_options.get("detection_out") is not None and (
            [s.type for s in geometric] not in (["resize"], ["resize", "padding"])
            or any(s.options["pad_type"] != "right_bottom" for s in geometric if s.type == "padding")):
        raise _fail(config.path, "preprocessing", "the 'mask_rcnn' adapter's detection_out form places its masks "
                    "as faster_rcnn_postprocessing_resize does: it needs a resize, or a resize then a right_bottom "
                    "padding")
    for step in config.postprocessing:
        if step.type not in INSTANCE_POSTPROCESSING:
            raise _fail(config.path, "postprocessing", f"{step.type!r} is not implemented with the 'mask_rcnn' "
                        f"adapter (implemented: {', '.join(INSTANCE_POSTPROCESSING)})")
