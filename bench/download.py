#!/usr/bin/env python3
"""Download benchmarks against omz_downloader (openvino-dev), curl + sha384sum, on loopback.

    python bench/download.py [--repeat 3] [--json results.json]

Measured in one run on this machine, files served by a loopback server in its own process:
  1. one 150 MB file: ours vs `curl -o` followed by `sha384sum`, and vs omz_downloader;
  2. 200 files of 1 MB (200 models), 20 ms server latency, -j 8: ours vs omz_downloader -j 8;
  3. the same 200 files from a warm --cache_dir: time and number of HTTP requests;
  4. peak memory (RSS) while fetching the 150 MB file.
Prints ratios; asserts nothing (see docs/performance.md for results).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    dump_json, loopback, median_time, ours, peer, report, request_count, write_descriptor,
)

BIG = 150 * 1000 * 1000
SMALL = 1 << 20
COUNT = 200


def make_files(root: Path) -> dict[str, tuple[int, str]]:
    facts = {}
    files = root / "files"
    files.mkdir(parents=True)
    rng = os.urandom
    data = rng(BIG)
    (files / "big.bin").write_bytes(data)
    facts["big.bin"] = (BIG, hashlib.sha384(data).hexdigest())
    for i in range(COUNT):
        data = rng(SMALL)
        (files / f"s{i:03}.bin").write_bytes(data)
        facts[f"s{i:03}.bin"] = (SMALL, hashlib.sha384(data).hexdigest())
    return facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="modelzoo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    facts = make_files(work) if not (work / "files").exists() else None
    if facts is None:
        raise SystemExit(f"{work} already holds files; give an empty --workdir")
    out = work / "out"

    def clean():
        shutil.rmtree(out, ignore_errors=True)

    results: dict[str, float] = {}
    # -- 1 and 4: one big file
    with loopback(work / "files") as url:
        zoo_big = work / "zoo-big"
        write_descriptor(zoo_big, "big", [("big.bin", *facts["big.bin"], f"{url}/big.bin")])
        sel = ["--name", "big", "-o", str(out)]
        t_ours, rss_ours = median_time([ours("downloader") + ["--models_dir", str(zoo_big), *sel]], args.repeat, clean)
        t_curl, _ = median_time([["curl", "-sS", "-o", str(work / "curl.bin"), f"{url}/big.bin"],
                                 ["sha384sum", str(work / "curl.bin")]], args.repeat)
        t_peer, rss_peer = median_time([peer("downloader", zoo_big) + sel], args.repeat, clean)
    results.update(big_ours=t_ours, big_curl_sha=t_curl, big_peer=t_peer, rss_ours_mb=rss_ours, rss_peer_mb=rss_peer,
                   big_ours_best=t_ours.best, big_curl_sha_best=t_curl.best, big_peer_best=t_peer.best)
    report("one 150 MB file (median of %d runs, and the best run)" % args.repeat, [
        ("modelzoo", f"{t_ours}"),
        ("curl -o + sha384sum", f"{t_curl}   ratio ours/curl+sha = {t_ours / t_curl:.2f} "
                                f"(best/best {t_ours.best / t_curl.best:.2f}; target <= 1.05)"),
        ("omz_downloader", f"{t_peer}   speed-up over omz = {t_peer / t_ours:.2f}x "
                           f"(best/best {t_peer.best / t_ours.best:.2f}x; target >= 1.5x)"),
        ("peak RSS modelzoo", f"{rss_ours:.0f} MB  (target < 100 MB)"),
        ("peak RSS omz_downloader", f"{rss_peer:.0f} MB"),
    ])

    # -- 2 and 3: many small files behind a slow server
    with loopback(work / "files", latency=0.02) as url:
        zoo = work / "zoo-small"
        for i in range(COUNT):
            name = f"s{i:03}.bin"
            write_descriptor(zoo, f"m{i:03}", [(name, *facts[name], f"{url}/{name}")])
        sel = ["--all", "-j", "8", "-o", str(out)]
        t_ours, _ = median_time([ours("downloader") + ["--models_dir", str(zoo), *sel]], args.repeat, clean)
        t_peer, _ = median_time([peer("downloader", zoo) + sel], args.repeat, clean)
        cache = work / "cache"
        median_time([ours("downloader") + ["--models_dir", str(zoo), *sel, "--cache_dir", str(cache)]], 1, clean)
        before = request_count(url)
        t_warm, _ = median_time([ours("downloader") + ["--models_dir", str(zoo), *sel, "--cache_dir", str(cache)]],
                                args.repeat, clean)
        warm_requests = request_count(url) - before
    results.update(small_ours=t_ours, small_peer=t_peer, warm_ours=t_warm, warm_requests=warm_requests,
                   small_ours_best=t_ours.best, small_peer_best=t_peer.best)
    report("200 files of 1 MB, 20 ms latency, -j 8 (median of %d runs, and the best run)" % args.repeat, [
        ("modelzoo", f"{t_ours}"),
        ("omz_downloader", f"{t_peer}   speed-up over omz = {t_peer / t_ours:.2f}x "
                           f"(best/best {t_peer.best / t_ours.best:.2f}x; target >= 1.5x)"),
        ("modelzoo, warm cache", f"{t_warm}, {warm_requests} HTTP requests in {args.repeat} runs (target 0)"),
    ])
    dump_json(args.json, results)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
