"""Where bytes are fetched: HTTP(S) with retries, Range resume and stall timeouts; file:// mirrors.

One fetch writes into a partial file and leaves it either complete (size reached, checksum
computed on the way) or raises. Verification of the result is the caller's (see download.py);
this module only guarantees it never writes more than the expected size.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from urllib.parse import unquote, urlparse

import requests
import urllib3
from urllib3.util.retry import Retry

from . import __version__
from .errors import (
    ChecksumMismatchError, DiskFullError, DownloadError, HTTPStatusError, Interrupted, OutputNotWritableError,
    SizeMismatchError,
    TransferError,
)
from .verify import BackgroundHashing, StreamVerifier, feed_file

CHUNK = 1 << 20
MAX_REDIRECTS = 10
MAX_RETRY_AFTER = 60.0  # seconds; a server may not park us for longer than this
RETRY_STATUSES = (429, 500, 502, 503, 504)
BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 20.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


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
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def backoff_delay(attempt: int) -> float:
    """Delay before attempt number `attempt` (1-based): the first retry is immediate (a dropped
    connection is usually resumed at once), then 1 s, 2 s, 4 s, ... up to BACKOFF_MAX."""
    return 0.0 if attempt <= 2 else min(BACKOFF_MAX, BACKOFF_FACTOR * 2 ** (attempt - 2))


@dataclass
class _Opened:
    chunks: Iterator[bytes]
    offset: int  # where these bytes start in the file
    encoding: str  # a Content-Encoding the server applied despite being asked not to
    close: Callable[[], None]


class Fetcher:
    """Downloads one file from a list of URLs into a partial file.

    The partial file may already hold a prefix (from an earlier attempt or run); it is
    resumed with a Range request when the server honours it, restarted otherwise.
    """

    def __init__(self, session: requests.Session, *, timeout: float, num_attempts: int,
                 cancel: threading.Event, progress: Callable[[int], None] | None = None) -> None:
        self.session = session
        self.timeout = timeout
        self.num_attempts = num_attempts
        self.cancel = cancel
        self.progress = progress or (lambda n: None)

    # -- public

    def fetch(self, urls: list[str], partial: Path, size: int, sha384: str, what: str) -> StreamVerifier:
        """Fill `partial` with the file from the first URL that gives the right bytes
        (a mirror first, then the descriptor's source). Returns the verifier of exactly the
        bytes now in `partial`, which have been checked against size and SHA-384."""
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
            except (HTTPStatusError, TransferError) as exc:
                errors.append(str(exc))
                if last:
                    text = "; ".join(errors)
                    cls = TransferError if isinstance(exc, TransferError) else DownloadError
                    raise cls(f"{what}: {text}") from exc
        raise DownloadError(f"{what}: no source to download from")

    # -- one URL, several attempts

    def _fetch_one(self, url: str, partial: Path, size: int, sha384: str, what: str) -> StreamVerifier:
        verifier, decoded = self._resume_state(partial, size, sha384)
        last_error = ""
        for attempt in range(1, self.num_attempts + 1):
            self._check_cancel()
            if attempt > 1:
                self._sleep(backoff_delay(attempt))
            if verifier.size == size:
                break
            try:
                try:
                    opened = self._open(url, verifier.size, size)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                    # urllib3's Retry has already made its attempts at this request
                    raise TransferError(f"{url}: {_describe(exc, self.timeout)} {self._attempts()}") from exc
                try:
                    if opened.offset != verifier.size:  # server sent the whole file: start over
                        verifier, decoded = self._restart(partial, size, sha384)
                    if opened.encoding and decoded is None:
                        if verifier.size:
                            opened.close()
                            verifier, decoded = self._restart(partial, size, sha384)
                            opened = self._open(url, 0, size)
                        decoded = _Decoder(opened.encoding, size, sha384)
                    self._stream(opened.chunks, partial, verifier, decoded, what)
                finally:
                    opened.close()
                if verifier.size == size or decoded is not None:
                    break  # an encoded body is complete when its stream ends without error
                last_error = f"connection closed after {verifier.size} of {size} bytes"
            except (HTTPStatusError, TransferError):
                raise
            except requests.exceptions.TooManyRedirects as exc:
                raise DownloadError(f"{url}: redirect loop or more than {MAX_REDIRECTS} redirects") from exc
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as exc:
                last_error = _describe(exc, self.timeout)
        else:
            raise TransferError(f"{url}: {last_error} {self._attempts()}")
        if decoded is not None and not verifier.matches() and decoded.verifier.matches():
            # The server compressed the body on the wire; the descriptor's checksum is of the
            # decoded file, so store that.
            decoded.rewrite(partial)
            return decoded.verifier
        return verifier

    def _resume_state(self, partial: Path, size: int, sha384: str) -> tuple[StreamVerifier, None]:
        verifier = StreamVerifier(size, sha384)
        try:
            have = partial.stat().st_size
        except FileNotFoundError:
            have = 0
        if 0 < have <= size:
            with open(partial, "rb") as f:
                feed_file(verifier, f)
        elif have > size:
            return self._restart(partial, size, sha384)
        return verifier, None

    @staticmethod
    def _restart(partial: Path, size: int, sha384: str) -> tuple[StreamVerifier, None]:
        with _writing(partial, "wb"):
            pass
        return StreamVerifier(size, sha384), None

    def _open(self, url: str, offset: int, size: int) -> _Opened:
        scheme = urlparse(url).scheme
        if scheme == "file":
            return self._open_file(url, offset)
        if scheme not in ("http", "https"):
            raise DownloadError(f"{url}: unsupported URL scheme {scheme!r}")
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self.session.get(url, headers=headers, stream=True, timeout=(self.timeout, self.timeout))
        status = response.status_code
        if status not in (200, 206):
            response.close()
            if status == 416 and offset:
                return self._open(url, 0, size)  # our prefix is not a prefix of theirs: start over
            raise HTTPStatusError(response.url or url, status, response.reason or "")
        start = 0
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            total_ok = match and (match.group(3) == "*" or int(match.group(3)) == size)
            if not match or int(match.group(1)) != offset or not total_ok:
                response.close()
                # A range answer we cannot line up with our prefix: fetch the whole file.
                return self._open(url, 0, size) if offset else self._bad_range(url)
            start = offset
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            encoding = ""
        return _Opened(response.raw.stream(CHUNK, decode_content=False), start, encoding, response.close)

    @staticmethod
    def _bad_range(url: str) -> _Opened:
        raise TransferError(f"{url}: the server answered 206 with an unusable Content-Range")

    @staticmethod
    def _open_file(url: str, offset: int) -> _Opened:
        path = Path(unquote(urlparse(url).path))
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise HTTPStatusError(url, 404, "Not Found (file mirror)") from None
        except OSError as exc:
            raise TransferError(f"{url}: {exc.strerror or exc}") from exc
        f.seek(offset)

        def chunks() -> Iterator[bytes]:
            while chunk := f.read(CHUNK):
                yield chunk

        return _Opened(chunks(), offset, "", f.close)

    def _stream(self, chunks: Iterator[bytes], partial: Path, verifier: StreamVerifier,
                decoded: "_Decoder | None", what: str) -> None:
        with _writing(partial, "ab") as out, BackgroundHashing(verifier) as hasher:
            for chunk in chunks:
                self._check_cancel()
                if not chunk:
                    continue
                room = verifier.expected_size - verifier.size
                if len(chunk) > room and decoded is None:
                    # Never keep more than the expected size, and never retry: a longer
                    # file will not get shorter.
                    raise SizeMismatchError(what, verifier.expected_size, verifier.size + len(chunk), more=True)
                if decoded is not None:
                    decoded.update(chunk)
                    if len(chunk) > room and decoded.verifier.too_long:
                        raise SizeMismatchError(what, verifier.expected_size, verifier.size + len(chunk), more=True)
                out.write(chunk)
                hasher.update(chunk)
                self.progress(verifier.size)

    def _attempts(self) -> str:
        return f"(after {self.num_attempts} attempt{'s' if self.num_attempts != 1 else ''})"

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted")

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted")


class _Decoder:
    """Tracks what a Content-Encoding'd body decodes to, so the checksum can decide which
    of the two (bytes as sent, or decoded) is the descriptor's file."""

    def __init__(self, encoding: str, size: int, sha384: str) -> None:
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise DownloadError(f"unsupported Content-Encoding {encoding!r}")
        self.encoding = encoding
        self.verifier = StreamVerifier(size, sha384)
        self._z = self._new()
        self.broken = False

    def _new(self):
        return zlib.decompressobj(wbits=31 if self.encoding != "deflate" else 15)

    def update(self, chunk: bytes) -> None:
        if self.broken or self.verifier.too_long:
            return
        try:
            self.verifier.update(self._z.decompress(chunk, self.verifier.expected_size + 1 - self.verifier.size))
        except zlib.error:
            self.broken = True

    def rewrite(self, partial: Path) -> None:
        """Replace the encoded bytes in `partial` by the decoded file."""
        decoded = partial.with_name(partial.name + ".decoded")
        z = self._new()
        with open(partial, "rb") as src, _writing(decoded, "wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(z.decompress(chunk))
            dst.write(z.flush())
        os.replace(decoded, partial)


class _writing:
    """open() for writing that turns ENOSPC / EROFS / EACCES into our named errors."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path, self.mode = path, mode

    def __enter__(self) -> BinaryIO:
        try:
            self.f = open(self.path, self.mode)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        return self

    def write(self, data: bytes) -> None:
        try:
            self.f.write(data)
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def __exit__(self, *exc_info) -> None:
        try:
            self.f.close()
        except OSError as exc:
            if exc_info[0] is None:
                raise write_error(self.path, exc) from exc


def write_error(path: Path, exc: OSError) -> DownloadError:
    """The named error for a failed write to path."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on device while writing {path}")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return OutputNotWritableError(f"cannot write {path}: {exc.strerror}")
    return DownloadError(f"cannot write {path}: {exc.strerror or exc}")


def copy_file(src: Path, dst: Path) -> None:
    """Copy with the kernel's fast path where it has one; write errors get our names."""
    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        if exc.filename == str(src) or exc.filename == src:
            raise
        raise write_error(dst, exc) from exc


def _describe(exc: BaseException, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError)) or "timed out" in text:
        return f"no data for {timeout:g} s (stalled or unreachable server)"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        if "IncompleteRead" in text or "Connection broken" in text or "prematurely" in text:
            return "connection broken before the whole file arrived"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = str(getattr(exc.args[0], "reason", None) or text) if exc.args else text
        errno_text = re.search(r"\[Errno -?\d+\] [^'\")]+", reason)
        return f"cannot connect: {errno_text.group(0).strip() if errno_text else reason}"
    return text or type(exc).__name__
