"""Sizes people type and the room a run needs: "20G" as bytes, and what a run will write on
each file system against what that file system has free, known before the first byte.

>>> parse_size("1.5GiB")
1610612736
>>> needs = space_needed([(Path("/srv/models/a.bin"), 38_800_000_000)])   # doctest: +SKIP
>>> check_space(needs)              # InsufficientSpaceError: needs 38.8 GB on /srv (12.1 GB free)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, NamedTuple

from .errors import InsufficientSpaceError
from .events import human_size

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes from ``500M``, ``20G``, ``1.5GiB``, ``1000`` (K, M, G, T are powers of 1000, as our
    human sizes are; KiB, MiB, GiB, TiB powers of 1024; case does not matter). ValueError, with
    the accepted forms in its message, for anything else."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."  # (the error stays one short line)
    if match is None or unit not in _UNITS:
        raise ValueError(f"{shown} is not a size (bytes, or a number with K, M, G, T, KiB, MiB, GiB or TiB)")
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value > 2**63:
        raise ValueError(f"{shown} is too large a size")
    return int(value)


class Need(NamedTuple):
    """What a run will write on one file system (``mount``: its mount point) and what is free
    there for an unprivileged writer."""

    mount: Path
    needed: int
    free: int

    @property
    def fits(self) -> bool:
        return self.needed <= self.free

    def __str__(self) -> str:
        return f"needs {human_size(self.needed)} on {self.mount} ({human_size(self.free)} free)"


def _existing(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists (where a file will land)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path, dev: int) -> Path:
    while path != path.parent:
        try:
            if os.stat(path.parent).st_dev != dev:
                break
        except OSError:
            break
        path = path.parent
    return path


def space_needed(writes: Iterable[tuple[Path, int]]) -> list[Need]:
    """Sum what will be written (path, bytes) per file system, in the order the file systems are
    first named. A path that does not exist yet counts on the file system of its nearest existing
    folder. A write of 0 bytes still names its file system (a dry run prints it)."""
    totals: dict[int, list] = {}
    for path, size in writes:
        where = _existing(path)
        dev = os.stat(where).st_dev
        if dev not in totals:
            totals[dev] = [where, 0]
        totals[dev][1] += size
    needs = []
    for dev, (where, needed) in totals.items():
        st = os.statvfs(where)
        needs.append(Need(_mount_point(where, dev), needed, st.f_bavail * st.f_frsize))
    return needs


def check_space(needs: list[Need]) -> None:
    """InsufficientSpaceError naming every file system that is too small, in one line."""
    short = [n for n in needs if not n.fits]
    if short:
        raise InsufficientSpaceError("; ".join(map(str, short)))
