"""Static shards (`--shard K/N`, issue 27) through the real command lines: the converter over a zoo
of several generated one-convolution graphs, shard by shard, writes the IR a plain run writes,
each model converted by exactly one shard; the mirror's sync in shards into one folder holds what
one sync holds; `--shard auto` reads the schedulers' variables; every bad input is one line.
The accuracy tool's picture shards and --merge are in tests/quantize/test_accuracy_shards.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import one_error_line, run_tool, write_model
from ovc_reference import tiny_pb

from modelzoo.errors import UsageError
from modelzoo.mirror.stores import MANIFEST
from modelzoo.shards import Shard, parse_shard, split

ARGS = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]
INFO = [{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}]
NAMES = ["tiny-d", "tiny-a", "tiny-c", "tiny-b", "tiny-e"]  # (not in sorted order on purpose)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def zoo(tmp_path, server):
    """Five tiny models (different weights), their files downloaded and served on loopback."""
    zoo, dl = tmp_path / "zoo", tmp_path / "dl"
    for seed, name in enumerate(NAMES):
        data = tiny_pb(seed).read_bytes()
        url = server.add(f"{name}/tiny.pb", data)
        write_model(zoo, name, [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                    model_optimizer_args=ARGS, input_info=INFO)
        (dl / "public" / name).mkdir(parents=True)
        (dl / "public" / name / "tiny.pb").write_bytes(data)
    return {"zoo": zoo, "dl": dl}


def convert(zoo, out: Path, log: Path, *extra: str, env: dict | None = None):
    return run_tool("converter", "--models_dir", zoo["zoo"], "--all", "-d", zoo["dl"], "-o", out,
                    "--backend", "ovc", *extra, env={"MODELZOO_CONVERSION_LOG": str(log), **(env or {})},
                    timeout=600)


def converted(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_converter_shards_write_the_plain_runs_ir_each_model_once(zoo, tmp_path):
    """The plain run at -j 1, the shards at -j 2: each model is converted in a fresh process either
    way (OpenVINO numbers the nodes it names by counters of the process, so a model's XML would
    otherwise depend on what the process converted before it), and the IR is byte-identical."""
    plain = convert(zoo, tmp_path / "plain", tmp_path / "plain.log")
    assert plain.returncode == 0, plain.stderr
    assert len(converted(tmp_path / "plain.log")) == len(NAMES)
    for k in range(2):
        result = convert(zoo, tmp_path / "sharded", tmp_path / f"shard{k}.log", "--shard", f"{k}/2", "-j", "2")
        assert result.returncode == 0, result.stderr
    logs = [converted(tmp_path / f"shard{k}.log") for k in range(2)]
    assert [len(lines) for lines in logs] == [3, 2]  # a, c, e / b, d: every second model by sorted name
    assert sum(len(lines) for lines in logs) == len(NAMES)
    assert files(tmp_path / "sharded") == files(tmp_path / "plain")  # byte-identical IR
    assert sorted(p.name for p in (tmp_path / "sharded" / "public").iterdir()) == sorted(NAMES)


def test_more_shards_than_models_warns_and_an_empty_shard_succeeds(zoo, tmp_path):
    result = convert(zoo, tmp_path / "out", tmp_path / "c.log", "--shard", "6/7")
    assert result.returncode == 0, result.stderr
    assert "warning: --shard 6/7: 7 shards for 5 models; this shard gets nothing" in result.stderr
    assert converted(tmp_path / "c.log") == [] and not (tmp_path / "out" / "public").exists()


@pytest.mark.parametrize("env, shard, index", [
    ({"MODELZOO_SHARD": "1/2"}, "auto", 1),
    ({"JOB_COMPLETION_INDEX": "1"}, "auto/2", 1),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "2"}, "auto", 1),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}, "auto", 0),
])
def test_shard_auto_reads_the_schedulers_variables(zoo, tmp_path, env, shard, index):
    result = convert(zoo, tmp_path / "out", tmp_path / "c.log", "--shard", shard, "--dry_run", env=env)
    assert result.returncode == 0, result.stderr
    expected = Shard(index, 2).take(NAMES)
    assert sorted(p for p in NAMES if f"public/{p}/tiny.pb" in result.stdout) == expected


@pytest.mark.parametrize("value, env, needle", [
    ("2/2", {}, "expected K/N with 0 <= K < N (got '2/2')"),
    ("-1/2", {}, "expected K/N with 0 <= K < N (got '-1/2')"),
    ("1/0", {}, "expected K/N with 0 <= K < N (got '1/0')"),
    ("1", {}, "expected K/N with 0 <= K < N (got '1')"),
    ("a/b", {}, "expected K/N with 0 <= K < N (got 'a/b')"),
    ("1/2/3", {}, "expected K/N with 0 <= K < N (got '1/2/3')"),
    ("auto", {}, "argument --shard: auto: none of MODELZOO_SHARD, JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID is set"),
    ("auto", {"JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX gives no shard count; give it as --shard auto/N"),
    ("auto/2", {"JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX: expected K/N with 0 <= K < N (got '3/2')"),
    ("auto/0", {"JOB_COMPLETION_INDEX": "0"}, "auto/N: expected a positive shard count (got '0')"),
    ("auto", {"MODELZOO_SHARD": "5"}, "MODELZOO_SHARD: expected K/N with 0 <= K < N (got '5')"),
    ("auto/3", {"MODELZOO_SHARD": "1/2"}, "MODELZOO_SHARD=1/2 says 2 shards"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "1"}, "SLURM_ARRAY_TASK_COUNT is not set; give --shard auto/N"),
])
@pytest.mark.parametrize("tool", [("converter",), ("quantizer",), ("accuracy_check",), ("mirror", "sync")])
def test_bad_shard_is_one_line_exit_2(zoo, tmp_path, tool, value, env, needle):
    clean = {k: "" for k in ("MODELZOO_SHARD", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID",
                             "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")}
    extra = ["--to", tmp_path / "mirror"] if tool == ("mirror", "sync") else []
    result = run_tool(*tool, "--models_dir", zoo["zoo"], "--all", f"--shard={value}", *extra,
                      env={**clean, **env})
    assert result.returncode == 2
    assert needle in one_error_line(result)
    assert not (tmp_path / "mirror").exists()


def test_mirror_sync_shards_into_one_folder_hold_what_one_sync_holds(zoo, tmp_path):
    plain = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    for k in range(3):
        result = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", tmp_path / "sharded",
                          "--shard", f"{k}/3")
        assert result.returncode == 0, result.stderr
    manifest = {name: json.loads((tmp_path / name / MANIFEST).read_text())["files"]
                for name in ("plain", "sharded")}
    assert set(manifest["sharded"]) == set(manifest["plain"]) == {f"public/{n}/tiny.pb" for n in NAMES}
    assert {p: files(tmp_path / "sharded")[p] for p in manifest["plain"]} == \
        {p: files(tmp_path / "plain")[p] for p in manifest["plain"]}


def test_mirror_sync_refuses_delete_with_a_shard(zoo, tmp_path):
    result = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", tmp_path / "m",
                      "--shard", "0/2", "--delete")
    assert result.returncode == 2
    assert "--delete cannot be used with --shard" in one_error_line(result)
    assert not (tmp_path / "m").exists()


def test_shards_cover_every_item_once_whatever_the_order_given():
    items = [f"m{i:03d}" for i in range(37)]
    for count in (1, 2, 3, 7, 37, 50):
        parts = split(list(reversed(items)), count)
        assert sorted(x for part in parts for x in part) == items
        assert parts == split(items, count)  # the same split from any order


def test_parse_shard_takes_nothing_but_k_of_n():
    assert parse_shard("0/1", {}) == Shard(0, 1) and parse_shard(" 3/4 ", {}) == Shard(3, 4)
    for bad in ("", "/", "1/", "/2", "0/-1", "1.0/2", "0x1/2", "+1/2", "1 /2"):
        with pytest.raises(UsageError):
            parse_shard(bad, {})


DRIVER = """
import subprocess, sys
for k in range(4):
    subprocess.run([sys.executable, *sys.argv[1:], "--shard", f"{k}/4"], check=True)
"""


def records(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("converter.shard-*.json"))


def test_a_killed_driver_started_again_converts_only_the_shards_without_a_record(zoo, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import SCRIPTS

    plain = convert(zoo, tmp_path / "plain", tmp_path / "plain.log", "-j", "2")
    assert plain.returncode == 0, plain.stderr
    run_dir, out, log = tmp_path / "run", tmp_path / "out", tmp_path / "c.log"
    command = [str(SCRIPTS / "converter.py"), "--models_dir", str(zoo["zoo"]), "--all", "-d", str(zoo["dl"]),
               "-o", str(out), "--backend", "ovc", "-j", "2", "--run_dir", str(run_dir)]
    env = {**os.environ, "MODELZOO_CONVERSION_LOG": str(log)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, *command], start_new_session=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # (a hang guard)
        while not records(run_dir) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its shard: no clean-up
        driver.wait()
    before = records(run_dir)
    assert 1 <= len(before) < 4, before
    kept = {name: (run_dir / name).read_bytes() for name in before}
    done = {int(name.split("-")[1]) for name in before}
    log.unlink()
    again = subprocess.run([sys.executable, "-c", DRIVER, *command], capture_output=True, text=True, env=env,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done already") == len(before)
    missing = [name for k, part in enumerate(split(NAMES, 4)) if k not in done for name in part]
    assert sorted(line.split()[0] for line in converted(log)) == sorted(missing)  # only those converted
    assert {name: (run_dir / name).read_bytes() for name in before} == kept
    assert files(out) == files(tmp_path / "plain")
    record = json.loads((run_dir / "converter.shard-0-of-4.json").read_text())
    assert record["outputs"]["ir"] == {rel: record["outputs"]["ir"][rel] for rel in
                                       [f"public/{n}/{p}/{n}.{e}" for n in ("tiny-a", "tiny-e")
                                        for p in ("FP16", "FP32") for e in ("bin", "xml")]}


def test_a_record_made_with_other_inputs_is_one_line_and_kept_and_lost_ir_is_converted_again(zoo, tmp_path):
    run_dir, out, log = tmp_path / "run", tmp_path / "out", tmp_path / "c.log"
    first = convert(zoo, out, log, "--shard", "1/2", "--run_dir", run_dir)
    assert first.returncode == 0, first.stderr
    record = run_dir / "converter.shard-1-of-2.json"
    kept = record.read_bytes()
    (out / "public/tiny-b/FP16/tiny-b.bin").unlink()  # the record is no longer true: the shard is done again
    again = convert(zoo, out, log, "--shard", "1/2", "--run_dir", run_dir)
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in converted(log)] == ["tiny-b", "tiny-d"] * 2
    assert json.loads(record.read_bytes())["inputs"] == json.loads(kept)["inputs"]
    assert (out / "public/tiny-b/FP16/tiny-b.bin").is_file()
    kept = record.read_bytes()
    (zoo["dl"] / "public/tiny-d/tiny.pb").write_bytes(tiny_pb(1).read_bytes())  # other weights
    other = convert(zoo, out, log, "--shard", "1/2", "--run_dir", run_dir)
    assert other.returncode == 1
    assert one_error_line(other).endswith(f"shard 1/2: its record {record} was made with other inputs (models "
                                          "differ); nothing overwritten: use another --run_dir or remove that record")
    assert record.read_bytes() == kept and len(converted(log)) == 4


def test_a_run_dir_that_cannot_be_written_is_one_line_before_any_conversion(zoo, tmp_path):
    (tmp_path / "file").write_text("")
    result = convert(zoo, tmp_path / "out", tmp_path / "c.log", "--run_dir", tmp_path / "file")
    assert result.returncode == 2
    assert one_error_line(result).endswith(f"--run_dir {tmp_path / 'file'}: not a folder")
    assert converted(tmp_path / "c.log") == []


def test_mirror_sync_ir_in_shards_publishes_the_keys_one_sync_publishes(zoo, tmp_path):
    def sync(dest: Path, *extra: str):
        result = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", dest, "--cache_dir",
                          tmp_path / f"cache-{dest.name}", "--ir", "FP16,FP32", "--backend", "ovc", *extra,
                          timeout=600)
        assert result.returncode == 0, result.stderr
        return {p: (e["sha384"], e.get("ir_key"), e["model"])
                for p, e in json.loads((dest / MANIFEST).read_text())["files"].items()}

    plain = sync(tmp_path / "plain")
    sharded = [sync(tmp_path / "sharded", "--shard", f"{k}/2") for k in range(2)][-1]
    assert len([p for p in plain if p.startswith("ir/")]) == 4 * len(NAMES)
    assert {p: (key, model) for p, (_, key, model) in sharded.items()} == \
        {p: (key, model) for p, (_, key, model) in plain.items()}  # the same keys, paths and models
    bins = {p for p in plain if p.endswith(".bin")}
    assert {p: sharded[p][0] for p in bins} == {p: plain[p][0] for p in bins}  # the same weights


def test_ir_written_into_the_download_folder_is_not_an_input_of_the_rerun(zoo, tmp_path):
    """-o defaults to -d: the IR lands beside the model's files; a rerun still finds its record true."""
    log = tmp_path / "c.log"
    for _ in range(2):
        result = run_tool("converter", "--models_dir", zoo["zoo"], "--all", "-d", zoo["dl"], "--backend", "ovc",
                          "--shard", "0/3", "--run_dir", tmp_path / "run",
                          env={"MODELZOO_CONVERSION_LOG": str(log)}, timeout=600)
        assert result.returncode == 0, result.stderr
    assert "shard 0/3: done already" in result.stdout
    assert [line.split()[0] for line in converted(log)] == ["tiny-a", "tiny-d"]  # converted once, by the first run


@pytest.mark.parametrize("flag", [["--sbom"], ["--sign_key", "key.pem"]])
def test_mirror_sync_refuses_signing_or_an_sbom_in_a_shard(zoo, tmp_path, flag):
    result = run_tool("mirror", "sync", "--models_dir", zoo["zoo"], "--all", "--to", tmp_path / "m",
                      "--shard", "1/2", *flag)
    assert result.returncode == 2
    assert "--sign_key and --sbom cannot be used with --shard" in one_error_line(result)
    assert not (tmp_path / "m").exists()
