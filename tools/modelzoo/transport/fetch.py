"""Where bytes are fetched: transport only.

One table maps a URL scheme to an opener (``http``/``https`` through one ``requests`` session
with urllib3's ``Retry``; ``file`` for mirrors on disk; others can be registered, such as
``s3``). :class:`Fetcher` fills a partial file from a list of sources, resuming with ``Range``,
retrying broken bodies, bounding every write by the expected size, and returns the verifier of
exactly the bytes on disk. Writing goes through :mod:`fsio`; hashing through :mod:`verify`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import unquote, urlparse

import requests
import urllib3
from urllib3.util.retry import Retry

from .. import __version__, fsio
from ..errors import (
    ChecksumMismatchError, DownloadError, FileSystemError, HTTPStatusError, Interrupted, OfflineError,
    SizeMismatchError, TransferError,
)
from .offline import is_offline, refuse
from .body import body_chunks
from .sources import NETWORK_SCHEMES
from .retry import BACKOFF_FACTOR, BACKOFF_MAX, backoff_delay, describe
from ..verify import BackgroundHashing, StreamVerifier, feed_file

if TYPE_CHECKING:
    from .segments import ConnectionBudget


CHUNK = 1 << 20
MAX_REDIRECTS = 10
MAX_RETRY_AFTER = 60.0  # seconds; a server may not park us for longer than this
RETRY_STATUSES = (429, 500, 502, 503, 504)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
DECODABLE = ("gzip", "x-gzip", "deflate")
MIN_SPLIT = 16 * 1000 * 1000  # below this, one connection: set-up would cost more than it gains
DECIDE_BYTES = 16 << 20  # a big file's first connection is measured over this much...
DECIDE_SECONDS = 0.1  # ... or this long, whichever comes first
SPLIT_IF_LONGER = 1.0  # seconds the rest would take at that rate: then it comes in pieces


class CappedRetry(Retry):
    """urllib3's Retry, but a Retry-After longer than MAX_RETRY_AFTER is cut to it."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


def make_session(num_attempts: int, pool_size: int = 10) -> requests.Session:
    """One session for all jobs: keep-alive connections, proxies from the environment
    (HTTP_PROXY, HTTPS_PROXY, NO_PROXY; requests reads them). urllib3's Retry retries what
    happens before a response's body, with back-off: failed connections, timeouts waiting for
    the headers, 429 and 5xx (honouring Retry-After). A body that breaks off is retried by
    Fetcher, which resumes it with a Range request."""
    retry = CappedRetry(
        total=num_attempts - 1, connect=num_attempts - 1, read=num_attempts - 1, other=0, redirect=None,
        status=num_attempts - 1, status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
        backoff_factor=BACKOFF_FACTOR, backoff_max=BACKOFF_MAX,
        respect_retry_after_header=True, raise_on_status=False,
    )
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    session.headers["User-Agent"] = f"modelzoo/{__version__} (+requests {requests.__version__})"
    adapter = requests.adapters.HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    if is_offline():  # the second line of offline mode: nothing reaches a socket through this session
        adapter = _OfflineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _OfflineAdapter(requests.adapters.BaseAdapter):
    """Refuses every request (offline mode): the session cannot open a connection."""

    def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' adapter interface
        raise refuse(request.url)

    def close(self) -> None:
        pass


@dataclass
class Opened:
    """A response body being received: its chunks, where they start in the file, and a
    Content-Encoding the server applied although we asked for none."""

    chunks: Iterator[bytes]
    offset: int
    encoding: str
    close: Callable[[], None]
    ranged: bool = False  # the server answered a byte range: the rest could come in pieces


Opener = Callable[["Fetcher", str, int, int], Opened]
"""opener(fetcher, url, offset, size) -> Opened. Raises HTTPStatusError (404 for a missing
file: never retried), TransferError (worth another attempt) or DownloadError."""

OPENERS: dict[str, Opener | str] = {}
"""scheme -> opener, or "module:function" of an opener imported on first use (``s3``: boto3 is
imported only when an s3:// URL is fetched, and a library caller needs no import of its own)."""


def register_opener(scheme: str, opener: Opener | str) -> None:
    """Teach every Fetcher a URL scheme."""
    OPENERS[scheme] = opener


def opener_for(scheme: str) -> Opener | None:
    """The opener of a scheme, importing a lazy one (MissingExtraError when its extra is missing).
    Offline (offline.py), every network scheme gets the refusing opener: this table is where
    offline mode is enforced for every source."""
    if scheme in NETWORK_SCHEMES and is_offline():
        return _refuse_offline
    opener = OPENERS.get(scheme)
    if isinstance(opener, str):
        import importlib

        module, _, name = opener.partition(":")
        opener = OPENERS[scheme] = getattr(importlib.import_module(module, __package__), name)
    return opener


def _refuse_offline(fetcher: "Fetcher", url: str, offset: int, size: int) -> Opened:
    raise refuse(url)


def _open_http(fetcher: "Fetcher", url: str, offset: int, size: int) -> Opened:
    headers = {"Accept-Encoding": "identity"}
    if offset or fetcher.may_split(size - offset):
        # (from 0 too: a 206 tells that the rest could come in pieces if this connection is slow)
        headers["Range"] = f"bytes={offset}-"
    try:
        response = fetcher.session.get(url, headers=headers, stream=True, timeout=(fetcher.timeout, fetcher.timeout))
    except requests.exceptions.TooManyRedirects as exc:
        raise DownloadError(f"{url}: redirect loop or more than {MAX_REDIRECTS} redirects") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        # urllib3's Retry has already made its attempts at this request
        raise TransferError(f"{url}: {describe(exc, fetcher.timeout, url)} {fetcher.attempts_text()}") from exc
    status = response.status_code
    if status not in (200, 206):
        response.close()
        if status == 416 and offset:
            return _open_http(fetcher, url, 0, size)  # our prefix is not a prefix of theirs: start over
        raise HTTPStatusError(response.url or url, status, response.reason or "")
    start = 0
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        total_ok = match and (match.group(3) == "*" or int(match.group(3)) == size)
        if not match or int(match.group(1)) != offset or not total_ok:
            response.close()
            if offset:  # a range answer we cannot line up with our prefix: fetch the whole file
                return _open_http(fetcher, url, 0, size)
            raise TransferError(f"{url}: the server answered 206 with an unusable Content-Range")
        start = offset
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        encoding = ""
    return Opened(body_chunks(response.raw, CHUNK), start, encoding, response.close, ranged=status == 206)


def _open_file(fetcher: "Fetcher", url: str, offset: int, size: int) -> Opened:
    path = Path(unquote(urlparse(url).path))
    try:
        # Without blocking (a FIFO would wait for a writer for ever); only a regular file is there.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise HTTPStatusError(url, 404, "Not Found (file mirror)") from None
    except OSError as exc:
        raise TransferError(f"{url}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HTTPStatusError(url, 404, "Not Found (file mirror: not a regular file)")
    f = open(fd, "rb")
    f.seek(offset)

    def chunks() -> Iterator[bytes]:
        while chunk := f.read(CHUNK):
            yield chunk

    return Opened(chunks(), offset, "", f.close)


register_opener("http", _open_http)
register_opener("https", _open_http)
register_opener("file", _open_file)
register_opener("s3", ".s3:open_s3")


class Fetcher:
    """Downloads one file from a list of URLs into a partial file.

    Guarantees: no more than the expected size is ever written (raw or decoded); a prefix
    already in the partial file (an earlier attempt's or run's) is resumed with ``Range`` when
    the server honours it and re-read from disk before it is trusted; a prefix from one source
    is never continued from another; what :meth:`fetch` returns describes the bytes on disk.

    >>> fetcher = Fetcher(make_session(3), timeout=30, num_attempts=3, cancel=threading.Event())
    >>> fetcher.fetch([mirror_url, source_url], Path("m.bin.part"), size, sha384, "m.bin")  # doctest: +SKIP
    """

    def __init__(self, session: requests.Session, *, timeout: float, num_attempts: int,
                 cancel: threading.Event, progress: Callable[[int], None] | None = None,
                 connections: int = 1, budget: "ConnectionBudget | None" = None) -> None:
        self.session = session
        self.timeout = timeout
        self.num_attempts = num_attempts
        self.cancel = cancel
        self.progress = progress or (lambda n: None)
        self.connections = connections  # for one big file over HTTP (segments.py)
        self.budget = budget  # connections shared with other fetches of the same run

    def may_split(self, rest: int) -> bool:
        """Whether a transfer of ``rest`` bytes could go on in pieces if it turns out slow."""
        return self.connections > 1 and rest >= MIN_SPLIT

    # -- public

    def fetch(self, urls: list[str], partial: Path, size: int, sha384: str, what: str) -> StreamVerifier:
        """Fill ``partial`` with the file from the first URL that gives the right bytes (mirrors
        first, then the descriptor's source). Returns the verifier of the bytes now in
        ``partial``, checked against size and SHA-384. Any failure of a source but the last
        (except an interruption or a local disk error) falls through to the next one."""
        with self.budget.hold() if self.budget else contextlib.nullcontext():
            return self._fetch_sources(urls, partial, size, sha384, what)

    def _fetch_sources(self, urls: list[str], partial: Path, size: int, sha384: str, what: str) -> StreamVerifier:
        errors: list[str] = []
        for i, url in enumerate(urls):
            last = i + 1 == len(urls)
            if i:
                self._restart(partial, size, sha384)  # a prefix from another source proves nothing
            try:
                resumed = partial.exists() and partial.stat().st_size > 0
                verifier = self._fetch_one(url, partial, size, sha384, what)
                if resumed and not verifier.matches():
                    # The prefix we resumed from (an earlier run's) may be what is wrong: once, from scratch.
                    self._restart(partial, size, sha384)
                    verifier = self._fetch_one(url, partial, size, sha384, what)
                verifier.check(what)
                return verifier
            except (SizeMismatchError, ChecksumMismatchError) as exc:
                if last:
                    raise
                errors.append(f"{url}: {exc}")
            except DownloadError as exc:
                errors.append(str(exc) if url in str(exc) else f"{url}: {exc}")
                if last:
                    cls = TransferError if isinstance(exc, TransferError) else \
                        OfflineError if isinstance(exc, OfflineError) else DownloadError
                    raise cls(f"{what}: {'; '.join(errors)}") from exc
            except (Interrupted, FileSystemError):
                raise  # the user's or this machine's: no other source would fare better
            except Exception as exc:  # noqa: BLE001 - e.g. a malformed redirect: this source's failure
                errors.append(f"{url}: {describe(exc, self.timeout)}")
                if last:
                    raise DownloadError(f"{what}: {'; '.join(errors)}") from exc
        raise DownloadError(f"{what}: no source to download from")

    def attempts_text(self) -> str:
        return f"(after {self.num_attempts} attempt{'s' if self.num_attempts != 1 else ''})"

    # -- one URL, several attempts

    def _open(self, url: str, offset: int, size: int) -> Opened:
        scheme = urlparse(url).scheme
        opener = opener_for(scheme)
        if opener is None:
            raise DownloadError(f"{url}: unsupported URL scheme {scheme!r}")
        return opener(self, url, offset, size)

    def _fetch_one(self, url: str, partial: Path, size: int, sha384: str, what: str) -> StreamVerifier:
        verifier = self._resume_state(partial, size, sha384)
        last_error = ""
        for attempt in range(1, self.num_attempts + 1):
            self._check_cancel()
            if attempt > 1:
                self._sleep(backoff_delay(attempt))
                verifier = self._resume_state(partial, size, sha384, verifier)
            if verifier.size == size:
                break
            try:
                opened = self._open(url, verifier.size, size)
                try:
                    if opened.encoding:
                        return self._receive_encoded(url, opened, partial, size, sha384, what)
                    if opened.offset != verifier.size:  # the server sent the whole file: start over
                        verifier = self._restart(partial, size, sha384)
                    slow = _SlowLink(size) if opened.ranged and self.may_split(size - verifier.size) else None
                    try:
                        self._stream(opened.chunks, partial, verifier, what, slow)
                    except _SlowLink.Split:
                        opened.close()
                        if self._in_pieces(url, partial, verifier, size):
                            return verifier
                        # the server could not serve pieces after all: one connection, from zero
                        verifier = self._restart(partial, size, sha384)
                        opened = self._open(url, 0, size)
                        if opened.offset or opened.encoding:
                            raise TransferError(f"{url}: the server answered a request for the whole file "
                                                "with a part or an encoding") from None
                        self._stream(opened.chunks, partial, verifier, what)
                finally:
                    opened.close()
                if verifier.size == size:
                    break
                last_error = f"connection closed after {verifier.size} of {size} bytes"
            except (HTTPStatusError, TransferError):
                raise
            except _BrokenEncodedBody as exc:
                last_error = str(exc)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
                last_error = describe(exc, self.timeout)
        else:
            raise TransferError(f"{url}: {last_error} {self.attempts_text()}")
        return verifier

    def _resume_state(self, partial: Path, size: int, sha384: str,
                      known: StreamVerifier | None = None) -> StreamVerifier:
        """What the partial file on disk holds; a verifier that already counted exactly that
        many bytes is kept (no second read), anything else is re-read from disk."""
        try:
            have = fsio.lstat(partial).st_size  # (a link there is not followed: the Writer refuses it)
        except FileNotFoundError:
            have = 0
        except OSError as exc:
            raise fsio.fs_error(partial, exc, "read") from exc
        if known is not None and known.size == have:
            return known
        if have > size:
            return self._restart(partial, size, sha384)
        verifier = StreamVerifier(size, sha384)
        if have:
            try:
                f = open(fsio.open_regular(partial), "rb")  # never blocks, never through a link
            except OSError as exc:
                raise fsio.fs_error(partial, exc, "read") from exc
            with f:
                feed_file(verifier, f)
        return verifier

    @staticmethod
    def _restart(partial: Path, size: int, sha384: str) -> StreamVerifier:
        with fsio.Writer(partial, "wb"):
            pass
        return StreamVerifier(size, sha384)

    def _stream(self, chunks: Iterator[bytes], partial: Path, verifier: StreamVerifier, what: str,
                slow: "_SlowLink | None" = None) -> None:
        with fsio.Writer(partial, "ab") as out, BackgroundHashing(verifier) as hasher:
            for chunk in chunks:
                self._check_cancel()
                if not chunk:
                    continue
                if len(chunk) > verifier.expected_size - verifier.size:
                    # Never keep more than the expected size, and never retry: a longer
                    # file will not get shorter.
                    raise SizeMismatchError(what, verifier.expected_size, verifier.size + len(chunk), more=True)
                out.write(chunk)
                hasher.update(chunk)
                self.progress(verifier.size)
                if slow is not None:
                    slow.check(verifier.size)

    def _in_pieces(self, url: str, partial: Path, verifier: StreamVerifier, size: int) -> bool:
        """The rest of a slow transfer over several connections; False if the server cannot
        serve pieces after all (the caller then starts over on one connection)."""
        from . import segments  # (only a slow big transfer needs it)

        try:
            segments.SegmentedTransfer(self, url, partial, verifier, size, self.connections, self.budget,
                                       self.progress).run()
            return True
        except segments.FallBack:
            return False

    def _receive_encoded(self, url: str, opened: Opened, partial: Path, size: int, sha384: str,
                         what: str) -> StreamVerifier:
        """A body the server compressed although we asked for identity. The descriptor's file
        is either the decoded stream (a server compressing on the fly) or the bytes as sent (a
        .gz file served with Content-Encoding: gzip); both are kept, each bounded by the
        expected size, and the checksum decides. Such a body is always fetched from zero."""
        if opened.encoding not in DECODABLE:
            raise DownloadError(f"{url}: unsupported Content-Encoding {opened.encoding!r}")
        with fsio.temporary_beside(partial, ".raw") as raw_path:
            raw = _Candidate(raw_path, size, sha384)
            decoded = _Candidate(partial, size, sha384)
            z = zlib.decompressobj(wbits=31 if opened.encoding != "deflate" else 15)
            chunks = opened.chunks
            if opened.offset:
                opened.close()
                opened = self._open(url, 0, size)
                chunks = opened.chunks
            try:
                for chunk in chunks:
                    self._check_cancel()
                    raw.add(chunk)
                    if decoded.alive:
                        try:
                            decoded.add(z.decompress(chunk, size + 1 - decoded.verifier.size))
                            if z.unconsumed_tail or z.unused_data:
                                decoded.drop()  # more than the file, or junk after the stream
                        except zlib.error:
                            decoded.drop()
                    if not raw.alive and not decoded.alive:
                        raise SizeMismatchError(what, size, size + 1, more=True) if raw.too_long else \
                            DownloadError(f"{url}: a body with Content-Encoding {opened.encoding} that "
                                          "neither decodes nor is the file")
                    self.progress((decoded if decoded.alive else raw).verifier.size)
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
                raise _BrokenEncodedBody(describe(exc, self.timeout)) from exc
            finally:
                raw.close()
                decoded.close()
                opened.close()
            if decoded.alive and z.eof and decoded.verifier.matches():
                return decoded.verifier
            if raw.alive and raw.verifier.matches():
                fsio.place(raw_path, partial, size=size)
                return raw.verifier
            if decoded.alive and z.eof:
                decoded.verifier.check(what)
            if raw.alive:
                raw.verifier.check(what)
            raise DownloadError(f"{url}: a body with Content-Encoding {opened.encoding} that neither "
                                "decodes nor is the file")

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted")

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted")


class _SlowLink:
    """Watches the first DECIDE_BYTES (or DECIDE_SECONDS) of a big transfer on one connection
    and raises Split when the rest would take longer than SPLIT_IF_LONGER at that rate. On a
    fast link nothing changes (no extra request, no extra thread), so several connections are
    never slower than one; on a slow one the rest is fetched in pieces (segments.py)."""

    class Split(Exception):
        pass

    def __init__(self, size: int) -> None:
        self.size = size
        self.t0: float | None = None
        self.start = 0
        self.decided = False

    def check(self, done: int) -> None:
        if self.decided:
            return
        now = time.monotonic()
        if self.t0 is None:
            self.t0, self.start = now, done
            return
        got, took = done - self.start, now - self.t0
        if got < DECIDE_BYTES and took < DECIDE_SECONDS:
            return
        if (self.size - done) * took > SPLIT_IF_LONGER * max(got, 1):
            raise _SlowLink.Split()
        self.decided = True  # fast enough: never look again


class _BrokenEncodedBody(Exception):
    """An encoded body broke off; it cannot be resumed, so the next attempt starts over."""


class _Candidate:
    """One reading of an encoded body (as sent, or decoded) written to its own file, dropped as
    soon as it is longer than the file it should be."""

    def __init__(self, path: Path, size: int, sha384: str) -> None:
        self.verifier = StreamVerifier(size, sha384)
        self._out: fsio.Writer | None = fsio.Writer(path, "wb")
        self.alive = True
        self.too_long = False

    def add(self, data: bytes) -> None:
        if not self.alive or not data:
            return
        if len(data) > self.verifier.expected_size - self.verifier.size:
            self.too_long = True
            self.drop()
            return
        assert self._out is not None
        self._out.write(data)
        self.verifier.update(data)

    def drop(self) -> None:
        self.alive = False
        self.close()

    def close(self) -> None:
        if self._out is not None:
            out, self._out = self._out, None
            out.close()


def get_small(url: str, limit: int, timeout: float, on_chunk: Callable[[int], None] | None = None) -> bytes | None:
    """A small file over HTTP(S) (a mirror's manifest, a signature), through the one session
    factory (offline mode refuses it: OfflineError): None when the server has none (404), at
    most ``limit`` + 1 bytes read (a caller refuses more), ``on_chunk(bytes so far)`` after each
    chunk (a pace check may raise there).

    Raises:
        MirrorAccessError: the server could not be reached or answered with an error.
    """
    from ..errors import MirrorAccessError

    session = make_session(1)
    try:
        with session.get(url, timeout=timeout, stream=True, headers={"Accept-Encoding": "identity"}) as r:
            if r.status_code == 404:
                return None
            r.raise_for_status()
            parts, got = [], 0
            for chunk in body_chunks(r.raw, 1 << 16):
                parts.append(chunk)
                got += len(chunk)
                if got > limit:
                    break
                if on_chunk is not None:
                    on_chunk(got)
            return b"".join(parts)
    except (requests.RequestException, OSError) as exc:
        raise MirrorAccessError(f"{url}: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") \
            from exc
    finally:
        session.close()
