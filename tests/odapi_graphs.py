"""Small TensorFlow graphs with the Object Detection API's interface, for the output-stage tests.

A real OD API frozen graph is hundreds of MB; these carry what the ovc output stages read: an
`image_tensor` uint8 placeholder cast to float (as the OD API's `ToFloat`), a few convolutions,
and the four (five) output tensors under their OD API names, made by real post-processing ops
(sigmoid scores, `NonMaxSuppressionV4` padded to the max detections, `CropAndResize` for masks):

    detection_boxes   [1,N,4]   [y_min, x_min, y_max, x_max], normalised to [0,1], zero rows after the last
    detection_scores  [1,N]     best first, zero after the last
    detection_classes [1,N]     1-based class ids (float), zero after the last
    num_detections    [1]       float
    detection_masks   [1,N,M,M] (Mask R-CNN) sigmoid of the mask of each detection's class

`odapi_pb` builds one (TensorFlow needed), `tf_outputs` runs it in TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def _tf():
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    return tf


def odapi_graph_def(seed: int, num_classes: int = 90, max_detections: int = 100, mask_size: int = 0) -> bytes:
    """The serialized GraphDef: anchors from a stride-32 feature map, one box and `num_classes`
    sigmoid scores per anchor, NMS over the best class (at most `max_detections`, IoU 0.3,
    score 0.3). mask_size > 0 adds `detection_masks` (Mask R-CNN)."""
    tf = _tf()
    rng = np.random.default_rng(seed)
    graph = tf.Graph()

    def weights(*shape: int, scale: float = 0.3) -> object:
        return tf.constant((rng.standard_normal(shape) * scale).astype(np.float32))

    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        x = tf.cast(image, tf.float32, name="ToFloat")
        x = tf.subtract(x * (2.0 / 255.0), 1.0, name="Preprocessor/sub")
        f = tf.nn.relu(tf.nn.conv2d(x, weights(3, 3, 3, 8), strides=4, padding="SAME"))
        f = tf.nn.relu(tf.nn.conv2d(f, weights(3, 3, 8, 16), strides=2, padding="SAME"), name="features")
        f = tf.nn.avg_pool2d(f, 4, 4, padding="SAME")
        raw = tf.reshape(tf.nn.conv2d(f, weights(1, 1, 16, 4), strides=1, padding="SAME"), [-1, 4])
        centre = tf.sigmoid(raw[:, :2])
        half = 0.05 + 0.2 * tf.sigmoid(raw[:, 2:])
        boxes = tf.clip_by_value(tf.concat([centre - half, centre + half], axis=1), 0.0, 1.0)  # y/x order
        logits = tf.nn.conv2d(f, weights(1, 1, 16, num_classes, scale=0.02), strides=1, padding="SAME")
        scores = tf.sigmoid(tf.reshape(logits, [-1, num_classes]))
        best = tf.reduce_max(scores, axis=1)
        label = tf.argmax(scores, axis=1, output_type=tf.int32)
        keep, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=boxes, scores=best, max_output_size=max_detections, iou_threshold=0.3, score_threshold=0.3,
            pad_to_max_output_size=True)
        valid = tf.cast(tf.range(max_detections) < count, tf.float32)
        kept_boxes = tf.gather(boxes, keep) * valid[:, None]
        tf.expand_dims(kept_boxes, 0, name="detection_boxes")
        tf.expand_dims(tf.gather(best, keep) * valid, 0, name="detection_scores")
        kept_label = tf.gather(label, keep)
        tf.expand_dims(tf.cast(kept_label + 1, tf.float32) * valid, 0, name="detection_classes")
        tf.reshape(tf.cast(count, tf.float32), [1], name="num_detections")
        if mask_size:
            crops = tf.image.crop_and_resize(f, kept_boxes, tf.zeros([max_detections], tf.int32),
                                             [mask_size, mask_size], name="CropAndResize_1")
            per_class = tf.nn.conv2d(crops, weights(3, 3, 16, num_classes), strides=1, padding="SAME")
            chosen = tf.gather(tf.transpose(per_class, [0, 3, 1, 2]), kept_label, batch_dims=1)  # [N,M,M]
            tf.expand_dims(tf.sigmoid(chosen), 0, name="detection_masks")
    return graph.as_graph_def().SerializeToString(deterministic=True)


def odapi_pb(path: Path, seed: int, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(odapi_graph_def(seed, **kwargs))
    return path


def tf_outputs(pb: Path, image: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """TensorFlow's values of `names` for one uint8 picture [H,W,3]."""
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        values = sess.run([n + ":0" for n in names], {"image_tensor:0": image[None]})
    return dict(zip(names, values))


# ----------------------------------------------------------------------------------------------
# AutoML EfficientDet (front/tf/automl_efficientdet.json)

EFFDET_CLASSES = 90
EFFDET_RATIOS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))


def automl_anchors(size: int, levels: range = range(3, 8), num_scales: int = 3,
                   anchor_scale: float = 4.0) -> np.ndarray:
    """AutoML's anchors [A,4] (y_min, x_min, y_max, x_max), normalised: per level, per feature-map
    cell (rows, then columns), per octave scale, per aspect ratio (x, y)."""
    out = []
    for level in levels:
        stride = 2 ** level
        cells = -(-size // stride)
        centres = (np.arange(cells) + 0.5) * stride
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        per_cell = []
        for octave in range(num_scales):
            base = anchor_scale * stride * 2 ** (octave / num_scales)
            for rx, ry in EFFDET_RATIOS:
                hx, hy = base * rx / 2, base * ry / 2
                per_cell.append(np.stack([cy - hy, cx - hx, cy + hy, cx + hx], axis=-1))
        out.append(np.stack(per_cell, axis=2).reshape(-1, 4))
    return (np.concatenate(out) / size).astype(np.float32)


def efficientdet_graph_def(seed: int, size: int) -> bytes:
    """An AutoML-EfficientDet-shaped graph: `image_arrays` (uint8) -> `strided_slice_1` ->
    convert_image / `sub` / `truediv` -> resize and pad to `size` -> convolutions to five levels
    (strides 8..128) -> per level `class_net/class-predict*/BiasAdd` and (shared weights)
    `box_net/box-predict*/BiasAdd` -> `concat` [1,A,90] and `concat_1` [1,A,4] (dy, dx, dh, dw)
    -> decoding and `CombinedNonMaxSuppression` (which OpenVINO does not convert) -> `detections`
    [1,100,7] (image_id, y_min, x_min, y_max, x_max in pixels, score, class 1-based)."""
    tf = _tf()
    rng = np.random.default_rng(seed)
    graph = tf.Graph()

    def weights(*shape: int, scale: float = 0.3) -> object:
        return tf.constant((rng.standard_normal(shape) * scale).astype(np.float32))

    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name="image_arrays")
        raw = tf.strided_slice(image, [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1], begin_mask=14, end_mask=14,
                               shrink_axis_mask=1, name="strided_slice_1")
        x = tf.multiply(tf.cast(raw, tf.float32, name="convert_image/Cast"), 1 / 255, name="convert_image")
        x = tf.subtract(x, [0.485, 0.456, 0.406], name="sub")
        x = tf.truediv(x, [0.229, 0.224, 0.225], name="truediv")
        hw = tf.cast(tf.shape(x)[:2], tf.float32)
        scale = size / tf.reduce_max(hw)
        resized = tf.compat.v1.image.resize_bilinear(x[None], tf.cast(tf.round(hw * scale), tf.int32))
        padded = tf.image.pad_to_bounding_box(resized, 0, 0, size, size)
        he3, he8 = (2 / 27) ** 0.5, (2 / 72) ** 0.5  # (He's initialisation: features stay of order 1)
        f = tf.nn.relu(tf.nn.conv2d(padded, weights(3, 3, 3, 8, scale=he3), strides=2, padding="SAME"))  # stem: 1/2
        f = tf.nn.relu(tf.nn.conv2d(f, weights(3, 3, 8, 8, scale=he8), strides=4, padding="SAME"))  # 1/8
        box_kernel, box_bias = weights(3, 3, 8, 36, scale=0.05), weights(36, scale=0.1)
        classes, boxes = [], []
        channels = np.zeros((1, 1, 1, 9 * EFFDET_CLASSES), np.float32)
        channels[..., rng.choice(9 * EFFDET_CLASSES, 8, replace=False)] = 1
        for level in range(5):
            if level:
                f = tf.nn.relu(tf.nn.conv2d(f, weights(3, 3, 8, 8, scale=he8), strides=2, padding="SAME"))
            suffix = f"_{level}" if level else ""
            raw = tf.nn.conv2d(f, weights(3, 3, 8, 9 * EFFDET_CLASSES, scale=0.2), 1, "SAME")
            # few candidates, whatever the seed: scores near 0.2 only at a few (cell, anchor, class)
            cells = -(-size // 2 ** (3 + level))
            live = tf.constant((rng.random((1, cells, cells, 1)) < 0.001).astype(np.float32)) * channels
            logits = tf.nn.bias_add(live * (raw + 6.8), tf.constant(np.full(9 * EFFDET_CLASSES, -8.0, np.float32)),
                                    name=f"class_net/class-predict{suffix}/BiasAdd")
            deltas = tf.nn.bias_add(tf.nn.conv2d(f, box_kernel, 1, "SAME"), box_bias,
                                    name=f"box_net/box-predict{suffix}/BiasAdd")
            classes.append(tf.reshape(logits, [1, -1, EFFDET_CLASSES]))
            boxes.append(tf.reshape(deltas, [1, -1, 4]))
        logits = tf.concat(classes, 1, name="concat")
        deltas = tf.concat(boxes, 1, name="concat_1")
        anchors = tf.constant(automl_anchors(size))
        ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        yc, xc = anchors[:, 0] + ha / 2, anchors[:, 1] + wa / 2
        dy, dx, dh, dw = (deltas[0, :, i] for i in range(4))
        h, w = tf.exp(dh) * ha, tf.exp(dw) * wa
        cy, cx = dy * ha + yc, dx * wa + xc
        decoded = tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)
        nms = tf.image.combined_non_max_suppression(decoded[None, :, None, :], tf.sigmoid(logits), 100, 100,
                                                    iou_threshold=0.6, score_threshold=0.2, clip_boxes=False)
        tf.identity(nms.valid_detections, name="valid_detections")
        tf.concat([tf.zeros([1, 100, 1]), nms.nmsed_boxes * size, nms.nmsed_scores[..., None],
                   nms.nmsed_classes[..., None] + 1], axis=2, name="detections")
    return graph.as_graph_def().SerializeToString(deterministic=True)


def tf_run(pb: Path, feed: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """TensorFlow's values of `names` (tensor :0) for `feed` (tensor name -> value)."""
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(pb.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        values = sess.run([n + ":0" for n in names], {k + ":0": v for k, v in feed.items()})
    return dict(zip(names, values))
