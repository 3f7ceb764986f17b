"""What a whole-file fetch and a piece of a segmented one share: reading a response's body as it
arrives, and what a transfer needs of the fetcher that started it (Link). Below both fetch.py
and segments.py, so neither imports the other back."""

from __future__ import annotations

import threading
import time
from typing import Iterator, Protocol

import requests
import urllib3

HAND_ON = 0.1  # seconds: bytes that trickle in are handed on at least this often (see body_chunks)


class Link(Protocol):
    """The fetcher as a transfer sees it: its session, limits and the run's cancel event."""

    session: requests.Session
    timeout: float
    num_attempts: int
    cancel: threading.Event


def body_chunks(raw: urllib3.BaseHTTPResponse, size: int) -> Iterator[bytes]:
    """A response's body as sent (not decoded), in chunks of up to `size` bytes, each handed on
    as soon as it is full or HAND_ON seconds after its read began, whichever comes first.

    urllib3's ``stream(size)`` returns only when `size` bytes have come: on a slow link (64 KB
    every 0.5 s) that is 8 s per MiB, and Ctrl-C, checked between chunks, waited for it. Here a
    chunk waits for at most one arrival of the server's past HAND_ON, and a fast link still
    gets full chunks."""
    parts: list[bytes] = []
    have = 0
    began = time.monotonic()
    while True:
        try:
            data = raw.read1(size - have, decode_content=False)
        except Exception:
            if parts:  # what came before the break: a retry resumes after it
                yield b"".join(parts)
            raise
        if data:
            parts.append(data)
            have += len(data)
        if parts and (not data or have >= size or time.monotonic() - began >= HAND_ON):
            yield b"".join(parts)  # (one part is handed on as it is, without a copy)
            parts, have, began = [], 0, time.monotonic()
        if not data:
            return
