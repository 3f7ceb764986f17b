"""segments in-process against the loopback server: one file over several connections, written
as a plain prefix and verified in order; a server that cannot serve pieces makes it fall back."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from modelzoo.transport import fetch, segments
from modelzoo.devtools.loopback import Fault
from modelzoo.verify import StreamVerifier

MB = 1 << 20


def transfer(server_url: str, partial, data: bytes, connections: int, budget=None, have: int = 0):
    fetcher = fetch.Fetcher(fetch.make_session(2), timeout=5, num_attempts=2, cancel=threading.Event(),
                            connections=connections, budget=budget)
    verifier = StreamVerifier(len(data), hashlib.sha384(data).hexdigest())
    partial.write_bytes(data[:have])
    verifier.update(data[:have])
    seen: list[int] = []
    segments.SegmentedTransfer(fetcher, server_url, partial, verifier, len(data), connections, budget,
                               seen.append).run()
    return verifier, seen


def test_piece_size_is_about_four_a_connection_within_bounds():
    assert segments.piece_size(1000, 8) == segments.MIN_PIECE
    assert segments.piece_size(64 * MB, 4) == 4 * MB
    assert segments.piece_size(10_000 * MB, 2) == segments.MAX_PIECE


def test_the_budget_is_shared():
    budget = segments.ConnectionBudget(2)
    with budget.hold():
        assert budget.try_take(0.01)
        assert not budget.try_take(0.01)  # both in use
        budget.give_back()
    assert budget.try_take(0.01) and budget.try_take(0.01)


def test_pieces_over_several_connections_make_the_file_in_order(server, tmp_path):
    data = os.urandom(6 * MB + 123)
    url = server.add("/big.bin", data, Fault(chunk_size=64 << 10, chunk_delay=0.005))
    verifier, seen = transfer(url, tmp_path / "p", data, connections=3, have=MB // 2)
    assert verifier.matches() and (tmp_path / "p").read_bytes() == data
    assert seen == sorted(seen) and seen[-1] == len(data)
    assert server.max_active > 1  # really over several connections
    assert all(r.headers.get("Range") for r in server.requests)  # every piece a range, from the prefix on
    assert min(int(r.headers["Range"].split("=")[1].split("-")[0]) for r in server.requests) == MB // 2


def test_a_server_ignoring_range_makes_it_fall_back(server, tmp_path):
    data = os.urandom(3 * MB)
    url = server.add("/big.bin", data, Fault(ignore_range=True))
    with pytest.raises(segments.FallBack):
        transfer(url, tmp_path / "p", data, connections=2)
