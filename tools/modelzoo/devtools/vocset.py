"""A Pascal VOC folder made here (no download) and tiny YOLO-shaped IRs built with OpenVINO's
Python API, for proving the `yolo_v2` / `yolo_v3` adapters and the `map` metric against Open
Model Zoo's own accuracy_check.

The folder is VOC's own layout (`VOCdevkit/VOC2012/` with `JPEGImages/`, `Annotations/*.xml`,
`ImageSets/Main/val.txt`), the pictures of several sizes and aspect ratios (PNG, which OpenCV and
Pillow decode alike). The networks' weights are random, so the annotations are made from a
network's own detections (as devtools/imagenetset.py makes labels from a classifier's scores):
some of its boxes as they are, some moved, some with another class, some marked difficult, and
a few boxes it did not find, so every metric is a number that can move.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .imagenetset import pictures  # noqa: F401 (the same pictures: several sizes and aspect ratios)

SIDE = 416
VOC = "VOCdevkit/VOC2012"
CLASSES = 20
V2_ANCHORS = (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52)  # tiny_yolo_v2
V3_ANCHORS = (10.0, 14.0, 23.0, 27.0, 37.0, 58.0, 81.0, 82.0, 135.0, 169.0, 344.0, 319.0)  # tiny_yolo_v3
V3_OUTPUTS = ("yolo_13", "yolo_26")

Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""(labels [N], scores [N], boxes [N, 4] in the picture's pixels) of one BGR uint8 picture."""


def _grid_head(picture, stride: int, channels: int, rng: np.random.Generator, spread: float = 0.004):
    """Average pooling to a grid (one cell per ``stride`` pixels) and a 1x1 convolution (weights of
    deviation ``spread``: larger, the classes vary more across a picture)."""
    import openvino.opset8 as ops

    pooled = ops.avg_pool(picture, [stride, stride], [0, 0], [0, 0], [stride, stride], exclude_pad=True)
    weights = rng.normal(0, spread, (channels, 3, 1, 1)).astype(np.float32)
    bias = rng.normal(0, 0.6, (1, channels, 1, 1)).astype(np.float32)
    return ops.add(ops.convolution(pooled, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1]),
                   ops.constant(bias))


def yolo_v2_ir(xml: Path, seed: int = 0) -> Path:
    """A [1,3,416,416] network ending in RegionYolo as YOLO v2 has it (5 anchors, 20 classes,
    softmax over the classes): its output [1, 5 * 25 * 13 * 13], a 13x13 grid."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, SIDE, SIDE], np.float32, name="image")
    head = _grid_head(picture, 32, 5 * (CLASSES + 5), rng)
    region = ops.region_yolo(head, 4, CLASSES, 5, True, [], 1, 3, list(V2_ANCHORS))
    region.output(0).get_tensor().set_names({"region"})
    return _save(ov.Model([region], [picture], "tiny-yolo-v2"), xml)


def yolo_v3_ir(xml: Path, seed: int = 0, classes: int = CLASSES) -> Path:
    """A [1,3,416,416] network with two RegionYolo outputs as tiny YOLO v3 has them (13x13 with
    anchors 3-5, 26x26 with anchors 0-2, sigmoids): [1, 3 * (5 + classes), 13, 13] and 26x26."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, SIDE, SIDE], np.float32, name="image")
    outputs = []
    for name, stride, mask in ((V3_OUTPUTS[0], 32, [3, 4, 5]), (V3_OUTPUTS[1], 16, [0, 1, 2])):
        head = _grid_head(picture, stride, 3 * (classes + 5), rng)
        region = ops.region_yolo(head, 4, classes, 6, False, mask, 1, 3, list(V3_ANCHORS))
        region.output(0).get_tensor().set_names({name})
        outputs.append(region)
    return _save(ov.Model(outputs, [picture], "tiny-yolo-v3"), xml)


def _save(model, xml: Path) -> Path:
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def truth_from(detections: tuple[np.ndarray, np.ndarray, np.ndarray], height: int, width: int,
               rng: np.random.Generator) -> list[tuple[int, list[int], bool]]:
    """A picture's annotation from a detector's boxes: (class, [xmin, ymin, xmax, ymax] in VOC's
    1-based pixels, difficult). The best boxes kept, moved a little or much, relabelled; some
    difficult; one box no detector found."""
    labels, scores, boxes = detections
    objects = []
    for k, index in enumerate(np.argsort(-scores)[:6]):
        box = boxes[index].copy()
        label = int(labels[index])
        if k % 3 == 1:  # moved: a match at some overlaps and not at others
            bw, bh = box[2] - box[0], box[3] - box[1]
            box = box + rng.uniform(-0.25, 0.25, 4) * np.array([bw, bh, bw, bh])
        if k == 4:
            label = (label + 1 + int(rng.integers(CLASSES - 1))) % CLASSES
        objects.append((label, box, k % 4 == 2))
    w, h = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    objects.append((int(rng.integers(CLASSES)), np.array([x, y, x + w, y + h]), False))
    result = []
    for label, box, difficult in objects:
        x0, x1 = sorted(np.clip(np.round(box[[0, 2]]) + 1, 1, width))
        y0, y1 = sorted(np.clip(np.round(box[[1, 3]]) + 1, 1, height))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            result.append((label, [int(x0), int(y0), int(x1), int(y1)], difficult))
    return result


def annotation_xml(name: str, height: int, width: int, objects: list[tuple[int, list[int], bool]]) -> str:
    """VOC's XML for one picture."""
    from ..accuracy.dataset import VOC_CLASSES

    parts = [f"<annotation>\n\t<folder>VOC2012</folder>\n\t<filename>{name}</filename>\n"
             f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
             "\t<segmented>0</segmented>\n"]
    for label, (x0, y0, x1, y1), difficult in objects:
        parts.append(f"\t<object>\n\t\t<name>{VOC_CLASSES[label]}</name>\n\t\t<pose>Unspecified</pose>\n"
                     f"\t\t<truncated>0</truncated>\n\t\t<difficult>{int(difficult)}</difficult>\n"
                     f"\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n"
                     f"\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n")
    parts.append("</annotation>\n")
    return "".join(parts)


def write_voc_folder(root: Path, images: list[np.ndarray], detectors: list[Detector], seed: int = 0) -> Path:
    """root/VOCdevkit/VOC2012 with the pictures, their XML and ImageSets/Main/val.txt; each
    picture annotated from one of ``detectors`` in turn. Returns the VOC2012 folder."""
    import cv2

    rng = np.random.default_rng(seed)
    voc = root / VOC
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for i, image in enumerate(images):
        voc_id = f"2012_{i + 1:06d}"
        name = f"{voc_id}.png"
        cv2.imwrite(str(voc / "JPEGImages" / name), image)
        height, width = image.shape[:2]
        objects = truth_from(detectors[i % len(detectors)](image), height, width, rng)
        (voc / "Annotations" / f"{voc_id}.xml").write_text(annotation_xml(name, height, width, objects))
        ids.append(voc_id)
    (voc / "ImageSets/Main/val.txt").write_text("".join(f"{i}\n" for i in ids))
    return voc


def detector(xml: Path, yml: Path, model: str) -> Detector:
    """The IR's detections on a picture as the accuracy tool makes them with the model's yml
    (every step of its preprocessing, adapter and postprocessing)."""
    from ..accuracy.config import load_accuracy_config
    from ..accuracy.dataset import GroundTruth, Sample
    from ..accuracy.evaluate import compile_network, predict, read_network

    config = load_accuracy_config(yml, model)
    network = read_network(xml, config)
    compiled = compile_network(network, "CPU")

    def detect(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import tempfile

        import cv2

        with tempfile.TemporaryDirectory(prefix="modelzoo-vocset-") as tmp:
            path = Path(tmp) / "picture.png"
            cv2.imwrite(str(path), picture)
            empty = GroundTruth(np.zeros((0, 4)), np.zeros(0, dtype=int), np.zeros(0, dtype=int))
            found, _ = predict(config, network, compiled, [Sample(1, path)], {1: empty})
        return found[1].labels, found[1].scores, found[1].boxes

    return detect


SEGMENTATION_SIDE = 256


def segmentation_ir(xml: Path, labels_out: bool, seed: int = 0, classes: int = CLASSES + 1,
                    height: int = SEGMENTATION_SIDE, width: int = SEGMENTATION_SIDE, spread: float = 0.004) -> Path:
    """A [1,3,height,width] network of ``classes`` classes (VOC's 21 by default): 8x8 average
    pooling, a 1x1 convolution, bilinear upsampling back to the input's size; its output the class
    scores [1,classes,height,width], or with ``labels_out`` the best class of every pixel
    [1,1,height,width] (TopK's indices, int32)."""
    import openvino as ov
    import openvino.opset1 as ops1
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, height, width], np.float32, name="image")
    head = _grid_head(picture, 8, classes, rng, spread)
    scores = ops1.interpolate(head, ops.constant(np.array([height, width], np.int64)),
                              {"axes": [2, 3], "mode": "linear", "align_corners": False, "antialias": False})
    out = ops.topk(scores, ops.constant(np.int64(1)), 1, "max", "none", "i32").output(1) if labels_out \
        else scores.output(0)
    out.get_tensor().set_names({"mask"})
    return _save(ov.Model([out], [picture], "tiny-segmentation"), xml)


Segmenter = Callable[[np.ndarray], np.ndarray]
"""the labels [H, W] of one BGR uint8 picture, at its size."""


def segmenter(xml: Path, yml: Path, model: str) -> Segmenter:
    """The IR's mask of a picture as the accuracy tool makes it with the model's yml."""
    from ..accuracy.config import load_accuracy_config
    from ..accuracy.dataset import Sample
    from ..accuracy.evaluate import compile_network, predict, read_network

    config = load_accuracy_config(yml, model)
    network = read_network(xml, config)
    compiled = compile_network(network, "CPU")

    def segment(picture: np.ndarray) -> np.ndarray:
        import tempfile

        import cv2

        with tempfile.TemporaryDirectory(prefix="modelzoo-vocset-") as tmp:
            path = Path(tmp) / "picture.png"
            cv2.imwrite(str(path), picture)
            found, _ = predict(config, network, compiled, [Sample(1, path)], {1: None})
        mask = found[1].mask
        return (np.argmax(mask, axis=0) if mask.ndim == 3 and mask.shape[0] > 1 else mask.reshape(mask.shape[-2:]))

    return segment


def at_size(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Labels brought to the picture's size by nearest neighbour."""
    import cv2

    if labels.shape == (height, width):
        return labels
    return cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)


def mask_from(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A VOC-style annotation (palette indices, 255 on borders) from a network's labels: some
    regions relabelled, a rectangle of another class, a border of 255 around class changes."""
    mask = labels.astype(np.uint8).copy()
    present = np.unique(mask)
    for label in present[rng.random(present.size) < 0.3]:
        mask[labels == label] = (int(label) + 1 + int(rng.integers(CLASSES))) % (CLASSES + 1)
    h, w = mask.shape
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    mask[y:y + h // 3, x:x + w // 3] = int(rng.integers(1, CLASSES + 1))
    edge = np.zeros_like(mask, dtype=bool)
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    mask[edge] = 255
    return mask


def write_voc_segmentation(root: Path, images: list[np.ndarray], segmenters: list[Segmenter], seed: int = 0) -> Path:
    """root/VOCdevkit/VOC2012 with the pictures, SegmentationClass/*.png (VOC's palette) and
    ImageSets/Segmentation/val.txt, each picture's mask made from one of ``segmenters`` in turn.
    Returns the VOC2012 folder."""
    import cv2
    from PIL import Image

    from ..accuracy.dataset import VOC_COLORS

    rng = np.random.default_rng(seed)
    voc = root / VOC
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    palette = [v for color in VOC_COLORS for v in color] + [0, 0, 0] * (255 - len(VOC_COLORS)) + [224, 224, 192]
    ids = []
    for i, image in enumerate(images):
        voc_id = f"2012_{i + 1:06d}"
        cv2.imwrite(str(voc / "JPEGImages" / f"{voc_id}.png"), image)
        labels = at_size(segmenters[i % len(segmenters)](image), *image.shape[:2])  # (a mask left at the network's)
        mask = Image.fromarray(mask_from(labels, rng), "P")
        mask.putpalette(palette)
        mask.save(voc / "SegmentationClass" / f"{voc_id}.png")
        ids.append(voc_id)
    (voc / "ImageSets/Segmentation/val.txt").write_text("".join(f"{i}\n" for i in ids))
    return voc


def yolox_ir(xml: Path, classes: int = 80, seed: int = 0) -> Path:
    """A [1,3,416,416] network with YOLOX's output layout: [1, 3549, 5 + classes], one row per cell
    of the stride 8, 16 and 32 grids (52x52, 26x26, 13x13, in that order): x, y offsets and
    log-sizes as they are, objectness and class scores through a sigmoid."""
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(seed)
    picture = ops.parameter([1, 3, SIDE, SIDE], np.float32, name="images")
    rows = []
    # objectness and class logits biased low, so a few hundred of the 3549 * classes scores pass
    # the adapter's 0.001 (as a trained detector's do), not all of them
    shift = np.r_[np.zeros(4), -4.0, np.full(classes, -6.0)].astype(np.float32).reshape(1, -1, 1, 1)
    for stride in (8, 16, 32):
        head = ops.add(_grid_head(picture, stride, classes + 5, rng), ops.constant(shift))
        flat = ops.reshape(head, ops.constant(np.array([1, classes + 5, -1], np.int64)), special_zero=False)
        rows.append(ops.transpose(flat, ops.constant(np.array([0, 2, 1], np.int64))))
    joined = ops.concat(rows, 1)
    boxes = ops.slice(joined, ops.constant(np.array([0, 0, 0])), ops.constant(np.array([1, 1 << 30, 4])),
                      ops.constant(np.array([1, 1, 1])))
    scores = ops.sigmoid(ops.slice(joined, ops.constant(np.array([0, 0, 4])),
                                   ops.constant(np.array([1, 1 << 30, classes + 5])),
                                   ops.constant(np.array([1, 1, 1]))))
    out = ops.concat([boxes, scores], 2)
    out.output(0).get_tensor().set_names({"output"})
    return _save(ov.Model([out], [picture], "tiny-yolox"), xml)
