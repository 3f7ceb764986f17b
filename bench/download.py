#!/usr/bin/env python3
"""Download benchmarks on a real server: modelzoo vs curl + sha384sum, aria2c + sha384sum and
omz_downloader (openvino-dev), all measured in the same run.

    python bench/download.py [--repeat 3] [--json results.json] [--skip-slow]

nginx (Debian) serves the files on 127.0.0.1 with its own configuration: `/` at full speed and
`/slow/` at 20 MB/s per connection (a stand-in for a long-distance link, where each TCP
connection gets a limited share of the path).
  1. one 150 MB file through /slow/: ours (8 connections) vs curl + sha384sum, aria2c -x8 -s8 +
     sha384sum (which verifies nothing until it is done), omz_downloader; peak memory of ours;
  2. the same file at full speed with --cache_dir (a cold cache each run): ours vs curl +
     sha384sum, and ours with 8 connections vs 1;
  3. 200 files of 1 MB from a warm cache into a fresh output folder: ours vs omz_downloader's
     own warm cache, and the HTTP requests each made (nginx's access log);
  4. the same 200 files from a server with 20 ms latency (modelzoo's loopback server: nginx
     cannot delay answers), -j 8: ours vs omz_downloader -j 8 vs aria2c -j 8 -i list.
Prints ratios and targets; asserts nothing (results: docs/performance.md).
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
    REPO, dump_json, interleaved, loopback, median_time, ours, peer, report, write_descriptor,
)

sys.path.insert(0, str(REPO / "tools"))
from modelzoo.devtools.servers import Nginx  # noqa: E402

BIG = 150 * 1000 * 1000
SMALL = 1 << 20
COUNT = 200


def make_files(root: Path) -> dict[str, tuple[int, str]]:
    facts = {}
    root.mkdir(parents=True)
    data = os.urandom(BIG)
    (root / "big.bin").write_bytes(data)
    facts["big.bin"] = (BIG, hashlib.sha384(data).hexdigest())
    for i in range(COUNT):
        data = os.urandom(SMALL)
        (root / f"s{i:03}.bin").write_bytes(data)
        facts[f"s{i:03}.bin"] = (SMALL, hashlib.sha384(data).hexdigest())
    return facts


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-slow", action="store_true", help="leave out the 20 MB/s case (about 1.5 min)")
    args = parser.parse_args()
    for tool in ("nginx", "aria2c", "curl", "sha384sum"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install -y nginx aria2 curl coreutils")
    work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-"))
    files = work / "files"
    facts = make_files(files)
    out = work / "out"

    def clean():
        shutil.rmtree(out, ignore_errors=True)
        for f in work.glob("tool-*"):
            f.unlink()
        os.sync()  # the deletions written out now, so that no measured run pays for them

    results: dict[str, float] = {}
    repeat = args.repeat
    with Nginx(files) as nginx:
        # -- 1: 150 MB at 20 MB/s per connection
        zoo_slow = work / "zoo-slow"
        write_descriptor(zoo_slow, "big", [("big.bin", *facts["big.bin"], f"{nginx.url}/slow/big.bin")])
        sel = ["--name", "big", "-o", str(out)]
        slow_url = f"{nginx.url}/slow/big.bin"
        rows = []
        if not args.skip_slow:
            t_ours, rss = median_time([ours("downloader") + ["--models_dir", str(zoo_slow), *sel]], repeat, clean)
            t_curl, _ = median_time([["curl", "-sS", "-o", str(work / "tool-curl.bin"), slow_url],
                                     ["sha384sum", str(work / "tool-curl.bin")]], repeat, clean)
            t_aria, _ = median_time([["aria2c", "-q", "-x8", "-s8", "-k1M", "--allow-overwrite=true", "-d", str(work),
                                      "-o", "tool-aria.bin", slow_url], ["sha384sum", str(work / "tool-aria.bin")]],
                                    repeat, clean)
            t_peer, rss_peer = median_time([peer("downloader", zoo_slow) + sel], max(1, repeat // 3), clean)
            results.update(slow_ours=t_ours, slow_curl_sha=t_curl, slow_aria_sha=t_aria, slow_peer=t_peer,
                           rss_8conn_mb=rss, rss_peer_mb=rss_peer)
            rows = [
                ("modelzoo (8 connections)", f"{t_ours}"),
                ("curl + sha384sum", f"{t_curl}   speed-up {t_curl / t_ours:.1f}x (target >= 4x)"),
                ("aria2c -x8 -s8 + sha384sum", f"{t_aria}   ratio ours/aria2 {t_ours / t_aria:.2f} (target <= 1.1)"),
                ("omz_downloader", f"{t_peer}   speed-up {t_peer / t_ours:.1f}x"),
                ("peak RSS modelzoo, 8 connections", f"{rss:.0f} MB (target < 100 MB); omz_downloader {rss_peer:.0f} MB"),
            ]
            report(f"150 MB at 20 MB/s per connection (nginx limit_rate; median of {repeat}, best)", rows)

        # -- 2: full speed into a cold cache
        zoo_fast = work / "zoo-fast"
        write_descriptor(zoo_fast, "big", [("big.bin", *facts["big.bin"], f"{nginx.url}/big.bin")])
        cache = work / "cache"

        def cold():
            clean()
            shutil.rmtree(cache, ignore_errors=True)

        cmd = ours("downloader") + ["--models_dir", str(zoo_fast), *sel, "--cache_dir", str(cache)]
        curl_file = work / "tool-curl.bin"
        fast_repeat = max(repeat, 9)  # runs of a third of a second, taking turns: 8 vs 1 is a close call
        t = interleaved({"8": cmd, "1": cmd + ["--connections", "1"],
                         "curl": ["sh", "-c", f"curl -sS -o {curl_file} {nginx.url}/big.bin && sha384sum {curl_file}"]},
                        fast_repeat, cold)
        t_ours8, t_ours1, t_curl = t["8"], t["1"], t["curl"]
        results.update(fast_cache_ours8=t_ours8, fast_cache_ours1=t_ours1, fast_curl_sha=t_curl)
        report(f"150 MB at full speed, --cache_dir, cold cache (median of {fast_repeat}, taking turns, best)", [
            ("modelzoo, 8 connections", f"{t_ours8}   ratio to curl+sha384sum {t_ours8 / t_curl:.2f} (target <= 0.8)"),
            ("modelzoo, 1 connection", f"{t_ours1}   ratio to curl+sha384sum {t_ours1 / t_curl:.2f}"),
            ("curl + sha384sum", f"{t_curl}"),
            ("8 vs 1 connections", f"{t_ours8 / t_ours1:.2f} (target <= 1: several never slower than one)"),
        ])

        # -- 3: warm caches, 200 files, fresh output folder
        zoo = work / "zoo-small"
        for i in range(COUNT):
            name = f"s{i:03}.bin"
            write_descriptor(zoo, f"m{i:03}", [(name, *facts[name], f"{nginx.url}/{name}")])
        sel = ["--all", "-j", "8", "-o", str(out)]
        warm_repeat = max(repeat, 11)  # runs of a tenth of a second: more of them for a stable median
        ours_cache, peer_cache = work / "cache-ours", work / "cache-omz"
        ours_cmd = ours("downloader") + ["--models_dir", str(zoo), *sel, "--cache_dir", str(ours_cache)]
        peer_cmd = peer("downloader", zoo) + [*sel, "--cache_dir", str(peer_cache)]
        median_time([ours_cmd], 1, clean)  # fill the caches
        median_time([peer_cmd], 1, clean)
        before = lines(nginx.access_log)
        t = interleaved({"ours": ours_cmd, "peer": peer_cmd}, warm_repeat, clean)
        t_ours, t_peer = t["ours"], t["peer"]
        new = nginx.access_log.read_text().splitlines()[before:]  # told apart by their User-Agent
        ours_requests = sum('"modelzoo/' in line for line in new)
        peer_requests = len(new) - ours_requests
        results.update(warm_ours=t_ours, warm_peer=t_peer, warm_ours_requests=ours_requests,
                       warm_peer_requests=peer_requests)
        report(f"warm cache, 200 files of 1 MB, fresh output folder, -j 8 (median of {warm_repeat}, "
               "taking turns, best)", [
            ("modelzoo", f"{t_ours}, {ours_requests} HTTP requests in {warm_repeat} runs (target 0)"),
            ("omz_downloader", f"{t_peer}, {peer_requests} HTTP requests   speed-up {t_peer / t_ours:.1f}x "
                               "(target >= 5x)"),
        ])

    # -- 4: 200 files of 1 MB at 20 ms latency, -j 8
    with loopback(files, latency=0.02) as url:
        zoo = work / "zoo-latency"
        for i in range(COUNT):
            name = f"s{i:03}.bin"
            write_descriptor(zoo, f"m{i:03}", [(name, *facts[name], f"{url}/{name}")])
        sel = ["--all", "-j", "8", "-o", str(out)]
        t_ours, _ = median_time([ours("downloader") + ["--models_dir", str(zoo), *sel]], repeat, clean)
        t_peer, _ = median_time([peer("downloader", zoo) + sel], repeat, clean)
        listing = work / "aria.list"
        listing.write_text("".join(f"{url}/s{i:03}.bin\n  out=s{i:03}.bin\n" for i in range(COUNT)))
        t_aria, _ = median_time([["aria2c", "-q", "-j8", "--allow-overwrite=true", "-d", str(out), "-i",
                                  str(listing)], ["sha384sum", *(str(out / f"s{i:03}.bin") for i in range(COUNT))]],
                                repeat, clean)
    results.update(latency_ours=t_ours, latency_peer=t_peer, latency_aria_sha=t_aria)
    report(f"200 files of 1 MB, 20 ms latency, -j 8 (median of {repeat}, best)", [
        ("modelzoo", f"{t_ours}"),
        ("omz_downloader -j 8", f"{t_peer}   speed-up {t_peer / t_ours:.2f}x"),
        ("aria2c -j 8 -i list + sha384sum", f"{t_aria}   ratio ours/aria2 {t_ours / t_aria:.2f}"),
    ])
    dump_json(args.json, results)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
