"""Retrying: how long to wait before another attempt, and one human line for what went wrong.

Shared by fetch.py (one connection) and segments.py (pieces over several), so neither imports
the other for them.
"""

from __future__ import annotations

import re

import requests
import urllib3

BACKOFF_FACTOR = 0.5
BACKOFF_MAX = 20.0


def backoff_delay(attempt: int) -> float:
    """Delay before attempt number `attempt` (1-based): the first retry is immediate (a dropped
    connection is usually resumed at once), then 1 s, 2 s, 4 s, ... up to BACKOFF_MAX."""
    return 0.0 if attempt <= 2 else min(BACKOFF_MAX, BACKOFF_FACTOR * 2 ** (attempt - 2))


def describe(exc: BaseException, timeout: float, url: str | None = None) -> str:
    """A short, human line for a transport exception from requests or urllib3 (with ``url``, a
    proxy that cannot be reached is named)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g} s (unreachable server, or one dropping new connections)"
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError)) or "timed out" in text:
        return f"no data for {timeout:g} s (stalled or unreachable server)"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        if "IncompleteRead" in text or "Connection broken" in text or "prematurely" in text:
            return "connection broken before the whole file arrived"
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = str(getattr(exc.args[0], "reason", None) or text) if exc.args else text
        errno_text = re.search(r"\[Errno -?\d+\] [^'\")]+", reason)
        what = "cannot connect"
        if isinstance(exc, requests.exceptions.ProxyError):
            what = f"cannot connect to the proxy {proxy_for(url)}" if url else "cannot connect to the proxy"
        return f"{what}: {errno_text.group(0).strip() if errno_text else reason}"
    return text or type(exc).__name__


def proxy_for(url: str) -> str:
    """The proxy the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) gives for url, without
    any user name or password in it."""
    from urllib.parse import urlsplit

    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)) or "?"
    parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
