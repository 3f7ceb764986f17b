#!/usr/bin/env python3
"""Mirror benchmarks: a zoo of Open Model Zoo's shape, synced into a folder and into SeaweedFS,
against what a team does today (omz_downloader, then `aws s3 sync`).

    python bench/mirror.py [--repeat 3] [--json results.json] [--workdir DIR]

Measured in one run on this machine:
  1. `mirror.py sync --models_dir <openvino-dev's zoo> --all --to DIR --dry_run`: the plan for
     the real set (every file, total bytes), no network;
  2. a synthetic zoo built from openvino-dev's descriptors (same folders, models, stages, file
     names and counts; each file 1/1000 of its real size, random bytes), served by a loopback
     server process with 20 ms latency per request:
     - first sync, -j 8, into a folder and into SeaweedFS (`weed server -s3`);
     - omz_downloader --all -j 8 into a folder, then `aws s3 sync` of that folder to the bucket;
     - a no-change resync (time, upstream requests, uploads), verify --quick, verify;
     - peak memory (RSS) of the sync into S3.
Prints the numbers; asserts nothing (docs/performance.md has the results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PY, REPO, Timing, dump_json, loopback, median_time, ours, peer, report, request_count, run_measured,
)

sys.path.insert(0, str(REPO / "tools"))
from modelzoo.devtools.peer import omz_models_root  # noqa: E402
from modelzoo.devtools.servers import SeaweedS3  # noqa: E402

SCALE = 1000  # synthetic file size = real size / SCALE (at least 1 byte)

def build_synthetic_zoo(omz: Path, zoo: Path, files: Path, base_url: str) -> tuple[int, int, int]:
    """Open Model Zoo's descriptors with every file replaced by random bytes 1/SCALE its size,
    served from `files` at base_url/<model folder>/<file>. Returns (descriptors, files, bytes)."""
    n_desc = n_files = n_bytes = 0
    for src in sorted(omz.rglob("*.yml")):
        if src.name not in ("model.yml", "composite-model.yml"):
            continue
        rel = src.relative_to(omz)
        dst = zoo / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.name == "composite-model.yml":
            shutil.copyfile(src, dst)
            continue
        n_desc += 1
        doc = yaml.safe_load(src.read_text())
        doc.pop("postprocessing", None)  # random bytes are no archives
        folder = rel.parent.as_posix()
        entries = []
        for f in doc["files"]:
            size = max(1, f["size"] // SCALE)
            data = os.urandom(size)
            target = files / folder / f["name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entries.append({"name": f["name"], "size": size, "checksum": hashlib.sha384(data).hexdigest(),
                            "source": f"{base_url}/{folder}/{f['name']}"})
            n_files += 1
            n_bytes += size
        doc["files"] = entries
        dst.write_text(yaml.safe_dump(doc, sort_keys=False))
    return n_desc, n_files, n_bytes


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """Wall time and stdout of one command; fails loudly."""
    t = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    took = time.monotonic() - t
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return took, result.stdout


def s3_snapshot(client, bucket: str) -> dict[str, tuple[str, object]]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["ETag"], o["LastModified"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path, help="work here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="modelzoo-bench-mirror-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        raise SystemExit(f"{work} is not empty; give an empty --workdir")
    omz = omz_models_root()
    mirror = ours("mirror")
    results: dict[str, object] = {}

    # -- 1. the plan for the real set, no network
    plan_cmd = mirror + ["sync", "--models_dir", str(omz), "--all", "--to", str(work / "nowhere"), "--dry_run"]
    t_plan, _ = median_time([plan_cmd], args.repeat)
    _, out = timed(plan_cmd)
    summary = out.splitlines()[-1]
    results.update(plan_seconds=float(t_plan), plan_best=t_plan.best, plan_summary=summary,
                   plan_fetch_lines=out.count("     fetch  "))
    report(f"dry run on openvino-dev's zoo (median of {args.repeat})", [
        ("time", str(t_plan)), ("files listed", str(out.count("     fetch  "))), ("summary", summary)])

    # -- 2. the synthetic zoo
    zoo, files = work / "zoo", work / "files"
    files.mkdir(parents=True, exist_ok=True)  # filled once the server's URL is known
    with loopback(files, latency=0.02) as url, SeaweedS3() as weed:
        n_desc, n_files, n_bytes = build_synthetic_zoo(omz, zoo, files, url)
        env = weed.env()
        client = weed.client()
        report("synthetic zoo", [("descriptors", str(n_desc)), ("files", str(n_files)),
                                 ("bytes", f"{n_bytes:,}"), ("server latency", "20 ms a request")])
        results.update(descriptors=n_desc, files=n_files, bytes=n_bytes)
        sel = ["--models_dir", str(zoo), "--all"]
        runs: dict[str, list[float]] = {k: [] for k in (
            "folder", "s3", "omz", "aws", "pair", "resync_folder", "resync_s3", "quick_folder", "quick_s3",
            "full_folder", "full_s3")}
        peaks: list[float] = []
        checks: dict[str, object] = {}
        for i in range(args.repeat):
            rid = uuid.uuid4().hex[:8]
            dest, omz_out = work / f"mirror-{rid}", work / f"omz-{rid}"
            bucket = f"bench-{rid}"
            client.create_bucket(Bucket=bucket)
            s3_dest = f"s3://{bucket}/ours"

            t, _ = timed(mirror + ["sync", *sel, "--to", str(dest), "-j", "8"])
            runs["folder"].append(t)
            t_s3, peak = run_measured(mirror + ["sync", *sel, "--to", s3_dest, "-j", "8"], env)
            runs["s3"].append(float(t_s3))
            peaks.append(peak)

            t_omz, _ = timed(peer("downloader", zoo) + ["--all", "-j", "8", "-o", str(omz_out)])
            t_aws, _ = timed([str(Path(PY).parent / "aws"), "s3", "sync", "--only-show-errors", str(omz_out),
                              f"s3://{bucket}/theirs"], env)
            runs["omz"].append(t_omz)
            runs["aws"].append(t_aws)
            runs["pair"].append(t_omz + t_aws)

            before_req, before_s3 = request_count(url), s3_snapshot(client, bucket)
            t, out = timed(mirror + ["sync", *sel, "--to", str(dest), "-j", "8", "--progress_format", "json"])
            runs["resync_folder"].append(t)
            end_folder = json.loads(out.splitlines()[-1])
            t, out = timed(mirror + ["sync", *sel, "--to", s3_dest, "-j", "8", "--progress_format", "json"], env)
            runs["resync_s3"].append(t)
            end_s3 = json.loads(out.splitlines()[-1])
            checks = {"resync_upstream_requests": request_count(url) - before_req,
                      "resync_s3_objects_changed": sum(1 for k, v in s3_snapshot(client, bucket).items()
                                                       if before_s3.get(k) != v),
                      "resync_folder_published": end_folder["fetched"], "resync_s3_published": end_s3["fetched"],
                      "resync_manifest_written": end_folder["manifest_written"] or end_s3["manifest_written"]}

            for kind, flag in (("quick", ["--quick"]), ("full", [])):
                t, _ = timed(mirror + ["verify", *sel, "--at", str(dest), "-j", "8", *flag])
                runs[f"{kind}_folder"].append(t)
                t, _ = timed(mirror + ["verify", *sel, "--at", s3_dest, "-j", "8", *flag], env)
                runs[f"{kind}_s3"].append(t)
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(omz_out, ignore_errors=True)

    t = {k: Timing(v) for k, v in runs.items()}
    results.update({k: float(v) for k, v in t.items()}, **{f"{k}_best": v.best for k, v in t.items()},
                   peak_rss_s3_sync_mb=max(peaks), **checks)
    report(f"{n_files} files, 20 ms latency, -j 8 (median of {args.repeat} runs, and the best run)", [
        ("mirror sync -> folder", str(t["folder"])),
        ("mirror sync -> SeaweedFS", str(t["s3"])),
        ("omz_downloader -j 8", str(t["omz"])),
        ("aws s3 sync", str(t["aws"])),
        ("omz_downloader + aws s3 sync", f"{t['pair']}   speed-up of mirror sync -> S3: "
                                         f"{t['pair'] / t['s3']:.2f}x (best/best {t['pair'].best / t['s3'].best:.2f}x; "
                                         "target >= 1.5x)"),
        ("no-change resync, folder", f"{t['resync_folder']}  (target < 2 s)"),
        ("no-change resync, SeaweedFS", f"{t['resync_s3']}  (target < 2 s)"),
        ("  upstream requests / uploads", f"{checks['resync_upstream_requests']} / "
                                          f"{checks['resync_s3_objects_changed']} objects changed, "
                                          f"{checks['resync_folder_published'] + checks['resync_s3_published']} "
                                          f"files published, manifest written: {checks['resync_manifest_written']}"),
        ("verify --quick, folder / SeaweedFS", f"{t['quick_folder']} / {t['quick_s3']}"),
        ("verify (full SHA-384), folder / SeaweedFS", f"{t['full_folder']} / {t['full_s3']}"),
        ("peak RSS, mirror sync -> SeaweedFS", f"{max(peaks):.0f} MB  (target < 200 MB)"),
    ])
    dump_json(args.json, results)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
