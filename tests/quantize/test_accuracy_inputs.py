"""Launcher inputs besides the picture (issue 26): CONST_INPUT (Faster R-CNN's image_info), IMAGE_INFO
and ORIG_IMAGE_INFO (yolo-v3-onnx's image_shape), the `yolo_v3_onnx` adapter, yolo-v4's raw HWB
grids with `diou_nms`, `shift_labels`, and the dataset definitions' preprocessing a Faster R-CNN
entry takes when it names none: small IRs whose boxes depend on the extra input, COCO folders
annotated from their detections, and Open Model Zoo's own accuracy_check on the same IR, pictures
and yml (one peer run for every case): equal within 0.1 points. Then the zoo's own ymls of the
two-stage detectors on IRs converted from the OD API stand-ins."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import inputnets, vocset
from modelzoo.devtools.peer_accuracy import peer_definitions, peer_entry, run_peer_many

COCO_METRICS = """        metrics:
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
"""
# faster_rcnn_resnet50_coco's yml as Open Model Zoo has it: no preprocessing (the 91-class data
# set's definition gives the 600x1024 window and faster_rcnn_postprocessing_resize)
FRCNN_YML = """models:
  - name: frcnn-const
    launchers:
      - framework: openvino
        adapter: ssd
        inputs:
          - name: image_info
            type: CONST_INPUT
            value: [[600, 1024, 1]]
    datasets:
      - name: ms_coco_detection_91_classes
""" + COCO_METRICS
# as faster-rcnn-resnet101-coco-sparse-60-0001: its own window, the picture's INPUT named too
SPARSE_YML = """models:
  - name: rfcn-const
    launchers:
      - framework: openvino
        adapter:
          type: ssd
        inputs:
          - name: image_tensor
            type: INPUT
          - name: image_info
            type: CONST_INPUT
            value: [[320, 480, 1]]
    datasets:
      - name: ms_coco_detection_80_class_with_background
        preprocessing:
          - type: resize
            aspect_ratio_scale: fit_to_window
            dst_width: 480
            dst_height: 320
          - type: padding
            dst_width: 480
            dst_height: 320
            pad_type: right_bottom
        postprocessing:
          - type: faster_rcnn_postprocessing_resize
            dst_width: 480
            dst_height: 320
""" + COCO_METRICS
# IMAGE_INFO (no zoo model uses it): the last resize's size, into a [1, 6] input
IMAGE_INFO_YML = SPARSE_YML.replace("rfcn-const", "image-info-6").replace(
    """          - name: image_info
            type: CONST_INPUT
            value: [[320, 480, 1]]""", """          - name: image_info
            type: IMAGE_INFO""")
# yolo-v3-onnx's OpenVINO entry as Open Model Zoo has it
YOLO_ONNX_YML = """models:
  - name: yolo-v3-onnx
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v3_onnx
          boxes_out: yolonms_layer_1/ExpandDims_1:0
          scores_out: yolonms_layer_1/ExpandDims_3:0
          indices_out: yolonms_layer_1/concat_2:0
        inputs:
          - name: image_shape
            type: ORIG_IMAGE_INFO
    datasets:
      - name: ms_coco_detection_80_class_without_background
        reader: pillow_imread
        preprocessing:
          - type: rgb_to_bgr
          - type: resize
            size: 416
            interpolation: BICUBIC
            use_pillow: True
            aspect_ratio_scale: fit_to_window
          - type: padding
            pad_value: 128, 128, 128
            size: 416
""" + COCO_METRICS
# yolo-v4-tf's and yolo-v4-tiny-tf's OpenVINO entries as the zoo has them (raw HWB grids, diou_nms)
YOLO_V4_YML = """models:
  - name: yolo-v4-tf
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v3
          anchors: 12,16,19,36,40,28,36,75,76,55,72,146,142,110,192,243,459,401
          num: 3
          coords: 4
          classes: 80
          threshold: 0.001
          anchor_masks: [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
          raw_output: True
          output_format: HWB
          outputs:
            - Func/StatefulPartitionedCall/output/_544
            - Func/StatefulPartitionedCall/output/_542
            - Func/StatefulPartitionedCall/output/_543
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            size: 608
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            apply_to: prediction
            min_confidence: 0.001
            remove_filtered: true
          - type: diou_nms
            overlap: 0.5
          - type: clip_boxes
            apply_to: prediction
""" + COCO_METRICS
YOLO_V4_TINY_YML = YOLO_V4_YML.replace("yolo-v4-tf", "yolo-v4-tiny-tf").replace(
    "12,16,19,36,40,28,36,75,76,55,72,146,142,110,192,243,459,401", "10,14,23,27,37,58,81,82,135,169,344,319").replace(
    "num: 3", "num: 2").replace("[[0, 1, 2], [3, 4, 5], [6, 7, 8]]", "[[1, 2, 3], [3, 4, 5]]").replace(
    """            - Func/StatefulPartitionedCall/output/_544
            - Func/StatefulPartitionedCall/output/_542
            - Func/StatefulPartitionedCall/output/_543""", """            - conv2d_20/BiasAdd
            - conv2d_17/BiasAdd""").replace("size: 608", "size: 416")
# as efficientdet-d0-tf: 90 classes from 0, shifted to COCO's ids
SHIFT_YML = """models:
  - name: efficientdet-shift
    launchers:
      - framework: openvino
        adapter: ssd
    datasets:
      - name: ms_coco_detection_90_class_without_background
        preprocessing:
          - type: resize
            aspect_ratio_scale: fit_to_window
            size: 256
          - type: padding
            size: 256
            pad_type: right_bottom
        postprocessing:
          - type: faster_rcnn_postprocessing_resize
            size: 256
          - type: shift_labels
            offset: 1
""" + COCO_METRICS


def _frcnn(xml: Path) -> Path:
    return inputnets.ssd_ir(xml, 600, 1024, 91, info=3, nhwc=True, seed=1)


def _sparse(xml: Path) -> Path:
    return inputnets.ssd_ir(xml, 320, 480, 81, info=3, seed=2)


def _image_info(xml: Path) -> Path:
    return inputnets.ssd_ir(xml, 320, 480, 81, info=6, seed=3)


def _yolo_v4(xml: Path) -> Path:
    return inputnets.yolo_raw_ir(xml, 608, (("Func/StatefulPartitionedCall/output/_544", 8),
                                            ("Func/StatefulPartitionedCall/output/_542", 16),
                                            ("Func/StatefulPartitionedCall/output/_543", 32)), seed=5)


def _yolo_v4_tiny(xml: Path) -> Path:
    return inputnets.yolo_raw_ir(xml, 416, (("conv2d_20/BiasAdd", 16), ("conv2d_17/BiasAdd", 32)), seed=6)


def _shift(xml: Path) -> Path:
    return inputnets.ssd_ir(xml, 256, 256, 90, seed=4)


# name: (yml, IR builder, predicted label -> COCO category id, or None for a label with no category)
CASES = {
    "frcnn-const": (FRCNN_YML, _frcnn, lambda label: label),
    "rfcn-const": (SPARSE_YML, _sparse, "position+1"),
    "image-info-6": (IMAGE_INFO_YML, _image_info, "position+1"),
    "yolo-v3-onnx": (YOLO_ONNX_YML, inputnets.yolo_onnx_ir, "position"),
    "yolo-v4-tf": (YOLO_V4_YML, _yolo_v4, "position"),
    "yolo-v4-tiny-tf": (YOLO_V4_TINY_YML, _yolo_v4_tiny, "position"),
    "efficientdet-shift": (SHIFT_YML, _shift, lambda label: label),  # (COCO's ids: 1..90)
}
PICTURES = 8


@functools.cache
def inputs_zoo() -> dict:
    """Every case's zoo folder and IR, and one COCO folder annotated from each network in turn."""
    from modelzoo.devtools.cocoset import categories, write_coco_folder

    root = _workdir() / "inputs"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (yml, build, _) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="detection").parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        xmls[name] = build(ir / "public" / name / "FP32" / f"{name}.xml")
    ids = [c["id"] for c in categories()]
    index_of_id = {cid: i for i, cid in enumerate(ids)}
    detectors = []
    for name, (_, _, to_id) in CASES.items():
        if to_id == "position":
            to_id = lambda label: ids[label] if 0 <= label < len(ids) else None  # noqa: E731
        elif to_id == "position+1":
            to_id = lambda label: ids[label - 1] if 1 <= label <= len(ids) else None  # noqa: E731
        detect = vocset.detector(xmls[name], ymls[name], name)
        detectors.append(lambda picture, detect=detect, to_id=to_id: np.array(
            [[index_of_id[to_id(int(label))], score, *box] for label, score, box in zip(*detect(picture))
             if to_id(int(label)) in index_of_id], dtype=np.float64).reshape(-1, 6))
    turn = itertools.count()
    data = write_coco_folder(root / "coco", vocset.pictures(PICTURES, seed=61),
                             lambda picture: detectors[next(turn) % len(detectors)](picture), seed=61)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "data": data}


def measure(case: dict, json_out: Path, *args, precision: str = "FP32") -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--ir_dir", case["ir"], "--precisions", precision,
                      "--dataset", case["data"], "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    records = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record["value"]
    return records


def test_launcher_inputs_and_box_steps_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """Every case, every metric, equal to the peer within 0.1 points, the peer merging Open Model
    Zoo's own dataset definitions (frcnn-const takes its window from there); the same numbers
    from two shards in processes of their own (their results are larger than a pipe's buffer)."""
    case = inputs_zoo()
    ours = measure(case, tmp_path / "r.json", "--all")
    # the pictures in two shards, each a process of its own, scored once (COCO's ids as labels too)
    sharded = measure(case, tmp_path / "r2.json", "--all", "-j", "2")
    assert set(sharded) == set(ours), (sharded, ours)
    for name in ours:
        assert sharded[name] == pytest.approx(ours[name], abs=1e-6), (name, sharded[name], ours[name])
    data = case["data"]
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], data / "val2017",
                          {"annotation_file": str(data / "annotations/instances_val2017.json")}, name)
               for name in CASES]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries, definitions=peer_definitions(peer_accuracy_check))
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]) == {"map", "AP@0.5", "AP@0.5:0.05:95"}, (name, ours, theirs)
        for metric, value in ours[name].items():
            assert 0.001 < value < 0.95, (name, metric, value)  # a number that can move
            assert abs(100 * value - 100 * theirs[name][metric]) <= 0.1, (name, metric, value, theirs[name])


@pytest.mark.parametrize("name,wrong", [
    ("frcnn-const", ("value: [[600, 1024, 1]]", "value: [[1024, 600, 1]]")),  # height and width swapped
    ("yolo-v3-onnx", ("type: ORIG_IMAGE_INFO", "type: IMAGE_INFO")),  # the network's size, not the picture's
    ("image-info-6", ("type: IMAGE_INFO", "type: ORIG_IMAGE_INFO")),
])
def test_a_wrong_feed_moves_the_number(name, wrong, tmp_path):
    """The networks' boxes depend on the extra input: fed something else, the metric moves (so
    the equality above says the feed is the checker's)."""
    case = inputs_zoo()
    right = measure(case, tmp_path / "a.json", "--name", name)[name]
    zoo = tmp_path / "zoo"
    import shutil

    shutil.copytree(case["zoo"], zoo)
    yml = zoo / "public" / name / "accuracy-check.yml"
    assert wrong[0] in yml.read_text()
    yml.write_text(yml.read_text().replace(*wrong))
    moved = measure(dict(case, zoo=zoo), tmp_path / "b.json", "--name", name)[name]
    assert any(abs(moved[m] - right[m]) > 0.01 for m in right), (right, moved)


@pytest.mark.parametrize("change,needle", [
    (("name: image_info", "name: im_info"), "CONST_INPUT 'im_info' is not an input of"),
    (("value: [[600, 1024, 1]]", "value: [[600, 1024]]"), "CONST_INPUT 'image_info' gives 2 values; the IR's input "
                                                          "is [1, 3] (3 values)"),
    (("            value: [[600, 1024, 1]]\n", ""), "(image_info): value must be a list of numbers"),
    (("value: [[600, 1024, 1]]", "value: 1\n            shape: [1, 4]"), "CONST_INPUT 'image_info' gives 4 values; "
                                                                           "the IR's input is [1, 3]"),
    (("type: CONST_INPUT", "type: LSTM_INPUT"), "launchers[].inputs[0]: 'LSTM_INPUT' is not implemented"),
    (("value: [[600, 1024, 1]]", "value: [[600, 1024, 1], [2]]"), "value must be a list of numbers"),
    (("value: [[600, 1024, 1]]", "value: [[600, .nan, 1]]"), "value must be a list of numbers"),
    (("type: CONST_INPUT", "type: CONST_INPUT\n            layout: NC"), "option 'layout' is not implemented"),
    (("adapter: ssd\n", ""), "launchers[].inputs: feeds 0 inputs besides the picture; "),
])
def test_a_wrong_input_is_one_line_naming_the_yml_and_the_input(change, needle, tmp_path):
    """A name the IR does not have, a value of the wrong size, an input type not implemented, a
    value that is not numbers, no inputs at all: one line naming the yml (and the input), the
    model failed (exit 1), nothing written."""
    import shutil

    case = inputs_zoo()
    zoo = tmp_path / "zoo"
    shutil.copytree(case["zoo"], zoo)
    yml = zoo / "public" / "frcnn-const" / "accuracy-check.yml"
    text = yml.read_text()
    if change[0] == "adapter: ssd\n":  # (no inputs at all: the entry without its list)
        text = text[:text.index("        inputs:")] + text[text.index("    datasets:"):]
    else:
        assert change[0] in text
        text = text.replace(*change)
    yml.write_text(text)
    result = run_tool("accuracy_check", "--models_dir", zoo, "--name", "frcnn-const", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", case["data"], "--json", tmp_path / "r.json")
    assert result.returncode == 1, result.stderr
    line = one_error_line(result)
    assert needle in line and str(yml) in line, line
    assert not (tmp_path / "r.json").exists()


def _independent_diou(boxes, scores, overlap, boundary, top_k):
    """The checker's diou_nms written again in plain Python over lists."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i), reverse=True)
    if top_k:
        order = order[:top_k]
    keep = []
    while order:
        best, rest = order[0], order[1:]
        keep.append(best)
        a = boxes[best]
        left = []
        for i in rest:
            c = boxes[i]
            w = max(0.0, min(a[2], c[2]) - max(a[0], c[0]) + boundary)
            h = max(0.0, min(a[3], c[3]) - max(a[1], c[1]) + boundary)
            union = ((a[2] - a[0] + boundary) * (a[3] - a[1] + boundary)
                     + (c[2] - c[0] + boundary) * (c[3] - c[1] + boundary) - w * h)
            iou = w * h / union if union else 0.0
            diag = (max(a[2], c[2]) - min(a[0], c[0])) ** 2 + (max(a[3], c[3]) - min(a[1], c[1])) ** 2 + 1e-16
            dist = ((c[0] + c[2]) / 2 - (a[0] + a[2]) / 2) ** 2 + ((c[1] + c[3]) / 2 - (a[1] + a[3]) / 2) ** 2
            if iou - (dist / diag) ** 0.6 <= overlap:
                left.append(i)
        order = left
    return keep


def test_diou_nms_equals_an_independent_computation():
    from modelzoo.accuracy.postprocessing import diou_nms, nms

    rng = np.random.default_rng(4)
    differs = 0
    for trial in range(30):
        n = int(rng.integers(1, 60))
        corner = rng.uniform(0, 200, (n, 2))
        boxes = np.c_[corner, corner + rng.uniform(1, 80, (n, 2))]
        scores = rng.permutation(n) / n + rng.uniform(0, 1e-3, n)  # (no ties: argsort's order of equals aside)
        for overlap, boundary, top_k in ((0.5, True, None), (0.3, False, None), (0.6, True, 10)):
            ours = diou_nms(boxes, scores, overlap, boundary, top_k).tolist()
            expected = _independent_diou(boxes.tolist(), scores.tolist(), overlap, float(boundary), top_k)
            assert ours == expected, (trial, overlap, boundary, top_k)
            differs += sorted(ours) != sorted(nms(boxes, scores, overlap, boundary, top_k).tolist())
    assert differs > 10  # the distance term changes what is kept


def test_shift_labels_and_yolox_anchors_are_read_as_the_checker_reads_them(tmp_path):
    """shift_labels needs an integer offset; yolox's anchors and classes (smartlab's) are accepted
    and change nothing, as the checker's yolox declares neither."""
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(SHIFT_YML.replace("offset: 1", "offset: one"))
    with pytest.raises(AccuracyConfigError, match=r"postprocessing\[1\] \(shift_labels\): needs offset, an integer"):
        load_accuracy_config(yml, "efficientdet-shift")
    smartlab = """models:
  - name: smartlab
    launchers:
      - framework: openvino
        adapter:
          type: yolox
          anchors: yolox
          classes: 10
    datasets:
      - name: ms_coco_detection_80_class_without_background
        preprocessing:
          - type: resize
            size: 416
        metrics:
          - type: coco_precision
"""
    yml.write_text(smartlab)
    with_anchors = load_accuracy_config(yml, "smartlab")
    yml.write_text(smartlab.replace("          anchors: yolox\n          classes: 10\n", ""))
    assert with_anchors.adapter_options == load_accuracy_config(yml, "smartlab").adapter_options


def test_a_dataset_definition_fills_only_what_the_entry_lacks(tmp_path):
    """The 91-class definition's window and resize-back come in when the entry has none; an entry's
    own preprocessing is kept whole (the checker takes the key, not the steps)."""
    from modelzoo.accuracy.config import load_accuracy_config

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(FRCNN_YML)
    config = load_accuracy_config(yml, "frcnn-const")
    assert [s.type for s in config.preprocessing] == ["resize", "padding"]
    assert config.input_size() == (600, 1024)
    assert [s.type for s in config.postprocessing] == ["faster_rcnn_postprocessing_resize"]
    assert config.inputs[0].value == (600.0, 1024.0, 1.0)
    yml.write_text(FRCNN_YML.replace("    datasets:\n      - name: ms_coco_detection_91_classes\n",
                                     "    datasets:\n      - name: ms_coco_detection_91_classes\n"
                                     "        preprocessing:\n          - type: resize\n            size: 300\n"))
    config = load_accuracy_config(yml, "frcnn-const")
    assert [s.type for s in config.preprocessing] == ["resize"] and config.input_size() == (300, 300)
    assert [s.type for s in config.postprocessing] == ["faster_rcnn_postprocessing_resize"]


# one of each kind (faster_rcnn_inception_resnet_v2_atrous_coco and efficientdet-d1-tf read as these do)
ZOO_DETECTORS = ("faster_rcnn_resnet50_coco", "rfcn-resnet101-coco-tf", "efficientdet-d0-tf")


def test_the_zoo_configurations_on_converted_stand_ins_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """Open Model Zoo's own accuracy-check.yml of the Faster R-CNN, R-FCN and EfficientDet models,
    unchanged, on IRs our converter made from the OD API stand-in graphs (tests/test_stages_odapi.py's
    zoo copy: image_info where the yml feeds it, the definitions' window where it names none,
    shift_labels): runnable, and equal to the peer within 0.1 points on a COCO folder annotated
    from those IRs' detections."""
    from test_stages_odapi import _reference

    from modelzoo.devtools.cocoset import categories, write_coco_folder

    ref = _reference()
    ir = tmp_path / "ir"
    result = run_tool("converter", "--models_dir", ref / "zoo", "--name", ",".join(ZOO_DETECTORS), "-d", ref / "dl",
                      "-o", ir, "--backend", "ovc", "--precisions", "FP32", timeout=600)
    assert result.returncode == 0, result.stderr
    xml = {n: ir / "public" / n / "FP32" / f"{n}.xml" for n in ZOO_DETECTORS}
    yml = {n: ref / "zoo" / "public" / n / "accuracy-check.yml" for n in ZOO_DETECTORS}
    index_of_id = {c["id"]: i for i, c in enumerate(categories())}  # (every one of these labels is COCO's id)
    detectors = []
    for name in ZOO_DETECTORS:
        detect = vocset.detector(xml[name], yml[name], name)
        detectors.append(lambda picture, detect=detect: np.array(
            [[index_of_id[int(label)], score, *box] for label, score, box in zip(*detect(picture))
             if int(label) in index_of_id], dtype=np.float64).reshape(-1, 6))
    turn = itertools.count()
    data = write_coco_folder(tmp_path / "coco", vocset.pictures(2 * len(ZOO_DETECTORS), seed=26),
                             lambda picture: detectors[next(turn) % len(detectors)](picture), seed=26)
    result = run_tool("accuracy_check", "--models_dir", ref / "zoo", "--name", ",".join(ZOO_DETECTORS), "--ir_dir",
                      ir, "--precisions", "FP32", "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    ours = {r["model"]: {r["metric"]: r["value"]} for r in json.loads((tmp_path / "r.json").read_text())}
    entries = [peer_entry(yml[name], name, xml[name], data / "val2017",
                          {"annotation_file": str(data / "annotations/instances_val2017.json")}, name)
               for name in ZOO_DETECTORS]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries, definitions=peer_definitions(peer_accuracy_check))
    for name in ZOO_DETECTORS:
        assert set(ours[name]) == set(theirs[name]) == {"coco_precision"}, (name, ours, theirs)
        value = ours[name]["coco_precision"]
        assert 0.001 < value < 0.95, (name, value)
        assert abs(100 * value - 100 * theirs[name]["coco_precision"]) <= 0.1, (name, value, theirs[name])


@pytest.mark.parametrize("name", ["rfcn-const", "yolo-v3-onnx"])
def test_the_quantizer_feeds_the_second_input_as_the_accuracy_tool_does(name, tmp_path):
    """modelzoo-quantizer on a network with image_info (a constant) or image_shape (the picture's
    size): calibrated and validated with those inputs fed, INT8 inside, both inputs kept; the
    FP32 and INT8 accuracy it records are what the accuracy tool measures of the IR it wrote
    (no assumption about the drop's value)."""
    import openvino as ov

    from modelzoo.accuracy.evaluate import is_int8

    case = inputs_zoo()
    out = tmp_path / "out"
    result = run_tool("quantizer", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"], "-o", out,
                      "--dataset", case["data"], "--max_drop", "0.5", timeout=900)
    assert result.returncode == 0, result.stderr
    assert "RuntimeWarning" not in result.stderr, result.stderr  # (an input left unfed made NaN boxes)
    int8 = out / "public" / name / "FP16-INT8"
    model = ov.Core().read_model(str(int8 / f"{name}.xml"))
    assert is_int8(model) and len(model.inputs) == 2
    values = {}
    for ir, precision in ((case["ir"], "FP32"), (out, "FP16-INT8")):
        values[precision] = measure(dict(case, ir=ir), tmp_path / "r.json", "--name", name,
                                    precision=precision)[name]["map"]
    record = json.loads((int8 / "quantization.json").read_text())["accuracy"]
    assert record["metric"] == "map"
    assert abs(record["fp32"] - values["FP32"]) < 1e-9 and abs(record["int8"] - values["FP16-INT8"]) < 1e-9, \
        (record, values)
