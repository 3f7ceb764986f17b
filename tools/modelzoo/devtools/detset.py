"""Detection data sets in the formats of Open Model Zoo's own (Intel's) detection sets, made here
(no download), and a small SSD-shaped IR built with OpenVINO's Python API, for proving those
data set definitions against Open Model Zoo's accuracy_check:

- COCO-format files as the `crossroad_extra_untagged*` and `person_detection` definitions name
  them (a few categories with ids that are not their positions);
- CVAT's "for images" XML (`<annotations>` with `<meta><task><size>` and the task's labels,
  one `<image>` per picture with its `<box>`es, some occluded) and labels files
  (`{"labels": {name: id}}`), as the `cvat_object_detection` definitions read them.

The network's weights are random, so the annotations are made from its own detections (moved,
relabelled, some occluded, a few it did not find), as devtools/vocset.py does for VOC.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .vocset import Detector, pictures  # noqa: F401 (the same pictures: several sizes and aspect ratios)

SIDE = 256
CELLS = 8  # the prior grid: 8x8 cells of 32 pixels, two priors each


def ssd_ir(xml: Path, classes: int, background: bool, seed: int = 0) -> Path:
    """A [1,3,256,256] network ending in DetectionOutput as SSD has it: box offsets and class
    scores from 32x32 average pooling and 1x1 convolutions over fixed priors (two sizes per
    cell); its output [1, 1, 100, 7]. With ``background`` the class 0 is the background (labels
    1..classes), else every label 0..classes-1 is a class."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    total = classes + 1 if background else classes
    picture = ops.parameter([1, 3, SIDE, SIDE], np.float32, name="image")
    pooled = ops.avg_pool(picture, [SIDE // CELLS] * 2, [0, 0], [0, 0], [SIDE // CELLS] * 2, exclude_pad=True)

    def head(channels: int, spread: float, bias: float):
        weights = rng.normal(0, spread, (channels, 3, 1, 1)).astype(np.float32)
        shift = rng.normal(0, bias, (1, channels, 1, 1)).astype(np.float32)
        conv = ops.add(ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1]),
                       ops.constant(shift))
        flat = ops.transpose(conv, ops.constant(np.array([0, 2, 3, 1], dtype=np.int64)))
        return ops.reshape(flat, ops.constant(np.array([1, -1], dtype=np.int64)), False)

    boxes = head(2 * 4, 0.002, 0.3)
    scores = ops.softmax(ops.reshape(head(2 * total, 0.01, 0.6), ops.constant(np.array([1, -1, total])), False), 2)
    scores = ops.reshape(scores, ops.constant(np.array([1, -1], dtype=np.int64)), False)
    priors = []
    for y in range(CELLS):
        for x in range(CELLS):
            cx, cy = (x + 0.5) / CELLS, (y + 0.5) / CELLS
            for w, h in ((0.2, 0.3), (0.45, 0.35)):
                priors.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    proposals = np.stack([np.array(priors, dtype=np.float32).reshape(-1),
                          np.tile(np.array([0.1, 0.1, 0.2, 0.2], dtype=np.float32), len(priors))])[None]
    attrs = {"background_label_id": 0 if background else -1, "top_k": 200, "keep_top_k": [100],
             "code_type": "caffe.PriorBoxParameter.CENTER_SIZE", "share_location": True, "nms_threshold": 0.45,
             "confidence_threshold": 0.02, "variance_encoded_in_target": False, "normalized": True,
             "clip_before_nms": False, "clip_after_nms": False, "decrease_label_id": False}
    out = ops.detection_output(boxes, scores, ops.constant(proposals), attrs)
    out.output(0).get_tensor().set_names({"detection_out"})
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([out], [picture], "ssd"), str(xml), compress_to_fp16=False)
    return xml


def truth_from(detections: tuple[np.ndarray, np.ndarray, np.ndarray], height: int, width: int, classes: int,
               rng: np.random.Generator) -> list[tuple[int, list[float], bool]]:
    """A picture's boxes from a detector's: (class 0..classes-1, [x0, y0, x1, y1] in pixels,
    occluded). The best ones kept, some moved, one relabelled, some occluded; one not found."""
    labels, scores, boxes = detections
    objects = []
    for k, index in enumerate(np.argsort(-scores)[:7]):
        box = boxes[index].copy()
        label = int(labels[index]) % classes
        if k % 3 == 1:
            bw, bh = box[2] - box[0], box[3] - box[1]
            box = box + rng.uniform(-0.25, 0.25, 4) * np.array([bw, bh, bw, bh])
        if k == 4:
            label = (label + 1) % classes
        objects.append((label, box, k % 4 == 2))
    w, h = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    objects.append((int(rng.integers(classes)), np.array([x, y, x + w, y + h]), False))
    result = []
    for label, box, occluded in objects:
        x0, x1 = sorted(np.clip(np.round(box[[0, 2]], 2), 0, width))
        y0, y1 = sorted(np.clip(np.round(box[[1, 3]], 2), 0, height))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            result.append((label, [float(x0), float(y0), float(x1), float(y1)], occluded))
    return result


def write_coco(images: Path, annotations: Path, pictures_: list[np.ndarray], detector: Detector,
               categories: list[tuple[int, str]], seed: int = 0) -> Path:
    """``images``/<n>.png and a COCO detection file naming them, its categories (id, name) in
    that order; each picture's boxes from ``detector`` (labels as positions among the
    categories). Returns the annotation file."""
    import cv2

    rng = np.random.default_rng(seed)
    images.mkdir(parents=True, exist_ok=True)
    annotations.parent.mkdir(parents=True, exist_ok=True)
    doc: dict = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for i, n in categories]}
    for number, picture in enumerate(pictures_, start=1):
        name = f"{number:06d}.png"
        cv2.imwrite(str(images / name), picture)
        height, width = picture.shape[:2]
        doc["images"].append({"id": 100 - number, "file_name": name, "width": width, "height": height})
        for label, (x0, y0, x1, y1), crowd in truth_from(detector(picture), height, width, len(categories), rng):
            bbox = [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)]
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": 100 - number,
                                       "category_id": categories[label][0], "bbox": bbox, "iscrowd": 0,
                                       "area": round(bbox[2] * bbox[3], 2),
                                       "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
    annotations.write_text(json.dumps(doc))
    return annotations


def cvat_xml(labels: list[str], images: list[tuple[str, int, int, list[tuple[str, list[float], bool]]]]) -> str:
    """CVAT's "for images" XML (1.1): the task's labels, each picture (name, width, height) with
    its boxes (label, [x0, y0, x1, y1], occluded)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n'
             f'    <task>\n      <id>3637</id>\n      <name>synthetic</name>\n      <size>{len(images)}</size>\n'
             '      <mode>annotation</mode>\n      <labels>\n']
    for name in labels:
        parts.append(f"        <label>\n          <name>{name}</name>\n          <attributes>\n"
                     "          </attributes>\n        </label>\n")
    parts.append("      </labels>\n    </task>\n  </meta>\n")
    for number, (name, width, height, boxes) in enumerate(images):
        parts.append(f'  <image id="{number}" name="frames/{name}" width="{width}" height="{height}">\n')
        for label, (x0, y0, x1, y1), occluded in boxes:
            parts.append(f'    <box label="{label}" occluded="{int(occluded)}" source="manual" xtl="{x0:.2f}" '
                         f'ytl="{y0:.2f}" xbr="{x1:.2f}" ybr="{y1:.2f}" z_order="0">\n    </box>\n')
        parts.append("  </image>\n")
    parts.append("</annotations>\n")
    return "".join(parts)


def write_cvat(folder: Path, xml_name: str, pictures_: list[np.ndarray], detectors: list[Detector],
               labels: list[str], seed: int = 0) -> Path:
    """``folder``/<n>.png and ``folder``/``xml_name`` annotating them: each picture's boxes from
    one of ``detectors`` in turn (a detector's label k is ``labels[k % len(labels)]``). Returns
    the XML."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for number, picture in enumerate(pictures_):
        name = f"frame_{number:04d}.png"
        cv2.imwrite(str(folder / name), picture)
        height, width = picture.shape[:2]
        boxes = truth_from(detectors[number % len(detectors)](picture), height, width, len(labels), rng)
        entries.append((name, width, height, [(labels[label], box, occluded) for label, box, occluded in boxes]))
    path = folder / xml_name
    path.write_text(cvat_xml(labels, entries))
    return path


def yolo_v2_ir(xml: Path, classes: int, anchors: tuple[float, ...], favoured: int, seed: int = 0) -> Path:
    """A [1,3,416,416] network ending in RegionYolo as YOLO v2 has it (5 anchors, softmax over
    ``classes``), its class ``favoured`` made likelier (a barrier model finds vehicles): 1x1
    convolutions over 32x32 average pooling, the output [1, 5 * (5 + classes) * 13 * 13]."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    side, channels = 416, 5 * (5 + classes)
    picture = ops.parameter([1, 3, side, side], np.float32, name="image")
    pooled = ops.avg_pool(picture, [32, 32], [0, 0], [0, 0], [32, 32], exclude_pad=True)
    weights = rng.normal(0, 0.004, (channels, 3, 1, 1)).astype(np.float32)
    bias = rng.normal(0, 0.6, (1, channels, 1, 1)).astype(np.float32)
    for anchor in range(5):
        bias[0, anchor * (5 + classes) + 5 + favoured] += 4.0
    head = ops.add(ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1]),
                   ops.constant(bias))
    region = ops.region_yolo(head, 4, classes, 5, True, [], 1, 3, list(anchors))
    region.output(0).get_tensor().set_names({"region"})
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([region], [picture], "yolo-v2"), str(xml), compress_to_fp16=False)
    return xml
