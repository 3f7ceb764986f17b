"""--cluster (issue 27) on a real Ray cluster: a head and two nodes of one core each, started
once for this module inside a network namespace of its own (raycluster.py), with the real
command lines as drivers:

- accuracy_check.py --cluster with a node removed mid-run (its processes SIGKILLed) and then the
  driver SIGKILLed, started again with the same --run_dir: only the shards without a record run
  (counted), each shard's record is written once, the records hold the single-process run's
  detections and the --json its numbers;
- mirror.py sync --ir --cluster into a real SeaweedFS (started in the same namespace): three
  generated models converted as Ray tasks, the IR keys and every IR file's SHA-384 equal a local
  run's, the progress events one per job and one at the end;
- converter.py --cluster with --run_dir: the driver SIGKILLed after its first model record, then
  started again through Ray Client (ray://, the head's client port): only the models without a
  record convert (counted), a model that fails is named at the end, the IR equals a local run's,
  and a static --shard K/N run reads the per-model records as its own;
- quantizer.py --cluster: INT8 inside, the key and the IR equal a local run's, its record written;
  the calibration goes to a job as paths and SHA-384 (no picture in what is sent), checked where
  the job runs;
- an address that does not answer is one line, before any work.

Runs in CI's second environment (the [ray] extra beside OpenVINO 2026, NNCF, pycocotools)."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import SCRIPTS, one_error_line, run_tool, write_model
from ovc_reference import tiny_pb
from qtools import MODEL, coco_folder, rebuilt_ir
from raycluster import CLIENT, run_steps

from modelzoo.devtools.loopback import LoopbackServer

SHARDS = 8  # pictures shards (the generated set has 8 pictures)
TINY_ARGS = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]
TINY_INFO = [{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}]
MODELS = ("tiny-a", "tiny-b", "tiny-c")
BROKEN = "tiny-broken"  # downloads, but is not a graph: its conversion fails (the converter's zoo only)
QUANTIZE = ["--name", "retinanet-tf", "--subset", "2", "--precisions", "FP32-INT8"]


def accuracy_cmd(*args) -> list:
    r, c = rebuilt_ir(), coco_folder()
    return [sys.executable, SCRIPTS / "accuracy_check.py", "--models_dir", r["zoo"], "--name", "retinanet-tf",
            "--ir_dir", r["ir"], "--dataset", c, "--precisions", "FP32", *args]


def sync_ir_cmd(zoo: Path, dest: str, cache: Path, *extra) -> list:
    return [sys.executable, SCRIPTS / "mirror.py", "sync", "--models_dir", zoo, "--to", dest,
            "--cache_dir", cache, "--ir", "FP16,FP32", "--backend", "ovc", *extra]


def converter_cmd(tmp: Path, *args) -> list:
    return [sys.executable, SCRIPTS / "converter.py", "--models_dir", tmp / "zoo-conv", "--all", "-d", tmp / "dl",
            "-o", tmp / "conv", "--backend", "ovc", "--run_dir", tmp / "conv-run", *args]


def quantizer_cmd(out: Path, *args) -> list:
    r = rebuilt_ir()
    return [sys.executable, SCRIPTS / "quantizer.py", "--models_dir", r["zoo"], "--ir_dir", r["ir"], "-o", out,
            "--dataset", coco_folder(), *QUANTIZE, *args]


def without_seconds(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def recorded(stdout: str, count: int = SHARDS) -> list[int]:
    """The shards whose record this run wrote, in the order it said so."""
    return [int(k) for k in re.findall(rf"^shard ([0-9]+)/{count}: record ", stdout, re.M)]


def skipped(stdout: str, count: int = SHARDS) -> list[int]:
    return [int(k) for k in re.findall(rf"^shard ([0-9]+)/{count}: done already", stdout, re.M)]


def measurements(run_dir: Path) -> dict[int, list]:
    """Each record's measurements without their timing: what must not depend on where it ran."""
    out = {}
    for path in run_dir.glob("accuracy.shard-*.json"):
        record = json.loads(path.read_text())
        out[int(record["shard"].split("/")[0])] = [{k: v for k, v in m.items() if k != "seconds"}
                                                   for m in record["outputs"]["measurements"]]
    return out


def ir_files(entries: dict[str, str]) -> dict[str, str]:
    """{ir/<key>/<model>/<precision>/<file>: sha384} of a mirror's IR."""
    return {rel: sha for rel, sha in entries.items() if rel.startswith("ir/")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Everything this module checks, from one cluster (about 12 s to start)."""
    tmp = tmp_path_factory.mktemp("cluster")
    started, took = time.monotonic(), {}
    # the single-process run, its record (shard 0/1: every picture's detections) kept for comparison
    single = run_tool("accuracy_check", *accuracy_cmd("--json", tmp / "single.json", "--run_dir", tmp / "single")[2:])
    assert single.returncode == 0, single.stderr
    took["single"] = time.monotonic() - started
    # the same through the executor seam in two local processes, three picture shards
    local = run_tool("accuracy_check", *accuracy_cmd("-j", "2", "--picture_shards", "3", "--json",
                                                     tmp / "processes.json")[2:])
    assert local.returncode == 0, local.stderr
    took["-j 2"] = time.monotonic() - started - sum(took.values())
    zoo = tmp / "zoo"
    with LoopbackServer() as server:
        for seed, name in enumerate(MODELS):
            data = tiny_pb(seed).read_bytes()
            write_model(zoo, name, [{"name": "tiny.pb", "data": data, "url": server.add(f"{name}/tiny.pb", data)}],
                        framework="tf", model_optimizer_args=TINY_ARGS, input_info=TINY_INFO)
        # the cluster's cache gets the models' files here (the nodes, on loopback alone, fetch nothing)
        files = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp / "files",
                         "--cache_dir", tmp / "cache-cluster")
        assert files.returncode == 0, files.stderr
        # the converter's zoo: the same three and one that downloads but does not convert
        shutil.copytree(zoo, tmp / "zoo-conv")
        junk = b"not a graph"
        write_model(tmp / "zoo-conv", BROKEN, [{"name": "tiny.pb", "data": junk,
                                                 "url": server.add(f"{BROKEN}/tiny.pb", junk)}],
                    framework="tf", model_optimizer_args=TINY_ARGS, input_info=TINY_INFO)
        dl = run_tool("downloader", "--models_dir", tmp / "zoo-conv", "--all", "-o", tmp / "dl")
        assert dl.returncode == 0, dl.stderr
        # the local run: each model converted by a process of its own, as each Ray task is (an
        # automatic node name counts the nodes its process made before)
        for name in MODELS:
            local = run_tool("mirror", *sync_ir_cmd(zoo, str(tmp / "local"), tmp / "cache-local")[2:],
                             "--name", name, env={"MODELZOO_CONVERSION_LOG": str(tmp / "local.log")}, timeout=600)
            assert local.returncode == 0, local.stderr
    took["local sync --ir"] = time.monotonic() - started - sum(took.values())
    local_q = run_tool("quantizer", *quantizer_cmd(tmp / "q-local")[2:], timeout=900)
    assert local_q.returncode == 0, local_q.stderr
    took["local quantizer"] = time.monotonic() - started - sum(took.values())
    steps = [
        {"cmd": sync_ir_cmd(zoo, "s3://ir-cluster/omz", tmp / "cache-cluster", "--all", "--cluster", "auto",
                            "--progress_format", "json"),
         "s3": True, "env": {"MODELZOO_CONVERSION_LOG": str(tmp / "cluster.log")}},
        # a node removed at the first record, the driver SIGKILLed at the fourth; then the same again
        {"cmd": accuracy_cmd("--cluster", "auto", "--picture_shards", SHARDS, "--run_dir", tmp / "run"),
         "kill_node_after": ": record ", "kill_driver_after": ": record ", "kill_driver_at": 4},
        {"cmd": accuracy_cmd("--cluster", "auto", "--picture_shards", SHARDS, "--run_dir", tmp / "run",
                             "--json", tmp / "resumed.json")},
        # a job's own error (a device OpenVINO does not have): reported with its shard, not retried
        {"cmd": accuracy_cmd("--cluster", "auto", "--subset", "2", "--picture_shards", "2", "--device", "NOPE",
                             "--run_dir", tmp / "failed")},
        # the converter's driver SIGKILLed at its first model record; then again through Ray Client
        {"cmd": converter_cmd(tmp, "--cluster", "auto"), "kill_driver_after": ": record ",
         "env": {"MODELZOO_CONVERSION_LOG": str(tmp / "conv-killed.log")}},
        {"cmd": converter_cmd(tmp, "--cluster", CLIENT),
         "env": {"MODELZOO_CONVERSION_LOG": str(tmp / "conv-resumed.log")}},
        {"cmd": quantizer_cmd(tmp / "q-cluster", "--cluster", "auto", "--run_dir", tmp / "q-run"),
         "env": {"MODELZOO_QUANTIZATION_LOG": str(tmp / "q-cluster.log")}},
    ]
    results = run_steps(steps, tmp, s3_bucket="ir-cluster")
    took["cluster"] = time.monotonic() - started - sum(took.values())
    print(f"\ncluster module: {time.monotonic() - started:.1f} s in all ("
          + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()) + f"; cluster up in {results[0]['cluster_up_seconds']} "
          f"s, steps {[r['seconds'] for r in results]} s)", file=sys.stderr)
    return {"tmp": tmp, "single": single, "results": results, "local": json.loads(
        (tmp / "local" / "modelzoo-mirror.json").read_text())}


def test_a_node_lost_and_a_driver_killed_change_nothing_and_each_record_is_written_once(runs):
    tmp, (_, killed, resumed) = runs["tmp"], runs["results"][:3]
    assert killed["killed"] == ["driver", "node"] and killed["code"] == -9
    before = recorded(killed["stdout"])
    assert len(before) == 4 == len(set(before))
    # started again: only the shards without a record run (counted), each written once in all
    assert resumed["code"] == 0, resumed["stderr"][-3000:]
    assert f"{SHARDS - 4} jobs (4 done already)" in resumed["stdout"]
    skipped = [int(k) for k in re.findall(rf"^shard ([0-9]+)/{SHARDS}: done already", resumed["stdout"], re.M)]
    assert sorted(skipped) == sorted(before)
    assert sorted(before + recorded(resumed["stdout"])) == list(range(SHARDS))
    assert len(list((tmp / "run").glob("accuracy.shard-*.json"))) == SHARDS
    # the records hold, picture by picture, the single run's detections; the numbers are its numbers
    [whole] = measurements(tmp / "single").values()
    shards = measurements(tmp / "run")
    for key in ("detections", "ground_truth"):
        assert {i: d for m in shards.values() for i, d in m[0][key].items()} == whole[0][key]
    single = json.loads((tmp / "single.json").read_text())
    assert without_seconds(json.loads((tmp / "resumed.json").read_text())) == without_seconds(single)
    merged = run_tool("accuracy_check", *accuracy_cmd("--merge", tmp / "run", "--json", tmp / "merged.json")[2:])
    assert merged.returncode == 0, merged.stderr
    assert without_seconds(json.loads((tmp / "merged.json").read_text())) == without_seconds(single)


def test_picture_shards_in_local_processes_give_the_single_runs_numbers(runs):
    single = json.loads((runs["tmp"] / "single.json").read_text())
    assert without_seconds(json.loads((runs["tmp"] / "processes.json").read_text())) == without_seconds(single)


def test_sync_ir_on_the_cluster_into_s3_equals_a_local_run(runs):
    tmp, synced = runs["tmp"], runs["results"][0]
    assert synced["code"] == 0, synced["stderr"][-3000:]
    events = [json.loads(line) for line in synced["stdout"].splitlines() if line.startswith("{")]
    ends = [e for e in events if e["$type"] == "job_end"]
    assert sorted(e["job"] for e in ends) == list(MODELS) and all(e["successful"] for e in ends)
    assert [e["done"] for e in ends] == [1, 2, 3] and {e["total"] for e in ends} == {3}
    assert [e for e in events if e["$type"] == "jobs_end"] == [{"$type": "jobs_end", "done": 3, "total": 3,
                                                                "failed": []}]
    assert len((tmp / "cluster.log").read_text().splitlines()) == len(MODELS)  # converted on the nodes
    objects = synced["objects"]  # {key: sha384 of its bytes}, read back from SeaweedFS
    manifest = json.loads(synced["manifest"])
    local = {rel: e["sha384"] for rel, e in runs["local"]["files"].items()}
    remote = {rel: e["sha384"] for rel, e in manifest["files"].items()}
    assert ir_files(remote) == ir_files(local) and len(ir_files(local)) == 4 * len(MODELS)
    for rel, sha in ir_files(remote).items():  # the bytes in S3 are the bytes the manifest names
        assert objects[f"omz/{rel}"] == sha


def test_a_jobs_own_error_is_one_line_naming_its_shard_and_writes_no_record(runs):
    failed = runs["results"][3]
    assert failed["code"] == 1
    errors = [line for line in failed["stderr"].splitlines() if line.startswith("accuracy_check:")]
    assert len(errors) == 1 and "Traceback" not in failed["stderr"], failed["stderr"][-3000:]
    assert re.fullmatch(r'accuracy_check: error: retinanet-tf FP32 shard [01]/2: \S+retinanet-tf\.xml: '
                        r'Device with "NOPE" name is not registered in the OpenVINO Runtime', errors[0]), errors[0]
    assert not list((runs["tmp"] / "failed").glob("*.json"))


def test_an_address_that_does_not_answer_is_one_line_before_any_work(tmp_path, refused_port):
    began = time.monotonic()
    result = run_tool("accuracy_check", *accuracy_cmd("--cluster", f"ray://127.0.0.1:{refused_port}",
                                                      "--json", tmp_path / "out.json")[2:])
    assert result.returncode == 1
    line = one_error_line(result)
    assert f"--cluster ray://127.0.0.1:{refused_port}:" in line and "within" in line, line
    assert time.monotonic() - began < 30 and not (tmp_path / "out.json").exists()
    bad = run_tool("accuracy_check", *accuracy_cmd("--cluster", "ray:/nowhere")[2:])
    assert bad.returncode == 2 and "expected ray://HOST:PORT or auto" in one_error_line(bad)


def conversions(log: Path) -> list[str]:
    return sorted(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else []


def test_a_converter_driver_killed_and_resumed_through_ray_client_redoes_only_models_without_a_record(runs):
    tmp, (killed, resumed) = runs["tmp"], runs["results"][4:6]
    count = len(MODELS) + 1  # a record a model: shard K of the 4 selected names, sorted
    names = sorted([*MODELS, BROKEN])
    assert "driver" in killed["killed"] and killed["code"] == -9, killed["stderr"][-3000:]
    before = recorded(killed["stdout"], count)
    assert len(before) >= 1 and names.index(BROKEN) not in before
    # started again (through the head's Ray Client port): the models with a record are skipped
    assert resumed["code"] == 1, resumed["stderr"][-3000:]
    done = skipped(resumed["stdout"], count)
    assert set(before) <= set(done) and names.index(BROKEN) not in done
    assert f"{count - len(done)} jobs ({len(done)} done already)" in resumed["stdout"]
    assert conversions(tmp / "conv-resumed.log") == sorted(n for k, n in enumerate(names) if k not in done)
    assert sorted(done + recorded(resumed["stdout"], count)) == [k for k, n in enumerate(names) if n != BROKEN]
    # one bar's last line, with the failure named; the summary line names it too
    ended = count - len(done)
    assert f"converting: {ended} of {ended} jobs ended, 1 failed: {BROKEN}" in resumed["stdout"]
    assert resumed["stderr"].rstrip().splitlines()[-1] == f"modelzoo-converter: failed: {BROKEN}"
    assert sorted(p.name for p in (tmp / "conv-run").iterdir()) == [
        f"converter.shard-{k}-of-{count}.json" for k, n in enumerate(names) if n != BROKEN]
    # the IR, whichever run and node made it, is the local run's byte for byte
    local = {rel.split("/", 2)[2]: sha for rel, sha in ir_files({r: e["sha384"] for r, e in
                                                                  runs["local"]["files"].items()}).items()}
    assert local and {rel: sha384_file(tmp / "conv" / rel) for rel in local} == local
    # a model's record is the one --shard K/N writes for that model: a static shard reads it as its own
    k = names.index(MODELS[0])
    static = run_tool("converter", *converter_cmd(tmp, "--shard", f"{k}/{count}")[2:])
    assert static.returncode == 0, static.stderr
    assert f"shard {k}/{count}: done already" in static.stdout


def sha384_file(path: Path) -> str:
    import hashlib

    return hashlib.sha384(path.read_bytes()).hexdigest()


def test_the_quantizer_on_the_cluster_equals_a_local_run(runs):
    import openvino as ov

    tmp, done = runs["tmp"], runs["results"][6]
    assert done["code"] == 0, done["stderr"][-3000:]
    assert len((tmp / "q-cluster.log").read_text().splitlines()) == 1  # NNCF ran on a node
    ours, theirs = tmp / "q-cluster" / MODEL / "FP32-INT8", tmp / "q-local" / MODEL / "FP32-INT8"
    for name in ("retinanet-tf.xml", "retinanet-tf.bin"):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes()
    key = json.loads((theirs / "quantization.json").read_text())["key"]
    assert json.loads((ours / "quantization.json").read_text())["key"] == key and key
    ops = ov.Core().read_model(str(ours / "retinanet-tf.xml")).get_ops()
    assert any(op.get_type_name() == "FakeQuantize" for op in ops)
    record = json.loads((tmp / "q-run" / "quantizer.shard-0-of-1.json").read_text())
    assert record["outputs"]["keys"] == {"retinanet-tf": key}
    assert "quantizing: 1 of 1 jobs ended, none failed" in done["stdout"]


def test_calibration_goes_to_a_job_as_paths_and_sha384_checked_where_it_runs(tmp_path):
    """What a quantization job is sent holds no picture and no annotation, only where they are and
    their SHA-384; a picture changed after the driver read it is refused by the job, by name."""
    from modelzoo.accuracy.dataset import resolve
    from modelzoo.catalog import Catalog
    from modelzoo.cli.common import CommandLine
    from modelzoo.convert.quantize import Options, Quantizer, quantize_job

    r = rebuilt_ir()
    data = tmp_path / "coco"
    shutil.copytree(coco_folder(), data)
    model = Catalog(r["zoo"]).load("retinanet-tf")
    dataset = resolve(data, None, None, need_annotations=False)
    options = Options(ir_dir=r["ir"], output_dir=tmp_path / "out", precisions=["FP32-INT8"], subset=4)
    quantizer = Quantizer(options, dataset=dataset, models_root=r["zoo"])
    [job] = quantizer.jobs([model])
    sent = pickle.dumps(job.args)
    pictures = [s.path for s in dataset.samples]
    assert not any(p.read_bytes()[:4096] in sent for p in pictures)
    assert dataset.annotations_path.read_bytes()[:4096] not in sent
    assert len(sent) < 16_000
    ref = job.args[2]
    assert [p for p, _ in ref.files] == [str(p) for p in pictures[:4]] + [str(dataset.annotations_path)]
    with open(pictures[1], "ab") as f:
        f.write(b"changed")
    key, said = quantize_job(options, CommandLine("modelzoo-quantizer"), ref, r["zoo"], model)
    assert key is None and said == (f"retinanet-tf: {pictures[1]}: not the file the driver read (SHA-384 differs)", 1)
    assert not (tmp_path / "out").exists()
