"""Offline mode: no network connection at all, for every command and the processes it starts.

The state is the environment variable ``MODELZOO_OFFLINE`` (``1``/``0``): ``--offline`` sets it
(``enable``), so worker processes and scripts a command starts inherit it. It is enforced where
connections are made, never by checks scattered over the pipelines:

- ``fetch.opener_for`` hands out a refusing opener for every network scheme (``http``,
  ``https``, ``s3``): each file then falls through to the next source (a ``file://`` mirror),
  and one no local source has fails with one ``OfflineError`` line;
- ``fetch.make_session`` mounts an adapter that refuses every request (a second line: anything
  that reaches the session without the table, such as a piece of a big file);
- ``s3.make_client`` refuses to make a client (an ``s3://`` mirror destination).

Which schemes use the network is the registry's (sources.py).

Local folders, ``file://`` mirrors and the cache work as always. A command that takes
``--offline`` calls ``cli.common.apply_offline(args)`` first (the quantizer must too).
"""

from __future__ import annotations

import os

from ..errors import OfflineError, UsageError

ENV = "MODELZOO_OFFLINE"
_ON, _OFF = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def is_offline() -> bool:
    """Whether this process may open no network connection (``MODELZOO_OFFLINE``)."""
    value = os.environ.get(ENV, "").strip().lower()
    return value in _ON


def check_environment() -> None:
    """A ``MODELZOO_OFFLINE`` that is neither on nor off is a UsageError (one line, exit 2):
    guessing would either break a run or let it reach the network."""
    value = os.environ.get(ENV, "")
    if value.strip().lower() not in _ON | _OFF:
        raise UsageError(f"{ENV}={value[:40]!r}: expected 1 (offline) or 0")


def enable() -> None:
    """From now on, this process and those it starts make no network connection."""
    os.environ[ENV] = "1"


def refuse(what: str) -> OfflineError:
    """The error for a network access offline mode forbids (``what``: a URL or a purpose)."""
    return OfflineError(f"{what}: not fetched: offline (--offline or {ENV}=1), no network connection is made")
