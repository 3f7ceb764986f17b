"""--cluster (issue 27) on a real Ray cluster: a head and two nodes of one core each, started
once for this module inside a network namespace of its own (raycluster.py), with the real
command lines as drivers:

- accuracy_check.py --cluster with a node removed mid-run (its processes SIGKILLed) and then the
  driver SIGKILLed, started again with the same --run_dir: only the shards without a record run
  (counted), each shard's record is written once, the records hold the single-process run's
  detections and the --json its numbers;
- mirror.py sync --ir --cluster into a real SeaweedFS (started in the same namespace): three
  generated models converted as Ray tasks, the IR keys and every IR file's SHA-384 equal a local
  run's;
- an address that does not answer is one line, before any work.

Runs in CI's second environment (the [ray] extra beside OpenVINO 2026, NNCF, pycocotools)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import SCRIPTS, one_error_line, run_tool, write_model
from ovc_reference import tiny_pb
from qtools import coco_folder, rebuilt_ir
from raycluster import run_steps

from modelzoo.devtools.loopback import LoopbackServer

SHARDS = 8  # pictures shards (the generated set has 8 pictures)
TINY_ARGS = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]
TINY_INFO = [{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}]
MODELS = ("tiny-a", "tiny-b", "tiny-c")


def accuracy_cmd(*args) -> list:
    r, c = rebuilt_ir(), coco_folder()
    return [sys.executable, SCRIPTS / "accuracy_check.py", "--models_dir", r["zoo"], "--name", "retinanet-tf",
            "--ir_dir", r["ir"], "--dataset", c, "--precisions", "FP32", *args]


def sync_ir_cmd(zoo: Path, dest: str, cache: Path, *extra) -> list:
    return [sys.executable, SCRIPTS / "mirror.py", "sync", "--models_dir", zoo, "--to", dest,
            "--cache_dir", cache, "--ir", "FP16,FP32", "--backend", "ovc", *extra]


def without_seconds(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def recorded(stdout: str) -> list[int]:
    """The shards whose record this run wrote, in the order it said so."""
    return [int(k) for k in re.findall(rf"^shard ([0-9]+)/{SHARDS}: record ", stdout, re.M)]


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
        # the local run: each model converted by a process of its own, as each Ray task is (an
        # automatic node name counts the nodes its process made before)
        for name in MODELS:
            local = run_tool("mirror", *sync_ir_cmd(zoo, str(tmp / "local"), tmp / "cache-local")[2:],
                             "--name", name, env={"MODELZOO_CONVERSION_LOG": str(tmp / "local.log")}, timeout=600)
            assert local.returncode == 0, local.stderr
    took["local sync --ir"] = time.monotonic() - started - sum(took.values())
    steps = [
        {"cmd": sync_ir_cmd(zoo, "s3://ir-cluster/omz", tmp / "cache-cluster", "--all", "--cluster", "auto"),
         "s3": True, "env": {"MODELZOO_CONVERSION_LOG": str(tmp / "cluster.log")}},
        # a node removed at the first record, the driver SIGKILLed at the fourth; then the same again
        {"cmd": accuracy_cmd("--cluster", "auto", "--picture_shards", SHARDS, "--run_dir", tmp / "run"),
         "kill_node_after": ": record ", "kill_driver_after": ": record ", "kill_driver_at": 4},
        {"cmd": accuracy_cmd("--cluster", "auto", "--picture_shards", SHARDS, "--run_dir", tmp / "run",
                             "--json", tmp / "resumed.json")},
        # a job's own error (a device OpenVINO does not have): reported with its shard, not retried
        {"cmd": accuracy_cmd("--cluster", "auto", "--subset", "2", "--picture_shards", "2", "--device", "NOPE",
                             "--run_dir", tmp / "failed")},
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
