"""The rebuilt RetinaNet graph: node names, shapes, TF's detections vs the numpy reference,
determinism, and Keras .h5 weights mapped by layer name."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import one_error_line, run_tool, sha384

from modelzoo.reference import postprocess, retinanet

SIZE = 256


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """retinanet-tf at 256x256 with random weights (seed 0), built by the real CLI."""
    folder = tmp_path_factory.mktemp("reference")
    pb = folder / "retinanet_resnet50_coco_best_v2.1.0.pb"
    result = run_tool("reproduce", "retinanet-tf", "--random-weights", "--seed", "0", "--input-size", SIZE,
                      "-o", pb, "--zoo", folder / "zoo", timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"SHA-384 {sha384(pb.read_bytes())}" in result.stdout
    return pb


def load_graph(pb):
    return (retinanet._tf(), *retinanet.load_pb(pb))


def test_node_names_and_shapes(built):
    tf, graph_def, graph = load_graph(built)
    names = {n.name for n in graph_def.node}
    for name in (retinanet.INPUT_NAME, *retinanet.START_POINTS, *retinanet.OUTPUT_NAMES):
        assert name in names, name
    # Keras layer names, so that published weights map onto the graph
    for layer in ("conv1/kernel", "bn_conv1/gamma", "res2a_branch2a/kernel", "res5c_branch2c/kernel",
                  "C5_reduced/kernel", "P3/kernel", "P7/bias",
                  "regression_submodel/pyramid_regression_0/kernel",
                  "classification_submodel/pyramid_classification/bias"):
        assert layer in names, layer
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    assert [p.name for p in placeholders] == ["input_1"]
    shape = [d.size for d in placeholders[0].attr["shape"].shape.dim]
    assert shape == [1, SIZE, SIZE, 3]
    assert sum(1 for n in graph_def.node if n.op.startswith("NonMaxSuppression")) == retinanet.NUM_CLASSES
    with tf.compat.v1.Session(graph=graph) as sess:
        boxes, scores, labels = sess.run([n + ":0" for n in retinanet.OUTPUT_NAMES],
                                         {"input_1:0": np.zeros((1, SIZE, SIZE, 3), np.float32)})
    assert boxes.shape == (1, 300, 4) and scores.shape == (1, 300) and labels.shape == (1, 300)
    assert labels.dtype == np.int32
    # about the published file's size: the same architecture, the same number of weights
    assert 150_000_000 < built.stat().st_size < 155_000_000


def test_tf_detections_equal_the_numpy_reference(built):
    tf, _, graph = load_graph(built)
    image = retinanet.preprocess(retinanet.test_picture(SIZE))[None]
    fetch = ["regression/concat:0", "classification/concat:0", "anchors/concat:0",
             *(n + ":0" for n in retinanet.OUTPUT_NAMES)]
    with tf.compat.v1.Session(graph=graph) as sess:
        regression, classification, anchors, boxes, scores, labels = sess.run(fetch, {"input_1:0": image})
    np.testing.assert_allclose(anchors[0], retinanet.all_anchors(SIZE), atol=1e-3)
    ref_boxes, ref_scores, ref_labels = postprocess.detect(regression[0], classification[0], anchors[0], SIZE)
    n = int((scores[0] > 0).sum())
    assert 30 <= n < 300, f"{n} detections: random weights should give some, not a flood"
    np.testing.assert_array_equal(labels[0], ref_labels)
    np.testing.assert_allclose(scores[0], ref_scores, atol=1e-6)
    np.testing.assert_allclose(boxes[0], ref_boxes, atol=1e-4)
    # boxes are [x1, y1, x2, y2] pixels, clipped to the image
    valid = boxes[0][:n]
    assert (valid >= 0).all() and (valid <= SIZE - 1).all()
    assert (valid[:, 2] >= valid[:, 0]).all() and (valid[:, 3] >= valid[:, 1]).all()


def test_same_seed_same_bytes_other_seed_other_bytes(built, tmp_path):
    again = tmp_path / "again.pb"
    assert run_tool("reproduce", "retinanet-tf", "--random-weights", "--seed", "0", "--input-size", SIZE,
                    "-o", again, timeout=600).returncode == 0
    assert sha384(again.read_bytes()) == sha384(built.read_bytes())
    other = tmp_path / "other.pb"
    assert run_tool("reproduce", "retinanet-tf", "--random-weights", "--seed", "1", "--input-size", SIZE,
                    "-o", other, timeout=600).returncode == 0
    assert sha384(other.read_bytes()) != sha384(built.read_bytes())


def write_keras_h5(path, weights):
    """The layout Keras' model.save() gives: model_weights/<layer>/<layer>/<name>:0, and the
    submodels' layers inside the submodel's group."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights")
        for layer, params in weights.items():
            if layer.startswith("pyramid_"):
                group = root.require_group(layer.split("_")[1] + "_submodel").require_group(layer)
            else:
                group = root.require_group(layer).require_group(layer)
            for name, array in params.items():
                group.create_dataset(f"{name}:0", data=array)


def test_h5_weights_are_mapped_by_layer_name(tmp_path):
    rng = np.random.default_rng(5)
    weights = {}
    for p in retinanet.weight_spec():
        scale = 0.01 if p.name == "kernel" else 1.0
        value = rng.standard_normal(p.shape).astype(np.float32) * scale
        if p.name == "moving_variance":
            value = np.abs(value) + 0.5
        weights.setdefault(p.layer, {})[p.name] = value
    h5 = tmp_path / "resnet50_coco_best_v2.1.0.h5"
    write_keras_h5(h5, weights)
    pb = tmp_path / "from_h5.pb"
    result = run_tool("reproduce", "retinanet-tf", "--weights", h5, "--input-size", 128, "-o", pb, timeout=600)
    assert result.returncode == 0, result.stderr
    _, graph_def, _ = load_graph(pb)
    tf = retinanet._tf()
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    for node, (layer, name) in {"conv1/kernel": ("conv1", "kernel"),
                                "bn3a_branch1/moving_variance": ("bn3a_branch1", "moving_variance"),
                                "classification_submodel/pyramid_classification/bias":
                                    ("pyramid_classification", "bias")}.items():
        value = tf.make_ndarray(consts[node].attr["value"].tensor)
        np.testing.assert_array_equal(value, weights[layer][name])


def test_h5_with_a_missing_layer_is_one_clear_error(tmp_path):
    weights = retinanet._initial_weights(0)
    del weights["P4"]
    h5 = tmp_path / "broken.h5"
    write_keras_h5(h5, weights)
    result = run_tool("reproduce", "retinanet-tf", "--weights", h5, "--input-size", 128, "-o", tmp_path / "x.pb")
    assert result.returncode == 1
    assert one_error_line(result) == f"modelzoo-reproduce: error: {h5}: no weight P4/kernel"
    assert not (tmp_path / "x.pb").exists()


@pytest.mark.slow
def test_full_size_build(tmp_path):
    pb = tmp_path / "full.pb"
    result = run_tool("reproduce", "retinanet-tf", "--random-weights", "-o", pb, timeout=1800)
    assert result.returncode == 0, result.stderr
    _, graph_def, _ = load_graph(pb)
    placeholder = next(n for n in graph_def.node if n.op == "Placeholder")
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [1, 1333, 1333, 3]
