"""Synthetic TensorFlow graphs for the YOLO and barrier-SSD output stages, and TensorFlow's tensors.

Each graph carries the node names of a zoo descriptor (so the descriptor's own mo arguments and
its config's entry points apply to it), random weights, and a small input. The first CI run (with
TensorFlow) writes, into the shared reference folder (ovc_reference.reference_dir(), i.e.
$MODELZOO_OVC_REFERENCE), for each case `stages-<case>.pb`, the config the model would download
(`stages-<case>.json`, when it has one) and `stages-<case>.npz`: the input `x` (BGR, 0..255, as
the IR takes it) and TensorFlow's values of the tensors the stage reads, for the input the IR's
pre-processing makes of `x`. A run without TensorFlow reads them (a missing file is a failure
naming the run that should have written it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ovc_reference import _require, can_prepare, reference_dir


@dataclass(frozen=True)
class Case:
    """One descriptor of the zoo, rebuilt small."""

    model: str  # the zoo's model whose descriptor is copied
    input: str
    size: int
    heads: tuple[tuple[str, int], ...]  # (TF node of a head's last op, grid cells per side)
    channels: int  # per head
    config: dict | None = None  # the JSON the model downloads (None: mo's own config)
    separable: bool = False  # heads are Keras SeparableConv2D (mobilenet-yolo-v4-syg)
    read: tuple[str, ...] = field(default=())  # the TF tensors the stage reads, in output order


YOLO_V3_ANCHORS = [10, 13, 16, 30, 33, 23, 30, 61, 62, 45, 59, 119, 116, 90, 156, 198, 373, 326]
V4_ANCHORS = [12, 16, 19, 36, 40, 28, 36, 75, 76, 55, 72, 146, 142, 110, 192, 243, 459, 401]

CASES = {
    # mo's own front/tf/yolo_v2.json (80 classes, 5 anchors, softmax): one head conv2d_22
    "yolo-v2-tf": Case("yolo-v2-tf", "image_input", 64, (("conv2d_22/BiasAdd", 4),), 425,
                       read=("conv2d_22/BiasAdd:0",)),
    # yolo-v1-tiny-tf names mo's yolo_v2_tiny_voc.json (20 classes): conv2d_9, 125 channels
    "yolo-v1-tiny-tf": Case("yolo-v1-tiny-tf", "input_1", 32, (("conv2d_9/BiasAdd", 2),), 125,
                            read=("conv2d_9/BiasAdd:0",)),
    # the downloaded yolo-v3.json, as the names in yolo-v3-tf's accuracy-check.yml imply it
    "yolo-v3-tf": Case("yolo-v3-tf", "input_1", 64,
                       (("conv2d_58/BiasAdd", 2), ("conv2d_66/BiasAdd", 4), ("conv2d_74/BiasAdd", 8)), 255,
                       config={"id": "TFYOLOV3", "match_kind": "general", "custom_attributes": {
                           "classes": 80, "anchors": YOLO_V3_ANCHORS, "coords": 4, "num": 9,
                           "masks": [[6, 7, 8], [3, 4, 5], [0, 1, 2]],
                           "entry_points": ["conv2d_58/BiasAdd", "conv2d_66/BiasAdd", "conv2d_74/BiasAdd"]}},
                       read=("conv2d_58/Conv2D:0", "conv2d_66/Conv2D:0", "conv2d_74/Conv2D:0")),
    # yolo-v3-tiny-tf's JSON (in its archive), likewise: tiny YOLO v3's masks, the second one 1,2,3
    "yolo-v3-tiny-tf": Case("yolo-v3-tiny-tf", "image_input", 64, (("conv2d_9/BiasAdd", 2), ("conv2d_12/BiasAdd", 4)),
                            255,
                            config={"id": "TFYOLOV3", "match_kind": "general", "custom_attributes": {
                                "classes": 80, "anchors": [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319],
                                "coords": 4, "num": 6, "masks": [[3, 4, 5], [1, 2, 3]],
                                "entry_points": ["conv2d_9/BiasAdd", "conv2d_12/BiasAdd"]}},
                            read=("conv2d_9/Conv2D:0", "conv2d_12/Conv2D:0")),
    # mobilenet-yolo-v4-syg's yolo_pb2ir.json, likewise (4 classes, masks in rising order)
    "mobilenet-yolo-v4-syg": Case(
        "mobilenet-yolo-v4-syg", "input_1", 64,
        (("separable_conv2d_22/BiasAdd", 8), ("separable_conv2d_30/BiasAdd", 4), ("separable_conv2d_38/BiasAdd", 2)),
        27, separable=True,
        config={"id": "TFYOLOV3", "match_kind": "general", "custom_attributes": {
            "classes": 4, "anchors": V4_ANCHORS, "coords": 4, "num": 9, "masks": [[0, 1, 2], [3, 4, 5], [6, 7, 8]],
            "entry_points": ["separable_conv2d_22/BiasAdd", "separable_conv2d_30/BiasAdd",
                             "separable_conv2d_38/BiasAdd"]}},
        read=("separable_conv2d_22/separable_conv2d:0", "separable_conv2d_30/separable_conv2d:0",
              "separable_conv2d_38/separable_conv2d:0")),
}

BARRIER = "vehicle-license-plate-detection-barrier-0123"
HEADS = "ssd_heads/concat_reshape_softmax/"
BARRIER_OUTPUTS = (HEADS + "mbox_loc_final", HEADS + "mbox_conf_final", HEADS + "mbox_priorbox")
BARRIER_PRIORS, BARRIER_CLASSES = 32, 3  # 4x4 cells x 2 sizes; background, vehicle, plate
# The config of the training toolbox's SSD export, as mo's own ssd_toolbox_detection_output.json
# spells it (the barrier's model.tfmo.json comes in its archive)
BARRIER_CONFIG = {
    "custom_attributes": {"code_type": "caffe.PriorBoxParameter.CENTER_SIZE", "confidence_threshold": 0.01,
                          "keep_top_k": 200, "nms_threshold": 0.45, "pad_mode": "caffe.ResizeParameter.CONSTANT",
                          "resize_mode": "caffe.ResizeParameter.WARP"},
    "id": "SSDToolboxDetectionOutput", "include_inputs_to_sub_graph": True, "include_outputs_to_sub_graph": True,
    "instances": {"end_points": list(BARRIER_OUTPUTS), "start_points": list(BARRIER_OUTPUTS)}, "match_kind": "points",
}


# The descriptors' mo arguments, as omz_tools/models of openvino-dev 2024.6 has them
# (tests/test_stages_yolo_zoo.py checks them against the zoo, in the environment that has it).
DESCRIPTORS = {
    "yolo-v1-tiny-tf": (["--scale_values=input_1[255]", "--reverse_input_channels",
                         "--transformations_config=$mo_ext_dir/front/tf/yolo_v2_tiny_voc.json",
                         "--input_model=$dl_dir/yolo-v1-tiny.pb"], "yolo-v1-tiny.pb", None),
    "yolo-v2-tf": (["--scale_values=image_input[255]", "--reverse_input_channels",
                    "--transformations_config=$mo_ext_dir/front/tf/yolo_v2.json",
                    "--input_model=$dl_dir/yolo-v2.pb"], "yolo-v2.pb", None),
    "yolo-v3-tf": (["--scale_values=input_1[255]", "--reverse_input_channels",
                    "--transformations_config=$dl_dir/yolo-v3.json", "--input_model=$dl_dir/yolo-v3.pb"],
                   "yolo-v3.pb", "yolo-v3.json"),
    "yolo-v3-tiny-tf": (["--scale_values=image_input[255]", "--reverse_input_channels",
                         "--transformations_config=$dl_dir/yolo-v3-tiny-tf/yolo-v3-tiny-tf.json",
                         "--input_model=$dl_dir/yolo-v3-tiny-tf/yolo-v3-tiny-tf.pb"],
                        "yolo-v3-tiny-tf/yolo-v3-tiny-tf.pb", "yolo-v3-tiny-tf/yolo-v3-tiny-tf.json"),
    "mobilenet-yolo-v4-syg": (["--input_model=$dl_dir/mobilenet-yolo-v4-syg.pb", "--scale_values=input_1[255]",
                               "--transformations_config=$dl_dir/yolo_pb2ir.json", "--reverse_input_channels"],
                              "mobilenet-yolo-v4-syg.pb", "yolo_pb2ir.json"),
    BARRIER: (["--reverse_input_channels", "--scale=127.5", "--mean_values=[127.5,127.5,127.5]",
               "--transformations_config=$dl_dir/model/model.tfmo.json",
               "--output=" + ",".join(BARRIER_OUTPUTS), "--input_model=$dl_dir/model/model.pb.frozen"],
              "model/model.pb.frozen", "model/model.tfmo.json"),
}
# What the IR's outputs are called: the openvino launcher's `outputs` in accuracy-check.yml where it
# names them (v3, v4), mo's `<node>/YoloRegion` of the graph's output (v2) and mo's DetectionOutput_.
OUTPUT_NAMES = {
    "yolo-v1-tiny-tf": ["conv2d_9/BiasAdd/YoloRegion"],
    "yolo-v2-tf": ["conv2d_22/BiasAdd/YoloRegion"],
    "yolo-v3-tf": ["conv2d_58/Conv2D/YoloRegion", "conv2d_66/Conv2D/YoloRegion", "conv2d_74/Conv2D/YoloRegion"],
    "yolo-v3-tiny-tf": ["conv2d_9/Conv2D/YoloRegion", "conv2d_12/Conv2D/YoloRegion"],
    "mobilenet-yolo-v4-syg": ["separable_conv2d_22/separable_conv2d/YoloRegion",
                              "separable_conv2d_30/separable_conv2d/YoloRegion",
                              "separable_conv2d_38/separable_conv2d/YoloRegion"],
    BARRIER: ["DetectionOutput_"],
}


def _tf():
    from modelzoo.reference import retinanet

    return retinanet._tf()


def _conv(tf, x, rng, channels: int, stride: int, name: str):
    kernel = tf.constant((rng.standard_normal((3, 3, int(x.shape[-1]), channels)) * 0.4).astype(np.float32))
    return tf.nn.conv2d(x, kernel, strides=stride, padding="SAME", name=name)


def _head(tf, x, rng, node: str, channels: int, separable: bool):
    """A Keras-style head: `<layer>/Conv2D` (or `<layer>/separable_conv2d`) + `<layer>/BiasAdd`."""
    layer = node.rsplit("/", 1)[0]
    cin = int(x.shape[-1])
    if separable:
        depth = tf.constant((rng.standard_normal((3, 3, cin, 1)) * 0.4).astype(np.float32))
        point = tf.constant((rng.standard_normal((1, 1, cin, channels)) * 0.4).astype(np.float32))
        y = tf.nn.separable_conv2d(x, depth, point, strides=[1, 1, 1, 1], padding="SAME",
                                   name=f"{layer}/separable_conv2d")
    else:
        kernel = tf.constant((rng.standard_normal((1, 1, cin, channels)) * 0.4).astype(np.float32))
        y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME", name=f"{layer}/Conv2D")
    bias = tf.constant(rng.uniform(-2, 2, channels).astype(np.float32))
    return tf.nn.bias_add(y, bias, name=node)


def _yolo_graph(case: Case, seed: int):
    tf = _tf()
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, case.size, case.size, 3], name=case.input)
        y = tf.nn.leaky_relu(_conv(tf, x, rng, 8, 2, "conv2d_0/Conv2D"), 0.1)
        cells = case.size // 2
        for node, want in sorted(case.heads, key=lambda h: -h[1]):  # finest head first, as the backbone goes
            while cells > want:
                y = tf.nn.leaky_relu(_conv(tf, y, rng, 8, 2, f"down_{cells}/Conv2D"), 0.1)
                cells //= 2
            _head(tf, y, rng, node, case.channels, case.separable)
    return graph


def _barrier_graph(seed: int):
    tf = _tf()
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    n, c = BARRIER_PRIORS, BARRIER_CLASSES
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 16, 16, 3], name="Placeholder")
        features = tf.nn.relu(_conv(tf, x, rng, 8, 4, "features/Conv2D"))  # [1, 4, 4, 8]
        h = tf.reshape(features, [1, 128])
        loc = tf.matmul(h, tf.constant((rng.standard_normal((128, n * 4)) * 0.05).astype(np.float32)))
        tf.identity(loc, name=BARRIER_OUTPUTS[0])
        logits = tf.matmul(h, tf.constant((rng.standard_normal((128, n * c)) * 0.8).astype(np.float32)))
        tf.reshape(tf.nn.softmax(tf.reshape(logits, [1, n, c])), [1, n * c], name=BARRIER_OUTPUTS[1])
        # priors made from the feature map's size, as a PriorBox layer does (a bare constant output is
        # dropped by TensorFlow's frontend: the stage refuses that case by name)
        cells = tf.cast(tf.shape(features)[1], tf.float32) / 4.0
        tf.identity(tf.constant(barrier_priors()) * cells, name=BARRIER_OUTPUTS[2])
    return graph


def barrier_priors() -> np.ndarray:
    """[1, 2, 32*4]: centre-size priors on a 4x4 grid (two sizes) as corners, then the variances."""
    boxes = []
    for row in range(4):
        for col in range(4):
            cx, cy = (col + 0.5) / 4, (row + 0.5) / 4
            for side in (0.3, 0.5):
                boxes.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    variances = np.tile(np.float32([0.1, 0.1, 0.2, 0.2]), len(boxes))
    return np.stack([np.float32(boxes).reshape(-1), variances])[None].astype(np.float32)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _prepare(case: str) -> None:
    """Build the graph of `case`, run it in TensorFlow, keep graph, config and values."""
    tf = _tf()
    folder = reference_dir()
    seed = sorted([*CASES, BARRIER]).index(case)
    rng = np.random.default_rng(100 + seed)
    if case == BARRIER:
        graph, name, read, config = _barrier_graph(seed), "Placeholder", [o + ":0" for o in BARRIER_OUTPUTS], \
            BARRIER_CONFIG
        x = rng.uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
        fed = (x[..., ::-1] - 127.5) / 127.5  # --reverse_input_channels --mean_values=127.5 --scale=127.5
    else:
        spec = CASES[case]
        graph, name, read, config = _yolo_graph(spec, seed), spec.input, list(spec.read), spec.config
        x = rng.uniform(0, 255, (1, spec.size, spec.size, 3)).astype(np.float32)
        fed = x[..., ::-1] / 255.0  # --reverse_input_channels --scale_values=<input>[255]
    with tf.compat.v1.Session(graph=graph) as sess:
        values = sess.run(read, {name + ":0": fed.astype(np.float32)})
    np.savez(folder / f"stages-{case}.npz", x=x, **{f"t{i}": v for i, v in enumerate(values)})
    if config is not None:
        _write(folder / f"stages-{case}.json", json.dumps([config], indent=1).encode())
    _write(folder / f"stages-{case}.pb", graph.as_graph_def().SerializeToString(deterministic=True))


def files(case: str) -> tuple[Path, Path | None, dict[str, np.ndarray]]:
    """(graph, the config it downloads or None, TensorFlow's values) of a case, built once per folder."""
    pb = reference_dir() / f"stages-{case}.pb"
    if not pb.exists() and can_prepare():
        _prepare(case)
    _require(pb)
    has_config = case == BARRIER or CASES[case].config is not None
    config = _require(reference_dir() / f"stages-{case}.json") if has_config else None
    with np.load(_require(reference_dir() / f"stages-{case}.npz")) as data:
        values = {k: data[k] for k in data.files}
    return pb, config, values
