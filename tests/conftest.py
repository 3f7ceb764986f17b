"""Shared test helpers: a loopback server, throw-away zoos, running the real CLIs."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from modelzoo.devtools.loopback import LoopbackServer  # noqa: E402

SCRIPTS = REPO / "tools" / "downloader"


def sha384(data: bytes) -> str:
    return hashlib.sha384(data).hexdigest()


def run_tool(tool: str, *args: str | Path, timeout: float = 300, env: dict | None = None,
             cwd: Path | None = None, max_file_size: int | None = None) -> subprocess.CompletedProcess:
    """Run tools/downloader/<tool>.py as a user would, from the checkout. With max_file_size,
    the kernel refuses (EFBIG) any write that would make a file longer: proof that a tool never
    writes more than that, whatever it does with the bytes afterwards."""
    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))

    return subprocess.run([sys.executable, str(SCRIPTS / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          preexec_fn=limit if max_file_size is not None else None,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
                          stdin=subprocess.DEVNULL)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The stderr of a failed run must be one line, with no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_model(zoo: Path, name: str, files: list[dict], group: str = "public", **extra) -> Path:
    """Write models/<group>/<name>/model.yml; each file dict has name, data (or size/checksum) and url."""
    import yaml

    entries = []
    for f in files:
        data = f.get("data")
        entries.append({
            "name": f["name"],
            "size": f.get("size", len(data) if data is not None else 0),
            "checksum": f.get("checksum", sha384(data) if data is not None else "0" * 96),
            "source": f["url"],
        })
    doc = {"description": f"test model {name}", "task_type": "detection", "files": entries,
           "framework": extra.pop("framework", "dldt" if all(e["name"].startswith("FP") for e in entries) else "tf"),
           "license": "https://example.com/LICENSE", **extra}
    if doc["framework"] != "dldt" and "model_optimizer_args" not in doc:
        doc["model_optimizer_args"] = ["--input_model=$dl_dir/" + entries[0]["name"]]
    folder = zoo / group / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder / "model.yml"


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def refused_port():
    """A port on 127.0.0.1 that refuses connections for the whole test: bound to a socket that
    never listens, so no other process can take it meanwhile (a port found free and let go can be)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    path = tmp_path / "zoo"
    path.mkdir()
    return path


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/bin/mount").exists()


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A small tmpfs (for a full disk or a read-only folder). Needs root, as CI and dev machines have."""
    assert _can_mount(), "mounting a tmpfs needs root (CI runs as root; so must these tests)"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted: list[Path] = []

    def make(size: str = "1m", readonly: bool = False) -> Path:
        opts = f"size={size}" + (",ro" if readonly else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], check=True)
        mounted.append(mnt)
        return mnt

    yield make
    for m in mounted:
        subprocess.run(["umount", "-l", str(m)], check=False)


@pytest.fixture
def xfs(tmp_path: Path):
    """An XFS file system with reflinks (a loop-mounted image; xfsprogs from Debian, which
    .ci/run installs), mounted where other users can reach it. Needs root."""
    assert _can_mount(), "mounting a file system needs root (CI runs as root; so must these tests)"
    image = tmp_path / "xfs.img"
    with open(image, "wb") as f:
        f.truncate(320 << 20)  # sparse; XFS wants at least 300 MB
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    mnt = Path(tempfile.mkdtemp(prefix="modelzoo-xfs-"))
    mnt.chmod(0o755)
    subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        mnt.chmod(0o755)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


# A skipped test is a failed test: it proves nothing, and CI must not pass on what it did not
# run. Install what a test needs instead (.ci/run does).
_skipped: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_collectreport(report) -> None:
    """A module skipped whole while collected (a module-level skip) is a skipped test too."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _skipped and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.write_line(f"FAILED: {len(_skipped)} test(s) skipped; a skipped test is a failed test "
                                    "here: install what they need (see .ci/run)", red=True)


# ----------------------------------------------------------------------------- running the downloader


MB = 1 << 20


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a download may leave behind (there must be none)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))
                  or ".unpack-" in p.name)


@pytest.fixture
def one_file(server, zoo, tmp_path):
    """A zoo with one model 'm' of one 3 MB file served at /m.bin; returns (data, out_dir, path of the file)."""
    data = os.urandom(3 * MB)
    url = server.add("/m.bin", data)
    write_model(zoo, "m", [{"name": "m.bin", "data": data, "url": url}])
    out = tmp_path / "out"
    return data, out, out / "public" / "m" / "m.bin"


def download(zoo, out, *args, **kw):
    return run_tool("downloader", "--models_dir", zoo, "-o", out, *args, **kw)


def _start(zoo, out, *args):
    return subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "-o", str(out),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"never saw {what}")


def _interrupted(proc, sig=signal.SIGINT) -> str:
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("modelzoo-downloader: error: interrupted; temporary files removed")
    return stderr
