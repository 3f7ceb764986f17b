"""One way to obtain a file: where it can come from, the run's connections, and the cache-or-network
routine that both pipelines (download.py and mirror.py) call.

The routine is a decision (:func:`decide`, pure) and one function that carries it out
(:func:`obtain`): a verified cache blob is handed out; without a cache the file is fetched
into the caller's temporary; with a writable cache it is fetched into the cache's partial file
(resuming what an earlier run left), verified, added, then handed out; a cache that cannot be
written still serves what it holds, and the rest is fetched beside the target. Nothing here
imports the network stack until a file really has to be fetched.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import quote

from ..errors import ChecksumMismatchError, SizeMismatchError

if TYPE_CHECKING:
    from ..store.cache import Cache
    from ..descriptor import Model, ModelFile


class Way(StrEnum):
    """How obtain gets a file that is not at its target yet (decide)."""

    CACHED = "cached"  # the cache's verified blob
    FETCH = "fetch"  # fetched (into the cache when it can be written, else into the caller's temporary)
    RESUME = "resume"  # the cache's partial, resumed
    FETCH_BESIDE = "fetch beside the cache"  # the cache cannot be written: fetched beside the target


CACHED, FETCH, RESUME, FETCH_BESIDE = Way


def source_url(file: "ModelFile") -> str:
    """The descriptor's own source of a file (each source type knows its URL)."""
    return file.source.download_url()


def source_urls(model: "Model", file: "ModelFile", mirrors: list[str]) -> list[str]:
    """Mirrors first (URL/<model folder>/<file>), then the descriptor's own source."""
    rel = quote(f"{model.subdirectory.as_posix()}/{file.name.as_posix()}")
    return [m.rstrip("/") + "/" + rel for m in mirrors] + [source_url(file)]


class Transport:
    """The run's one HTTP session and the connections its fetches share (``max(jobs,
    connections)``: the jobs and the pieces of big files), made on the first fetch."""

    def __init__(self, *, jobs: int, connections: int, num_attempts: int, timeout: float,
                 cancel: threading.Event) -> None:
        self.jobs = jobs
        self.connections = connections
        self.num_attempts = num_attempts
        self.timeout = timeout
        self.cancel = cancel
        self._session = None
        self._budget = None
        self._lock = threading.Lock()

    def fetch(self, urls: list[str], partial: Path, size: int, sha384: str, what: str,
              progress: Callable[[int], None] | None = None) -> None:
        """Fill ``partial`` with the verified file from the first source that gives it (fetch.py)."""
        from ..transport.fetch import Fetcher, make_session
        from ..transport.segments import ConnectionBudget

        with self._lock:
            if self._session is None:
                self._budget = ConnectionBudget(max(self.jobs, self.connections))
                self._session = make_session(self.num_attempts, pool_size=max(10, self._budget.total))
        fetcher = Fetcher(self._session, timeout=self.timeout, num_attempts=self.num_attempts, cancel=self.cancel,
                          progress=progress, connections=self.connections, budget=self._budget)
        fetcher.fetch(urls, partial, size, sha384, what)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


def decide(cached: bool | None, cache_writable: bool) -> str:
    """How to get a file that is not at its target yet. ``cached``: None without a cache, else
    whether the cache holds it verified."""
    if cached:
        return CACHED
    if cached is None:
        return FETCH
    return RESUME if cache_writable else FETCH_BESIDE


def obtain(sha384: str, size: int, label: str, into: Path, cache: "Cache | None",
           fetch: Callable[[Path], None], warn: Callable[[str], None],
           on_wait: Callable[[], None] | None = None) -> str:
    """Fill ``into`` (a fresh temporary) with the verified file: CACHED (handed out by the
    cache: a hard link, a reflink or a copy) or FETCH (fetched by ``fetch(path)``, which leaves
    verified bytes at path or raises)."""
    if cache is None:
        fetch(into)
        return FETCH
    if cache.intact_of_size(sha384, size, label) and cache.export(sha384, size, into, trusted=True):
        return CACHED  # the warm path: no lock, no read, no copy where a link will do
    with cache.lock(sha384, on_wait=on_wait):
        had_blob = cache.has_blob(sha384)
        how = decide(had_blob and cache.export(sha384, size, into) is not None, cache.writable)
        if how == CACHED:
            return how
        if had_blob:
            warn(f"{label}: cache entry was corrupt; {'discarded, ' if cache.writable else ''}fetching again")
        if how == FETCH_BESIDE:
            fetch(into)
            return FETCH
        partial = cache.partial_path(sha384)
        try:
            fetch(partial)
        except (ChecksumMismatchError, SizeMismatchError):
            partial.unlink(missing_ok=True)  # wrong bytes are no prefix worth resuming
            raise
        cache.add(sha384, partial, size)
        cache.export(sha384, size, into, trusted=True)  # just verified and recorded
    return FETCH
