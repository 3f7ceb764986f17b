"""A big file over several connections (segments.py), through the downloader's command line:
only when one connection is slow, pieces in order, bounded memory, fall-backs to one connection."""

from __future__ import annotations

import os
import threading

import pytest
from conftest import MB, _interrupted, _start, _wait_for, download, leftovers, sha384, write_model

from modelzoo.devtools.loopback import Fault


BIG = 24 * 1000 * 1000  # above the 16 MB from which a file is fetched in pieces


@pytest.fixture
def big_file(server, zoo, tmp_path):
    data = os.urandom(BIG)
    url = server.add("/big.bin", data)
    write_model(zoo, "big", [{"name": "big.bin", "data": data, "url": url}])
    return data, tmp_path / "out", tmp_path / "out/public/big/big.bin"


def _ranges(server) -> list[tuple[int, int] | None]:
    out = []
    for r in server.requests:
        value = r.headers.get("Range")
        if value is None:
            out.append(None)
            continue
        a, _, b = value.removeprefix("bytes=").partition("-")
        out.append((int(a), int(b) if b else -1))
    return out


SLOW = Fault(chunk_size=256 * 1024, chunk_delay=0.02)  # ~12 MB/s: slow enough for pieces to pay


def _per_request(server, choose) -> list:
    """Serve each request with the fault `choose(range_header, nth_closed_range)` returns (None:
    the path's own fault, if any); returns the list the records of the requests given a fault of
    `choose`'s go to, in the order they were chosen. (Requests arrive on several threads at once:
    the nth closed range need not be the nth in server.requests, so tests look here.)"""
    original = server._record
    closed = [0]
    faulted = []
    lock = threading.Lock()

    def record(method, path, headers, target_):
        served = original(method, path, headers, target_)
        this = server._current.record  # this request's (set by original, per thread)
        value = headers.get("Range", "")
        with lock:
            nth = None
            if value and not value.endswith("-"):
                nth = closed[0]
                closed[0] += 1
            fault = choose(value, nth)
            if fault is not None:
                faulted.append(this)
        return fault or served

    server._record = record
    return faulted


def _pieces(server) -> list[tuple[int, int]]:
    return sorted(r for r in _ranges(server) if r is not None and r[1] != -1)


def test_a_slow_big_file_goes_on_in_pieces_over_several_connections(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and leftovers(out) == []
    first, *_ = _ranges(server)
    assert first == (0, -1)  # one connection first, asking for a range: the answer shows pieces would work
    pieces = _pieces(server)
    assert 0 < pieces[0][0] < BIG // 2 and pieces[-1][1] == BIG - 1  # the rest, after what the first one got
    assert all(b[0] == a[1] + 1 for a, b in zip(pieces, pieces[1:]))  # consecutive, no gap or overlap
    assert len(pieces) >= 8 and 2 <= server.peak_concurrency() <= 4


def test_a_fast_link_keeps_one_connection(server, zoo, big_file):
    """More connections join only when the first one is slow: at loopback speed the file is
    done before they could help, so it is one plain request."""
    data, out, target = big_file
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server) == [(0, -1)] and server.max_active == 1


def test_one_connection_when_asked(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--connections", "1")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and _ranges(server) == [None]


def test_small_files_are_not_split(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", SLOW)
    assert download(zoo, out, "--name", "m", "--connections", "8").returncode == 0
    assert _ranges(server) == [None]


def test_a_server_ignoring_range_is_read_on_one_connection(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(ignore_range=True, chunk_size=256 * 1024, chunk_delay=0.02))
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server) == [(0, -1)] and server.max_active == 1  # a 200 to a range: no pieces


def test_an_inconsistent_content_range_falls_back_to_one_connection_from_zero(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    _per_request(server, lambda value, nth: Fault(content_range=f"bytes 1-{BIG - 1}/{BIG}") if nth else None)
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    _assert_fell_back_from_zero(server)


def _assert_fell_back_from_zero(server) -> None:
    """After the pieces, one request for the whole file: from byte 0, not a resume of the prefix."""
    ranges = _ranges(server)
    first_piece = next(i for i, r in enumerate(ranges) if r is not None and r[1] != -1)
    after = [r for r in ranges[first_piece:] if r is None or r[1] == -1]  # one-connection requests
    assert after and (after[0] is None or after[0][0] == 0), ranges


@pytest.mark.parametrize("fault", [Fault(content_encoding="gzip"), Fault(pad=b"x" * 100)],
                         ids=["compressed-piece", "longer-piece"])
def test_a_piece_that_is_not_the_range_asked_falls_back(server, zoo, big_file, fault):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    _per_request(server, lambda value, nth: fault if nth is not None and nth >= 1 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    _assert_fell_back_from_zero(server)


def test_pieces_ahead_of_a_slow_first_piece_are_bounded(server, zoo, big_file):
    """Memory: at most connections + 1 pieces are fetched while the first is still arriving."""
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    first_piece_slow = Fault(chunk_size=64 * 1024, chunk_delay=0.15)  # 1.5 MB: about 3.5 s
    faulted = _per_request(server, lambda value, nth: first_piece_slow if nth == 0 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    pieces = [r for r in server.requests if r.headers.get("Range", "-")[-1] != "-"]
    [slow_piece] = faulted
    early = [r for r in pieces if r.time - slow_piece.time < 2.5]  # while the slow piece still arrives
    # The slow piece is one of the three that start at once, any of them; the pieces before it are
    # written, and then nothing may be fetched beyond the window (connections + 1 = 4 pieces from
    # the slow one). Without the bound all 16 are asked at once.
    starts = sorted(int(r.headers["Range"].split("=")[1].split("-")[0]) for r in pieces)
    slow = starts.index(int(slow_piece.headers["Range"].split("=")[1].split("-")[0]))
    assert slow < 3 and 2 <= len(early) <= slow + 4, (slow, len(early))


def test_a_dropped_piece_resumes_by_itself(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    faulted = _per_request(server, lambda value, nth: Fault(drop_after=500_000, stall_seconds=0.3, reset=True)
                           if nth == 0 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3")  # --num_attempts is 1
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    pieces = [r for r in _ranges(server) if r is not None and r[1] != -1]
    [dropped] = faulted
    a, _, b = dropped.headers["Range"].removeprefix("bytes=").partition("-")
    first = (int(a), int(b))
    resumed = [r for r in pieces if r[1] == first[1] and r != first]  # the same piece asked again, from where it broke
    assert len(resumed) == 1 and first[0] < resumed[0][0] <= first[0] + 500_000


def test_jobs_and_pieces_share_the_connections(server, zoo, tmp_path):
    for i in range(2):
        data = os.urandom(BIG)
        server.add(f"/b{i}.bin", data, SLOW)  # slow enough to go on in pieces (at 0.01 s it never split)
        write_model(zoo, f"b{i}", [{"name": f"b{i}.bin", "data": data, "url": server.url(f"/b{i}.bin")}])
    result = download(zoo, tmp_path / "out", "--all", "-j", "2", "--connections", "3")
    assert result.returncode == 0, result.stderr
    assert _pieces(server)  # split: or the bound below would say nothing
    assert server.peak_concurrency() == 3  # max(jobs, connections), not jobs x connections


def test_ctrl_c_during_pieces_leaves_a_resumable_prefix(server, zoo, big_file, tmp_path):
    data, out, target = big_file
    server.fault("/big.bin", Fault(chunk_size=64 * 1024, chunk_delay=0.02))
    cache = tmp_path / "cache"
    proc = _start(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "4")
    _wait_for(lambda: any(p.stat().st_size > 2 * MB for p in cache.rglob("*.incomplete")), "2 MB in the cache")
    _interrupted(proc)
    partial = next(cache.rglob("*.incomplete"))
    kept = partial.stat().st_size
    assert data.startswith(partial.read_bytes())  # a plain prefix, no holes
    server.faults.clear()
    before = len(server.requests)
    result = download(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "1")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests[before:]] == [f"bytes={kept}-"]


def test_a_prefix_is_resumed_in_pieces(server, zoo, big_file, tmp_path):
    data, out, target = big_file
    cache = tmp_path / "cache"
    partial = cache / "sha384" / sha384(data)[:2] / (sha384(data)[2:] + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:5_000_000])
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "4",
                      max_file_size=BIG)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server)[0] == (5_000_000, -1)  # from the prefix on, not from zero
    pieces = _pieces(server)
    assert pieces[0][0] > 5_000_000 and pieces[-1][1] == BIG - 1
