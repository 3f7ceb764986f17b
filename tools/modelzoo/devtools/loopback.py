"""A file server on 127.0.0.1 that can misbehave on purpose.

Tests use it to bring their own internet: it serves generated files and injects the faults
real servers have (dropped connections, stalls, 5xx, 429 with Retry-After, ignored Range,
gzip on the wire, redirect chains and loops, slow chunks). Benchmarks and the offline demo
run it as a process:

    python -m modelzoo.devtools.loopback --root DIR [--latency SECONDS]

which prints its base URL on the first line of stdout and serves DIR until stopped.
It only ever binds the loopback address.
"""

from __future__ import annotations

import argparse
import gzip
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
COUNT_PATH = "/__requests"  # GET it for the number of requests served so far


@dataclass
class Fault:
    """What to do wrong for one path. Each applies to the first `times` requests (None: always)."""

    times: int | None = None
    status: int | None = None  # answer with this status instead of the file
    retry_after: str | None = None  # Retry-After header sent with `status`
    drop_after: int | None = None  # full Content-Length, then close after this many body bytes
    reset: bool = False  # with drop_after: abort the connection (RST) instead of closing it (FIN)
    stall_after: int | None = None  # send this many body bytes, then go silent...
    stall_seconds: float = 0.0  # ...for this long, then close (or reset: then the client has read all)
    ignore_range: bool = False  # always answer 200 with the whole file
    gzip: bool = False  # Content-Encoding: gzip on the wire
    gzip_junk: bytes = b""  # with gzip: these bytes after the end of the gzip stream
    content_encoding: str | None = None  # send this Content-Encoding with the bytes as they are
    content_range: str | None = None  # with a Range request: answer 206 with this Content-Range instead
    pad: bytes = b""  # send these bytes after the file's (or range's) own, counted in Content-Length
    redirect_to: str | None = None  # 302 to this path
    chunk_size: int = 1 << 20
    chunk_delay: float = 0.0  # pause between chunks (a slow server)
    body: bytes | None = None  # serve these bytes instead of the file (a wrong file)


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    time: float = 0.0  # time.monotonic() when it arrived
    target: str = ""  # the request line's target (an absolute URL when we act as a proxy)
    end: float = float("inf")  # time.monotonic() when its body was sent (or the client went away)


class LoopbackServer:
    def __init__(self, root: Path | None = None, latency: float = 0.0) -> None:
        self.root = Path(root) if root else None
        self.latency = latency
        self.files: dict[str, bytes | Path] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[RequestRecord] = []
        self._hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._current = threading.local()  # the record of the request this handler thread serves
        self.active = 0  # bodies being sent right now
        self.max_active = 0  # the most bodies sent at once (how many connections a client used)
        self.connections = 0  # TCP connections accepted, whether or not a request came on them
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup

    def add(self, path: str, content: bytes | Path, fault: Fault | None = None) -> str:
        """Serve content at path; returns its URL."""
        path = "/" + path.lstrip("/")
        self.files[path] = content
        if fault is not None:
            self.faults[path] = fault
        return self.url(path)

    def fault(self, path: str, fault: Fault) -> None:
        self.faults["/" + path.lstrip("/")] = fault

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def count(self, path: str | None = None) -> int:
        with self._lock:
            if path is None:
                return len(self.requests)
            path = "/" + path.lstrip("/")
            return sum(1 for r in self.requests if r.path == path)

    # -- lifecycle

    def start(self) -> "LoopbackServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="loopback-http")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- used by the handler

    def peak_concurrency(self, lag: float = 0.05) -> int:
        """The most bodies sent at once, not counting the last `lag` seconds of each: a server
        notices a client that hung up only at its next write, after the client moved on."""
        with self._lock:
            edges = sorted([(r.time, 1) for r in self.requests] + [(max(r.time, r.end - lag), -1)
                                                                   for r in self.requests])
        peak = now = 0
        for _, step in edges:
            now += step
            peak = max(peak, now)
        return peak

    def _record(self, method: str, path: str, headers: dict[str, str], target: str) -> Fault | None:
        with self._lock:
            self.requests.append(RequestRecord(method, path, headers, time.monotonic(), target))
            self._current.record = self.requests[-1]
            n = self._hits.get(path, 0)
            self._hits[path] = n + 1
            fault = self.faults.get(path)
        if fault is not None and (fault.times is None or n < fault.times):
            return fault
        return None

    def _content(self, path: str) -> bytes | Path | None:
        if path in self.files:
            return self.files[path]
        if self.root is not None:
            candidate = (self.root / path.lstrip("/")).resolve()
            if self.root.resolve() in candidate.parents and candidate.is_file():
                return candidate
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (or a connection we reset on purpose) is not news


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner.connections += 1
        # Headers and a small body go out as separate writes: without this, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every small answer (65 ms instead of 22 ms
        # per 1 MB file at 20 ms latency, measured), which no real server has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _send_status(self, status: int, headers: dict[str, str] | None = None) -> None:
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        srv = self.owner
        if self.path == COUNT_PATH:  # for a benchmark in another process; not itself counted
            body = str(srv.count()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        target = self.path
        # An absolute URL in the request line: we are being used as an HTTP proxy.
        path = re.sub(r"^https?://[^/]*", "", target).split("?", 1)[0] or "/"
        fault = srv._record(self.command, path, dict(self.headers.items()), target)
        try:
            self._answer(srv, path, fault, head)
        finally:
            srv._current.record.end = time.monotonic()

    def _answer(self, srv: LoopbackServer, path: str, fault: Fault | None, head: bool) -> None:
        if srv.latency:
            time.sleep(srv.latency)
        if fault and fault.redirect_to:
            self._send_status(302, {"Location": fault.redirect_to})
            return
        if fault and fault.status:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send_status(fault.status, extra)
            return
        content = srv._content(path)
        if content is None:
            self._send_status(404)
            return
        if fault and fault.body is not None:
            content = fault.body
        total = len(content) if isinstance(content, bytes) else content.stat().st_size
        start, end = 0, total
        status = 200
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if match and not (fault and (fault.ignore_range or fault.gzip)):
            start = int(match.group(1))
            end = min(total, int(match.group(2)) + 1) if match.group(2) else total
            if start >= total:
                self._send_status(416, {"Content-Range": f"bytes */{total}"})
                return
            status = 206
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        if status == 206 and fault and fault.content_range is not None:
            headers["Content-Range"] = fault.content_range
        if fault and fault.gzip:
            data = content if isinstance(content, bytes) else content.read_bytes()
            content = gzip.compress(data, mtime=0) + fault.gzip_junk
            start, end = 0, len(content)
            headers["Content-Encoding"] = "gzip"
        elif fault and fault.content_encoding:
            headers["Content-Encoding"] = fault.content_encoding
        if fault and fault.pad:
            data = content if isinstance(content, bytes) else content.read_bytes()
            content = data[start:end] + fault.pad
            start, end = 0, len(content)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if head:
            return
        self.wfile.flush()
        with srv._lock:
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            self._send_body(content, start, end, fault)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with srv._lock:
                srv.active -= 1

    def _send_body(self, content: bytes | Path, start: int, end: int, fault: Fault | None) -> None:
        limit = end
        cut = None
        if fault and fault.drop_after is not None:
            cut = min(end, start + fault.drop_after)
        if fault and fault.stall_after is not None:
            cut = min(end, start + fault.stall_after)
        if cut is not None:
            limit = cut
        chunk = fault.chunk_size if fault else 1 << 20
        delay = fault.chunk_delay if fault else 0.0
        if isinstance(content, Path) and not (fault and delay):
            with open(content, "rb") as f:
                self.connection.sendfile(f, start, limit - start)
        else:
            data = content if isinstance(content, bytes) else content.read_bytes()
            pos = start
            while pos < limit:
                n = min(chunk, limit - pos)
                self.wfile.write(data[pos:pos + n])
                self.wfile.flush()
                pos += n
                if delay and pos < limit:
                    time.sleep(delay)
        if cut is not None and cut < end:
            if fault and (fault.stall_after is not None or fault.reset):
                time.sleep(fault.stall_seconds)
            self.close_connection = True
            if fault and fault.reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.devtools.loopback",
                                     description="Serve a folder on 127.0.0.1 (for benchmarks and the offline demo).")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    server = LoopbackServer(root=args.root, latency=args.latency).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
