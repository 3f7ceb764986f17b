"""Cuts and frozen inputs with the ovc backend (convert/cuts.py, openvino.frontend), through the real
converter, compared with TensorFlow's own outputs on tiny synthetic graphs.

The graphs and TensorFlow's outputs are made by the run that has TensorFlow (the main environment)
and shared through $MODELZOO_OVC_REFERENCE (ovc_reference.py), so that the environment with only
today's OpenVINO (.venv-torch in CI) converts the same graphs and compares with the same numbers.

    x [1,4,4,3] -> sub (x - 1) -> mul_1 (2 * sub) -> conv -> split (2 halves: split:0, split:1)
    phase_train (bool) picks split:1 * 2 or split:1 * 3 -> sel;  y = split:0 * sel
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from conftest import run_tool, write_model
from ovc_reference import _require, can_prepare, reference_dir

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def cut_graphs() -> tuple[Path, Path, dict[str, np.ndarray]]:
    """(the graph, the same graph where `sub` also feeds another node, TensorFlow's outputs)."""
    folder = reference_dir()
    pb, shared, npz = folder / "cuts.pb", folder / "cuts-shared.pb", folder / "cuts.npz"
    if not npz.exists() and can_prepare():
        from modelzoo.reference import retinanet

        tf = retinanet._tf()
        rng = np.random.default_rng(3)
        kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
        graphs = {}
        for name, extra_consumer in (("cuts", False), ("cuts-shared", True)):
            graph = tf.Graph()
            with graph.as_default():
                x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 3], name="x")
                phase = tf.compat.v1.placeholder(tf.bool, [], name="phase_train")
                sub = tf.subtract(x, 1.0, name="sub")
                mul = tf.multiply(tf.constant(2.0), sub, name="mul_1")
                conv = tf.nn.conv2d(mul, tf.constant(kernel), strides=1, padding="SAME", name="conv")
                a, b = tf.split(conv, 2, axis=3, name="split")
                sel = tf.where(phase, b * 2.0, b * 3.0, name="sel")
                y = tf.multiply(a, sel, name="y")
                if extra_consumer:
                    y = tf.add(y, tf.reduce_sum(tf.add(sub, 3.0, name="other")), name="y2")
            graphs[name] = graph
        x_value = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
        sub_value = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
        half = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
        with tf.compat.v1.Session(graph=graphs["cuts"]) as sess:
            out = {
                "x": x_value, "sub": sub_value, "half": half,
                "y_false": sess.run("y:0", {"x:0": x_value, "phase_train:0": False}),
                "y_true": sess.run("y:0", {"x:0": x_value, "phase_train:0": True}),
                "y_cut": sess.run("y:0", {"sub:0": sub_value, "phase_train:0": False}),
                "y_split": sess.run("y:0", {"x:0": x_value, "split:1": half, "phase_train:0": True}),
                "conv": sess.run("conv:0", {"x:0": x_value}),
            }
        for name, graph in graphs.items():
            (folder / f"{name}.pb").write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))
        np.savez(npz, **out)
    with np.load(_require(npz)) as data:
        return _require(pb), _require(shared), {k: data[k] for k in data.files}


def convert(tmp_path: Path, name: str, graph: Path, mo_args: list[str], **extra):
    """A zoo with one model whose graph is already in the download folder; convert it with ovc."""
    zoo, dl, ir = tmp_path / "zoo", tmp_path / "dl", tmp_path / "ir"
    target = dl / "public" / name / "graph.pb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(graph.read_bytes())
    write_model(zoo, name, [{"name": "graph.pb", "data": target.read_bytes(), "url": "http://127.0.0.1:9/graph.pb"}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/graph.pb", *mo_args], **extra)
    result = run_tool("converter", "--models_dir", zoo, "--name", name, "-d", dl, "-o", ir, "--backend", "ovc",
                      "--precisions", "FP32", timeout=600)
    return result, ir / "public" / name / "FP32" / f"{name}.xml"


def run(xml: Path, *inputs: np.ndarray) -> np.ndarray:
    return ov.Core().compile_model(str(xml), "CPU", F32)(list(inputs))[0]


def close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_frozen_placeholder_is_folded_and_gone(tmp_path):
    pb, _, tf_out = cut_graphs()
    for value, key in (("False", "y_false"), ("True", "y_true")):
        result, xml = convert(tmp_path / value, "frozen", pb, [f"--freeze_placeholder_with_value=phase_train->{value}",
                                                              "--output=y"])
        assert result.returncode == 0, result.stderr
        assert "freeze={'phase_train': '" + value + "'}" in result.stdout
        model = ov.Core().read_model(str(xml))
        assert [sorted(p.get_names()) for p in model.inputs] == [["x", "x:0"]]
        close(run(xml, tf_out["x"]), tf_out[key])


def test_frozen_input_listed_in_input_info_as_facenet_does(tmp_path):
    pb, _, tf_out = cut_graphs()
    result, xml = convert(tmp_path, "facenet-like", pb, ["--freeze_placeholder_with_value=phase_train->False",
                                                          "--output=y"],
                          input_info=[{"name": "x", "shape": [1, 4, 4, 3], "layout": "NHWC"},
                                      {"name": "phase_train", "shape": [1]}])
    assert result.returncode == 0, result.stderr
    assert [sorted(p.get_names()) for p in ov.Core().read_model(str(xml)).inputs] == [["x", "x:0"]]
    close(run(xml, tf_out["x"]), tf_out["y_false"])


def test_cut_at_an_input_port_keeps_mos_name(tmp_path):
    pb, _, tf_out = cut_graphs()
    result, xml = convert(tmp_path, "port-cut", pb, ["--freeze_placeholder_with_value=phase_train->False",
                                                      "--output=y"],
                          input_info=[{"name": "1:mul_1", "shape": [1, 4, 4, 3], "layout": "NHWC"}])
    assert result.returncode == 0, result.stderr
    model = ov.Core().read_model(str(xml))
    assert [sorted(p.get_names()) for p in model.inputs] == [["1:mul_1"]]  # as mo named it
    assert model.inputs[0].get_partial_shape() == ov.PartialShape([1, 4, 4, 3])
    close(run(xml, tf_out["sub"]), tf_out["y_cut"])


def test_cut_at_an_output_port_and_an_inner_output(tmp_path):
    pb, _, tf_out = cut_graphs()
    result, xml = convert(tmp_path / "a", "out-port", pb, ["--input=x,split:1[1,4,4,2],phase_train->True",
                                                         "--output=y"])
    assert result.returncode == 0, result.stderr
    model = ov.Core().read_model(str(xml))
    assert [sorted(p.get_names()) for p in model.inputs] == [["x", "x:0"], ["split:1"]]
    close(run(xml, tf_out["x"], tf_out["half"]), tf_out["y_split"])
    result, xml = convert(tmp_path / "b", "inner-output", pb, ["--input=x", "--output=conv"])
    assert result.returncode == 0, result.stderr
    close(run(xml, tf_out["x"]), tf_out["conv"])


def test_a_port_cut_whose_tensor_has_other_consumers_is_refused_by_name(tmp_path):
    _, shared, _ = cut_graphs()
    result, xml = convert(tmp_path, "shared", shared, ["--freeze_placeholder_with_value=phase_train->False",
                                                        "--output=y2"],
                          input_info=[{"name": "1:mul_1", "shape": [1, 4, 4, 3]}])
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert "'1:mul_1': the tensor feeding input 1 of mul_1 also feeds other" in lines[0], lines[0]
    assert not xml.exists()


def test_a_value_that_is_not_of_the_inputs_type_is_refused(tmp_path):
    pb, _, _ = cut_graphs()
    result, xml = convert(tmp_path, "bad-value", pb, ["--freeze_placeholder_with_value=phase_train->maybe",
                                                       "--output=y"])
    assert result.returncode == 1
    assert "phase_train->maybe: not a value of type bool" in result.stderr.splitlines()[0]
    assert not xml.exists()


def test_a_value_of_another_size_than_the_input_is_refused(tmp_path):
    pb, _, _ = cut_graphs()
    result, xml = convert(tmp_path, "bad-size", pb, ["--freeze_placeholder_with_value=x->[1]", "--output=y"])
    assert result.returncode == 1
    assert "x->[1]: 1 value(s) for an input of shape [1,4,4,3]" in result.stderr.splitlines()[0]
    assert not xml.exists()


def test_an_inner_input_without_a_shape_is_refused_by_name(tmp_path):
    pb, _, _ = cut_graphs()
    result, xml = convert(tmp_path, "no-shape", pb, ["--input=x,split:1,phase_train->True", "--output=y"])
    assert result.returncode == 1
    assert "'split:1': a cut needs its shape" in result.stderr.splitlines()[0]
    assert not xml.exists()
