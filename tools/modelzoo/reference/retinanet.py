"""RetinaNet (ResNet50 + FPN) rebuilt as a frozen TensorFlow 1.x graph.

The published retinanet_resnet50_coco_best_v2.1.0.pb cannot be fetched here, so this builds
the same network: the layer names of the Keras model (so that the published .h5 weights map
onto it by name) and the node names that the Model Optimizer's RetinaNet transformation
(front/tf/retinanet.json) looks for. Written with plain TensorFlow ops in a tf.compat.v1
graph, because the Keras that TensorFlow 2.17 ships (Keras 3) has no TF1 graph mode.

Every weight is a constant, so the GraphDef is already frozen.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from .. import fsio
from ..errors import ModelzooError

NUM_CLASSES = 80
NUM_ANCHORS = 9
FEATURE_SIZE = 256
BN_EPSILON = 1e-5
INPUT_NAME = "input_1"
OUTPUT_NAMES = tuple(f"filtered_detections/map/TensorArrayStack{s}/TensorArrayGatherV3" for s in ("", "_1", "_2"))
# The transformation keeps these as the inputs of its DetectionOutput, and needs them to exist.
START_POINTS = ("regression/concat", "classification/concat", "anchors/concat", "clipped_boxes/Shape")
STAGES = (("2", 3, 64), ("3", 4, 128), ("4", 6, 256), ("5", 3, 512))  # ResNet50: blocks and widths
PYRAMID_LEVELS = (3, 4, 5, 6, 7)
SCORE_THRESHOLD = 0.05
NMS_THRESHOLD = 0.5
MAX_DETECTIONS = 300
BOX_STD = 0.2
PRIOR_PROBABILITY = 0.01


class WeightsError(ModelzooError):
    """Weights that do not fit the architecture (a missing layer, a wrong shape)."""


# ----------------------------------------------------------------------------- the weights it needs

@dataclass(frozen=True)
class Param:
    layer: str
    name: str  # kernel, bias, gamma, beta, moving_mean, moving_variance
    shape: tuple[int, ...]


def _conv(layer: str, k: int, cin: int, cout: int, bias: bool) -> list[Param]:
    params = [Param(layer, "kernel", (k, k, cin, cout))]
    return params + ([Param(layer, "bias", (cout,))] if bias else [])


def _bn(layer: str, c: int) -> list[Param]:
    return [Param(layer, n, (c,)) for n in ("gamma", "beta", "moving_mean", "moving_variance")]


def _block_names(stage: str, block: int) -> tuple[str, str]:
    suffix = chr(ord("a") + block)
    return f"res{stage}{suffix}", f"bn{stage}{suffix}"


def weight_spec() -> list[Param]:
    """Every parameter of the model, named as in the Keras model (layer name, weight name)."""
    spec = _conv("conv1", 7, 3, 64, False) + _bn("bn_conv1", 64)
    cin = 64
    for stage, blocks, width in STAGES:
        for b in range(blocks):
            res, bn = _block_names(stage, b)
            spec += _conv(f"{res}_branch2a", 1, cin, width, False) + _bn(f"{bn}_branch2a", width)
            spec += _conv(f"{res}_branch2b", 3, width, width, False) + _bn(f"{bn}_branch2b", width)
            spec += _conv(f"{res}_branch2c", 1, width, 4 * width, False) + _bn(f"{bn}_branch2c", 4 * width)
            if b == 0:
                spec += _conv(f"{res}_branch1", 1, cin, 4 * width, False) + _bn(f"{bn}_branch1", 4 * width)
            cin = 4 * width
    f = FEATURE_SIZE
    spec += _conv("C5_reduced", 1, 2048, f, True) + _conv("P5", 3, f, f, True)
    spec += _conv("C4_reduced", 1, 1024, f, True) + _conv("P4", 3, f, f, True)
    spec += _conv("C3_reduced", 1, 512, f, True) + _conv("P3", 3, f, f, True)
    spec += _conv("P6", 3, 2048, f, True) + _conv("P7", 3, f, f, True)
    for head, outputs in (("regression", NUM_ANCHORS * 4), ("classification", NUM_ANCHORS * NUM_CLASSES)):
        for i in range(4):
            spec += _conv(f"pyramid_{head}_{i}", 3, f, f, True)
        spec += _conv(f"pyramid_{head}", 3, f, outputs, True)
    return spec


Weights = dict[str, dict[str, np.ndarray]]  # layer -> weight name -> array


TARGET_CANDIDATES = 250  # (anchor, class) scores above the threshold on the calibration picture


def _initial_weights(seed: int) -> Weights:
    """He-normal convolutions, identity batch norm with damped residual branches, zero biases.
    Zero biases keep the network positively homogeneous, which calibrate() relies on."""
    weights: Weights = {}
    for p in weight_spec():
        rng = np.random.default_rng([seed, zlib.crc32(f"{p.layer}/{p.name}".encode())])
        layer = weights.setdefault(p.layer, {})
        if p.name == "kernel":
            fan_in = int(np.prod(p.shape[:3]))
            std = np.sqrt(2.0 / fan_in) / (64.0 if p.layer == "conv1" else 1.0)  # conv1 sees pixels of +-100
            layer[p.name] = (rng.standard_normal(p.shape) * std).astype(np.float32)
        elif p.name == "gamma":
            # damp each residual branch so that 16 blocks in a row do not blow activations up
            layer[p.name] = np.full(p.shape, 0.2 if p.layer.endswith("_branch2c") else 1.0, np.float32)
        elif p.name == "moving_variance":
            layer[p.name] = np.ones(p.shape, np.float32)
        else:  # bias, beta, moving_mean
            layer[p.name] = np.zeros(p.shape, np.float32)
    return weights


def _round(x: float) -> np.float32:
    """Three significant digits: calibration runs TF, whose last bits may vary between machines;
    rounding keeps the weights (and so the .pb's checksum) identical."""
    return np.float32(float(f"{x:.3g}"))


def random_weights(seed: int = 0, input_size: int = 256) -> Weights:
    """Deterministic random weights that behave like a trained detector's in scale.

    One pass on the test picture (at the input size: score statistics depend on it) measures
    the (homogeneous) network and scales it: every pyramid level to unit RMS, regression
    outputs to RMS 0.1 (boxes stay near their anchors, as after the RetinaNet paper's
    sigma=0.01 initialisation), classification logits to unit RMS, and the classification
    bias so that about TARGET_CANDIDATES (anchor, class) scores pass the 0.05 threshold:
    detections to compare, but not thousands.
    """
    w = _initial_weights(seed)
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(build_graph_def(w, input_size), name="")
    image = test_picture(input_size)
    levels = [f"P{lvl}/BiasAdd:0" for lvl in PYRAMID_LEVELS]
    heads = [f"{kind}_submodel{'_' + str(i) if i else ''}/pyramid_{kind}/BiasAdd:0"
             for kind in ("classification", "regression") for i in range(len(PYRAMID_LEVELS))]
    with tf.compat.v1.Session(graph=graph) as sess:
        outs = sess.run(levels + heads, {f"{INPUT_NAME}:0": preprocess(image)[None]})
    rms = [float(np.sqrt(np.mean(o.astype(np.float64) ** 2))) for o in outs[:5]]
    alpha = [_round(1.0 / r) for r in rms[:4]]
    alpha.append(_round(1.0 / (rms[4] * float(alpha[3]))))  # P7 is computed from relu(P6)
    for lvl, a in zip(PYRAMID_LEVELS, alpha):
        layer = f"P{lvl}"
        w[layer]["kernel"] = w[layer]["kernel"] * a
    # how much each level's head outputs grow (the heads are homogeneous: zero biases)
    scale = [float(a) for a in alpha[:4]] + [float(alpha[3]) * float(alpha[4])]
    # per output channel (anchor x class): unit RMS each, so that no class wins everywhere
    cls = np.concatenate([(o * s).reshape(-1, o.shape[-1]) for o, s in zip(outs[5:10], scale)]).astype(np.float64)
    reg = np.concatenate([(o * s).ravel() for o, s in zip(outs[10:15], scale)])
    cls_scale = np.array([_round(1.0 / v) for v in np.sqrt(np.mean(cls ** 2, axis=0))], np.float32)
    reg_scale = _round(0.1 / np.sqrt(np.mean(reg.astype(np.float64) ** 2)))
    w["pyramid_classification"]["kernel"] = w["pyramid_classification"]["kernel"] * cls_scale
    w["pyramid_regression"]["kernel"] = w["pyramid_regression"]["kernel"] * reg_scale
    cls = (cls * cls_scale).ravel()
    fraction = TARGET_CANDIDATES / cls.size
    threshold = float(np.quantile(cls, 1.0 - fraction))
    logit = float(np.log(SCORE_THRESHOLD / (1 - SCORE_THRESHOLD)))
    w["pyramid_classification"]["bias"] = np.full_like(w["pyramid_classification"]["bias"],
                                                       _round(logit - threshold))
    return w


def test_picture(input_size: int) -> np.ndarray:
    """The fixed picture that tests, the demo and calibration use, letterboxed to the input."""
    from .scene import letterbox, make_scene

    return letterbox(make_scene(), input_size)[0]


MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def preprocess(image_bgr: np.ndarray) -> np.ndarray:
    """What the TensorFlow model expects: BGR float with the ImageNet means subtracted."""
    return image_bgr.astype(np.float32) - MEAN_BGR


def load_h5_weights(path: Path) -> Weights:
    """Read Keras weights (a model saved with model.save or save_weights) by layer name."""
    import h5py

    found: Weights = {}
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({exc})") from exc
    with f:
        root = f["model_weights"] if "model_weights" in f else f

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                parts = name.split("/")
                layer = parts[-2] if len(parts) >= 2 else parts[0]
                param = parts[-1].split(":")[0]
                found.setdefault(layer, {})[param] = np.asarray(obj, dtype=np.float32)

        root.visititems(visit)
    check_weights(found, str(path))
    return found


def check_weights(weights: Weights, source: str) -> None:
    for p in weight_spec():
        array = weights.get(p.layer, {}).get(p.name)
        if array is None:
            raise WeightsError(f"{source}: no weight {p.layer}/{p.name}")
        if tuple(array.shape) != p.shape:
            raise WeightsError(f"{source}: {p.layer}/{p.name} has shape {tuple(array.shape)}, expected {p.shape}")


# ----------------------------------------------------------------------------- anchors (numpy)

def base_anchors(size: float) -> np.ndarray:
    """The 9 anchors of one level, centred on 0: three aspect ratios by three scales, as [x1, y1, x2, y2]."""
    ratios = np.array([0.5, 1.0, 2.0])
    scales = np.array([2 ** 0, 2 ** (1 / 3), 2 ** (2 / 3)])
    out = []
    for ratio in ratios:  # height / width
        for scale in scales:
            area = (size * scale) ** 2
            w = np.sqrt(area / ratio)
            h = w * ratio
            out.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.array(out, dtype=np.float32)


def level_geometry(level: int) -> tuple[int, int]:
    """(anchor size, stride) of pyramid level P3..P7."""
    return 2 ** (level + 2), 2 ** level


def feature_sides(input_size: int) -> list[int]:
    """Side of the P3..P7 feature maps for a square input (the backbone's padding arithmetic)."""
    side = (input_size + 6 - 7) // 2 + 1  # conv1: pad 3, 7x7, stride 2
    side = -(-side // 2)  # pool1, SAME, stride 2 -> C2
    sides = []
    for _ in range(5):  # C3, C4, C5 (1x1 stride 2, VALID), P6, P7 (3x3 stride 2, SAME): all ceil(s / 2)
        side = -(-side // 2)
        sides.append(side)
    return sides


def num_anchor_positions(input_size: int) -> int:
    return NUM_ANCHORS * sum(s * s for s in feature_sides(input_size))


def all_anchors(input_size: int) -> np.ndarray:
    """Every anchor of a square input, in the graph's order (level, row, column, anchor)."""
    out = []
    for level, side in zip(PYRAMID_LEVELS, feature_sides(input_size)):
        size, stride = level_geometry(level)
        centres = (np.arange(side, dtype=np.float32) + 0.5) * stride
        gx, gy = np.meshgrid(centres, centres)
        shifts = np.stack([gx.ravel(), gy.ravel(), gx.ravel(), gy.ravel()], axis=1)
        out.append((shifts[:, None, :] + base_anchors(size)[None]).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


# ----------------------------------------------------------------------------- the graph

def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_control_flow_v2()
    return tf


class _Builder:
    def __init__(self, tf, weights: Weights) -> None:
        self.tf = tf
        self.w = weights
        self._consts: dict[tuple[str, str], object] = {}

    def const(self, layer: str, name: str):
        """Each weight is one Const node, shared by every use (the heads run on five levels)."""
        key = (layer, name)
        if key not in self._consts:
            self._consts[key] = self.tf.constant(self.w[layer][name], name=name)
        return self._consts[key]

    def conv(self, x, layer: str, stride: int = 1, padding: str = "SAME", bias: bool = True, relu: bool = False,
             scope: str | None = None):
        tf = self.tf
        with tf.name_scope(scope or layer):
            y = tf.nn.conv2d(x, self.const(layer, "kernel"), strides=[1, stride, stride, 1], padding=padding,
                             name="Conv2D")
            if bias:
                y = tf.nn.bias_add(y, self.const(layer, "bias"), name="BiasAdd")
            if relu:
                y = tf.nn.relu(y, name="Relu")
        return y

    def bn(self, x, layer: str):
        tf = self.tf
        with tf.name_scope(layer):
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, self.const(layer, "gamma"), self.const(layer, "beta"), mean=self.const(layer, "moving_mean"),
                variance=self.const(layer, "moving_variance"), epsilon=BN_EPSILON, is_training=False,
                name="FusedBatchNormV3")
        return y

    def pad(self, x, name: str, amount: int):
        return self.tf.pad(x, [[0, 0], [amount, amount], [amount, amount], [0, 0]], name=name)

    # ResNet50 as keras-resnet lays it out (stride on the first 1x1 convolution).
    def backbone(self, image):
        tf = self.tf
        x = self.conv(self.pad(image, "padding_conv1", 3), "conv1", stride=2, padding="VALID", bias=False)
        x = tf.nn.relu(self.bn(x, "bn_conv1"), name="conv1_relu")
        x = tf.nn.max_pool2d(x, 3, 2, "SAME", name="pool1")
        outputs = []
        for s, (stage, blocks, _) in enumerate(STAGES):
            for b in range(blocks):
                res, bn = _block_names(stage, b)
                stride = 2 if (b == 0 and s > 0) else 1
                y = self.conv(x, f"{res}_branch2a", stride=stride, padding="VALID", bias=False)
                y = tf.nn.relu(self.bn(y, f"{bn}_branch2a"), name=f"{res}_branch2a_relu")
                y = self.conv(self.pad(y, f"padding{stage}{chr(97 + b)}_branch2b", 1), f"{res}_branch2b",
                              padding="VALID", bias=False)
                y = tf.nn.relu(self.bn(y, f"{bn}_branch2b"), name=f"{res}_branch2b_relu")
                y = self.bn(self.conv(y, f"{res}_branch2c", padding="VALID", bias=False), f"{bn}_branch2c")
                shortcut = x
                if b == 0:
                    shortcut = self.bn(self.conv(x, f"{res}_branch1", stride=stride, padding="VALID", bias=False),
                                       f"{bn}_branch1")
                x = tf.nn.relu(tf.add(y, shortcut, name=res), name=f"{res}_relu")
            outputs.append(x)
        return outputs[1:]  # C3, C4, C5

    def upsample_like(self, x, like, name: str):
        tf = self.tf
        with tf.name_scope(name):
            return tf.compat.v1.image.resize_nearest_neighbor(x, tf.shape(like)[1:3], name="ResizeNearestNeighbor")

    def pyramid(self, c3, c4, c5):
        tf = self.tf
        p5 = self.conv(c5, "C5_reduced")
        p5_up = self.upsample_like(p5, c4, "P5_upsampled")
        p5 = self.conv(p5, "P5")
        p4 = tf.add(p5_up, self.conv(c4, "C4_reduced"), name="P4_merged")
        p4_up = self.upsample_like(p4, c3, "P4_upsampled")
        p4 = self.conv(p4, "P4")
        p3 = tf.add(p4_up, self.conv(c3, "C3_reduced"), name="P3_merged")
        p3 = self.conv(p3, "P3")
        p6 = self.conv(c5, "P6", stride=2)
        p7 = self.conv(tf.nn.relu(p6, name="P7_relu"), "P7", stride=2)
        return [p3, p4, p5, p6, p7]

    def head(self, feature, kind: str, call: int):
        """One application of the shared regression/classification submodel to one level."""
        tf = self.tf
        scope = f"{kind}_submodel" + (f"_{call}" if call else "")
        width = 4 if kind == "regression" else NUM_CLASSES
        with tf.name_scope(scope):
            x = feature
            for i in range(4):
                x = self.conv(x, f"pyramid_{kind}_{i}", relu=True)
            x = self.conv(x, f"pyramid_{kind}")
            x = tf.reshape(x, [tf.shape(x)[0], -1, width], name=f"pyramid_{kind}_reshape")
            if kind == "classification":
                x = tf.sigmoid(x, name="pyramid_classification_sigmoid")
        return x

    def anchors(self, features):
        """Anchors for every position of every level, computed from the feature shapes as the
        Keras model's Anchors layers do: [batch, positions * 9, 4] as [x1, y1, x2, y2] pixels."""
        tf = self.tf
        per_level = []
        for i, (level, feature) in enumerate(zip(PYRAMID_LEVELS, features)):
            size, stride = level_geometry(level)
            with tf.name_scope(f"anchors_{i}"):
                shape = tf.shape(feature)
                xs = (tf.cast(tf.range(shape[2]), tf.float32) + 0.5) * stride
                ys = (tf.cast(tf.range(shape[1]), tf.float32) + 0.5) * stride
                gx, gy = tf.meshgrid(xs, ys)
                gx, gy = tf.reshape(gx, [-1]), tf.reshape(gy, [-1])
                shifts = tf.stack([gx, gy, gx, gy], axis=1)
                grid = tf.reshape(shifts[:, None, :] + tf.constant(base_anchors(size))[None], [-1, 4])
                per_level.append(tf.tile(grid[None], [shape[0], 1, 1]))
        with tf.name_scope("anchors"):
            return tf.concat(per_level, axis=1, name="concat")

    def regress_boxes(self, anchors, deltas):
        tf = self.tf
        with tf.name_scope("boxes"):
            w = anchors[:, :, 2] - anchors[:, :, 0]
            h = anchors[:, :, 3] - anchors[:, :, 1]
            x1 = anchors[:, :, 0] + deltas[:, :, 0] * BOX_STD * w
            y1 = anchors[:, :, 1] + deltas[:, :, 1] * BOX_STD * h
            x2 = anchors[:, :, 2] + deltas[:, :, 2] * BOX_STD * w
            y2 = anchors[:, :, 3] + deltas[:, :, 3] * BOX_STD * h
            return tf.stack([x1, y1, x2, y2], axis=2, name="stack")

    def clip_boxes(self, image, boxes):
        tf = self.tf
        with tf.name_scope("clipped_boxes"):
            shape = tf.cast(tf.shape(image, name="Shape"), tf.float32)
            height, width = shape[1], shape[2]
            x1 = tf.clip_by_value(boxes[:, :, 0], 0.0, width - 1)
            y1 = tf.clip_by_value(boxes[:, :, 1], 0.0, height - 1)
            x2 = tf.clip_by_value(boxes[:, :, 2], 0.0, width - 1)
            y2 = tf.clip_by_value(boxes[:, :, 3], 0.0, height - 1)
            return tf.stack([x1, y1, x2, y2], axis=2, name="stack")

    def filter_one_image(self, boxes, classification):
        """Per-class score threshold and NMS, then the best MAX_DETECTIONS, padded with -1."""
        tf = self.tf
        kept = []
        for c in range(NUM_CLASSES):
            scores = classification[:, c]
            idx = tf.where(tf.greater(scores, SCORE_THRESHOLD))[:, 0]
            nms = tf.image.non_max_suppression(tf.gather(boxes, idx), tf.gather(scores, idx),
                                               max_output_size=MAX_DETECTIONS, iou_threshold=NMS_THRESHOLD)
            idx = tf.gather(idx, nms)
            kept.append(tf.stack([idx, tf.fill(tf.shape(idx), tf.constant(c, tf.int64))], axis=1))
        kept = tf.concat(kept, axis=0)
        scores = tf.gather_nd(classification, kept)
        k = tf.minimum(MAX_DETECTIONS, tf.shape(scores)[0])
        scores, top = tf.nn.top_k(scores, k=k)
        anchor_idx = tf.gather(kept[:, 0], top)
        labels = tf.cast(tf.gather(kept[:, 1], top), tf.int32)
        picked = tf.gather(boxes, anchor_idx)
        pad = MAX_DETECTIONS - k
        picked = tf.pad(picked, [[0, pad], [0, 0]], constant_values=-1.0)
        scores = tf.pad(scores, [[0, pad]], constant_values=-1.0)
        labels = tf.pad(labels, [[0, pad]], constant_values=-1)
        picked.set_shape([MAX_DETECTIONS, 4])
        scores.set_shape([MAX_DETECTIONS])
        labels.set_shape([MAX_DETECTIONS])
        return [picked, scores, labels]


def build_graph_def(weights: Weights, input_size: int):
    """The frozen GraphDef of RetinaNet for a [1, input_size, input_size, 3] BGR input (mean subtracted)."""
    check_weights(weights, "weights")
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        b = _Builder(tf, weights)
        image = tf.compat.v1.placeholder(tf.float32, [1, input_size, input_size, 3], name=INPUT_NAME)
        features = b.pyramid(*b.backbone(image))
        heads = {kind: [b.head(f, kind, i) for i, f in enumerate(features)]
                 for kind in ("regression", "classification")}
        with tf.name_scope("regression"):
            regression = tf.concat(heads["regression"], axis=1, name="concat")
        with tf.name_scope("classification"):
            classification = tf.concat(heads["classification"], axis=1, name="concat")
        anchors = b.anchors(features)
        boxes = b.clip_boxes(image, b.regress_boxes(anchors, regression))
        with tf.name_scope("filtered_detections"):
            tf.compat.v1.map_fn(lambda args: b.filter_one_image(*args), elems=[boxes, classification],
                                dtype=[tf.float32, tf.float32, tf.int32], parallel_iterations=32)
    graph_def = graph.as_graph_def()
    names = {n.name for n in graph_def.node}
    missing = [n for n in (INPUT_NAME, *START_POINTS, *OUTPUT_NAMES) if n not in names]
    if missing:
        raise ModelzooError(f"internal error: the built graph lacks nodes {missing}")
    return graph_def


def write_pb(graph_def, path: Path) -> None:
    """Write the GraphDef deterministically (the same weights give the same bytes), atomically."""
    path = Path(path)
    fsio.makedirs(path.parent)
    fsio.write_bytes(path, graph_def.SerializeToString(deterministic=True))


def load_pb(path: Path):
    """(GraphDef, tf.Graph) of a frozen .pb, ready for a tf.compat.v1.Session."""
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return graph_def, graph
