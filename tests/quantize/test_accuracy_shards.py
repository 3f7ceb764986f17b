"""The accuracy tool in picture shards (issue 27) through its real command line, on the rebuilt
retinanet-tf's IR and the generated COCO-format set: three `--shard K/3 --run_dir` runs and one
`--merge` give the single run's records, table and --check; a driver killed after some records
and started again runs only the shards without one; a record made with other inputs, a merge
with shards missing and more shards than pictures are each one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SCRIPTS, one_error_line, run_tool
from qtools import coco, rebuilt  # noqa: F401 (fixtures)


def accuracy(rebuilt, coco, *args, **kw):
    return run_tool("accuracy_check", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf",
                    "--ir_dir", rebuilt["ir"], "--dataset", coco, "--precisions", "FP32", *args, **kw)


def without_seconds(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def table(stdout: str) -> list[list[str]]:
    """The table's rows without the last column (images/s: a timing)."""
    return [line.split()[:-1] for line in stdout.splitlines() if line.startswith("retinanet-tf")]


def records(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("accuracy.shard-*.json"))


def test_three_shards_merged_equal_the_single_run(rebuilt, coco, tmp_path):
    single = accuracy(rebuilt, coco, "--json", tmp_path / "single.json")
    assert single.returncode == 0, single.stderr
    for k in range(3):
        shard = accuracy(rebuilt, coco, "--shard", f"{k}/3", "--run_dir", tmp_path / "run")
        assert shard.returncode == 0, shard.stderr
        assert f"shard {k}/3: record {tmp_path / 'run'}" in shard.stdout
        assert table(shard.stdout)[0][:3] == ["retinanet-tf", "FP32", str(len(range(k, 8, 3)))]
    assert records(tmp_path / "run") == [f"accuracy.shard-{k}-of-3.json" for k in range(3)]
    record = json.loads((tmp_path / "run" / "accuracy.shard-1-of-3.json").read_text())
    assert record["shard"] == "1/3" and len(record["inputs"]["pictures"]) == 3
    assert all(len(sha) == 96 for sha in record["inputs"]["pictures"].values())
    assert record["versions"]["openvino"] and record["versions"]["modelzoo"]
    merged = accuracy(rebuilt, coco, "--merge", tmp_path / "run", "--json", tmp_path / "merged.json")
    assert merged.returncode == 0, merged.stderr
    single_records = json.loads((tmp_path / "single.json").read_text())
    merged_records = json.loads((tmp_path / "merged.json").read_text())
    assert {r["metric"] for r in single_records} == {"coco_precision", "coco_orig_precision"}
    assert without_seconds(merged_records) == without_seconds(single_records)
    assert table(merged.stdout) == table(single.stdout)
    # --check judges the merged values as it judges a single run's
    checked = [accuracy(rebuilt, coco, "--check", *extra) for extra in ((), ("--merge", tmp_path / "run"))]
    assert checked[0].returncode == checked[1].returncode
    assert checked[0].stderr.splitlines()[-1:] == checked[1].stderr.splitlines()[-1:]


DRIVER = """
import subprocess, sys
for k in range(3):
    subprocess.run([sys.executable, *sys.argv[1:], "--shard", f"{k}/3"], check=True)
"""


def test_a_killed_driver_started_again_runs_only_the_shards_without_a_record(rebuilt, coco, tmp_path):
    run_dir = tmp_path / "run"
    command = [str(SCRIPTS / "accuracy_check.py"), "--models_dir", str(rebuilt["zoo"]), "--name", "retinanet-tf",
               "--ir_dir", str(rebuilt["ir"]), "--dataset", str(coco), "--precisions", "FP32",
               "--run_dir", str(run_dir)]
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, *command], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # (a hang guard)
        while not records(run_dir) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the shard it runs: no clean-up
        driver.wait()
    before = records(run_dir)
    assert 1 <= len(before) < 3, before
    kept = {name: (run_dir / name).read_bytes() for name in before}
    again = subprocess.run([sys.executable, "-c", DRIVER, *command], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done already") == len(before)
    assert again.stdout.count(": record ") == 3 - len(before)  # only the missing shards ran
    assert {name: (run_dir / name).read_bytes() for name in before} == kept  # nothing written twice
    single = accuracy(rebuilt, coco, "--json", tmp_path / "single.json")
    merged = accuracy(rebuilt, coco, "--merge", run_dir, "--json", tmp_path / "merged.json")
    assert single.returncode == 0 and merged.returncode == 0, merged.stderr
    assert without_seconds(json.loads((tmp_path / "merged.json").read_text())) == \
        without_seconds(json.loads((tmp_path / "single.json").read_text()))


def test_a_record_made_with_other_inputs_is_one_line_and_kept(rebuilt, coco, tmp_path):
    first = accuracy(rebuilt, coco, "--shard", "0/3", "--run_dir", tmp_path / "run")
    assert first.returncode == 0, first.stderr
    record = tmp_path / "run" / "accuracy.shard-0-of-3.json"
    kept = record.read_bytes()
    other = accuracy(rebuilt, coco, "--shard", "0/3", "--run_dir", tmp_path / "run", "--subset", "7")
    assert other.returncode == 1
    line = one_error_line(other)
    assert f"shard 0/3: its record {record} was made with other inputs (pictures_in_run differ)" in line
    assert record.read_bytes() == kept
    assert "Measuring" not in other.stdout  # refused before any inference


def test_merge_with_shards_missing_names_them(rebuilt, coco, tmp_path):
    result = accuracy(rebuilt, coco, "--shard", "1/4", "--run_dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    merged = accuracy(rebuilt, coco, "--merge", tmp_path / "run", "--json", tmp_path / "m.json")
    assert merged.returncode == 1
    assert one_error_line(merged).endswith(f"--merge {tmp_path / 'run'}: shards missing: 0/4, 2/4, 3/4")
    assert not (tmp_path / "m.json").exists()
    empty = accuracy(rebuilt, coco, "--merge", tmp_path / "nothing")
    assert empty.returncode == 1 and "no such folder" in one_error_line(empty)


def test_more_shards_than_pictures_warns_and_the_empty_shard_succeeds(rebuilt, coco, tmp_path):
    result = accuracy(rebuilt, coco, "--shard", "9/10", "--run_dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "warning: --shard 9/10: 10 shards for 8 pictures; this shard gets nothing" in result.stderr
    assert "Measuring" not in result.stdout
    assert json.loads((tmp_path / "run" / "accuracy.shard-9-of-10.json").read_text())["inputs"]["pictures"] == {}


def test_bad_run_dir_and_merge_flags_are_one_line_before_any_inference(rebuilt, coco, tmp_path):
    (tmp_path / "file").write_text("")
    result = accuracy(rebuilt, coco, "--shard", "0/2", "--run_dir", tmp_path / "file")
    assert result.returncode == 2
    assert one_error_line(result).endswith(f"--run_dir {tmp_path / 'file'}: not a folder")
    merge = accuracy(rebuilt, coco, "--merge", tmp_path, "--shard", "0/2")
    assert merge.returncode == 2
    assert "--merge measures nothing: it takes neither --shard" in one_error_line(merge)
    assert "Measuring" not in result.stdout + merge.stdout


def test_quantizer_run_dir_skips_a_true_record_and_refuses_one_of_other_inputs(rebuilt, coco, tmp_path):
    def quantize(*extra):
        return run_tool("quantizer", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--ir_dir",
                        rebuilt["ir"], "-o", tmp_path / "int8", "--dataset", coco, "--shard", "0/1",
                        "--run_dir", tmp_path / "run", *extra, timeout=900)

    first = quantize()
    assert first.returncode == 0, first.stderr
    record = tmp_path / "run" / "quantizer.shard-0-of-1.json"
    doc = json.loads(record.read_text())
    assert sorted(doc["outputs"]["ir"]) == [f"{rebuilt['fp32'].parent.parent.relative_to(rebuilt['ir']).as_posix()}"
                                            f"/FP16-INT8/retinanet-tf.{e}" for e in ("bin", "xml")]
    assert list(doc["outputs"]["keys"].values()) == list(doc["inputs"]["keys"].values())  # the quantization key
    xml = tmp_path / "int8" / next(p for p in doc["outputs"]["ir"] if p.endswith(".xml"))
    stamp = xml.stat().st_mtime_ns
    again = quantize()
    assert again.returncode == 0, again.stderr
    assert "shard 0/1: done already" in again.stdout and xml.stat().st_mtime_ns == stamp  # nothing quantized
    kept = record.read_bytes()
    other = quantize("--subset", "5")  # other calibration pictures: another key
    assert other.returncode == 1
    assert one_error_line(other).startswith(f"modelzoo-quantizer: error: shard 0/1: its record {record} was made "
                                            "with other inputs (keys differ)")
    assert record.read_bytes() == kept and xml.stat().st_mtime_ns == stamp
