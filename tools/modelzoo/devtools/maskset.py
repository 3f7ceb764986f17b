"""Instance segmentation made here (no download): small Mask R-CNN-shaped IR built with
OpenVINO's Python API, in the two output layouts Open Model Zoo's models have, and a COCO folder
whose annotations carry masks (polygons, a compressed RLE crowd, an uncompressed RLE), annotated
from the networks' own instances so that a score can move.

- Intel's layout (instance-segmentation-security-*): boxes [N, 5] (x_min, y_min, x_max, y_max in
  the network's pixels, the score last; a row of zeros is no detection), labels [N] (int32) and
  masks [N, 14, 14] (or [N, 1, 14, 14]).
- The Object Detection API's (mask_rcnn_*_coco, one input: the image_info input those IR have is
  not built): reshape_do_2d [N, 7] rows [image, label, score, box normalised], image -1 after the
  last, and masks [N, 90, 14, 14], one per class.

Every box is a fixed place moved by the picture's 4x4 average colours; its score and the size of
its mask (a bump thresholded where the picture says) come from them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from .cocoset import COCO_IDS, categories

ROWS = 16
MASK_SIDE = 14
TF_CLASSES = 90
# the classes of the rows, as positions in COCO's 80 (person, car, cat, bottle, ...)
CLASS_INDICES = [0, 0, 2, 2, 15, 15, 39, 39, 0, 2, 15, 39, 0, 2, 15, 39]
EMPTY_ROWS = 3  # the last rows: zeros (Intel's) or after the end marker (detection_out)


def _bump() -> np.ndarray:
    yy, xx = np.mgrid[0:MASK_SIDE, 0:MASK_SIDE].astype(np.float64)
    centre = (MASK_SIDE - 1) / 2
    return np.exp(-(((xx - centre) / (MASK_SIDE / 1.8)) ** 2 + ((yy - centre) / (MASK_SIDE / 1.9)) ** 2))


def _head(picture, height: int, width: int, rng: np.random.Generator):
    """(boxes [N, 4] normalised to the input, scores [N], mask logits [N, 14, 14]) as nodes."""
    import openvino.opset8 as ops

    pooled = ops.avg_pool(picture, [height // 4, width // 4], [0, 0], [0, 0], [height // 4, width // 4], True)
    features = ops.subtract(ops.multiply(ops.reshape(pooled, ops.constant(np.array([1, 48], np.int64)), False),
                                         ops.constant(np.float32(1 / 255))), ops.constant(np.float32(0.5)))

    def dense(outputs: int, gain: float):
        weights = rng.normal(0, gain, (48, outputs)).astype(np.float32)
        return ops.reshape(ops.matmul(features, ops.constant(weights), False, False),
                           ops.constant(np.array([-1], np.int64)), False)

    corner = rng.uniform(0.02, 0.55, (ROWS, 2))
    size = rng.uniform(0.25, 0.42, (ROWS, 2))
    base = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
    moves = ops.multiply(ops.tanh(ops.reshape(dense(4 * ROWS, 1.5), ops.constant(np.array([ROWS, 4], np.int64)),
                                              False)), ops.constant(np.float32(0.08)))
    boxes = ops.add(ops.constant(base), moves)
    scores = ops.sigmoid(dense(ROWS, 2.0))
    shift = ops.reshape(ops.multiply(ops.tanh(dense(ROWS, 1.5)), ops.constant(np.float32(1.0))),
                        ops.constant(np.array([ROWS, 1, 1], np.int64)), False)
    logits = ops.add(ops.constant((7.0 * (_bump() - 0.5)).astype(np.float32)[None]), shift)
    return boxes, scores, logits


def intel_ir(xml: Path, height: int, width: int, seed: int = 0, mask_axis: bool = False, label_offset: int = 0
             ) -> Path:
    """A [1,3,height,width] network with outputs boxes [N, 5] (input pixels, score last), labels
    [N] (positions in COCO's 80, plus ``label_offset``: 1 for a model with a background class)
    and masks [N, 14, 14] (with ``mask_axis`` [N, 1, 14, 14]); its last EMPTY_ROWS rows zeros."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="image")
    boxes, scores, logits = _head(picture, height, width, rng)
    keep = np.r_[np.ones(ROWS - EMPTY_ROWS), np.zeros(EMPTY_ROWS)].astype(np.float32)
    pixels = ops.multiply(boxes, ops.constant(np.array([width, height, width, height], np.float32)))
    rows = ops.multiply(ops.concat([pixels, ops.reshape(scores, ops.constant(np.array([ROWS, 1], np.int64)),
                                                        False)], 1), ops.constant(keep[:, None]))
    rows.output(0).get_tensor().set_names({"boxes"})
    labels = ops.convert(ops.add(ops.constant(np.array(CLASS_INDICES, np.float32) + label_offset),
                                 ops.multiply(scores, ops.constant(np.float32(0)))), "i32")
    labels.output(0).get_tensor().set_names({"labels"})
    masks = ops.sigmoid(logits)
    if mask_axis:
        masks = ops.reshape(masks, ops.constant(np.array([ROWS, 1, MASK_SIDE, MASK_SIDE], np.int64)), False)
    masks.output(0).get_tensor().set_names({"masks"})
    return _save(ov.Model([rows, labels, masks], [picture], "mask-rcnn-intel"), xml)


def od_api_ir(xml: Path, height: int, width: int, seed: int = 0) -> Path:
    """A [1,3,height,width] network with outputs reshape_do_2d [N, 7] (COCO's ids as labels,
    boxes normalised to the input, image -1 on the last EMPTY_ROWS rows) and masks [N, 90, 14,
    14] (each class's mask a little larger or smaller than the next)."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="image")
    boxes, scores, logits = _head(picture, height, width, rng)
    image = np.r_[np.zeros(ROWS - EMPTY_ROWS), -np.ones(EMPTY_ROWS)].astype(np.float32)
    labels = np.array([COCO_IDS[i] for i in CLASS_INDICES], np.float32)
    column = np.array([ROWS, 1], np.int64)
    rows = ops.concat([ops.constant(image[:, None]), ops.constant(labels[:, None]),
                       ops.reshape(scores, ops.constant(column), False), boxes], 1)
    rows.output(0).get_tensor().set_names({"reshape_do_2d"})
    per_class = rng.uniform(-1.5, 1.5, TF_CLASSES).astype(np.float32)[None, :, None, None]
    masks = ops.sigmoid(ops.add(ops.unsqueeze(logits, ops.constant(np.array([1], np.int64))),
                                ops.constant(per_class)))
    masks.output(0).get_tensor().set_names({"masks"})
    return _save(ov.Model([rows, masks], [picture], "mask-rcnn-od-api"), xml)


def _save(model, xml: Path) -> Path:
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


# one picture's instances: (COCO category id, score, box [x0, y0, x1, y1] in pixels)
Finder = Callable[[np.ndarray], list[tuple[int, float, np.ndarray]]]


def finder(xml: Path, yml: Path, model: str) -> Finder:
    """The IR's instances on a picture as the accuracy tool makes them with the model's yml."""
    import tempfile

    import cv2

    from ..accuracy.config import load_accuracy_config
    from ..accuracy.dataset import GroundTruth, Sample
    from ..accuracy.evaluate import compile_network, predict, read_network

    config = load_accuracy_config(yml, model)
    network = read_network(xml, config)
    compiled = compile_network(network, "CPU")
    cats = categories()
    category_of = ({c["id"]: c["id"] for c in cats} if config.full_label_map else
                   {i + config.label_offset: c["id"] for i, c in enumerate(cats)})

    def find(picture: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
        with tempfile.TemporaryDirectory(prefix="modelzoo-maskset-") as tmp:
            path = Path(tmp) / "picture.png"
            cv2.imwrite(str(path), picture)
            empty = GroundTruth(np.zeros((0, 4)), np.zeros(0, dtype=int), np.zeros(0, dtype=int))
            found, _ = predict(config, network, compiled, [Sample(1, path)], {1: empty})
        dets = found[1]
        return [(category_of[int(label)], float(score), box) for label, score, box in
                zip(dets.labels, dets.scores, dets.boxes) if int(label) in category_of]

    return find


def _ellipse(box: np.ndarray, width: int, height: int, points: int = 14) -> list[float]:
    x0, y0, x1, y1 = box
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xs = np.clip((x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), 0, width - 1)
    ys = np.clip((y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t), 0, height - 1)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def write_mask_coco_folder(root: Path, pictures: list[np.ndarray], finders: list[Finder], seed: int = 0) -> Path:
    """root/val2017/*.png and root/annotations/instances_val2017.json (COCO's 80 categories) with
    each picture's instances from every finder's best ones, moved a little or much, as ellipse
    polygons; some as an uncompressed RLE, a crowd as a compressed one; one picture without any.
    Returns root."""
    import cv2
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    doc: dict = {"info": {"description": "modelzoo synthetic COCO instance masks"}, "images": [],
                 "annotations": [], "categories": categories()}
    for i, picture in enumerate(pictures, start=1):
        name = f"{i:012d}.png"
        cv2.imwrite(str(root / "val2017" / name), picture)
        height, width = picture.shape[:2]
        doc["images"].append({"id": i, "file_name": name, "width": width, "height": height})
        if i == 2:
            continue  # a picture with nothing annotated
        objects = []
        for find in finders:
            found = sorted(find(picture), key=lambda f: -f[1])[:4]
            for k, (category, _, box) in enumerate(found):
                if rng.random() < 0.15:
                    continue  # a miss
                bw, bh = box[2] - box[0], box[3] - box[1]
                spread = 0.25 if k % 3 == 1 else 0.05
                box = box + rng.normal(0, spread, 4) * np.array([bw, bh, bw, bh])
                x0, x1 = sorted(np.clip(box[[0, 2]], 0, width - 1))
                y0, y1 = sorted(np.clip(box[[1, 3]], 0, height - 1))
                if x1 - x0 >= 3 and y1 - y0 >= 3:
                    objects.append((category, np.array([x0, y0, x1, y1])))
        for k, (category, box) in enumerate(objects):
            polygon = _ellipse(box, width, height)
            rles = mask_utils.frPyObjects([polygon], height, width)
            area = float(mask_utils.area(mask_utils.merge(rles)))
            segmentation: object = [polygon]
            if k == 1:  # the same mask as an uncompressed RLE (column-major run lengths)
                pixels = mask_utils.decode(mask_utils.merge(rles)).reshape(-1, order="F")
                bounds = np.r_[0, np.flatnonzero(pixels[1:] != pixels[:-1]) + 1, pixels.size]
                counts = ([0] if pixels[0] else []) + np.diff(bounds).tolist()
                segmentation = {"size": [height, width], "counts": counts}
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i, "category_id": category,
                                       "bbox": [round(float(box[0]), 2), round(float(box[1]), 2),
                                                round(float(box[2] - box[0]), 2), round(float(box[3] - box[1]), 2)],
                                       "area": area, "iscrowd": 0, "segmentation": segmentation})
        if objects and i % 3 == 0:  # a crowd over the first object, as COCO writes one: compressed RLE
            category, box = objects[0]
            crowd = np.zeros((height, width), np.uint8)
            x0, y0, x1, y1 = (int(v) for v in box)
            crowd[y0:y1 + 1, x0:x1 + 1] = 1
            rle = mask_utils.encode(np.asfortranarray(crowd))
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i, "category_id": category,
                                       "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "area": float(crowd.sum()),
                                       "iscrowd": 1, "segmentation": {"size": [height, width],
                                                                      "counts": rle["counts"].decode()}})
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    return root
