#!/usr/bin/env python3
"""The same accuracy check three ways on this machine: one process; two `--shard K/2` processes at
once and `--merge`; `--cluster` on a Ray cluster of two 1-core nodes (a head without cores, in a
network namespace of its own: tests/quantize/raycluster.py), as `auto` (the driver on the head)
and through Ray Client (`ray://`, the head's client port). Wall time of each, and the overhead
per shard (what a shard costs beyond its inference: start-up, reading and compiling the IR, the
merge), from which val2017 at 1333 on 10 nodes is estimated.

    MODELZOO_OVC_REFERENCE=DIR python bench/scale.py [--pictures 64] [--size 256] [--json out.json]

Needs the second environment (`.venv-ovc` with the `ray` extra) and the rebuilt retinanet-tf graph
a first-environment run left in $MODELZOO_OVC_REFERENCE (retinanet.pb); runs as root (unshare -n).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO / "tests" / "quantize")]

from modelzoo.devtools.cocoset import ir_detector, pictures, write_coco_folder  # noqa: E402
from modelzoo.reference.zoo import MODEL_SUBDIR, PB_NAME, write_reference_zoo  # noqa: E402

SCRIPTS = REPO / "tools" / "downloader"
VAL2017 = 5000  # pictures
VAL2017_HOURS_1333 = 9.0  # FP32 inference of retinanet-tf at 1333 on one 2-core machine here (issue 27)


def tool(name: str, *args) -> list[str]:
    return [sys.executable, str(SCRIPTS / f"{name}.py"), *map(str, args)]


def timed(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    began = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit(f"scale: {' '.join(cmd[:3])} ... failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - began, done


def inference_seconds(run_dir: Path) -> list[float]:
    """Each shard record's inference time (measure's own clock: pictures in, detections out)."""
    return [m["seconds"] for p in sorted(run_dir.glob("accuracy.shard-*.json"))
            for m in json.loads(p.read_text())["outputs"]["measurements"]]


def prepare(root: Path, pb: Path, size: int, count: int) -> list[str]:
    zoo, dl, ir = root / "zoo", root / "dl", root / "ir"
    write_reference_zoo(pb, zoo, size)
    (dl / MODEL_SUBDIR).mkdir(parents=True)
    shutil.copyfile(pb, dl / MODEL_SUBDIR / PB_NAME)
    timed(tool("converter", "--models_dir", zoo, "--name", "retinanet-tf", "-d", dl, "-o", ir, "--backend", "ovc"))
    coco = write_coco_folder(root / "coco", pictures(count), ir_detector(ir / MODEL_SUBDIR / "FP32" / "retinanet-tf.xml",
                                                                         size))
    return ["--models_dir", str(zoo), "--name", "retinanet-tf", "--ir_dir", str(ir), "--dataset", str(coco),
            "--precisions", "FP32"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=64)
    parser.add_argument("--size", type=int, default=256, help="the rebuilt model's input side")
    parser.add_argument("--ray_shards", type=int, default=8, help="picture shards of the Ray run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pb = Path(os.environ.get("MODELZOO_OVC_REFERENCE", "")) / "retinanet.pb"
    if not pb.is_file():
        sys.exit("scale: set MODELZOO_OVC_REFERENCE to a folder with retinanet.pb (a first-environment test run's)")
    root = Path(tempfile.mkdtemp(prefix="modelzoo-bench-scale-"))
    try:
        common = prepare(root, pb, args.size, args.pictures)
        out: dict = {"pictures": args.pictures, "size": args.size, "cores": os.cpu_count(),
                     "load_average": os.getloadavg()}
        single, done = timed(tool("accuracy_check", *common, "--json", root / "single.json", "--run_dir",
                                  root / "single"))
        out["single"] = {"wall": single, "inference": inference_seconds(root / "single")[0]}

        began = time.monotonic()
        shards = [subprocess.Popen(tool("accuracy_check", *common, "--shard", f"{k}/2", "--run_dir", root / "two"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for k in range(2)]
        if any(p.wait() != 0 for p in shards):
            sys.exit("scale: a --shard process failed")
        both = time.monotonic() - began
        merge, _ = timed(tool("accuracy_check", *common, "--merge", root / "two", "--json", root / "two.json"))
        out["static"] = {"wall": both + merge, "shards_wall": both, "merge": merge,
                         "inference": inference_seconds(root / "two")}

        from raycluster import CLIENT, run_steps

        began = time.monotonic()
        ray, client = run_steps([{"cmd": tool("accuracy_check", *common, "--cluster", address, "--picture_shards",
                                              args.ray_shards, "--run_dir", root / name, "--json",
                                              root / f"{name}.json"), "timeout": 3600}
                                 for name, address in (("ray", "auto"), ("client", CLIENT))], root, timeout=7200)
        for run in (ray, client):
            if run["code"] != 0:
                sys.exit(f"scale: a Ray run failed:\n{run['stderr'][-2000:]}")
        out["ray"] = {"wall": ray["seconds"], "cluster_up": ray["cluster_up_seconds"],
                      "with_cluster_start": time.monotonic() - began - client["seconds"], "shards": args.ray_shards,
                      "inference": inference_seconds(root / "ray")}
        out["client"] = {"wall": client["seconds"], "shards": args.ray_shards,
                         "inference": inference_seconds(root / "client")}
        out["load_average_after"] = os.getloadavg()
        same = [json.loads((root / f"{n}.json").read_text()) for n in ("single", "two", "ray", "client")]
        out["same_numbers"] = all([{k: v for k, v in r.items() if k != "seconds"} for r in s]
                                  == [{k: v for k, v in r.items() if k != "seconds"} for r in same[0]] for s in same)
        report(out)
        if args.json:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def report(out: dict) -> None:
    single = out["single"]
    rows = [("single process", single["wall"], single["wall"] - single["inference"], 1)]
    static = out["static"]
    rows.append(("--shard x2 + --merge", static["wall"],
                 (static["shards_wall"] * 2 - sum(static["inference"])) / 2 + static["merge"], 2))
    ray = out["ray"]
    # the two nodes share this machine's two cores: a shard's overhead is the core-seconds it held
    # beyond its inference, over the shards
    rows.append((f"Ray, 2 nodes x 1 core, {ray['shards']} shards", ray["wall"],
                 (ray["wall"] * 2 - sum(ray["inference"])) / ray["shards"], ray["shards"]))
    client = out["client"]
    rows.append(("the same through Ray Client", client["wall"],
                 (client["wall"] * 2 - sum(client["inference"])) / client["shards"], client["shards"]))
    print(f"{out['pictures']} pictures at {out['size']}, {out['cores']} cores, load average "
          f"{out['load_average'][0]:.1f} before, {out['load_average_after'][0]:.1f} after; the four runs give the "
          f"same numbers: {out['same_numbers']}")
    print(f"{'run':<32} {'wall s':>8} {'vs single':>10} {'overhead/shard s':>17}")
    for name, wall, overhead, _ in rows:
        print(f"{name:<32} {wall:8.1f} {100 * (wall / single['wall'] - 1):+9.0f}% {overhead:17.1f}")
    print(f"Ray cluster start (not in the wall time above): {ray['cluster_up']:.1f} s")
    per_shard = (ray["wall"] * 2 - sum(ray["inference"])) / ray["shards"]
    nodes, shards = 10, 40
    hours = VAL2017_HOURS_1333 / nodes + shards / nodes * per_shard / 3600
    print(f"estimate, val2017 at 1333 on {nodes} nodes of 2 cores in {shards} shards: "
          f"{VAL2017_HOURS_1333:.0f} h of inference / {nodes} + {shards // nodes} shards x {per_shard:.0f} s "
          f"per node = {hours:.2f} h, plus the cluster's start and one COCOeval over {VAL2017} pictures")


if __name__ == "__main__":
    sys.exit(main())
