"""YOLO and Pascal VOC (issue 26 item 2): the `yolo_v2` / `yolo_v3` adapters, the `nms`,
`resize_prediction_boxes`, `filter`, `clip_boxes` post-processing, the VOC `map` metric (11point
and max, ignore_difficult, overlap_threshold) and the VOC2012 data set (XML annotations), through
the real command line, against Open Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on the
same IR, pictures and yml: one peer run for every case (its start-up is paid once)."""

from __future__ import annotations

import functools
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import vocset
from modelzoo.devtools.peer_accuracy import peer_entry, run_peer_many, voc_conversion

MAPS = """        metrics:
          - name: map_ava
            type: map
            ignore_difficult: True
            include_boundaries: True
            presenter: print_scalar
            allow_multiple_matches_per_ignored: True
          - name: map_11point
            type: map
            integral: 11point
            ignore_difficult: true
          - name: map_max_all_boxes
            type: map
            integral: max
            ignore_difficult: false
          - name: map_11point_at_0.3
            type: map
            integral: 11point
            overlap_threshold: 0.3
            include_boundaries: false
"""
# as yolo-v2-tiny-ava-0001: the boxes filtered and suppressed in the grid's frame, then scaled
V2_YML = """models:
  - name: tiny-yolo-v2
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v2
          anchors: tiny_yolo_v2
    datasets:
      - name: VOC2012_without_background
        preprocessing:
          - type: resize
            size: 416
            interpolation: LINEAR
        postprocessing:
          - type: filter
            apply_to: prediction
            min_confidence: 0.01
            remove_filtered: True
          - type: nms
            overlap: 0.5
            include_boundaries: False
          - type: resize_prediction_boxes
          - type: clip_boxes
            apply_to: prediction
""" + MAPS
# as yolo-v3-tiny-tf (two grids, anchor masks), on VOC's classes: scaled first, then filtered
V3_YML = """models:
  - name: tiny-yolo-v3
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v3
          anchors: tiny_yolo_v3
          num: 3
          coords: 4
          classes: 20
          threshold: 0.001
          anchor_masks: [[3, 4, 5], [0, 1, 2]]
          outputs:
            - yolo_13
            - yolo_26
    datasets:
      - name: VOC2012_without_background
        preprocessing:
          - type: resize
            size: 416
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            apply_to: prediction
            min_confidence: 0.001
            remove_filtered: True
          - type: nms
            overlap: 0.5
          - type: clip_boxes
            apply_to: prediction
""" + MAPS
CASES = {"tiny-yolo-v2": (V2_YML, vocset.yolo_v2_ir), "tiny-yolo-v3": (V3_YML, vocset.yolo_v3_ir)}
PICTURES = 10


@functools.cache
def yolo_zoo() -> dict:
    """zoo (both models), ir/public/NAME/FP32, a VOC folder annotated from both networks' boxes."""
    root = _workdir() / "yolo"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (yml, build) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="detection").parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        xmls[name] = build(ir / "public" / name / "FP32" / f"{name}.xml", seed=len(name))
    detectors = [vocset.detector(xmls[name], ymls[name], name) for name in CASES]
    voc = vocset.write_voc_folder(root / "voc", vocset.pictures(PICTURES, seed=26), detectors, seed=26)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "voc": voc, "root": root / "voc"}


def measure(case: dict, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--all", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    records = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record
    return records


def test_yolo_v2_and_v3_maps_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """Both networks, every map variant, equal to the peer within 0.1 points; the data set given
    as the VOC year folder and as VOCdevkit's parent."""
    case = yolo_zoo()
    ours = measure(case, tmp_path / "r.json", "--dataset", case["voc"])
    again = measure(case, tmp_path / "r2.json", "--dataset", case["root"])
    assert {m: {k: r["value"] for k, r in v.items()} for m, v in again.items()} == \
        {m: {k: r["value"] for k, r in v.items()} for m, v in ours.items()}
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], case["voc"] / "JPEGImages",
                          voc_conversion(case["voc"]), name) for name in CASES]
    theirs, _, out = run_peer_many(peer_accuracy_check, entries)
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]) == {"map_ava", "map_11point", "map_max_all_boxes",
                                                         "map_11point_at_0.3"}
        for metric, record in ours[name].items():
            assert record["images"] == PICTURES
            assert 0.05 < record["value"] < 0.95, (name, record)  # a number that can move
            assert abs(100 * record["value"] - 100 * theirs[name][metric]) <= 0.1, (name, metric, record, theirs)
        # the options move the number: difficult boxes, the threshold and the integral count
        assert len({round(r["value"], 6) for r in ours[name].values()}) >= 3, ours[name]


def _independent_map(truth, found, labels, integral, threshold, ignore_difficult, multiple_per_ignored, boundary):
    """The checker's map, written again in plain Python loops over dictionaries."""
    aps = []
    for label in labels:
        rows = sorted(((float(s), p, tuple(b)) for p, dets in enumerate(found)
                       for l, s, b in zip(dets.labels, dets.scores, dets.boxes) if l == label), key=lambda r: -r[0])
        if not rows:
            continue
        gts = {p: [(tuple(b), bool(d) and ignore_difficult) for l, b, d in zip(t.labels, t.boxes, t.difficult)
                   if l == label] for p, t in enumerate(truth)}
        used = {p: [False] * len(g) for p, g in gts.items()}
        positives = sum(1 for g in gts.values() for _, hard in g if not hard)

        def overlap(a, b, union=True):
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) + boundary
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1])) + boundary
            area = lambda x: (x[2] - x[0] + boundary) * (x[3] - x[1] + boundary)  # noqa: E731
            base = area(a) + area(b) - w * h if union else area(a)
            return w * h / base if base else 0.0

        tp, fp = [], []
        for _, picture, box in rows:
            g = gts[picture]
            if not g:
                tp.append(0), fp.append(1)
                continue
            ious = [overlap(box, b, not (hard and multiple_per_ignored)) for b, hard in g]
            easy = [v for v, (_, hard) in zip(ious, g) if not hard]
            best = max(easy) if easy else -1.0
            if best < threshold and len(easy) < len(g):
                best = max(v for v, (_, hard) in zip(ious, g) if hard)
            hits = [k for k, v in enumerate(ious) if v == best]
            if best < threshold:
                tp.append(0), fp.append(1)
            elif not any(g[k][1] for k in hits):
                fresh = not any(used[picture][k] for k in hits)
                tp.append(int(fresh)), fp.append(int(not fresh))
                for k in hits:
                    used[picture][k] = used[picture][k] or fresh
            else:
                repeat = any(used[picture][k] for k in hits) and not multiple_per_ignored
                tp.append(0), fp.append(int(repeat))
                if not multiple_per_ignored:
                    for k in hits:
                        used[picture][k] = True
        ctp, cfp, precision, recall = 0, 0, [], []
        for t, f in zip(tp, fp):
            ctp, cfp = ctp + t, cfp + f
            precision.append(ctp / max(ctp + cfp, np.finfo(float).eps))
            recall.append(ctp / max(positives, np.finfo(float).eps))
        if integral == "11point":
            ap = sum(max([p for p, r in zip(precision, recall) if r >= point], default=0.0) / 11
                     for point in np.arange(0.0, 1.1, 0.1))
        else:
            r_points, p_points = [0.0] + recall + [1.0], [0.0] + precision + [0.0]
            for k in range(len(p_points) - 2, -1, -1):
                p_points[k] = max(p_points[k], p_points[k + 1])
            ap = sum((r_points[k + 1] - r_points[k]) * p_points[k + 1] for k in range(len(r_points) - 1)
                     if r_points[k + 1] != r_points[k])
        aps.append(ap)
    return sum(aps) / len(aps) if aps else 0.0


@pytest.mark.parametrize("integral", ["11point", "max"])
def test_map_equals_an_independent_computation_on_synthetic_boxes(integral):
    from modelzoo.accuracy.adapter import Detections
    from modelzoo.accuracy.dataset import GroundTruth
    from modelzoo.accuracy.metric import voc_map

    rng = np.random.default_rng(11)
    truth, found = [], []
    for _ in range(40):
        n = int(rng.integers(0, 7))
        corner = rng.uniform(0, 300, (n, 2))
        boxes = np.c_[corner, corner + rng.uniform(5, 120, (n, 2))]
        labels = rng.integers(0, 5, n)
        truth.append(GroundTruth(boxes, labels, np.zeros(n, dtype=int), rng.random(n) < 0.25))
        m = int(rng.integers(0, 12))
        near = boxes[rng.integers(0, n, m)] + rng.normal(0, 12, (m, 4)) if n else np.zeros((0, 4))
        far = rng.uniform(0, 300, (m, 2))
        pick = rng.random(m) < 0.7
        dets = np.where(pick[:, None], near, np.c_[far, far + 40]) if n else np.c_[far, far + 40]
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2] + 1)
        dlabels = np.where(rng.random(m) < 0.8, labels[rng.integers(0, n, m)] if n else 0, rng.integers(0, 6, m))
        found.append(Detections(dlabels.astype(int), rng.random(m), dets))
    for threshold, ignore, multiple, boundary in ((0.5, True, True, 1.0), (0.5, True, False, 1.0),
                                                  (0.3, False, False, 0.0), (0.7, True, False, 0.0)):
        ours = voc_map(truth, found, list(range(6)), integral, threshold, ignore, bool(boundary), multiple)
        expected = _independent_map(truth, found, range(6), integral, threshold, ignore, multiple, boundary)
        assert abs(ours - expected) <= 1e-9, (threshold, ignore, multiple, boundary, ours, expected)
        assert 0 < ours < 1


@pytest.mark.parametrize("problem,needle", [
    ("parse", "not a Pascal VOC annotation: XML does not parse"),
    ("outside", "not a Pascal VOC annotation: object 1: box (1, 1, 9999, 20) is outside the"),
    ("class", "not a Pascal VOC annotation: object 1: class 'unicorn' is not one of VOC's 20"),
])
def test_bad_voc_annotation_is_one_line_naming_the_file(problem, needle, tmp_path):
    case = yolo_zoo()
    voc = tmp_path / "VOC2012"
    shutil.copytree(case["voc"], voc)
    xml = voc / "Annotations" / "2012_000003.xml"
    text = xml.read_text()
    if problem == "parse":
        text = text.replace("</annotation>", "</annotaton>")
    else:
        start = text.index("<object>")
        obj = ("<object><name>person</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
               "<xmax>9999</xmax><ymax>20</ymax></bndbox></object>")
        if problem == "class":
            obj = obj.replace("person", "unicorn").replace("9999", "5")
        text = text[:start] + obj + text[start:]
    xml.write_text(text)
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-yolo-v2", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", voc, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(xml) in line and needle in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_the_quantizer_on_yolo_keeps_max_drop(tmp_path):
    """modelzoo-quantizer on the tiny YOLO v2 IR, calibrated and validated on the VOC folder through
    the accuracy tool's pipeline: INT8 inside, the region layer left in float, and --max_drop held
    as the accuracy tool measures FP32 and INT8 (no assumption about the drop's value)."""
    import openvino as ov

    from modelzoo.accuracy.evaluate import is_int8

    case, name = yolo_zoo(), "tiny-yolo-v2"
    out = tmp_path / "out"
    result = run_tool("quantizer", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"], "-o", out,
                      "--dataset", case["voc"], "--max_drop", "0.01", timeout=900)
    assert result.returncode == 0, result.stderr
    int8 = out / "public" / name / "FP16-INT8"
    model = ov.Core().read_model(str(int8 / f"{name}.xml"))
    assert is_int8(model)
    region = next(op for op in model.get_ops() if op.get_type_name() == "RegionYolo")
    assert region.input_value(0).get_node().get_type_name() != "FakeQuantize"  # the boxes' arithmetic in float
    values = {}
    for ir, precision in ((case["ir"], "FP32"), (out, "FP16-INT8")):
        measured = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", name, "--ir_dir", ir,
                            "--precisions", precision, "--dataset", case["voc"], "--json", tmp_path / "r.json")
        assert measured.returncode == 0, measured.stderr
        values[precision] = next(r["value"] for r in json.loads((tmp_path / "r.json").read_text())
                                 if r["metric"] == "map_ava")
    record = json.loads((int8 / "quantization.json").read_text())
    assert record["accuracy"]["metric"] == "map_ava"
    assert values["FP32"] - values["FP16-INT8"] <= 0.01
    assert abs(record["accuracy"]["drop"] - (values["FP32"] - values["FP16-INT8"])) < 1e-9


# as yolo-v3-tf on COCO: VOC's map and the checker's coco_precision at IoU 0.5 and .5:.95
COCO_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v3
          anchors: tiny_yolo_v3
          classes: {classes}
          anchor_masks: [[3, 4, 5], [0, 1, 2]]
          outputs: [yolo_13, yolo_26]
    datasets:
      - name: {dataset}
        preprocessing:
          - type: resize
            size: 416
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            apply_to: prediction
            min_confidence: 0.001
            remove_filtered: True
          - type: nms
            overlap: 0.5
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
# as yolox-tiny: fitted and padded, boxes in the network's pixels scaled back (rescale), nms at 0.65
YOLOX_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: yolox
    datasets:
      - name: {dataset}
        preprocessing:
          - type: resize
            aspect_ratio_scale: fit_to_window
            size: 416
          - type: padding
            pad_type: right_bottom
            pad_value: '114, 114, 114'
        postprocessing:
          - type: resize_prediction_boxes
            rescale: True
          - type: nms
            overlap: 0.65
          - type: clip_boxes
            apply_to: prediction
""" + COCO_YML.split("        metrics:\n", 1)[1].join(["        metrics:\n", ""])
# the 80 classes by position, and COCO's ids as labels (the checker's use_full_label_map)
COCO_CASES = {"yolo-coco-80": ("ms_coco_detection_80_class_without_background", 80),
              "yolo-coco-91": ("ms_coco_detection_91_classes", 91),
              "yolox-coco-80": ("ms_coco_detection_80_class_without_background", 80)}


@functools.cache
def coco_zoo() -> dict:
    """Both COCO configurations, their IRs, and a COCO-format folder annotated from both."""
    from modelzoo.devtools.cocoset import categories, write_coco_folder

    root = _workdir() / "yolo-coco"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (dataset, classes) in COCO_CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="detection").parent
        template, build = (YOLOX_YML, vocset.yolox_ir) if name.startswith("yolox") else (COCO_YML, None)
        (folder / "accuracy-check.yml").write_text(template.format(name=name, dataset=dataset, classes=classes))
        ymls[name] = folder / "accuracy-check.yml"
        xml = ir / "public" / name / "FP32" / f"{name}.xml"
        xmls[name] = build(xml, classes) if build else vocset.yolo_v3_ir(xml, seed=classes, classes=classes)
    index_of_id = {c["id"]: i for i, c in enumerate(categories())}
    detectors = []
    for name in COCO_CASES:  # rows [category index, score, x1, y1, x2, y2], as cocoset's ground truth takes them
        detect = vocset.detector(xmls[name], ymls[name], name)
        to_index = (lambda label: index_of_id.get(int(label))) if name.endswith("91") else int
        detectors.append(lambda picture, detect=detect, to_index=to_index: np.array(
            [[to_index(label), score, *box] for label, score, box in zip(*detect(picture))
             if to_index(label) is not None], dtype=np.float64).reshape(-1, 6))
    turn = itertools.count()  # the pictures annotated from each network in turn
    data = write_coco_folder(root / "coco", vocset.pictures(PICTURES, seed=91),
                             lambda picture: detectors[next(turn) % len(detectors)](picture), seed=91)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "data": data}


def test_yolo_on_coco_with_positions_and_full_label_map_equals_accuracy_check(peer_accuracy_check, tmp_path):
    """map and coco_precision at IoU 0.5 and .5:.95 on a COCO folder, the 80 classes by their
    position and the 91 by COCO's ids, and YOLOX's layout with boxes rescaled from the padded
    input: equal to the peer within 0.1 points."""
    case = coco_zoo()
    ours = measure(case, tmp_path / "r.json", "--dataset", case["data"])
    data = case["data"]
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], data / "val2017",
                          {"annotation_file": str(data / "annotations/instances_val2017.json")}, name)
               for name in COCO_CASES]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries)
    for name in COCO_CASES:
        assert set(ours[name]) == set(theirs[name]) == {"map", "AP@0.5", "AP@0.5:0.05:95"}
        for metric, record in ours[name].items():
            assert 0.001 < record["value"] < 0.95, (name, record)  # a number that can move
            assert abs(100 * record["value"] - 100 * theirs[name][metric]) <= 0.1, (name, metric, record, theirs)


def test_a_launcher_input_of_a_type_not_implemented_is_said_no(tmp_path):
    """A recurrent state (LSTM_INPUT) is not implemented, so --list_supported says no from the yml;
    the picture's size (ORIG_IMAGE_INFO, yolo-v3-onnx's) is (tests/quantize/test_accuracy_inputs.py),
    and the picture's own INPUT entry is read from the IR and accepted."""
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.accuracy.support import unsupported

    yml = tmp_path / "accuracy-check.yml"
    image_info = "        inputs:\n          - name: image_shape\n            type: ORIG_IMAGE_INFO\n"
    yml.write_text(V3_YML.replace("    datasets:\n", image_info.replace("ORIG_IMAGE_INFO", "LSTM_INPUT")
                                  + "    datasets:\n", 1))
    assert unsupported(yml, "tiny-yolo-v3") == ("launchers[].inputs[0]: 'LSTM_INPUT' is not implemented by "
                                                "modelzoo-accuracy")
    yml.write_text(V3_YML.replace("    datasets:\n", image_info + "    datasets:\n", 1))
    assert unsupported(yml, "tiny-yolo-v3") is None
    yml.write_text(V3_YML.replace("    datasets:\n", image_info.replace("image_shape", "image").replace(
        "ORIG_IMAGE_INFO", "INPUT") + "    datasets:\n", 1))
    config = load_accuracy_config(yml, "tiny-yolo-v3")
    assert config.adapter == "yolo_v3" and config.picture_input == "image" and config.inputs == ()
