"""Converted IR in mirrors: published by `mirror.py sync --ir`, read by `converter.py --mirror`.

Layout below DEST: ``ir/<key>/<model folder>/<precision>/<file>``, where key is the conversion
key (ir_cache.py): IR made by another OpenVINO, backend or descriptor lives under another key,
so a mirror carries IR for several OpenVINO releases side by side. Each IR file has a manifest
entry like a model file's (size, SHA-384, stamp, verified, model) plus ``ir_key`` (the key,
which must be the path's) and ``tools`` (the backend and its version); stores.decode_manifest
checks both.

A reader trusts nothing a mirror says: every file it fetches is verified against the manifest's
size and SHA-384 while it streams in (fetch.py), and the files are placed only when all of them
verified; anything else (no manifest, no entry for the key, a wrong byte, a mirror that is down)
is a reason to convert locally, said in one line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from .. import fsio
from ..download.obtain import Transport
from ..executors import Pool
from ..errors import Interrupted, MirrorError, MirrorTooSlowError, ModelzooError
from ..store.ir_cache import IrCache, IrFile
from ..transport.fetch import get_small
from ..transport.sources import scheme_of
from .manifest import IR_PREFIX, MANIFEST, MAX_MANIFEST, decode_manifest
from .stores import open_store

MANIFEST_TIMEOUT = 30.0
# Set by a run with --trust_key (trust/policy.py): {mirror URL: SHA-384 of its manifest's
# canonical encoding} for the mirrors whose signed manifest verified; IR comes only from those.
PINS_ENV = "MODELZOO_VERIFIED_MANIFESTS"
MIN_SPEED = 100_000  # bytes/s: IR from a mirror slower than this on average, after GRACE, is made here instead
GRACE = 30.0  # seconds any mirror gets, whatever it sends


def ir_rel(key: str, model_dir: str, path: str) -> str:
    return f"{IR_PREFIX}{key}/{model_dir}/{path}"


def ir_entries(manifest: dict[str, Any] | None, key: str, model_dir: str) -> list[IrFile]:
    """The IR files a manifest names for one model under one key."""
    prefix = ir_rel(key, model_dir, "")
    out = []
    for rel, entry in ((manifest or {}).get("files") or {}).items():
        if rel.startswith(prefix) and entry.get("ir_key") == key:
            out.append(IrFile(rel[len(prefix):], entry["size"], entry["sha384"]))
    return sorted(out, key=lambda f: f.path)


class Pace:
    """How long IR from a mirror may take: a mirror that hands it over more slowly than
    ``min_speed`` bytes a second on average, once ``grace`` seconds have passed, is given up (and
    the IR made here, which takes seconds to minutes). A mirror that trickles a byte every second
    keeps every read timeout alive; this rule does not let it hold a run for hours."""

    def __init__(self, min_speed: int = MIN_SPEED, grace: float = GRACE) -> None:
        self.min_speed, self.grace = min_speed, grace
        self.started = time.monotonic()

    def allowed(self, size: int) -> float:
        """Seconds from the start that ``size`` bytes may take."""
        return self.grace + size / self.min_speed if self.min_speed else math.inf

    def check(self, got: int, where: str) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed > self.allowed(got):
            raise MirrorTooSlowError(f"{where}: {got:,} bytes in {elapsed:.0f} s, slower than --mirror_min_speed "
                                     f"{self.min_speed:,} bytes/s; given up")


def read_manifest(url: str, timeout: float = MANIFEST_TIMEOUT, pace: Pace | None = None) -> dict[str, Any] | None:
    """A mirror's manifest, decoded and checked (manifest.decode_manifest), from a folder, a
    file:// URL, s3://bucket/prefix or http(s)://; None when it has none. HTTP goes through the
    package's one session factory (fetch.make_session), where offline mode refuses it, and at
    the pace's minimum speed."""
    if scheme_of(url) in ("http", "https"):
        where = url.rstrip("/") + "/" + MANIFEST
        pace = pace or Pace()
        raw = get_small(where, MAX_MANIFEST, timeout, lambda got: pace.check(got, where))
        return None if raw is None else decode_manifest(raw, where)
    return open_store(url, timeout=timeout).read_manifest()[0]


def check_pinned(url: str, manifest: dict[str, Any] | None) -> None:
    """With trusted keys (PINS_ENV set), a manifest is used only if it is the very one whose
    signature verified before the run (read again here: a mirror may change it in between)."""
    pins = os.environ.get(PINS_ENV)
    if pins is None:
        return
    import hashlib

    from .manifest import encode_manifest

    try:
        pinned = json.loads(pins).get(url)
    except (ValueError, AttributeError):
        pinned = None
    if pinned is None:
        raise MirrorError(f"{MANIFEST}: no verified signature for this mirror")
    if manifest is None or hashlib.sha384(encode_manifest(manifest)).hexdigest() != pinned:
        raise MirrorError(f"{MANIFEST}: not the manifest whose signature was verified (changed since)")


def fetch_ir(url: str, key: str, model_dir: str, files: list[IrFile], staging: Path, timeout: float,
             pace: Pace | None = None) -> None:
    """Every file into staging/<precision>/<file>, each verified as it streams in (fetch.py).
    The files come side by side, one per core, the biggest first, so that hashing them (in the
    thread that receives each) uses every core; the first failure stops the others and is
    raised. The workers are the downloader's (download.Pool: daemon threads), so Ctrl-C ends
    the run within its grace even when a mirror has gone silent mid-file."""

    stop = threading.Event()
    jobs = max(1, min(len(files), os.cpu_count() or 1))
    transport = Transport(jobs=jobs, connections=1, num_attempts=2, timeout=timeout, cancel=stop)
    base = url if "://" in url else Path(url).absolute().as_uri()
    errors: list[Exception] = []

    def one(f: IrFile) -> bool:
        dest = staging / f.path
        try:
            fsio.makedirs(dest.parent)
            source = base.rstrip("/") + "/" + quote(ir_rel(key, model_dir, f.path))
            transport.fetch([source], dest, f.size, f.sha384, f"{model_dir}/{f.path} (mirror IR)")
            return True
        except Interrupted:
            raise  # stopped by another file's failure, or by Ctrl-C: the pool ends this worker
        except Exception as exc:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(exc)
            stop.set()  # the others stop at their next chunk
            return False

    pace = pace or Pace()
    total = sum(f.size for f in files)
    too_slow = threading.Event()

    def give_up() -> None:
        too_slow.set()
        stop.set()  # every fetch ends at its next chunk

    timer = threading.Timer(max(0.0, pace.started + pace.allowed(total) - time.monotonic()), give_up)
    timer.daemon = True
    timer.start()
    try:
        Pool(jobs, stop).run(sorted(files, key=lambda f: -f.size), one, lambda: "interrupted")
    except Interrupted:
        if too_slow.is_set():
            raise MirrorTooSlowError(f"{url}: {total:,} bytes of IR not in within {pace.allowed(total):.0f} s "
                                     f"(--mirror_min_speed {pace.min_speed:,} bytes/s); given up") from None
        raise KeyboardInterrupt from None  # Ctrl-C: the caller's own handling, as for any other step
    finally:
        timer.cancel()
        transport.close()
    if too_slow.is_set() and not errors:
        raise MirrorTooSlowError(f"{url}: {total:,} bytes of IR not in within {pace.allowed(total):.0f} s "
                                 f"(--mirror_min_speed {pace.min_speed:,} bytes/s); given up")
    if errors:
        raise errors[0]


def from_mirrors(mirrors: list[str], key: str, model_dir: str, precisions: list[str], staging: Path, say: Any,
                 timeout: float = 60.0, fallback: str = "converting locally",
                 min_speed: int | None = None) -> tuple[str, list[IrFile]] | None:
    """Fill staging from the first mirror that has this key's IR for every precision, all
    verified; returns that mirror and the files, or None (each mirror's reason said in one line,
    ending with ``fallback``: what the caller does instead)."""
    for url in mirrors:
        pace = Pace(MIN_SPEED if min_speed is None else min_speed)
        try:
            manifest = read_manifest(url, timeout=min(timeout, MANIFEST_TIMEOUT), pace=pace)
            check_pinned(url, manifest)
            files = ir_entries(manifest, key, model_dir)
            have = {f.path.split("/", 1)[0] for f in files}
            if not files or not set(precisions) <= have:
                say(f"mirror {url}: no IR for key {key[:16]}... ({', '.join(precisions)}); {fallback}")
                continue
            chosen = [f for f in files if f.path.split("/", 1)[0] in precisions]
            fetch_ir(url, key, model_dir, chosen, staging, timeout, pace)
            return url, chosen
        except (ModelzooError, OSError, ValueError, json.JSONDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            say(f"mirror {url}: {reason}; {fallback}")
        except Exception as exc:  # noqa: BLE001 - requests' errors: the mirror is down or broken
            say(f"mirror {url}: {type(exc).__name__}: {str(exc)[:200]}; {fallback}")
        _clear(staging)
    return None


def ir_table(manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What IR a mirror holds: one row per model and key, with the tools that made it (the
    OpenVINO release) and its precisions, sorted by model then tools."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rel, entry in ((manifest or {}).get("files") or {}).items():
        if not rel.startswith(IR_PREFIX):
            continue
        key = entry["ir_key"]
        parts = rel.split("/")
        row = rows.setdefault((entry["model"], key), {
            "model": entry["model"], "subdirectory": "/".join(parts[2:-2]), "tools": entry.get("tools", ""),
            "key": key, "precisions": [], "files": 0, "bytes": 0})
        if parts[-2] not in row["precisions"]:
            row["precisions"].append(parts[-2])
        row["files"] += 1
        row["bytes"] += entry["size"]
    for row in rows.values():
        row["precisions"].sort()
    return sorted(rows.values(), key=lambda r: (r["model"], r["tools"], r["key"]))


MADE = "made"


def obtain_ir(key: str, record: dict[str, Any], staging: Path, *, ir_cache: IrCache | None, mirrors: list[str],
              model_dir: str, precisions: list[str], check: Callable[[Path, bool], str | None],
              make: Callable[[Path], None], warn: Callable[[str], None], fallback: str,
              timeout: float = 60.0, min_speed: int | None = None) -> str:
    """Fill ``staging`` with the IR of ``key`` from the cheapest place that has it: the IR cache
    (the warm path, without the key's lock: an entry appears whole, its blobs verified), then,
    under the key's lock, the cache again (another process may have just made it), each mirror
    (every file verified as it streams in, then ``check(staging, True)``: whole IR of this model),
    and last ``make(staging)``; what a mirror or ``make`` gave is added to the cache. One routine
    for the converter and the quantizer: the IR of a key is shared the way a file is.

    ``check(staging, parse)`` returns why staging does not hold this model's IR for every
    precision (None: it does); ``parse`` asks for the files to be read through (IR from a mirror).
    Returns how the IR came: "cached", "fetched from the mirror URL:" or MADE.

    Raises:
        ModelzooError: whatever ``make`` raises (the mirrors' failures are warnings: ``fallback``
            says what is done instead); KeyboardInterrupt on Ctrl-C.
    """
    def cached() -> bool:
        if ir_cache.entry(key) is not None and ir_cache.place(key, staging) and check(staging, False) is None:
            return True
        _clear(staging)
        return False

    if ir_cache is not None and cached():
        return "cached"
    with ir_cache.lock(key) if ir_cache is not None else contextlib.nullcontext():
        if ir_cache is not None and cached():
            return "cached"
        if mirrors:
            got = from_mirrors(mirrors, key, model_dir, precisions, staging, warn, timeout=timeout, fallback=fallback,
                               min_speed=min_speed)
            if got is not None:
                source, files = got
                problem = check(staging, True)
                if problem is None:
                    if ir_cache is not None:
                        ir_cache.add(key, record, staging, files)  # verified as they arrived
                    return f"fetched from the mirror {source}:"
                warn(f"mirror {source}: the IR of key {key[:16]}... is not this model's ({problem}); {fallback}")
                _clear(staging)
        make(staging)
        if ir_cache is not None:
            ir_cache.add(key, record, staging)  # every blob verified, then the entry
        return MADE


def _clear(staging: Path) -> None:
    for p in list(staging.iterdir()):
        fsio.remove(p)
