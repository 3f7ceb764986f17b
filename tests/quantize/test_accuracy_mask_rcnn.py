"""Instance segmentation (issue 26): the `mask_rcnn` adapter in Intel's layout (boxes with the
score, labels, masks [N, h, w] or [N, 1, h, w]) and the Object Detection API's (detection_out
[N, 7] with every class's masks, the dataset definition's resize, padding and box scaling), the
`coco_orig_segm_precision` and `coco_orig_precision` metrics, the ms_coco_mask_rcnn* data sets
(COCO with polygon and RLE masks) and padding with use_numpy, through the real command line,
against Open Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on the same IR, pictures and
yml: one peer run for every case."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import cocoset, maskset
from modelzoo.devtools.peer_accuracy import peer_definitions_by_name, peer_entry, run_peer_many

ADAPTER_INTEL = """        adapter:
          type: mask_rcnn
          classes_out: labels
          boxes_out: boxes
          raw_masks_out: masks
"""
METRICS = """        metrics:
          - name: AP@masks
            type: coco_orig_segm_precision
          - name: AP@boxes
            type: coco_orig_precision
"""
# as instance-segmentation-security-0002: fit_to_window, then padded (NumPy's) to the window
FIT_YML = """models:
  - name: mask-intel-fit
    launchers:
      - framework: openvino
""" + ADAPTER_INTEL + """    datasets:
      - name: ms_coco_mask_rcnn_short_80_classes_without_background
        preprocessing:
          - type: resize
            dst_width: 256
            dst_height: 192
            aspect_ratio_scale: fit_to_window
          - type: padding
            dst_width: 256
            dst_height: 192
            pad_type: right_bottom
            use_numpy: True
""" + METRICS
# as instance-segmentation-security-0228 (a square resize), with a background class and [N, 1, h, w] masks
SQUARE_YML = """models:
  - name: mask-intel-square
    launchers:
      - framework: openvino
""" + ADAPTER_INTEL + """    datasets:
      - name: ms_coco_mask_rcnn_short_80_classes
        preprocessing:
          - type: resize
            size: 160
""" + METRICS
# as mask_rcnn_resnet50_atrous_coco: no steps of its own (the dataset definition's), COCO's ids as labels
OD_API_YML = """models:
  - name: mask-od-api
    launchers:
      - framework: openvino
        adapter:
          type: mask_rcnn
          detection_out: reshape_do_2d
          raw_masks_out: masks
    datasets:
      - name: ms_coco_mask_rcnn_short_91_classes
        metrics:
          - type: coco_orig_segm_precision
          - type: coco_orig_precision
"""
CASES = {
    "mask-intel-fit": (FIT_YML, lambda xml: maskset.intel_ir(xml, 192, 256, seed=1)),
    "mask-intel-square": (SQUARE_YML, lambda xml: maskset.intel_ir(xml, 160, 160, seed=2, mask_axis=True,
                                                                   label_offset=1)),
    "mask-od-api": (OD_API_YML, lambda xml: maskset.od_api_ir(xml, 800, 1365, seed=3)),
}
PICTURES = 8


@functools.cache
def mask_zoo() -> dict:
    """zoo (the three models), ir/public/NAME/FP32, a COCO folder annotated from their instances."""
    root = _workdir() / "mask"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (yml, build) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="instance_segmentation").parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        xmls[name] = build(ir / "public" / name / "FP32" / f"{name}.xml")
    finders = [maskset.finder(xmls[name], ymls[name], name) for name in CASES]
    coco = maskset.write_mask_coco_folder(root / "coco", cocoset.pictures(PICTURES, seed=26), finders, seed=26)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "coco": coco}


def measure(case: dict, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--all", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    records = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record
    return records


def test_mask_rcnn_masks_and_boxes_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """Both layouts, AP@masks and AP@boxes, equal to the peer within 0.1 points."""
    case = mask_zoo()
    ours = measure(case, tmp_path / "r.json", "--dataset", case["coco"])
    definitions = peer_definitions_by_name(peer_accuracy_check)
    entries = []
    for name in CASES:
        steps = {}
        if name == "mask-od-api":  # what the peer adds from its definition to an entry without steps
            definition = definitions["ms_coco_mask_rcnn_short_91_classes"]
            steps = {key: definition[key] for key in ("preprocessing", "postprocessing")}
        entries.append(peer_entry(case["yml"][name], name, case["xml"][name], case["coco"] / "val2017",
                                  {"annotation_file": str(case["coco"] / "annotations/instances_val2017.json")},
                                  name, **steps))
    theirs, _, out = run_peer_many(peer_accuracy_check, entries)
    for name in CASES:
        names = ({"coco_orig_segm_precision", "coco_orig_precision"} if name == "mask-od-api"
                 else {"AP@masks", "AP@boxes"})
        assert set(ours[name]) == set(theirs[name]) == names, (name, ours[name], theirs[name])
        for metric, record in ours[name].items():
            assert record["images"] == PICTURES
            assert 0.03 < record["value"] < 0.97, (name, record)  # a number that can move
            assert abs(100 * record["value"] - 100 * theirs[name][metric]) <= 0.1, (name, metric, record, theirs)
        assert len({round(r["value"], 6) for r in ours[name].values()}) == 2, ours[name]  # masks are not boxes


def test_pasted_mask_equals_an_independent_computation():
    """paste_mask against the same placement written again with plain loops: each picture pixel
    inside the grown box takes the resized mask's pixel, above 0.5."""
    import cv2
    from pycocotools import mask as mask_utils

    from modelzoo.accuracy.adapter import paste_mask

    rng = np.random.default_rng(5)
    filled = 0
    for _ in range(25):
        height, width = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        x0, y0 = rng.uniform(-15, width), rng.uniform(-15, height)
        box = np.array([x0, y0, x0 + rng.uniform(1, 50), y0 + rng.uniform(1, 50)], np.float32)
        raw = rng.random((14, 14)).astype(np.float32)
        ours = mask_utils.decode(paste_mask(box, raw, height, width))
        side = 16 / 14.0
        cx, cy = (float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2
        half_w, half_h = (float(box[2]) - float(box[0])) / 2 * side, (float(box[3]) - float(box[1])) / 2 * side
        gx0, gy0, gx1, gy1 = (int(v) for v in (cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        w, h = max(gx1 - gx0 + 1, 1), max(gy1 - gy0 + 1, 1)
        padded = np.zeros((16, 16), np.float32)
        padded[1:15, 1:15] = raw
        big = cv2.resize(padded, (w, h)) > 0.5
        expected = np.zeros((height, width), np.uint8)
        for y in range(height):
            for x in range(width):
                if gy0 <= y < gy0 + h and gx0 <= x < gx0 + w and y <= gy1 and x <= gx1:
                    expected[y, x] = big[y - gy0, x - gx0]
        assert ours.shape == (height, width)
        assert np.array_equal(ours, expected), (box, np.sum(ours != expected))
        filled += int(expected.any())
    assert filled >= 15  # (most boxes are in the picture: the placement is tested, not an empty mask)


@pytest.mark.parametrize("problem,needle", [
    ("polygon", "annotations[0]: segmentation polygon 0 has 5 numbers"),
    ("nan", "annotations[0]: segmentation polygon 0 is not a list of finite numbers"),
    ("missing", "annotations[0]: no segmentation"),
    ("rle", "annotations[0]: segmentation RLE counts do not cover the"),
    ("size", "images[0]: needs a positive integer width and height"),
    ("far", "annotations[0]: segmentation polygon 0 has a point far outside the"),
    ("string", "annotations[0]: segmentation RLE counts are not COCO's compressed string"),
])
def test_bad_mask_annotation_is_one_line_naming_the_file(problem, needle, tmp_path):
    case = mask_zoo()
    coco = tmp_path / "coco"
    shutil.copytree(case["coco"], coco)
    path = coco / "annotations/instances_val2017.json"
    doc = json.loads(path.read_text())
    first = doc["annotations"][0]
    if problem == "polygon":
        first["segmentation"] = [[1, 2, 3, 4, 5]]
    elif problem == "nan":
        first["segmentation"] = [[1, 2, 3, "x", 5, 6]]
    elif problem == "missing":
        del first["segmentation"]
    elif problem == "rle":
        first["segmentation"] = {"size": [doc["images"][0]["height"], doc["images"][0]["width"]], "counts": [3, 4]}
    elif problem == "far":
        first["segmentation"] = [[1, 2, 3, 4, 1e12, 6]]
    elif problem == "string":
        first["segmentation"] = {"size": [doc["images"][0]["height"], doc["images"][0]["width"]], "counts": "0a"}
    else:
        del doc["images"][0]["height"]
    path.write_text(json.dumps(doc))
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "mask-intel-fit", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", coco, "--json", tmp_path / "r.json")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert str(path) in line and needle in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("row,needle", [
    ([0, 1e30, 0.9, 0.1, 0.1, 0.5, 0.5], "detection_out label 1e+30 has no mask among raw_masks_out's 90 classes"),
    ([0, float("nan"), 0.9, 0.1, 0.1, 0.5, 0.5], "has no mask among raw_masks_out's 90 classes"),
    ([0, 3, 0.9, 0.1, 0.1, 1e7, 1e7], "pixels for a 40x30 picture (more than 64 times its area)"),
    ([0, 3, 0.9, 0.1, float("inf"), 0.5, 0.5], "is not finite numbers"),
])
def test_a_broken_network_output_is_one_error_not_a_traceback(row, needle):
    """What a network gives is not trusted: a label without a mask or a box OpenCV cannot be asked
    to fill is an AccuracyConfigError (one line), not an IndexError or an allocation."""
    from modelzoo.accuracy.adapter import Outputs, mask_rcnn
    from modelzoo.accuracy.preprocessing import Geometry
    from modelzoo.errors import AccuracyConfigError

    geometry = Geometry(30, 40, [("resize", {"scale_x": 2.0, "scale_y": 2.0, "original_width": 40,
                                             "original_height": 30})], 60, 80)
    rows = np.array([row], np.float32)
    net = Outputs({"do": rows, "masks": np.full((1, 90, 14, 14), 0.7, np.float32)}, ["do", "masks"], (60, 80))
    with pytest.raises(AccuracyConfigError) as caught:
        mask_rcnn(net, geometry, detection_out="do", raw_masks_out="masks")
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_shards_merged_give_the_single_runs_masks_and_boxes(tmp_path):
    """--shard K/2 --run_dir records hold the instances' masks (COCO RLE) as well as the boxes:
    --merge scores them to the single run's numbers."""
    case = mask_zoo()
    base = ["--models_dir", case["zoo"], "--name", "mask-od-api", "--ir_dir", case["ir"], "--precisions", "FP32",
            "--dataset", case["coco"]]
    single = measure_args(base, tmp_path / "single.json")
    for k in range(2):
        result = run_tool("accuracy_check", *base, "--shard", f"{k}/2", "--run_dir", tmp_path / "run")
        assert result.returncode == 0, result.stderr
    merged = measure_args(base + ["--merge", tmp_path / "run"], tmp_path / "merged.json")
    assert merged == single and len(single) == 2, (merged, single)


def measure_args(args: list, json_out: Path) -> dict:
    result = run_tool("accuracy_check", *args, "--json", json_out)
    assert result.returncode == 0, result.stderr
    return {r["metric"]: r["value"] for r in json.loads(json_out.read_text())}


def _independent_mask_ap(truth: dict, found: dict) -> float:
    """COCO's AP@[.50:.95] over masks (no crowds), written again with numpy on decoded masks:
    per class, each picture's detections by falling score take the best unmatched annotation at
    an IoU of at least the threshold; precision made monotone, read at 101 recalls."""
    thresholds = np.linspace(0.5, 0.95, 10)
    recalls = np.linspace(0, 1, 101)
    classes = sorted({c for gts in truth.values() for c, _ in gts})
    table = []
    for t in thresholds:
        for c in classes:
            scores, hits, total = [], [], 0
            for image, gts in truth.items():
                g = [m for k, m in gts if k == c]
                d = sorted([(s, m) for k, s, m in found.get(image, []) if k == c], key=lambda x: -x[0])[:100]
                total += len(g)
                used = [False] * len(g)
                for s, m in d:
                    best, pick = min(t, 1 - 1e-10), -1
                    for j, gm in enumerate(g):
                        if used[j]:
                            continue
                        union = np.logical_or(m, gm).sum()
                        iou = np.logical_and(m, gm).sum() / union if union else 0.0
                        if iou >= best:
                            best, pick = iou, j
                    if pick >= 0:
                        used[pick] = True
                    scores.append(s)
                    hits.append(pick >= 0)
            order = np.argsort(-np.array(scores), kind="mergesort")
            tp = np.cumsum(np.array(hits, dtype=float)[order])
            fp = np.cumsum(1 - np.array(hits, dtype=float)[order])
            recall = tp / total
            precision = list(tp / (tp + fp + np.spacing(1)))
            for i in range(len(precision) - 1, 0, -1):
                precision[i - 1] = max(precision[i - 1], precision[i])
            at = np.searchsorted(recall, recalls, side="left")
            table.append(np.mean([precision[i] if i < len(precision) else 0.0 for i in at]))
    return float(np.mean(table))


def test_segm_precision_equals_an_independent_computation_on_synthetic_masks():
    from pycocotools import mask as mask_utils

    from modelzoo.accuracy.adapter import Instances
    from modelzoo.accuracy.metric import coco_orig_precision

    rng = np.random.default_rng(7)
    cats = [{"id": cid, "name": str(cid)} for cid in (1, 3, 7)]
    doc: dict = {"images": [], "annotations": [], "categories": cats}
    truth, found, detections = {}, {}, {}
    for image in range(1, 13):
        height, width = int(rng.integers(30, 60)), int(rng.integers(30, 60))
        doc["images"].append({"id": image, "file_name": f"{image}.png", "height": height, "width": width})
        truth[image], found[image] = [], []
        labels, scores, rles = [], [], []
        for _ in range(int(rng.integers(0, 5))):
            k = int(rng.integers(0, 3))
            x, y = rng.uniform(0, width - 10), rng.uniform(0, height - 10)
            w, h = rng.uniform(6, width - x), rng.uniform(6, height - y)
            polygon = [x, y, x + w, y + rng.uniform(0, h / 2), x + w * 0.8, y + h, x, y + h * 0.7]
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": image,
                                       "category_id": cats[k]["id"], "segmentation": [polygon], "iscrowd": 0,
                                       "area": w * h / 2, "bbox": [x, y, w, h]})
            annotated = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], height, width)))
            truth[image].append((k, annotated.astype(bool)))
            for _ in range(int(rng.integers(0, 3))):  # detections near it (moved), some of another class
                mask = np.roll(annotated, (int(rng.integers(-4, 5)), int(rng.integers(-4, 5))), axis=(0, 1))
                label = k if rng.random() < 0.8 else int(rng.integers(0, 3))
                score = float(rng.random())
                rle = mask_utils.encode(np.asfortranarray(mask))
                rle["counts"] = rle["counts"].decode()
                labels.append(label), scores.append(score), rles.append(rle)
                found[image].append((label, score, mask.astype(bool)))
        detections[image] = Instances(np.array(labels, dtype=int), np.array(scores), np.zeros((len(labels), 4)),
                                      masks=rles)
    ours = coco_orig_precision(doc, sorted(truth), detections, 0, iou_type="segm")
    expected = _independent_mask_ap(truth, found)
    assert abs(ours - expected) <= 1e-9, (ours, expected)
    assert 0.05 < ours < 0.95


def test_compressed_rle_runs_read_as_pycocotools_writes_them():
    """Our reading of COCO's compressed RLE (used to check an annotation before pycocotools'
    decoder sees it) gives the run lengths of the pixels pycocotools encoded."""
    from pycocotools import mask as mask_utils

    from modelzoo.accuracy.dataset import rle_runs

    rng = np.random.default_rng(0)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(1, 80, 2))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8) * int(rng.random() < 0.9)
        pixels = mask.reshape(-1, order="F")
        bounds = np.r_[0, np.flatnonzero(pixels[1:] != pixels[:-1]) + 1, pixels.size]
        expected = ([0] if pixels[0] else []) + np.diff(bounds).tolist()
        assert rle_runs(mask_utils.encode(np.asfortranarray(mask))["counts"].decode()) == expected
    assert rle_runs("0a") is None and rle_runs("\x7f") is None


@pytest.mark.parametrize("adapter,dataset,steps,metric,needle", [
    ("detection_out: do\n          boxes_out: b\n          raw_masks_out: m", "ms_coco_mask_rcnn", "",
     "coco_orig_precision", "give detection_out or classes_out, scores_out, boxes_out, not both"),
    ("boxes_out: b", "ms_coco_mask_rcnn", "", "coco_orig_segm_precision",
     "coco_orig_segm_precision scores masks: the adapter needs raw_masks_out"),
    ("boxes_out: b\n          raw_masks_out: m", "ms_coco_mask_rcnn",
     "        postprocessing:\n          - type: nms\n", "coco_orig_precision",
     "'nms' is not implemented with the 'mask_rcnn' adapter"),
    ("detection_out: do\n          raw_masks_out: m", "ms_coco_mask_rcnn",
     "        preprocessing:\n          - type: resize\n            size: 64\n"
     "          - type: crop\n            size: 60\n",
     "coco_orig_precision", "needs a resize, or a resize then a right_bottom padding"),
    ("boxes_out: b\n          raw_masks_out: m", "ms_coco_mask_rcnn", "", "coco_precision",
     "'coco_precision' does not score the 'mask_rcnn' adapter's instances"),
    ("boxes_out: b\n          raw_masks_out: m", "ms_coco_detection_80_class_without_background", "",
     "coco_orig_segm_precision", "has no instance masks for coco_orig_segm_precision"),
    ("classes_out: l", "ms_coco_mask_rcnn", "", "coco_orig_precision", "needs boxes_out"),
])
def test_a_mask_rcnn_yml_we_cannot_run_is_refused_by_its_entry(adapter, dataset, steps, metric, needle, tmp_path):
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(f"""models:
  - name: m
    launchers:
      - framework: openvino
        adapter:
          type: mask_rcnn
          {adapter}
    datasets:
      - name: {dataset}
{steps}        metrics:
          - type: {metric}
""")
    with pytest.raises(AccuracyConfigError) as caught:
        load_accuracy_config(yml, "m")
    assert needle in str(caught.value) and str(yml) in str(caught.value), str(caught.value)
