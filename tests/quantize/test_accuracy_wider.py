"""Face detection on WIDER FACE (issue 26): the `wider` and `wider_without_bkgr` data sets, the
`class_agnostic_detection` adapter, the face configurations' post-processing (clip_boxes and
filter on the annotation, filters that keep what they catch as ignored boxes) and `map`'s
options, through the real command line, against Open Model Zoo's own accuracy_check
(openvino-dev 2023.3.0) on the same IR, pictures and yml (one peer run for every case)."""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import widerset
from modelzoo.devtools.peer_accuracy import peer_entry, run_peer_many, wider_conversion

FACE_POST = """        postprocessing:
          - type: resize_prediction_boxes
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
            allow_multiple_matches_per_ignored: True
            distinct_conf: False
"""
# as face-detection-0205 (class_agnostic_detection, boxes in the input's pixels, scale 1 / 256)
AGNOSTIC_YML = """models:
  - name: tiny-face-agnostic
    launchers:
      - framework: openvino
        adapter:
          type: class_agnostic_detection
          scale: 0.00390625
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            size: 256
""" + FACE_POST
# as face-detection-0200 (ssd, the face labelled 0)
NO_BACKGROUND_YML = AGNOSTIC_YML.replace("tiny-face-agnostic", "tiny-face-ssd-0").replace(
    """        adapter:
          type: class_agnostic_detection
          scale: 0.00390625""", "        adapter: ssd").replace("name: wider\n", "name: wider_without_bkgr\n")
# as face-detection-retail-0004
RETAIL_YML = """models:
  - name: tiny-face-retail
    launchers:
      - framework: openvino
        adapter: ssd
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            size: 256
        postprocessing:
          - type: resize_prediction_boxes
          - type: cast_to_int
          - type: filter
            apply_to: annotation
            height_range: 60
            is_empty: True
          - type: filter
            min_confidence: 0.0
            apply_to: prediction
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            allow_multiple_matches_per_ignored: False
            distinct_conf: False
"""
# as face-detection-adas-0001 (a picture of another aspect, use_filtered_tp)
ADAS_YML = """models:
  - name: tiny-face-adas
    launchers:
      - framework: openvino
        adapter: ssd
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            dst_width: 320
            dst_height: 192
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            height_range: 100
            apply_to: annotation
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            allow_multiple_matches_per_ignored: True
            use_filtered_tp: True
"""
# as person-detection-0203 (scale [x, y], nms, clipped predictions) with person-detection-asl-0001's
# prediction filter (ignored detections), scored with and without use_filtered_tp
XY_YML = """models:
  - name: tiny-face-agnostic-xy
    launchers:
      - framework: openvino
        adapter:
          type: class_agnostic_detection
          scale: [0.003125, 0.005208333333]
    datasets:
      - name: wider
        preprocessing:
          - type: resize
            dst_width: 320
            dst_height: 192
        postprocessing:
          - type: resize_prediction_boxes
          - type: cast_to_int
          - type: nms
            overlap: 0.6
          - type: clip_boxes
            apply_to: prediction
          - type: filter
            apply_to: annotation
            height_range: 40
            is_empty: True
          - type: filter
            apply_to: prediction
            height_range: 40
            is_empty: True
            aspect_ratio: 0.666, 5
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: True
            allow_multiple_matches_per_ignored: False
            distinct_conf: False
          - type: map
            name: map_filtered_tp
            use_filtered_tp: True
            integral: 11point
"""
# name -> (yml, the IR: ssd's label or None for the class-agnostic layout, input height, width)
CASES = {"tiny-face-agnostic": (AGNOSTIC_YML, None, 256, 256), "tiny-face-ssd-0": (NO_BACKGROUND_YML, 0, 256, 256),
         "tiny-face-retail": (RETAIL_YML, 1, 256, 256), "tiny-face-adas": (ADAS_YML, 1, 192, 320),
         "tiny-face-agnostic-xy": (XY_YML, None, 192, 320)}
PICTURES = 8


@functools.cache
def wider_zoo() -> dict:
    root = _workdir() / "wider"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (yml, label, height, width) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")]).parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        xml = ir / "public" / name / "FP32" / f"{name}.xml"
        xmls[name] = (widerset.class_agnostic_ir(xml, height, width, seed=1) if label is None
                      else widerset.ssd_ir(xml, height, width, label, seed=1))
    detectors = [widerset.detector(xmls[name], ymls[name], name) for name in CASES]
    wider = widerset.write_wider_folder(root / "data", widerset.pictures(PICTURES, seed=5), detectors, seed=5)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "wider": wider}


def measure(case: dict, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--all", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    records: dict = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record["value"]
    return records


def test_face_detection_map_equals_accuracy_check(peer_accuracy_check, tmp_path):
    case = wider_zoo()
    wider = case["wider"]
    ours = measure(case, tmp_path / "r.json", "--dataset", wider)  # (the other forms: test_the_forms_...)
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], wider / widerset.IMAGES,
                          wider_conversion(wider), name) for name in CASES]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries)
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]), (name, ours[name], theirs[name])
        for metric, value in ours[name].items():
            assert 0.02 < value < 0.98, (name, metric, value)  # a number that can move
            assert abs(100 * value - 100 * theirs[name][metric]) <= 0.1, (name, metric, value, theirs[name])


def test_the_filters_change_the_number(tmp_path):
    """The same IR and pictures without the annotation's filters (every tiny, empty or too tall
    face counted) score otherwise: the generated faces reach the filters."""
    case = wider_zoo()
    zoo = tmp_path / "zoo"
    shutil.copytree(case["zoo"] / "public" / "tiny-face-agnostic", zoo / "public" / "tiny-face-agnostic")
    yml = zoo / "public" / "tiny-face-agnostic" / "accuracy-check.yml"
    same = measure(dict(case, zoo=zoo), tmp_path / "a.json", "--dataset", case["wider"])
    yml.write_text(AGNOSTIC_YML.replace(FACE_POST, "") + FACE_POST.replace("""          - type: filter
            apply_to: annotation
            height_range: 64, 1024
            is_empty: True
""", ""))
    unfiltered = measure(dict(case, zoo=zoo), tmp_path / "b.json", "--dataset", case["wider"])
    assert abs(same["tiny-face-agnostic"]["map"] - unfiltered["tiny-face-agnostic"]["map"]) > 0.01


def _independent_map(truth, dets, ignore_pred, use_filtered_tp, multiple) -> float:
    """VOC's AP of one class (max integral), written plainly from the checker's rules."""
    records = sorted(((s, p, b, ig) for p, (scores, boxes, ign) in enumerate(zip(*dets, ignore_pred))
                      for s, b, ig in zip(scores, boxes, ign)), key=lambda r: -r[0])
    used = [np.zeros(len(t[0]), bool) for t in truth]
    tp, fp = [], []
    for _, p, box, ig in records:
        gt, hard = truth[p]
        t = f = 0
        if len(gt) == 0:
            tp.append(0)
            fp.append(1)
            continue
        ov = []
        for g, h in zip(gt, hard):
            iw = max(0.0, min(box[2], g[2]) - max(box[0], g[0]))
            ih = max(0.0, min(box[3], g[3]) - max(box[1], g[1]))
            inter = iw * ih
            own = (box[2] - box[0]) * (box[3] - box[1])
            other = (g[2] - g[0]) * (g[3] - g[1])
            base = own if (h and multiple) else own + other - inter
            ov.append(inter / base if base else 0.0)
        ov = np.array(ov)
        best = ov[~hard].max() if (~hard).any() else -np.inf
        if best < 0.5 and hard.any():
            best = ov[hard].max()
        if best < 0.5:
            f = int(not ig)
        else:
            hit = ov == best
            if not hard[hit].any():
                if used[p][hit].any():
                    f = int(not ig)
                elif use_filtered_tp or not ig:
                    t = 1
                    used[p][hit] = True
            elif not multiple:
                if used[p][hit].any():
                    f = int(not ig)
                used[p][hit] = True
        tp.append(t)
        fp.append(f)
    counted = sum(int((~h).sum()) for _, h in truth)
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall, precision = ctp / counted, ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
    ap, last = 0.0, 0.0
    for k in range(len(recall)):  # the area under the envelope, step by step
        if recall[k] != last:
            ap += (recall[k] - last) * max(precision[k:])
            last = recall[k]
    return ap


@pytest.mark.parametrize("use_filtered_tp", [False, True])
@pytest.mark.parametrize("multiple", [False, True])
def test_map_with_ignored_boxes_equals_numpy_on_synthetic_predictions(use_filtered_tp, multiple):
    from modelzoo.accuracy.adapter import Detections
    from modelzoo.accuracy.dataset import GroundTruth
    from modelzoo.accuracy.metric import voc_map

    rng = np.random.default_rng(11)
    truth, dets, ignored = [], [], []
    for _ in range(12):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 300, (n, 2))
        gt = np.c_[xy, xy + rng.uniform(5, 120, (n, 2))]
        hard = rng.random(n) < 0.3
        m = int(rng.integers(0, 9))
        picks = gt[rng.integers(0, max(n, 1), m)] if n else rng.uniform(0, 300, (m, 4))
        boxes = picks + rng.normal(0, 12, (m, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.random(m)
        ign = rng.random(m) < 0.3
        truth.append((gt, hard))
        dets.append((scores, boxes))
        ignored.append(ign)
    ours = voc_map([GroundTruth(g, np.ones(len(g), int), np.zeros(len(g), int), h) for g, h in truth],
                   [Detections(np.ones(len(s), int), s, b, i) for (s, b), i in zip(dets, ignored)], [1],
                   include_boundaries=False, allow_multiple_matches_per_ignored=multiple,
                   use_filtered_tp=use_filtered_tp)
    theirs = _independent_map(truth, list(zip(*dets)), ignored, use_filtered_tp, multiple)
    assert 0.05 < theirs < 0.95
    assert abs(ours - theirs) <= 1e-9


def test_filter_criteria_equal_numpy():
    from modelzoo.accuracy.postprocessing import caught

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 500, (200, 2))
    boxes = np.c_[xy, xy + rng.integers(0, 150, (200, 2))]
    boxes[::17, 2] = boxes[::17, 0]  # no width
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    scores = rng.random(200)
    assert (caught("height_range", (64.0, 1024.0), boxes, None) == ((h < 64) | (h >= 1024))).all()
    assert (caught("height_range", (100.0,), boxes, None) == (h < 100)).all()
    assert (caught("height_range", (30.0, 0.0), boxes, None) == (h < 30)).all()  # (a high of 0: no bound)
    assert (caught("width_range", (10.0, 90.0), boxes, None) == ((w < 10) | (w >= 90))).all()
    assert (caught("is_empty", True, boxes, None) == ((w <= 0) | (h <= 0))).all()
    ratio = h / np.maximum(w, np.finfo(float).eps)
    assert (caught("aspect_ratio", (0.666, 5.0), boxes, None) == ((ratio < 0.666) | (ratio >= 5))).all()
    assert (caught("min_confidence", 0.4, boxes, scores) == (scores < 0.4)).all()
    assert not caught("min_confidence", 0.4, boxes, None).any()  # (the ground truth has no confidence)


def test_class_agnostic_rows_scale_and_output():
    from modelzoo.accuracy.adapter import Outputs, class_agnostic_detection

    rows = np.array([[10, 20, 30, 60, 0.9], [0, 0, 5, 5, 0.0], [40, 8, 80, 16, 0.2]], np.float32)
    net = Outputs({"labels": np.ones(3), "boxes": rows[None]}, ["labels", "boxes"], (192, 320))
    dets = class_agnostic_detection(net, (1 / 320, 1 / 192) * 2)
    assert (dets.labels == 1).all() and np.allclose(dets.scores, [0.9, 0.2])
    assert np.allclose(dets.boxes, [[10 / 320, 20 / 192, 30 / 320, 60 / 192], [40 / 320, 8 / 192, 80 / 320, 16 / 192]])


def _broken(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A copy of the WIDER folder with one thing wrong, and what the line must say."""
    wider = tmp_path / "wider"
    shutil.copytree(wider_zoo()["wider"], wider)
    gt = wider / widerset.ANNOTATIONS
    lines = gt.read_text().splitlines()
    count_at = 1  # the first picture's count
    first = lines[count_at + 1]
    if case == "malformed":
        lines[count_at + 1] = first.replace(" ", " x", 1)
        return _write(gt, lines), f"{gt}: line {count_at + 2}: not WIDER FACE's bbx_gt format: expected a face"
    if case == "count":
        lines[count_at] = str(int(lines[count_at]) + 1)
        return _write(gt, lines), f"{gt}: line "
    picture = wider / widerset.IMAGES / lines[0]
    picture.unlink()
    return wider, f"{gt}: line 1: names picture {lines[0]!r}, which is not in {wider / widerset.IMAGES}"


def _write(gt: Path, lines: list[str]) -> Path:
    gt.write_text("\n".join(lines) + "\n")
    return gt.parents[1]


@pytest.mark.parametrize("case", ["malformed", "count", "missing"])
def test_bad_wider_data_is_one_line_naming_the_file_and_line(tmp_path, case):
    wider, needle = _broken(tmp_path, case)
    zoo = wider_zoo()
    result = run_tool("accuracy_check", "--models_dir", zoo["zoo"], "--name", "tiny-face-retail", "--ir_dir",
                      zoo["ir"], "--precisions", "FP32", "--dataset", wider, "--json", tmp_path / "r.json")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert needle in line, line
    if case == "count":
        assert "says" in line and "faces" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_a_count_that_runs_past_the_end_is_named(tmp_path):
    from modelzoo.accuracy.dataset import read_wider
    from modelzoo.errors import DatasetError

    gt = tmp_path / "gt.txt"
    gt.write_text("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n1--Handshaking/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n"
                  "2--Demonstration/c.jpg\n3\n5 5 10 10 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"gt.txt: line 4: .*got '1--Handshaking/b.jpg' \('0--Parade/a.jpg' "
                                           r"says 2 faces; 1 follow\)"):
        read_wider(gt)
    gt.write_text("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n6 6 7 7 0 0 0 0 0 0\n1--Handshaking/b.jpg\n0\n"
                  "0 0 0 0 0 0 0 0 0 0\n2--Demonstration/c.jpg\n3\n5 5 10 10 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"gt.txt: line 9: .*'2--Demonstration/c.jpg' says 3 faces; the file "
                                           r"ends after 1"):
        read_wider(gt)
    gt.write_text("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n6 6 7 7 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"line 4: .*a face beyond the count"):
        read_wider(gt)
    gt.write_text("0--Parade/a.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"line 3: .*negative size"):
        read_wider(gt)


@pytest.mark.parametrize("old, new, needle", [
    ("scale: 0.00390625", "scale: [0.1, 0.2, 0.3]", "scale [0.1, 0.2, 0.3] is not implemented (a positive number, "
                                                   "or [x, y])"),
    ("is_empty: True", "is_empty: False", "is_empty False: the checker filters empty boxes whatever the value"),
    ("height_range: 64, 1024", "height_range: tall", "height_range 'tall' is neither a number nor two"),
    ("apply_to: annotation\n            height_range", "apply_to: everything\n            height_range",
     "apply_to 'everything' is not implemented"),
    ("type: map\n", "type: coco_precision\n", "a filter that keeps what it catches as ignored boxes "
                                                "(remove_filtered: false) is implemented for the map metric (and "
                                                "coco_orig_precision, which scores every box), not "
                                                "'coco_precision'"),
    ("            is_empty: True\n", "            is_empty: True\n            remove_filtered: True\n",
     "postprocessing[3] (filter): remove_filtered: true on the annotation is not implemented"),
    ("            is_empty: True\n", "            is_empty: True\n          - type: filter\n            apply_to: "
     "prediction\n            height_range: 40\n          - type: nms\n",
     "postprocessing[5] (nms): removing predictions after a filter marked some ignored is not implemented"),
])
def test_what_the_face_configurations_do_not_say_is_refused_by_name(tmp_path, old, new, needle):
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    assert old in AGNOSTIC_YML
    text = AGNOSTIC_YML.replace(old, new)
    if new.startswith("type: coco_precision"):  # (its options are not map's)
        text = text.split("            ignore_difficult")[0]
    yml.write_text(text)
    with pytest.raises(AccuracyConfigError, match=re.escape(needle)):
        load_accuracy_config(yml, "tiny-face-agnostic")


def test_the_forms_a_wider_folder_is_given_in(tmp_path):
    """--dataset: the folder holding WIDER_val/ and wider_face_split/, or WIDER_val/ itself with
    wider_face_split/ beside it; --images with --annotations; the same pictures and faces each
    time, the kind told by the annotation file (an ImageNet val.txt stays one)."""
    from modelzoo.accuracy.dataset import kind_of, resolve

    wider = wider_zoo()["wider"]
    whole = resolve(wider, None, None, need_annotations=True)
    assert whole.kind == "wider" and len(whole.samples) == PICTURES
    assert sum(len(b.boxes) for b in whole.boxes.values()) > 3 * PICTURES
    assert len(whole.boxes[3].boxes) == 0  # (the picture of no face: its count 0 and a line of zeros)
    for given in ((wider / "WIDER_val", None, None), (None, wider / widerset.IMAGES, wider / widerset.ANNOTATIONS)):
        again = resolve(*given, need_annotations=True)
        assert [s.path for s in again.samples] == [s.path for s in whole.samples]
        assert all((again.boxes[i].boxes == whole.boxes[i].boxes).all() for i in whole.boxes)
    assert kind_of(None, wider / widerset.ANNOTATIONS) == "wider" and kind_of(wider, None) == "wider"
    (tmp_path / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 65\n")
    assert kind_of(None, tmp_path / "val.txt") == "imagenet"
