"""The converter, end to end through the real CLIs, the real Model Optimizer and the real
OpenVINO runtime: the rebuilt retinanet-tf (256x256) is served from loopback, downloaded with
verification, converted once to FP32 and FP16, and its IR is checked against TensorFlow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.tools.mo  # noqa: F401  (these tests need the 'mo' extra; CI installs it)
import pytest
from conftest import one_error_line, run_tool, sha384, write_model
from ovc_reference import download_reference, retinanet_pb, store_mo_ir

from modelzoo.reference import postprocess, retinanet
from modelzoo.reference.zoo import PB_NAME, write_reference_zoo

SIZE = 256
MODEL = "public/retinanet-tf"


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """Build, serve, download (verified), convert. Returns the folders and the converter's output."""
    root = tmp_path_factory.mktemp("pipeline")
    pb = retinanet_pb()  # built by the reproduce CLI, shared with test_ovc.py and the run without mo
    zoo, dl = download_reference(pb, root)
    assert sha384((dl / MODEL / PB_NAME).read_bytes()) == sha384(pb.read_bytes())
    ir = root / "ir"
    convert = run_tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir, timeout=900)
    assert convert.returncode == 0, convert.stderr
    store_mo_ir(ir / MODEL)  # for test_ovc.py, here and in the run without mo
    return {"root": root, "zoo": zoo, "dl": dl, "ir": ir, "pb": pb, "convert": convert}


def compiled(path: Path):
    core = ov.Core()
    return core.read_model(str(path)), core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def test_ir_layout_and_interface(pipeline):
    ir = pipeline["ir"] / MODEL
    assert sorted(p.name for p in ir.iterdir()) == ["FP16", "FP32"]  # no staging folder left
    for precision in ("FP32", "FP16"):
        assert sorted(p.name for p in (ir / precision).iterdir()) == ["retinanet-tf.bin", "retinanet-tf.xml"]
        model, _ = compiled(ir / precision / "retinanet-tf.xml")
        [inp] = model.inputs
        assert inp.get_any_name() == "input_1" and list(inp.get_shape()) == [1, SIZE, SIZE, 3]
        [out] = model.outputs
        assert list(out.get_shape()) == [1, 1, 300, 7]
        producer = out.get_node().input_value(0).get_node()
        assert producer.get_type_name() == "DetectionOutput"
        assert "filtered_detections/map/TensorArrayStack/TensorArrayGatherV3" in out.get_names()
    # FP32 really is FP32: mo would have compressed it to FP16 by default
    fp32 = (ir / "FP32/retinanet-tf.bin").stat().st_size
    fp16 = (ir / "FP16/retinanet-tf.bin").stat().st_size
    assert fp32 > 1.9 * fp16
    types = {op.get_output_element_type(0).get_type_name() for op in ov.Core().read_model(
        str(ir / "FP32/retinanet-tf.xml")).get_ops() if op.get_type_name() == "Constant"}
    assert "f16" not in types


def tf_outputs(pb: Path, image: np.ndarray):
    tf = retinanet._tf()
    _, graph = retinanet.load_pb(pb)
    fetch = ["regression/concat:0", "classification/concat:0", "anchors/concat:0",
             *(n + ":0" for n in retinanet.OUTPUT_NAMES)]
    with tf.compat.v1.Session(graph=graph) as sess:
        return [a[0] for a in sess.run(fetch, {"input_1:0": retinanet.preprocess(image)[None]})]


def normalised(boxes: np.ndarray, clipped_at: float) -> np.ndarray:
    """TF pixel boxes -> the IR's [0, 1] boxes (TF clips at side-1, which the IR calls 1.0)."""
    out = boxes / SIZE
    return np.where(boxes >= clipped_at - 1e-4, 1.0, out)


def match(detection: np.ndarray, labels, scores, boxes, tol: float) -> bool:
    same = (labels == int(detection[1])) & (np.abs(scores - detection[2]) <= tol)
    return bool((same & np.all(np.abs(boxes - detection[3:7]) <= tol, axis=1)).any())


@pytest.mark.parametrize("precision,tol,need", [("FP32", 1e-3, 95), ("FP16", 2e-2, 90)])
def test_ir_computes_what_tensorflow_computes(pipeline, precision, tol, need):
    image = retinanet.test_picture(SIZE)
    regression, classification, anchors, boxes, scores, labels = tf_outputs(pipeline["pb"], image)
    n_tf = int((scores > retinanet.SCORE_THRESHOLD).sum())
    tf_boxes = normalised(boxes[:n_tf], SIZE - 1)

    # the same post-processing in the IR's own order (clip after NMS, 6000 per class): it explains
    # every place where the IR may differ from the Keras graph
    ir_b, ir_s, ir_l = postprocess.detect_ir_order(regression, classification, anchors, SIZE)
    n_ref = int((ir_s > retinanet.SCORE_THRESHOLD).sum())
    ref_boxes = ir_b[:n_ref] / SIZE

    _, model = compiled(pipeline["ir"] / MODEL / precision / "retinanet-tf.xml")
    # the IR takes raw BGR pixels: the descriptor's mean values are folded into it
    out = model(image[None].astype(np.float32))[0][0, 0]
    dets = out[(out[:, 0] >= 0) & (out[:, 2] > retinanet.SCORE_THRESHOLD)]
    assert abs(len(dets) - n_tf) <= 0.05 * n_tf, (len(dets), n_tf)
    assert len(dets) >= 100
    top = dets[np.argsort(-dets[:, 2], kind="stable")[:100]]
    assert (top[:, 0] == 0).all()
    assert ((top[:, 3:] >= 0) & (top[:, 3:] <= 1)).all()

    in_tf = [match(d, labels[:n_tf], scores[:n_tf], tf_boxes, tol) for d in top]
    explained = [match(d, ir_l[:n_ref], ir_s[:n_ref], ref_boxes, tol) for d in top]
    assert sum(in_tf) >= need, f"{sum(in_tf)} of the IR's top 100 are TensorFlow detections"
    unexplained = [d for d, a, b in zip(top, in_tf, explained) if not a and not b]
    assert unexplained == [], "IR detections that neither TF nor the IR-order reference produce"
    if precision == "FP32":
        # the few that differ differ by design: they are the IR-order reference's, not TF's
        assert all(explained), "every FP32 IR detection is the IR-order reference's"


def conversion_command(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("Conversion command:"))


def conversion_commands(output: str) -> list[str]:
    """Every command printed, with this run's own staging folder name masked."""
    return [re.sub(r"/\.converting-[^/]+/", "/.converting-*/", line) for line in output.splitlines()
            if line.startswith("Conversion command:")]


def tree(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_dry_run_prints_the_command_of_the_real_run(pipeline, tmp_path):
    before = tree(pipeline["ir"])
    result = run_tool("converter", "--models_dir", pipeline["zoo"], "--name", "retinanet-tf", "-d", pipeline["dl"],
                      "-o", pipeline["ir"], "--dry_run")
    assert result.returncode == 0, result.stderr
    assert conversion_command(result.stdout) == conversion_command(pipeline["convert"].stdout)
    command = conversion_command(result.stdout)
    for arg in ("--input=input_1", "--compress_to_fp16=False", f"--input_shape=[1,{SIZE},{SIZE},3]",
                f"--input_model={pipeline['dl'] / MODEL / PB_NAME}", "/front/tf/retinanet.json"):
        assert arg in command
    assert tree(pipeline["ir"]) == before  # the real run's IR is untouched: same files, sizes, times
    # a dry run with an output folder of its own does not even create it
    out = tmp_path / "ir"
    result = run_tool("converter", "--models_dir", pipeline["zoo"], "--name", "retinanet-tf", "-d", pipeline["dl"],
                      "-o", out, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "(dry run) Converting retinanet-tf" in result.stdout
    assert not out.exists()


def test_missing_download_is_an_error_before_mo(pipeline, tmp_path):
    result = run_tool("converter", "--models_dir", pipeline["zoo"], "--name", "retinanet-tf", "-d",
                      tmp_path / "empty", "-o", tmp_path / "ir")
    assert result.returncode == 1
    assert (f"--input_model: {tmp_path / 'empty' / MODEL / PB_NAME} does not exist (run the downloader first)"
            in result.stderr)
    assert "[ ERROR ]" not in result.stderr  # mo never started
    assert not (tmp_path / "ir" / MODEL / "FP32").exists()


def test_broken_pb_gives_a_clear_error_and_no_ir(pipeline, tmp_path):
    broken = pipeline["pb"].read_bytes()[:5_000_000]
    zoo = tmp_path / "zoo"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / PB_NAME).write_bytes(broken)
    write_reference_zoo(tmp_path / "src" / PB_NAME, zoo, SIZE, source_url="http://127.0.0.1:9/unused")
    dl = tmp_path / "dl"
    shutil.copytree(tmp_path / "src", dl / MODEL)
    ir = tmp_path / "ir"
    # an earlier good IR must survive a failed conversion
    shutil.copytree(pipeline["ir"] / MODEL / "FP32", ir / MODEL / "FP32")
    result = run_tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir, timeout=600)
    assert result.returncode == 1
    assert "ERROR ]  Cannot load input model" in result.stderr  # the Model Optimizer's own words
    assert "modelzoo-converter: error: retinanet-tf: the Model Optimizer failed" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "modelzoo-converter: failed: retinanet-tf"
    assert sorted(p.name for p in (ir / MODEL).iterdir()) == ["FP32"]
    assert (ir / MODEL / "FP32/retinanet-tf.bin").read_bytes() == \
        (pipeline["ir"] / MODEL / "FP32/retinanet-tf.bin").read_bytes()


def test_external_mo_runs_once_per_precision(pipeline, tmp_path):
    mo = shutil.which("mo", path=os.path.dirname(sys.executable))
    assert mo, "openvino-dev installs the mo command"
    ir = tmp_path / "ir"
    args = ["--models_dir", pipeline["zoo"], "--name", "retinanet-tf", "-d", pipeline["dl"], "-o", ir, "--mo", mo]
    dry = run_tool("converter", *args, "--dry_run")
    assert dry.returncode == 0, dry.stderr
    result = run_tool("converter", *args, timeout=900)
    assert result.returncode == 0, result.stderr
    commands = conversion_commands(result.stdout)
    assert commands == conversion_commands(dry.stdout)  # the same commands but for the staging name
    assert len(commands) == 2
    for command, precision in zip(commands, ("FP32", "FP16")):
        assert command.startswith(f"Conversion command: {sys.executable} -- {mo} ")
        assert f"--output_dir={ir / MODEL}/.converting-*/{precision}" in command
        assert command.endswith(f"--compress_to_fp16={precision == 'FP16'}")
        model, _ = compiled(ir / MODEL / precision / "retinanet-tf.xml")
        assert list(model.outputs[0].get_shape()) == [1, 1, 300, 7]
    assert sorted(p.name for p in (ir / MODEL).iterdir()) == ["FP16", "FP32"]
    fp32 = (ir / MODEL / "FP32/retinanet-tf.bin").stat().st_size
    assert fp32 == (pipeline["ir"] / MODEL / "FP32/retinanet-tf.bin").stat().st_size
    assert fp32 > 1.9 * (ir / MODEL / "FP16/retinanet-tf.bin").stat().st_size


def test_missing_python_for_the_external_mo(pipeline, tmp_path):
    result = run_tool("converter", "--models_dir", pipeline["zoo"], "--name", "retinanet-tf", "-d", pipeline["dl"],
                      "-o", tmp_path / "ir", "--mo", "/usr/bin/mo", "-p", "/nonexistent/python")
    assert result.returncode == 1
    assert one_error_line(result) == ("modelzoo-converter: error: cannot run the Model Optimizer with "
                                      "/nonexistent/python: No such file or directory")
    assert not (tmp_path / "ir").exists()


def test_without_the_convert_extra(tmp_path, zoo):
    """Hide openvino from a subprocess: the converter names the extra, the downloader still works."""
    fake = tmp_path / "fake"
    (fake / "openvino").mkdir(parents=True)
    (fake / "openvino" / "__init__.py").write_text("raise ImportError('hidden for this test')\n")
    write_model(zoo, "tiny", [{"name": "t.pb", "data": b"x", "url": "http://127.0.0.1:9/t.pb"}])
    env = {"PYTHONPATH": str(fake)}
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", tmp_path, env=env)
    assert result.returncode == 2
    assert "pip install 'modelzoo[convert]'" in one_error_line(result)
    result = run_tool("downloader", "--models_dir", zoo, "--print_all", env=env)
    assert result.returncode == 0 and result.stdout.split() == ["tiny"]


def tiny_tf_model(path: Path, seed: int) -> None:
    """A frozen TF graph with one convolution: quick to convert."""
    tf = retinanet._tf()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="x")
        kernel = tf.constant(np.random.default_rng(seed).standard_normal((3, 3, 3, 4)).astype(np.float32))
        tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), name="y")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph.as_graph_def().SerializeToString(deterministic=True))


def test_parallel_conversion_with_input_info_and_model_info(tmp_path, zoo, server):
    dl = tmp_path / "dl"
    for i in range(2):
        pb = dl / "public" / f"tiny{i}" / "tiny.pb"
        tiny_tf_model(pb, i)
        server.add(f"/tiny{i}.pb", pb.read_bytes())
        write_model(zoo, f"tiny{i}", [{"name": "tiny.pb", "data": pb.read_bytes(), "url": server.url(f"/tiny{i}.pb")}],
                    framework="tf", model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y"],
                    input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}],
                    model_info={"model_type": "tiny", "labels": ["a", "b"]})
    ir = tmp_path / "ir"
    dry = run_tool("converter", "--models_dir", zoo, "--all", "-d", dl, "-o", ir, "--dry_run")
    assert "--input=x" in dry.stdout and "'--layout=x(NHWC)'" in dry.stdout
    assert "'--input_shape=[1, 8, 8, 3]'" in dry.stdout
    result = run_tool("converter", "--models_dir", zoo, "--all", "-d", dl, "-o", ir, "-j", "2", timeout=600)
    assert result.returncode == 0, result.stderr
    core = ov.Core()
    for i in range(2):
        for precision in ("FP32", "FP16"):
            model = core.read_model(str(ir / f"public/tiny{i}/{precision}/tiny{i}.xml"))
            assert list(model.inputs[0].get_shape()) == [1, 8, 8, 3]
            assert model.get_rt_info(["model_info", "model_type"]).astype(str) == "tiny"


def test_same_ir_as_omz_converter(tmp_path, zoo, server):
    """One conversion saved twice gives what omz_converter's two Model Optimizer runs give."""
    import subprocess

    dl = tmp_path / "dl"
    pb = dl / "public" / "tiny" / "tiny.pb"
    tiny_tf_model(pb, 7)
    write_model(zoo, "tiny", [{"name": "tiny.pb", "data": pb.read_bytes(), "url": server.url("/tiny.pb")}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y",
                                                      "--mean_values=[1,2,3]"],
                input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    ours = run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", dl, "-o", tmp_path / "ours",
                    timeout=600)
    assert ours.returncode == 0, ours.stderr
    mo = shutil.which("mo", path=os.path.dirname(sys.executable))
    peer = subprocess.run([sys.executable, "-m", "modelzoo.devtools.peer", "converter", str(zoo), "--name", "tiny", "-d",
                           str(dl), "-o", str(tmp_path / "peer"), "--mo", mo], capture_output=True, text=True,
                          timeout=600)
    assert peer.returncode == 0, peer.stderr
    x = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    for precision in ("FP32", "FP16"):
        a = tmp_path / f"ours/public/tiny/{precision}/tiny.xml"
        b = tmp_path / f"peer/public/tiny/{precision}/tiny.xml"
        assert a.with_suffix(".bin").read_bytes() == b.with_suffix(".bin").read_bytes()
        out_a = compiled(a)[1](x)[0]
        out_b = compiled(b)[1](x)[0]
        np.testing.assert_array_equal(out_a, out_b)


def test_model_optimizer_runs_without_telemetry():
    """openvino_telemetry forks from a thread to send usage data (a deadlock seen here while
    TensorFlow was being imported): the Model Optimizer we run in-process, and any we start,
    must use mo's no-op stub instead."""
    import subprocess

    from modelzoo.convert.pipeline import child_env

    code = ("from modelzoo.convert.mo import disable_telemetry; disable_telemetry()\n"
            "import openvino.tools.mo.convert_impl as c; print(c.tm.__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "openvino.tools.mo.utils.telemetry_stub", result.stderr
    result = subprocess.run([sys.executable, "-c", "import openvino.tools.mo.convert_impl as c; print(c.tm.__name__)"],
                            capture_output=True, text=True, timeout=120, env=child_env())
    assert result.stdout.strip() == "openvino.tools.mo.utils.telemetry_stub", result.stderr


def test_two_concurrent_runs_into_the_same_output(tmp_path, zoo, server):
    """Each run stages into a folder of its own and swaps in under a lock on the model folder:
    both succeed, the IR in place is whole, and no staging or old folder is left."""
    dl = tmp_path / "dl"
    pb = dl / "public" / "tiny" / "tiny.pb"
    tiny_tf_model(pb, 3)
    write_model(zoo, "tiny", [{"name": "tiny.pb", "data": pb.read_bytes(), "url": server.url("/tiny.pb")}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y"])
    ir = tmp_path / "ir"
    cmd = [sys.executable, str(Path(__file__).resolve().parents[1] / "tools/downloader/converter.py"),
           "--models_dir", str(zoo), "--name", "tiny", "-d", str(dl), "-o", str(ir)]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(*p.communicate(timeout=600), p.returncode) for p in runs]  # (a wait() first, with full pipes, could hang)
    for out, err, code in results:
        assert code == 0, err
        assert "wrote " in out
    assert sorted(p.name for p in (ir / "public/tiny").iterdir()) == ["FP16", "FP32"]
    x = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    for precision in ("FP32", "FP16"):
        assert sorted(p.name for p in (ir / "public/tiny" / precision).iterdir()) == ["tiny.bin", "tiny.xml"]
        assert compiled(ir / f"public/tiny/{precision}/tiny.xml")[1](x)[0].shape == (1, 8, 8, 4)


def test_quiet_by_default_verbose_on_request(pipeline, tmp_path, zoo, server):
    """A new user sees our lines only: no Model Optimizer banners, no TensorFlow start-up lines
    (cuFFT/cuDNN/cuBLAS factories); --verbose shows them."""
    out = pipeline["convert"].stdout
    assert pipeline["convert"].stderr == ""
    assert "legacy conversion API" not in out and "Check for a new version" not in out
    dl = tmp_path / "dl"
    pb = dl / "public" / "tiny" / "tiny.pb"
    tiny_tf_model(pb, 5)
    write_model(zoo, "tiny", [{"name": "tiny.pb", "data": pb.read_bytes(), "url": server.url("/tiny.pb")}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y"])
    quiet = run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", dl, "-o", tmp_path / "q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "legacy conversion API" not in quiet.stdout
    loud = run_tool("converter", "--models_dir", zoo, "--name", "tiny", "-d", dl, "-o", tmp_path / "v", "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "[ INFO ] MO command line tool is considered as the legacy conversion API" in loud.stdout


def test_the_ovc_compatibility_table_is_current():
    """docs/compatibility.md's table is what bench/ovc_table.py reads from openvino-dev's 248
    descriptors today (the same convert_ovc.plan that a conversion runs first)."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(repo / "bench/ovc_table.py"), "--check",
                             str(repo / "docs/compatibility.md")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table = (repo / "docs/compatibility.md").read_text()
    assert "| retinanet-tf | tf | yes |" in table
    assert "| ssd_mobilenet_v1_coco | tf | yes |  | stage logic proven on a synthetic graph (`front/tf/ssd_v2_support.json`) |" \
        in table


def test_a_failing_stage_fails_the_composite_that_was_asked_for(tmp_path):
    """The converter reports the names it was asked for (the downloader's shape): a composite
    whose stage fails is the failed model, named once in the last line."""
    zoo = tmp_path / "zoo"
    for stage in ("combo-a", "combo-b"):  # tf models whose .pb was never downloaded
        write_model(zoo, stage, [{"name": f"{stage}.pb", "data": b"x", "url": f"http://127.0.0.1:9/{stage}.pb"}],
                    group="public/combo")
    (zoo / "public/combo/composite-model.yml").write_text(
        "description: two\ntask_type: detection\nframework: tf\nlicense: https://example.com/LICENSE\n"
        "stages_order: [combo-a, combo-b]\n")
    for jobs in ("1", "2"):
        result = run_tool("converter", "--models_dir", zoo, "--name", "combo", "-d", tmp_path / "dl",
                          "--backend", "ovc", "-j", jobs)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1] == "modelzoo-converter: failed: combo", result.stderr
