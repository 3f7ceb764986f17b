"""The COCO metrics against pycocotools' COCOeval called directly, on synthetic ground truth and
detections: several classes, a class without ground truth, crowd boxes, images without
detections, and more than 100 detections in one image."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from modelzoo.accuracy.adapter import Detections
from modelzoo.accuracy.dataset import GroundTruth
from modelzoo.accuracy.metric import coco_orig_precision, coco_precision

CATEGORIES = [{"id": 3, "name": "car"}, {"id": 7, "name": "train"}, {"id": 18, "name": "dog"},
              {"id": 90, "name": "toothbrush"}]  # toothbrush: no ground truth anywhere


def synthetic(seed: int) -> tuple[dict, list[dict]]:
    """A COCO document and COCO results: label = a category's position."""
    rng = np.random.default_rng(seed)
    doc = {"images": [], "annotations": [], "categories": CATEGORIES}
    results = []
    for image_id in range(1, 9):
        width, height = int(rng.integers(200, 700)), int(rng.integers(200, 700))
        doc["images"].append({"id": image_id, "file_name": f"{image_id}.png", "width": width, "height": height})
        boxes = []
        for _ in range(int(rng.integers(0, 9))):
            w, h = rng.uniform(8, width / 2), rng.uniform(8, height / 2)
            box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), float(w), float(h)]
            cat = CATEGORIES[int(rng.integers(0, 3))]["id"]
            crowd = int(rng.random() < 0.15)
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": image_id,
                                       "category_id": cat, "bbox": box, "area": box[2] * box[3] * 0.8,
                                       "iscrowd": crowd})
            boxes.append((cat, box))
        if image_id == 3:
            continue  # an image without detections
        count = 150 if image_id == 5 else int(rng.integers(1, 30))  # more than 100 in one image
        for _ in range(count):
            if boxes and rng.random() < 0.6:
                cat, (x, y, w, h) = boxes[int(rng.integers(0, len(boxes)))]
                box = [x + rng.normal(0, w * 0.1), y + rng.normal(0, h * 0.1), w * rng.uniform(0.8, 1.2),
                       h * rng.uniform(0.8, 1.2)]
                if rng.random() < 0.2:
                    cat = CATEGORIES[int(rng.integers(0, 4))]["id"]
            else:
                w, h = rng.uniform(5, width / 2), rng.uniform(5, height / 2)
                box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
                cat = CATEGORIES[int(rng.integers(0, 4))]["id"]
            results.append({"image_id": image_id, "category_id": cat, "bbox": [float(v) for v in box],
                            "score": float(rng.uniform(0.05, 1))})
    return doc, results


def cocoeval(doc: dict, results: list[dict], max_dets: list[int] | None = None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        if max_dets:
            evaluator.params.maxDets = max_dets
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def ours(doc: dict, results: list[dict]) -> dict[int, Detections]:
    label = {c["id"]: i for i, c in enumerate(doc["categories"])}
    detections = {}
    for im in doc["images"]:
        mine = [r for r in results if r["image_id"] == im["id"]]
        boxes = np.array([[r["bbox"][0], r["bbox"][1], r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3]]
                          for r in mine]).reshape(-1, 4)
        detections[im["id"]] = Detections(np.array([label[r["category_id"]] for r in mine], dtype=int),
                                          np.array([r["score"] for r in mine]), boxes)
    return detections


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_orig_precision_is_cocoevals_ap(seed):
    doc, results = synthetic(seed)
    assert any(a["iscrowd"] for a in doc["annotations"])
    assert sum(r["image_id"] == 5 for r in results) > 100
    expected = cocoeval(doc, results).stats[0]
    value = coco_orig_precision(doc, [im["id"] for im in doc["images"]], ours(doc, results), label_offset=0)
    assert 0.01 < expected < 0.95
    assert abs(value - expected) <= 1e-9


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_orig_precision_on_a_subset_and_with_a_background_label(seed):
    doc, results = synthetic(seed)
    ids = [1, 2, 3, 5]
    sub = {"images": [im for im in doc["images"] if im["id"] in ids], "categories": doc["categories"],
           "annotations": [a for a in doc["annotations"] if a["image_id"] in ids]}
    expected = cocoeval(sub, [r for r in results if r["image_id"] in ids]).stats[0]
    shifted = {i: Detections(d.labels + 1, d.scores, d.boxes) for i, d in ours(doc, results).items()}
    shifted[1] = Detections(np.append(shifted[1].labels, 0), np.append(shifted[1].scores, 0.99),
                            np.vstack([shifted[1].boxes, [0, 0, 50, 50]]))  # a background row is no class
    assert abs(coco_orig_precision(doc, ids, shifted, label_offset=1) - expected) <= 1e-9


def test_coco_orig_precision_counts_the_last_pixel_as_the_checker_does():
    doc, results = synthetic(0)
    wider = [dict(r, bbox=[r["bbox"][0], r["bbox"][1], r["bbox"][2] + 1, r["bbox"][3] + 1]) for r in results]
    expected = cocoeval(doc, wider).stats[0]
    value = coco_orig_precision(doc, [im["id"] for im in doc["images"]], ours(doc, results), label_offset=0,
                                include_boundaries=True)
    assert abs(value - expected) <= 1e-9 and abs(value - cocoeval(doc, results).stats[0]) > 1e-4


def truth(doc: dict) -> dict[int, GroundTruth]:
    label = {c["id"]: i for i, c in enumerate(doc["categories"])}
    out = {}
    for im in doc["images"]:
        anns = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
        out[im["id"]] = GroundTruth(
            np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                      for a in anns]).reshape(-1, 4),
            np.array([label[a["category_id"]] for a in anns], dtype=int),
            np.array([a["iscrowd"] for a in anns], dtype=int))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_coco_precision_is_cocoeval_with_the_checkers_limits(seed):
    """Without crowd boxes, and with at most one detection per image and class near each ground
    truth box (so the checker's re-matching of a box its best detection matched cannot
    happen), the checker's coco_precision is COCOeval's AP with maxDets 20."""
    doc, results = synthetic(seed)
    doc["annotations"] = [a for a in doc["annotations"] if not a["iscrowd"]]
    for a in doc["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    kept, seen = [], set()
    for r in sorted(results, key=lambda r: -r["score"]):
        key = (r["image_id"], r["category_id"])
        if key not in seen:
            seen.add(key)
            kept.append(r)
    expected = cocoeval(doc, kept, max_dets=[1, 10, 20])
    precision = expected.eval["precision"][:, :, :, 0, 2]
    value = coco_precision(truth(doc), ours(doc, kept), labels=[0, 1, 2, 3], max_detections=20)
    assert abs(value - float(np.mean(precision[precision > -1]))) <= 1e-9


def test_coco_precision_counts_the_checkers_rematch():
    """accuracy_check's matching forgets the match of an image's best detection in a class, so a
    second detection on the same box is a true positive there (COCO counts it as a false one)."""
    boxes = np.array([[10.0, 10, 110, 110], [10.0, 10, 110, 110], [200.0, 200, 260, 280]])
    gt = {1: GroundTruth(boxes[[0, 2]], np.array([0, 0]), np.array([0, 0]))}
    dets = {1: Detections(np.array([0, 0, 0]), np.array([0.9, 0.8, 0.7]), boxes)}
    assert coco_precision(gt, dets, labels=[0]) == pytest.approx(1.0)
    doc = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1.0,
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                           for i, b in enumerate(boxes[[0, 2]])]}
    results = [{"image_id": 1, "category_id": 1, "score": s,
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
               for s, b in zip((0.9, 0.8, 0.7), boxes)]
    assert cocoeval(doc, results).stats[0] == pytest.approx((51 + 50 * 2 / 3) / 101)
