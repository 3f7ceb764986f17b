"""The detectors whose adapters decode, choose or scale the boxes themselves (issue 26):
ultra_lightweight_face_detection, faceboxes and retinaface_pytorch on WIDER FACE, ssd_onnx, detr,
nanodet (and its legacy form), faster_rcnn_onnx, yolof (with class_aware_nms) and ctdet (with
centernet_affine_transform) on COCO, each with its model's own
accuracy-check.yml entry, against Open Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on
the same IR (devtools/detectorset.py: the real output names, shapes and box coding), pictures
and yml, in one peer run for every case."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import cocoset, detectorset, widerset
from modelzoo.devtools.peer_accuracy import peer_entry, run_peer_many, wider_conversion

# The openvino entries of Open Model Zoo's accuracy-check.yml files as they ship (comments left out).
ULTRA_YML = """models:
  - name: ultra-lightweight-face-detection-rfb-320
    launchers:
      - framework: openvino
        adapter:
          type: ultra_lightweight_face_detection
          boxes_out: "boxes"
          scores_out: "scores"
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            dst_width: 320
            dst_height: 240
        postprocessing:
          - type: nms
            overlap: 0.5
            include_boundaries: False
          - type: resize_prediction_boxes
          - type: filter
            apply_to: annotation
            height_range: 100
            is_empty: True
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            reference: 0.8478
"""
FACEBOXES_YML = """models:
  - name: faceboxes-pytorch
    launchers:
      - framework: openvino
        adapter:
          type: faceboxes
          boxes_out: "boxes"
          scores_out: "scores"
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            dst_width: 1024
            dst_height: 1024
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            apply_to: annotation
            height_range: 100
            is_empty: True
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            reference: 0.83565
"""
RETINAFACE_YML = """models:
  - name: retinaface-resnet50-pytorch
    launchers:
      - framework: openvino
        adapter:
          type: retinaface_pytorch
          bboxes_output: face_rpn_bbox_pred
          scores_output: face_rpn_cls_prob
          landmarks_output: face_rpn_landmark_pred
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            size: 640
        postprocessing:
          - type: cast_to_int
          - type: clip_boxes
            size: 1024
            apply_to: annotation
          - type: filter
            apply_to: annotation
            height_range: 64, 1024
            is_empty: True
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            allow_multiple_matches_per_ignored: False
            distinct_conf: False
            reference: 0.9178
"""
SSD_ONNX_YML = """models:
  - name:  ssd-resnet34-1200-onnx
    launchers:
      - framework: openvino
        adapter:
          type: ssd_onnx
          scores_out: '.*scores*'
          labels_out: '.*labels*'
          bboxes_out: '.*bboxes*'
    datasets:
      - name: ms_coco_detection_80_class_with_background
        preprocessing:
          - type: resize
            size: 1200
            interpolation: BILINEAR
            use_pillow: True
        postprocessing:
          - type: resize_prediction_boxes
        metrics:
          - type: coco_precision
            reference: 0.2073
          - type: coco_orig_precision
            include_boundaries: False
            reference: 0.1997
"""
DETR_YML = """models:
  - name: detr-resnet50
    launchers:
      - framework: openvino
        adapter:
          type: detr
          scores_out: "scores"
          boxes_out: "boxes"
    datasets:
      - name: ms_coco_detection_91_classes
        reader: pillow_imread
        preprocessing:
          - type: resize
            dst_height: 800
            dst_width: 1137
            use_pillow: true
          - type: rgb_to_bgr
        postprocessing:
          - type: resize_prediction_boxes
        metrics:
          - type: coco_precision
            reference: 0.4236
          - type: coco_orig_precision
            reference: 0.3927
"""
NANODET_YML = """models:
  - name: nanodet-m-1.5x-416
    launchers:
      - framework: openvino
        adapter:
          type: nanodet
          is_legacy: true
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            size: 416
            aspect_ratio_scale: fit_to_window
          - type: padding
            size: 416
            pad_type: right_bottom
        postprocessing:
          - type: resize_prediction_boxes
            rescale: true
        metrics:
          - type: coco_precision
            reference: 0.2738
          - type: coco_orig_precision
            reference: 0.2663
"""
NANODET_PLUS_YML = """models:
  - name: nanodet-plus-m-1.5x-416
    launchers:
      - framework: openvino
        adapter:
          type: nanodet
          strides: [8, 16, 32, 64]
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            size: 416
          - type: padding
            size: 416
            pad_type: right_bottom
        postprocessing:
          - type: resize_prediction_boxes
            rescale: true
        metrics:
          - type: coco_precision
            reference: 0.3453
          - type: coco_orig_precision
            reference: 0.3377
"""
# person-vehicle-bike-detection-2003's entry, its data set (crossroad_extra_untagged) named as COCO's 80
FASTER_RCNN_ONNX_YML = """models:
  - name: person-vehicle-bike-detection-2003
    launchers:
      - framework: openvino
        adapter:
          type: faster_rcnn_onnx
          labels_out: 'labels'
          boxes_out: 'boxes'
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            dst_width: 864
            dst_height: 480
        postprocessing:
          - type: filter
            apply_to: prediction
            min_confidence: 0.05
        metrics:
          - type: coco_orig_precision
            include_boundaries: false
            reference: 0.336
"""
YOLOF_YML = """models:
  - name: yolof
    launchers:
      - framework: openvino
        adapter:
          type: yolof
          anchors: 16,16,32,32,64,64,128,128,256,256,512,512
          num: 6
          cells: [38]
          coords: 4
          classes: 80
          threshold: 0.05
          raw_output: True
          output_format: BHW
          multiple_labels: True
          outputs:
            - boxes
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            size: 608
        postprocessing:
          - type: resize_prediction_boxes
          - type: class_aware_nms
            overlap: 0.6
          - type: clip_boxes
            apply_to: prediction
        metrics:
          - type: map
            integral: 11point
            ignore_difficult: true
            presenter: print_scalar
          - name: AP@0.5
            type: coco_precision
            max_detections: 100
            threshold: 0.5
          - name: AP@0.5:0.05:95
            type: coco_precision
            max_detections: 100
            threshold: '0.5:0.05:0.95'
"""
CTDET_YML = """models:
  - name: ctdet_coco_dlav0_512
    launchers:
      - framework: openvino
        adapter:
          type: ctdet
          center_heatmap_out: center_heatmap
          width_height_out: width_height
          regression_out: regression
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: centernet_affine_transform
            dst_width: 512
            dst_height: 512
        postprocessing:
          - type: filter
            apply_to: prediction
            min_confidence: 0.3
            remove_filtered: True
        metrics:
          - type: map
            integral: 11point
            presenter: print_scalar
            reference: 0.442
"""


def _with_background(label: int) -> int | None:
    return label - 1 if 1 <= label <= 80 else None


def _full_map(label: int) -> int | None:  # (the 91 labels are COCO's category ids)
    return cocoset.COCO_IDS.index(label) if label in cocoset.COCO_IDS else None


def _as_is(label: int) -> int | None:
    return label if 0 <= label < 80 else None


WIDER = "wider"
# model -> (yml, the IR's builder, the data: WIDER, or COCO with the label -> COCO's 0..79)
CASES: dict[str, tuple[str, Callable[[Path], Path], object]] = {
    "ultra-lightweight-face-detection-rfb-320": (ULTRA_YML, detectorset.ultra_lightweight_ir, WIDER),
    "faceboxes-pytorch": (FACEBOXES_YML, detectorset.faceboxes_ir, WIDER),
    "retinaface-resnet50-pytorch": (RETINAFACE_YML, detectorset.retinaface_ir, WIDER),
    "ssd-resnet34-1200-onnx": (SSD_ONNX_YML, detectorset.ssd_onnx_ir, _with_background),
    "detr-resnet50": (DETR_YML, detectorset.detr_ir, _full_map),
    "nanodet-m-1.5x-416": (NANODET_YML, functools.partial(detectorset.nanodet_ir, strides=(8, 16, 32)), _as_is),
    "nanodet-plus-m-1.5x-416": (NANODET_PLUS_YML, functools.partial(detectorset.nanodet_ir, strides=(8, 16, 32, 64)),
                                _as_is),
    "person-vehicle-bike-detection-2003": (FASTER_RCNN_ONNX_YML, detectorset.faster_rcnn_onnx_ir, _as_is),
    "yolof": (YOLOF_YML, detectorset.yolof_ir, _as_is),
    "ctdet_coco_dlav0_512": (CTDET_YML, detectorset.ctdet_ir, _as_is),
}
PICTURES = 4


def _coco_detector(detect: Callable, to_coco: Callable[[int], int | None]) -> cocoset.Detector:
    def rows(picture: np.ndarray) -> np.ndarray:
        labels, scores, boxes = detect(picture)
        mapped = [to_coco(int(label)) for label in labels]
        keep = [i for i, m in enumerate(mapped) if m is not None]
        return np.array([[mapped[i], scores[i], *boxes[i]] for i in keep]).reshape(-1, 6)

    return rows


@functools.cache
def detector_zoo() -> dict:
    """Every case's IR and yml, and its own folder (WIDER FACE or COCO) of generated pictures
    whose boxes come from that case's own detections."""
    from modelzoo.devtools.vocset import detector

    root = _workdir() / "detection-adapters"
    cases = {}
    for name, (yml_text, build, data) in CASES.items():
        yml = root / name / "accuracy-check.yml"
        yml.parent.mkdir(parents=True, exist_ok=True)
        yml.write_text(yml_text)
        xml = build(root / name / "FP32" / f"{name}.xml")
        cases[name] = {"yml": yml, "xml": xml}
        if data == WIDER:
            folder = widerset.write_wider_folder(root / name / "wider", widerset.pictures(PICTURES, seed=9),
                                                 [widerset.detector(xml, yml, name)], seed=9)
            cases[name].update(data=folder, images=folder / widerset.IMAGES, conversion=wider_conversion(folder))
        else:
            folder = cocoset.write_coco_folder(root / name / "coco", cocoset.pictures(PICTURES, seed=7),
                                               _coco_detector(detector(xml, yml, name), data), seed=7)
            cases[name].update(data=folder, images=folder / "val2017",
                               conversion={"annotation_file": str(folder / "annotations/instances_val2017.json")})
    return cases


def _ours(case: dict, name: str) -> dict[str, float]:
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.accuracy.dataset import resolve
    from modelzoo.accuracy.evaluate import measure

    run = measure(case["xml"], load_accuracy_config(case["yml"], name),
                  resolve(case["data"], None, None, need_annotations=True))
    return {result.metric: result.value for result in run.results}


def test_detection_adapters_equal_accuracy_check(peer_accuracy_check):
    cases = detector_zoo()
    ours = {name: _ours(case, name) for name, case in cases.items()}
    entries = [peer_entry(case["yml"], name, case["xml"], case["images"], case["conversion"], name)
               for name, case in cases.items()]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries)
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]), (name, ours[name], theirs[name])
        for metric, value in ours[name].items():
            assert 0.02 < value < 0.98, (name, metric, value)  # a number that can move
            assert abs(100 * value - 100 * theirs[name][metric]) <= 0.1, (name, metric, value, theirs[name])


def test_prior_counts_are_the_real_models():
    """The priors made for the models' input sizes are as many as their outputs' rows (the cards:
    faceboxes-pytorch 21824 at 1024x1024, retinaface-resnet50-pytorch 16800 at 640x640)."""
    from modelzoo.accuracy.adapter import _faceboxes_priors, _retinaface_priors

    assert _faceboxes_priors(1024, 1024).shape == (21824, 4)
    assert _retinaface_priors(640, 640).shape == (16800, 4)
    priors = _faceboxes_priors(1024, 1024)
    # the first cell: 16 32-pixel priors on a 4x4 lattice (row by row), 4 of 64 pixels, 1 of 128
    assert np.allclose(priors[:4, 0] * 1024, [0, 8, 16, 24]) and np.allclose(priors[:4, 1], 0)
    assert np.allclose(priors[16:20, 2] * 1024, 64) and np.allclose(priors[20, :2] * 1024, [16, 16])
    assert priors.min() >= 0 and priors.max() <= 1


@pytest.mark.parametrize("old, new, needle", [
    ('          boxes_out: "boxes"\n', "", "needs boxes_out (an output's name)"),
    ('          scores_out: "scores"\n', "          scores_out: 3\n", "scores_out must be an output's name"),
])
def test_a_missing_output_name_is_refused_by_name(tmp_path, old, new, needle):
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(FACEBOXES_YML.replace(old, new))
    with pytest.raises(AccuracyConfigError, match=re.escape(needle)):
        load_accuracy_config(yml, "faceboxes-pytorch")


def test_faster_rcnn_scores_without_labels_and_an_ambiguous_pattern_are_refused(tmp_path):
    from modelzoo.accuracy.adapter import Outputs, ssd_onnx
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(FASTER_RCNN_ONNX_YML.replace("labels_out: 'labels'", "scores_out: 'scores'"))
    with pytest.raises(AccuracyConfigError, match="scores_out without labels_out"):
        load_accuracy_config(yml, "person-vehicle-bike-detection-2003")
    net = Outputs({"scores": np.zeros((1, 2)), "scores_2": np.zeros((1, 2)), "labels": np.zeros((1, 2)),
                   "bboxes": np.zeros((1, 2, 4))}, ["scores", "scores_2", "labels", "bboxes"], (8, 8))
    with pytest.raises(AccuracyConfigError, match=r"scores_out '\.\*scores\*' matches 2 outputs"):
        ssd_onnx(net, ".*labels*", ".*bboxes*", ".*scores*")
    found = ssd_onnx(net, ".*labels*", ".*bboxes*", "scores$")
    assert found.boxes.shape == (2, 4) and (found.labels == 0).all()


def test_centernet_affine_map_and_its_inverse():
    """The longer side of a 300x200 picture, centred, spans the 512 window: its corners land on
    (0, 64) and (512, 448), and the inverse brings the window's points back."""
    from modelzoo.accuracy.preprocessing import centernet_affine

    forward = centernet_affine((150.0, 100.0), 300.0, 512, 512)
    back = centernet_affine((150.0, 100.0), 300.0, 512, 512, inverse=True)
    corners = np.array([[0, 0, 1], [300, 200, 1]], dtype=np.float64)
    assert np.allclose(corners @ forward.T, [[0, 512 * 50 / 300], [512, 512 * 250 / 300]], atol=1e-3)
    assert np.allclose((corners @ forward.T) @ back[:, :2].T + back[:, 2], corners[:, :2], atol=1e-3)


@pytest.mark.parametrize("adapter, arrays, needle", [
    ("ultra_lightweight_face_detection", {"scores": np.zeros((1, 7, 2)), "boxes": np.zeros((1, 6, 4))},
     "the outputs disagree on the number of boxes (scores 7, boxes 6)"),
    ("ultra_lightweight_face_detection", {"scores": np.zeros((1, 7, 2)), "boxes": np.zeros((1, 7, 3))},
     "output 'boxes' of shape [1, 7, 3] is not rows of 4 values"),
    ("detr", {"scores": np.zeros((1, 5, 1)), "boxes": np.zeros((1, 5, 4))}, "has 1 logits a query"),
    ("ctdet", {"center_heatmap": np.zeros((1, 3, 4, 4)), "width_height": np.zeros((1, 2, 4, 4)),
               "regression": np.zeros((1, 2, 2, 4))}, "output 'regression' of shape [1, 2, 2, 4] is not [2, 4, 4]"),
])
def test_an_output_of_another_layout_is_one_error_naming_it(adapter, arrays, needle):
    """An IR whose outputs are not the layout the yml's adapter reads: an AccuracyConfigError (one
    line for the command line), not numpy's traceback."""
    from modelzoo.accuracy.adapter import ADAPTERS, NEEDS_GEOMETRY, Outputs
    from modelzoo.accuracy.preprocessing import Geometry
    from modelzoo.errors import AccuracyConfigError

    names = {"ctdet": {"center_heatmap_out": "center_heatmap", "width_height_out": "width_height",
                       "regression_out": "regression"}}.get(adapter, {"scores_out": "scores", "boxes_out": "boxes"})
    extra = {"geometry": Geometry(100, 100)} if adapter in NEEDS_GEOMETRY else {}
    with pytest.raises(AccuracyConfigError, match=re.escape(needle)):
        ADAPTERS[adapter](Outputs(arrays, list(arrays), (16, 16)), **names, **extra)
