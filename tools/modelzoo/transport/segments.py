"""One big file over several HTTP connections, verified in order as it arrives.

Far-away servers give each TCP connection a limited share of the path, so a big file is fetched
as consecutive pieces over up to N connections at once (like aria2's ``-x``). The pieces are
handed out in file order; what arrives ahead of the contiguous prefix waits in memory (at most
``window`` pieces ahead, so memory stays bounded), and the prefix is appended to the partial
file and hashed as it grows. So the partial file is always a plain prefix (a Ctrl-C leaves
something the next run resumes with one ``Range``), and verification needs no second read.

It is started by fetch.py when a transfer on one connection turned out slow (fetch._SlowLink),
from the prefix that connection already wrote.

A dropped piece resumes where it stopped. A server that ignores ``Range`` or answers a piece
with another ``Content-Range`` makes the caller fall back to one connection from zero.
"""

from __future__ import annotations

import collections
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests
import urllib3

from .. import fsio
from ..errors import HTTPStatusError, Interrupted, TransferError
from .body import Link, body_chunks
from .retry import backoff_delay, describe
from ..verify import BackgroundHashing, StreamVerifier


MIN_PIECE = 1 << 20
MAX_PIECE = 16 << 20
READ = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class FallBack(Exception):
    """The server cannot serve pieces (no Range, or a Content-Range we cannot line up)."""


def piece_size(size: int, connections: int) -> int:
    """About four pieces per connection, so that a slow connection leaves a short tail, within
    1-16 MiB (bigger pieces cost fewer requests, smaller ones less memory)."""
    return max(MIN_PIECE, min(MAX_PIECE, -(-size // (connections * 4))))


class ConnectionBudget:
    """The connections one run may open at once, shared by ``-j`` jobs and the pieces of big
    files: each fetch holds one; extra piece connections take a free one or do without."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = threading.BoundedSemaphore(total)

    def hold(self) -> "_Held":
        return _Held(self._free)

    def try_take(self, timeout: float) -> bool:
        return self._free.acquire(timeout=timeout)

    def give_back(self) -> None:
        self._free.release()


class _Held:
    def __init__(self, sem: threading.BoundedSemaphore) -> None:
        self._sem = sem

    def __enter__(self) -> None:
        self._sem.acquire()

    def __exit__(self, *exc: object) -> None:
        self._sem.release()


@dataclass
class _Piece:
    start: int
    end: int  # exclusive
    received: int = 0
    chunks: collections.deque = field(default_factory=collections.deque)
    done: bool = False


class SegmentedTransfer:
    """Fills ``partial`` (which holds ``verifier.size`` bytes already) up to ``size`` bytes."""

    def __init__(self, fetcher: Link, url: str, partial: Path, verifier: StreamVerifier, size: int,
                 connections: int, budget: ConnectionBudget | None, progress: Callable[[int], None]) -> None:
        self.fetcher = fetcher
        self.url = url
        self.partial = partial
        self.verifier = verifier
        self.size = size
        self.connections = connections
        self.budget = budget
        self.progress = progress
        step = piece_size(size - verifier.size, connections)
        self.pieces = [_Piece(a, min(size, a + step)) for a in range(verifier.size, size, step)]
        self.window = connections + 1  # pieces that may be fetched ahead of the one being written
        self._cv = threading.Condition()
        self._next = 0  # next piece to hand out
        self._frontier = 0  # piece being written
        self._received = verifier.size
        self._error: BaseException | None = None
        self._stop = threading.Event()

    # -- the writer (the calling thread)

    def run(self) -> None:
        workers = [threading.Thread(target=self._worker, args=(i == 0,), daemon=True, name=f"piece-{i}")
                   for i in range(min(self.connections, len(self.pieces)))]
        for t in workers:
            t.start()
        try:
            with fsio.Writer(self.partial, "ab") as out, BackgroundHashing(self.verifier) as hasher:
                while self._frontier < len(self.pieces):
                    ready = self._take_ready()
                    for chunk in ready:
                        out.write(chunk)
                        hasher.update(chunk)
                    if ready:
                        self.progress(self._received)
        finally:
            self._stop.set()
            with self._cv:
                self._cv.notify_all()
            for t in workers:
                t.join(5)

    def _take_ready(self) -> list[bytes]:
        with self._cv:
            while True:
                if self._error is not None:
                    raise self._error
                if self.fetcher.cancel.is_set():
                    raise Interrupted("interrupted")
                piece = self.pieces[self._frontier]
                if piece.chunks:
                    ready = list(piece.chunks)
                    piece.chunks.clear()
                    return ready
                if piece.done:
                    self._frontier += 1
                    self._cv.notify_all()
                    return []
                self._cv.wait(0.1)

    # -- the connections

    def _claim(self) -> _Piece | None:
        with self._cv:
            while not self._stop.is_set():
                if self._next >= len(self.pieces):
                    return None
                if self._next < self._frontier + self.window:
                    piece = self.pieces[self._next]
                    self._next += 1
                    return piece
                self._cv.wait(0.1)
        return None

    def _worker(self, first: bool) -> None:
        extra = False
        try:
            if not first and self.budget is not None:  # the others each on a free connection
                while not self.budget.try_take(0.2):
                    if self._stop.is_set() or self._next >= len(self.pieces):
                        return
                extra = True
            while (piece := self._claim()) is not None:
                self._fetch_piece(piece)
        except BaseException as exc:  # handed to the writer, which raises it
            with self._cv:
                if self._error is None:
                    self._error = exc
                self._stop.set()  # the others take no new piece
                self._cv.notify_all()
        finally:
            if extra:
                self.budget.give_back()

    def _fetch_piece(self, piece: _Piece) -> None:
        attempts = max(3, self.fetcher.num_attempts)
        for attempt in range(1, attempts + 1):
            if attempt > 1 and self.fetcher.cancel.wait(backoff_delay(attempt)):
                return
            try:
                self._receive(piece)
                return
            except TransferError as exc:
                last = str(exc)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
                last = describe(exc, self.fetcher.timeout)
        raise TransferError(f"{self.url}: bytes {piece.start + piece.received}-{piece.end - 1}: {last} "
                            f"(after {attempts} attempts)")

    def _receive(self, piece: _Piece) -> None:
        fetcher = self.fetcher
        start = piece.start + piece.received
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={start}-{piece.end - 1}"}
        try:
            response = fetcher.session.get(self.url, headers=headers, stream=True,
                                           timeout=(fetcher.timeout, fetcher.timeout))
        except requests.exceptions.RequestException as exc:
            raise TransferError(describe(exc, fetcher.timeout)) from exc
        try:
            status = response.status_code
            if status == 200 or status == 416:
                raise FallBack(f"{self.url}: the server does not serve byte ranges ({status})")
            if status != 206:
                raise HTTPStatusError(response.url or self.url, status, response.reason or "")
            if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
                raise FallBack(f"{self.url}: a byte range came compressed")
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if not match or (int(match.group(1)), int(match.group(2))) != (start, piece.end - 1) or \
                    match.group(3) not in ("*", str(self.size)):
                raise FallBack(f"{self.url}: asked for bytes {start}-{piece.end - 1}, got "
                               f"{response.headers.get('Content-Range')!r}")
            for chunk in body_chunks(response.raw, READ):
                if self._stop.is_set() or fetcher.cancel.is_set():
                    return
                if len(chunk) > piece.end - piece.start - piece.received:
                    raise FallBack(f"{self.url}: a byte range longer than asked for")
                with self._cv:
                    piece.chunks.append(chunk)
                    piece.received += len(chunk)
                    self._received += len(chunk)
                    self._cv.notify_all()
            if piece.start + piece.received != piece.end:
                raise TransferError(f"connection closed after {piece.received} of {piece.end - piece.start} bytes")
            with self._cv:
                piece.done = True
                self._cv.notify_all()
        finally:
            response.close()
