"""Helpers shared by the benchmarks: timing commands, peak memory, a loopback server process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tools" / "downloader"
PY = sys.executable

# Peak RSS of a command: run it from a small parent whose only child it is.
_MAXRSS = ("import resource, subprocess, sys, time\n"
           "t = time.monotonic(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
           "stderr=subprocess.DEVNULL).returncode\n"
           "print(rc, time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def byte_compile_ours() -> None:
    """Compile our modules once, as pip does for an installed package (the peer's modules were
    compiled when openvino-dev was installed). Where PYTHONDONTWRITEBYTECODE is set, a checkout
    would otherwise compile every module again on every run (~20 ms), which users do not pay."""
    import compileall

    compileall.compile_dir(str(REPO / "tools" / "modelzoo"), quiet=1)


byte_compile_ours()


def ours(tool: str) -> list[str]:
    return [PY, str(SCRIPTS / f"{tool}.py")]


def peer(tool: str, models_root: Path) -> list[str]:
    return [PY, "-m", "modelzoo.devtools.peer", tool, str(models_root)]


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the largest process it ran). Fails loudly on error."""
    out = subprocess.run([PY, "-c", _MAXRSS, *cmd], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    rc, seconds, kb = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"benchmark command failed ({rc}): {' '.join(cmd)}")
    return float(seconds), int(kb) / 1024


class Timing(float):
    """A median wall time (the float) that also remembers the fastest run."""

    best: float

    def __new__(cls, times: list[float]) -> "Timing":
        value = super().__new__(cls, statistics.median(times))
        value.best = min(times)
        return value

    def __str__(self) -> str:
        digits = 3 if self < 1 else 2  # (a tenth of a second is told to the millisecond)
        return f"{float(self):.{digits}f} s (best {self.best:.{digits}f})"


def median_time(cmds: list[list[str]], repeat: int, before=None) -> tuple[Timing, float]:
    """Median (and best) wall time and max peak RSS of running `cmds` (one after the other)
    `repeat` times; `before()` runs ahead of each repetition, untimed (e.g. to clear the
    output folder)."""
    times, peaks = [], []
    for _ in range(repeat):
        if before:
            before()
        total, peak = 0.0, 0.0
        for cmd in cmds:
            t, p = run_measured(cmd)
            total += t
            peak = max(peak, p)
        times.append(total)
        peaks.append(peak)
    return Timing(times), max(peaks)


def interleaved(cmds: dict[str, list[str]], repeat: int, before=None) -> dict[str, Timing]:
    """Median (and best) wall time of each command, the commands taking turns (in a rotating
    order), so that a machine that slows down for a while slows all of them alike (short runs
    are sensitive to that: a file system's work left over from the previous run, another VM on
    the host)."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    keys = list(cmds)
    for i in range(repeat):
        for key in keys[i % len(keys):] + keys[:i % len(keys)]:  # each goes first in turn: no one always
            if before:                                             # follows the same predecessor
                before()
            times[key].append(run_measured(cmds[key])[0])
    return {k: Timing(v) for k, v in times.items()}


@contextmanager
def loopback(root: Path, latency: float = 0.0) -> Iterator[str]:
    """A loopback file server in its own process (so it does not share a CPU core's GIL with
    what is measured); yields its base URL."""
    proc = subprocess.Popen([PY, "-m", "modelzoo.devtools.loopback", "--root", str(root), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit("loopback server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def request_count(base_url: str) -> int:
    with urllib.request.urlopen(base_url + "/__requests", timeout=10) as r:
        return int(r.read())


def write_descriptor(zoo: Path, name: str, files: list[tuple[str, int, str, str]]) -> None:
    """files: (name, size, sha384, url)."""
    folder = zoo / "public" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"description: benchmark model {name}", "task_type: detection", "files:"]
    for fname, size, sha, url in files:
        lines += [f"  - name: {fname}", f"    size: {size}", f"    checksum: {sha}", f"    source: {url}"]
    lines += ["model_optimizer_args:", f"  - --input_model=$dl_dir/{files[0][0]}", "framework: onnx",
              "license: https://example.com/LICENSE"]
    (folder / "model.yml").write_text("\n".join(lines) + "\n")


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n## {title}")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def dump_json(path: Path | None, data: dict) -> None:
    if path:
        path.write_text(json.dumps(data, indent=2) + "\n")


def warm_cache(zoo: Path, cache: Path, count: int = 200, size: int = 1 << 20) -> None:
    """``count`` models of one ``size``-byte file each, every file already in the cache (a warm
    run makes no request: the sources point nowhere)."""
    import hashlib

    from modelzoo.store.cache import Cache

    c = Cache(cache)
    for i in range(count):
        data = os.urandom(size)
        sha = hashlib.sha384(data).hexdigest()
        write_descriptor(zoo, f"w{i:03}", [(f"w{i:03}.bin", len(data), sha, "http://127.0.0.1:9/unreachable")])
        with c.lock(sha):
            partial = c.partial_path(sha)
            partial.write_bytes(data)
            c.add(sha, partial, len(data))
