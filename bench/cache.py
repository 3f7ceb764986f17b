#!/usr/bin/env python3
"""Cache management benchmarks: `modelzoo-cache ls`, `verify` and `prune` on a cache of Open Model
Zoo's shape, against `sha384sum` over the same files with as many processes as cores.

    python bench/cache.py [--repeat 7] [--scale 1000] [--json results.json] [--warm_baseline CHECKOUT]

The cache holds one blob for each of the 1,215 files that openvino-dev 2024.6's descriptors
(omz_tools/models) name, each of 1/1000 of its real size (random bytes, at least 16; 38.8 MB in all), filled
through modelzoo's own Cache.add, with a zoo of descriptors for them (same model names and file
names). Targets (issue 18): ls < 0.5 s; verify at least as fast as `xargs -P <cores> sha384sum`;
a prune of half the cache < 1 s. Prints the numbers; asserts nothing (results: docs/performance.md).
Beside verify, two rows say where its time goes: the interpreter that runs it doing nothing
(`python -c pass`), and `hash_floor.py`, the least a Python program can do to re-hash the same
blobs (os and hashlib only, as many processes, none of verify's checks).

With --warm_baseline (another checkout, e.g. main's): the downloader's warm path (200 files from
a warm cache into a fresh output folder, -j 8, bench/download.py's case 3) run from that
checkout and from this one, taking turns on the same cache: once with stat records written in
the last hour (no "last used" write) and once with every record older than an hour (one utime
per blob, what a run pays at most once an hour per blob).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, dump_json, interleaved, ours, report, warm_cache, write_descriptor  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
from modelzoo.store.cache import Cache  # noqa: E402

SCALE = 1000


def omz_files() -> dict[str, list[tuple[str, int]]]:
    """Model name -> (file name, real size) from openvino-dev's descriptors."""
    import omz_tools
    import yaml

    root = Path(list(omz_tools.__path__)[0]) / "models"  # (a namespace package: no __file__)
    models = {}
    for config in sorted(root.rglob("model.yml")):
        doc = yaml.safe_load(config.read_text())
        models[config.parent.name] = [(f["name"], int(f["size"])) for f in doc.get("files", [])]
    return models


def build(work: Path, scale: int = SCALE) -> tuple[Path, Path, list[Path], int, int]:
    """(zoo, cache, blob paths, total bytes, models)."""
    import hashlib

    zoo, cache_root = work / "zoo", work / "cache"
    cache = Cache(cache_root)
    blobs, total = [], 0
    models = omz_files()
    for name, files in models.items():
        entries = []
        for fname, size in files:
            data = os.urandom(max(16, size // scale))  # (16: tiny files of a byte or two would repeat)
            sha = hashlib.sha384(data).hexdigest()
            with cache.lock(sha):  # as a download adds it (which leaves the lock file)
                partial = cache.partial_path(sha)
                partial.write_bytes(data)
                blobs.append(cache.add(sha, partial, len(data)))
            total += len(data)
            entries.append((fname, len(data), sha, f"https://example.com/{name}/{fname}"))
        if entries:
            write_descriptor(zoo, name, entries)
    return zoo, cache_root, blobs, total, len(models)


def warm_path(work: Path, baseline: Path, repeat: int) -> list[tuple[str, str]]:
    """The downloader's warm path from ``baseline``'s tools/ and from ours, on one warm cache."""
    import time

    zoo, cache, out = work / "zoo-warm", work / "cache-warm", work / "out-warm"
    warm_cache(zoo, cache)
    # the baseline runs from a copy, byte-compiled as pip would (and nothing is written into it)
    import compileall

    tools = work / "baseline-tools"
    shutil.copytree(baseline / "tools", tools, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(tools / "modelzoo"), quiet=1)
    args = ["--models_dir", str(zoo), "--all", "-j", "8", "-o", str(out), "--cache_dir", str(cache)]
    cmds = {"baseline": [sys.executable, str(tools / "downloader" / "downloader.py"), *args],
            "this tree": [*ours("downloader"), *args]}

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        os.sync()

    fresh = interleaved(cmds, repeat, clean)
    records = list(cache.rglob("*.ok"))

    def clean_and_age() -> None:
        clean()
        old = time.time() - 7200
        for r in records:
            os.utime(r, (old, old))

    aged = interleaved(cmds, repeat, clean_and_age)
    return [
        ("warm path, records fresh", f"{baseline.name}: {fresh['baseline']}   this tree: {fresh['this tree']}   "
                                     f"ratio {fresh['this tree'] / fresh['baseline']:.2f}"),
        ("warm path, records > 1 h", f"{baseline.name}: {aged['baseline']}   this tree: {aged['this tree']}   "
                                     f"ratio {aged['this tree'] / aged['baseline']:.2f} (200 utimes)"),
    ]


def interpreter(tool: list[str]) -> str:
    """The Python that runs ``tool``: its first word if that is a Python, else its #! line's."""
    if len(tool) > 1:
        return tool[0]
    with open(tool[0], "rb") as f:
        line = f.readline().decode()
    return line[2:].strip().split()[0] if line.startswith("#!") else sys.executable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--scale", type=int, default=SCALE, help="each file at 1/SCALE of its real size (default 1000)")
    parser.add_argument("--warm_baseline", type=Path, metavar="CHECKOUT",
                        help="also compare the downloader's warm path with this checkout's (e.g. main's)")
    parser.add_argument("--tool", metavar="EXECUTABLE",
                        help="measure this modelzoo-cache (e.g. a regular `pip install .` in a venv of its own) "
                             "instead of this checkout's tools/downloader/cache.py run by this Python")
    args = parser.parse_args()
    if not shutil.which("sha384sum"):
        raise SystemExit("sha384sum is missing: apt-get install -y coreutils")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="modelzoo-bench-cache-"))
    try:
        zoo, cache, blobs, total, models = build(work, args.scale)
        listing = work / "blobs.lst"
        listing.write_text("".join(f"{p}\n" for p in blobs))
        per_process = math.ceil(len(blobs) / cores)
        tool = [args.tool] if args.tool else ours("cache")
        # the first ls parses the zoo's YAML and keeps it in the cache's descriptor memo, as any
        # command with --cache_dir does; the measured runs are the later ones
        subprocess.run([*tool, "ls", "--cache_dir", str(cache), "--models_dir", str(zoo)], check=True,
                       stdout=subprocess.DEVNULL)
        python = interpreter(tool)
        cmds = {
            "ls": [*tool, "ls", "--cache_dir", str(cache), "--models_dir", str(zoo)],
            "verify": [*tool, "verify", "--cache_dir", str(cache)],
            "sha384sum": ["xargs", "-a", str(listing), "-d", "\\n", "-P", str(cores), "-n", str(per_process),
                          "sha384sum"],
            "floor": [python, str(Path(__file__).with_name("hash_floor.py")), str(cache), str(cores)],
            "python": [python, "-c", "pass"],
        }
        times = interleaved(cmds, args.repeat)
        pristine = work / "pristine"
        shutil.copytree(cache, pristine)

        def restore() -> None:
            shutil.rmtree(cache)
            shutil.copytree(pristine, cache)
            os.sync()

        half = total // 2
        prune = interleaved({"prune": [*tool, "prune", "--cache_dir", str(cache), "--models_dir", str(zoo),
                                       "--max_size", str(half)]}, args.repeat, before=restore)["prune"]
        restore()
        out = subprocess.run([*tool, "prune", "--cache_dir", str(cache), "--models_dir", str(zoo),
                              "--max_size", str(half), "--json"], capture_output=True, text=True, check=True)
        removed = len(json.loads(out.stdout)["removed"])
        warm = warm_path(work, args.warm_baseline.absolute(), max(args.repeat, 11)) if args.warm_baseline else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = times["sha384sum"] / times["verify"]
    report(f"cache of {len(blobs)} files at 1/{args.scale}, {total / 1e6:.1f} MB ({models} models), {cores} cores", [
        ("ls", f"{times['ls']}  (target < 0.5 s: {'met' if times['ls'] < 0.5 else 'MISSED'})"),
        ("verify", f"{times['verify']}"),
        (f"xargs -P {cores} sha384sum", f"{times['sha384sum']}  (verify {ratio:.2f}x its speed: "
                                          f"{'met' if ratio >= 1 else 'MISSED'})"),
        ("  python -c pass", f"{times['python']}  (the interpreter that runs verify, starting and leaving)"),
        ("  hash_floor.py", f"{times['floor']}  (os and hashlib only, {cores} processes, no checks: "
                            f"{times['sha384sum'] / times['floor']:.2f}x sha384sum's speed)"),
        ("prune half", f"{prune}  ({removed} entries removed; target < 1 s: {'met' if prune < 1 else 'MISSED'})"),
        *warm,
    ])
    dump_json(args.json, {"scale": args.scale, "files": len(blobs), "bytes": total, "ls": times["ls"], "verify": times["verify"],
                          "sha384sum": times["sha384sum"], "python_start": times["python"], "hash_floor": times["floor"],
                          "prune_half": prune, "pruned_entries": removed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
