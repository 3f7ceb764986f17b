"""fetch in-process against the loopback server: retries, resume, the opener table, bounds."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading

import pytest

from modelzoo.transport import fetch, retry
from modelzoo.devtools.loopback import Fault
from modelzoo.errors import ChecksumMismatchError, DownloadError, Interrupted, SizeMismatchError

MB = 1 << 20


def sha(data: bytes) -> str:
    return hashlib.sha384(data).hexdigest()


def fetcher(num_attempts: int = 2, progress=None, cancel: threading.Event | None = None) -> fetch.Fetcher:
    return fetch.Fetcher(fetch.make_session(num_attempts), timeout=5, num_attempts=num_attempts,
                         cancel=cancel or threading.Event(), progress=progress)


def test_retry_after_is_capped_at_a_minute():
    retry = fetch.CappedRetry(total=2)
    assert retry.parse_retry_after("3600") == fetch.MAX_RETRY_AFTER == 60
    assert retry.parse_retry_after("5") == 5


def test_backoff_starts_immediately_then_doubles():
    assert [retry.backoff_delay(a) for a in range(1, 7)] == [0, 0, 1, 2, 4, 8]
    assert retry.backoff_delay(30) == retry.BACKOFF_MAX


def test_fetch_fills_the_partial_and_returns_its_verifier(server, tmp_path):
    data = os.urandom(3 * MB)
    url = server.add("/m.bin", data)
    seen: list[int] = []
    v = fetcher(progress=seen.append).fetch([url], tmp_path / "p", len(data), sha(data), "m.bin")
    assert v.matches() and (tmp_path / "p").read_bytes() == data and seen[-1] == len(data)


def test_a_resume_trusts_the_disk_not_what_was_counted(server, tmp_path):
    """Bytes counted but not on disk (here: cut off behind the fetcher's back) must not be
    resumed past: the retry asks for what the disk holds, and the result cannot verify."""
    data = os.urandom(3 * MB)
    url = server.add("/m.bin", data, Fault(times=1, drop_after=2 * MB, stall_seconds=0.3, reset=True))
    partial = tmp_path / "p"
    cut = []

    def progress(done: int) -> None:
        if done >= MB and not cut:
            os.truncate(partial, 100)
            cut.append(done)

    with pytest.raises(ChecksumMismatchError):
        fetcher(progress=progress).fetch([url], partial, len(data), sha(data), "m.bin")
    # 2 MB were counted; the disk held the 100 bytes left by the cut plus the 1 MB chunk after it
    assert cut == [MB]
    assert [r.headers.get("Range") for r in server.requests] == [None, f"bytes={100 + MB}-"]


def test_the_opener_table_takes_new_schemes(tmp_path):
    data = b"from memory"

    def open_mem(f: fetch.Fetcher, url: str, offset: int, size: int) -> fetch.Opened:
        return fetch.Opened(iter([data[offset:]]), offset, "", lambda: None)

    fetch.register_opener("mem", open_mem)
    try:
        v = fetcher().fetch(["mem://x"], tmp_path / "p", len(data), sha(data), "x")
        assert v.matches() and (tmp_path / "p").read_bytes() == data
    finally:
        del fetch.OPENERS["mem"]
    with pytest.raises(DownloadError, match="unsupported URL scheme 'mem'"):
        fetcher().fetch(["mem://x"], tmp_path / "q", len(data), sha(data), "x")


def test_every_source_but_the_last_falls_through(server, tmp_path):
    data = os.urandom(1000)
    good = server.add("/good.bin", data)
    server.add("/loop", b"", Fault(redirect_to="/loop"))
    server.add("/br", data, Fault(content_encoding="br"))
    urls = [(tmp_path / "nope").as_uri(), server.url("/missing"), server.url("/loop"), server.url("/br"), good]
    v = fetcher(num_attempts=1).fetch(urls, tmp_path / "p", len(data), sha(data), "x")
    assert v.matches() and (tmp_path / "p").read_bytes() == data
    # every http source was tried, in order (the file:// one needs no server)
    assert [r.path for r in server.requests] == ["/missing", "/loop", "/loop", "/loop", "/loop", "/loop", "/loop",
                                                 "/loop", "/loop", "/loop", "/loop", "/loop", "/br", "/good.bin"]
    with pytest.raises(DownloadError, match="x: HTTP 404 Not Found for "):
        fetcher(num_attempts=1).fetch([server.url("/missing")], tmp_path / "q", 1, sha(b"x"), "x")


def test_a_gzip_file_sent_with_content_encoding_gzip_is_kept_as_sent(server, tmp_path):
    text = b"layer " * 50_000
    archive = gzip.compress(text, mtime=0)
    url = server.add("/a.gz", text, Fault(gzip=True))  # the server compresses text to exactly `archive`
    v = fetcher().fetch([url], tmp_path / "p", len(archive), sha(archive), "a.gz")
    assert v.matches() and (tmp_path / "p").read_bytes() == archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # the other candidate is gone


def test_a_longer_body_is_never_written(server, tmp_path):
    data = os.urandom(MB)
    url = server.add("/m.bin", data + b"x")
    with pytest.raises(SizeMismatchError, match="got more than"):
        fetcher().fetch([url], tmp_path / "p", len(data), sha(data), "m.bin")
    assert (tmp_path / "p").stat().st_size <= len(data)


def test_cancel_stops_between_chunks(server, tmp_path):
    data = os.urandom(4 * MB)
    url = server.add("/m.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.02))
    cancel = threading.Event()

    def progress(done: int) -> None:
        if done > MB:
            cancel.set()

    with pytest.raises(Interrupted):
        fetcher(progress=progress, cancel=cancel).fetch([url], tmp_path / "p", len(data), sha(data), "m.bin")
    assert MB < (tmp_path / "p").stat().st_size < len(data)  # stopped at the next 1 MB chunk


def test_offline_the_table_and_the_session_refuse_the_network(server, tmp_path, monkeypatch):
    from modelzoo.errors import OfflineError

    data = os.urandom(1000)
    url = server.add("/f.bin", data)
    mirror = tmp_path / "mirror.bin"
    mirror.write_bytes(data)
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    session = fetch.make_session(1)
    with pytest.raises(OfflineError, match="not fetched: offline"):
        session.get(url)  # the session alone cannot reach a socket either
    fetcher = fetch.Fetcher(session, timeout=5, num_attempts=1, cancel=threading.Event())
    with pytest.raises(OfflineError, match=f"x: {url}: not fetched: offline"):
        fetcher.fetch([url, "s3://bucket/f.bin"], tmp_path / "a.part", len(data), sha(data), "x")
    fetcher.fetch([url, f"file://{mirror}"], tmp_path / "b.part", len(data), sha(data), "x")  # falls through
    assert (tmp_path / "b.part").read_bytes() == data
    assert server.connections == 0
    monkeypatch.setenv("MODELZOO_OFFLINE", "0")
    fetch.Fetcher(fetch.make_session(1), timeout=5, num_attempts=1, cancel=threading.Event()).fetch(
        [url], tmp_path / "c.part", len(data), sha(data), "x")
    assert server.connections == 1


def test_a_slow_body_is_handed_on_as_it_trickles_in(server, tmp_path):
    """Ctrl-C is checked between chunks: on a slow link a chunk must not wait for a full MiB
    (64 KB every 0.2 s: 3.2 s per MiB), nor the cancel with it."""
    data = os.urandom(2 * MB)
    url = server.add("/m.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.2))
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int) -> None:
        seen.append(done)
        cancel.set()

    with pytest.raises(Interrupted):
        fetcher(progress=progress, cancel=cancel).fetch([url], tmp_path / "p", len(data), sha(data), "m.bin")
    assert seen and 0 < seen[0] < MB, seen
    assert (tmp_path / "p").read_bytes() == data[:seen[0]]  # what was handed on, and only that
