"""Managing the cache: what it holds and for which models, whether every blob is still the file
its name says, and removing entries (least recently used first, by age, by model) without ever
taking a file from under another process.

The decisions are pure functions over a ``scan`` (``choose`` says what a prune removes); one
function carries them out (``remove``), so a dry run prints exactly what a real one does.

Guarantees of ``remove`` (and so of ``prune_to`` and ``modelzoo-cache prune``/``rm``):
- an entry another process holds the lock of (fetching, re-hashing or adding that file) is
  skipped and reported, never removed; the cache's warm path takes no lock, and a blob removed
  between its check and its link is simply fetched again (verified), never half-used;
- each entry goes whole: the blob (one unlink) and then its stat record; an output folder's hard
  link to the blob keeps its bytes (only the cache's name goes, so nothing is freed for it);
- one prune at a time per cache (an flock on its ``sha384`` folder): a second is refused;
- a cache that cannot be written is refused before anything is touched.

>>> cache = Cache(Path("~/.cache/modelzoo").expanduser(), create=False)   # doctest: +SKIP
>>> result = prune_to(cache, 20 * 10**9, keep=shas_this_run_used)          # doctest: +SKIP
>>> result.freed                                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple

from .. import fsio
from .cache import USE_INTERVAL, Cache, open_cache  # noqa: F401  (open_cache: for this module's callers)
from .cache_verify import CHANGED, GONE, Verified, verify  # noqa: F401  (verify's names, for this module's callers)
from .cache_verify import (
    CORRUPT, HEX, OPEN_SHARD, ORPHAN, REST, UNACCOUNTED, Finding, hash_blob, live_temporary, present,
)
from ..errors import CacheBusyError, OutputNotWritableError

if TYPE_CHECKING:
    from ..descriptor import Model

BLOB = "blob"
PARTIAL = "partial"


class Entry(NamedTuple):
    """One file the cache holds: a verified blob or a partial download."""

    sha384: str
    kind: str  # BLOB or PARTIAL
    path: Path
    size: int
    last_used: float  # seconds since the epoch: the stat record's mtime (cache.py), else the file's
    links: int  # st_nlink: above 1 when an output folder holds the same bytes (a hard link)


class Scan(NamedTuple):
    """Everything under ``<cache>/sha384``: the entries, and files the cache did not make
    (``strays``: a temporary a killed process left, anything put there by hand)."""

    entries: list[Entry]
    strays: list[Path]

    def blobs(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == BLOB]

    def partials(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == PARTIAL]


def scan(cache: Cache, last_used: bool = True) -> Scan:
    """One pass over the store: a stat per blob, partial and (with ``last_used``) stat record;
    nothing read."""
    store = cache.root / "sha384"
    entries: list[Entry] = []
    strays: list[Path] = []
    try:
        shards = sorted(os.scandir(store), key=lambda d: d.name)
    except FileNotFoundError:
        return Scan(entries, strays)
    except OSError as exc:
        raise fsio.fs_error(store, exc, "read") from exc
    for shard in shards:
        if not (len(shard.name) == 2 and HEX.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False)):
            strays.append(Path(shard.path))
            continue
        records: dict[str, float] = {}
        files: list[tuple[str, str, os.stat_result, Path]] = []
        for item in os.scandir(shard.path):
            name = item.name
            base, dot, suffix = name.partition(".")
            if len(base) != REST or not HEX.fullmatch(base) or suffix not in ("", "ok", "lock", "incomplete"):
                if not live_temporary(name, lambda: item.stat(follow_symlinks=False)):
                    strays.append(Path(item.path))
                continue
            if suffix == "lock" or (suffix == "ok" and not last_used):
                if not item.is_file(follow_symlinks=False):  # (the listing's file type: no stat)
                    strays.append(Path(item.path))  # a link or a folder is not the cache's
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the listing
            if not stat.S_ISREG(st.st_mode):
                strays.append(Path(item.path))
            elif suffix == "ok":
                records[base] = st.st_mtime
            elif suffix in ("", "incomplete"):
                files.append((base, BLOB if suffix == "" else PARTIAL, st, Path(item.path)))
        for base, kind, st, path in files:
            used = records.get(base, st.st_mtime) if kind == BLOB else st.st_mtime
            entries.append(Entry(shard.name + base, kind, path, st.st_size, used, st.st_nlink))
    return Scan(entries, strays)


# -- conversions (the IR cache, ir_cache.py)


class Conversion(NamedTuple):
    """One entry of the IR cache, as ``ls`` shows it; ``problem`` says why it is broken (an entry
    that is not valid JSON, names no files, or names blobs the IR store does not hold)."""

    key: str  # the SHA-384 its path says (keys/<2>/<94>.json)
    path: Path
    model: str | None  # the IR's name (<precision>/<model>.xml)
    precisions: list[str]
    backend: str | None
    backend_version: str | None
    tools: dict[str, str]  # other tools whose versions decided the IR (the quantizer's nncf)
    bytes: int  # of the files it names
    last_used: float | None  # the latest use of its files (their blobs' stat records)
    problem: str | None


def _broken(key: str, path: Path, problem: str, st: os.stat_result | None = None) -> Conversion:
    return Conversion(key, path, None, [], None, None, {}, 0, st.st_mtime if st else None, problem)


def conversions(cache_root: Path) -> list[Conversion] | None:
    """The IR cache's entries under ``<cache_root>/ir`` (None when there is no IR cache); an entry
    that cannot be read or understood is listed with its problem, never an exception: ``ls``
    shows it and goes on. Read only: nothing is created or touched."""
    from .ir_cache import ENTRY_LIMIT, parse_files

    root = Path(cache_root).absolute() / "ir"
    if not root.is_dir():
        return None
    used = {e.sha384: e for e in scan(Cache(root, create=False)).blobs()}
    out: list[Conversion] = []
    keys = root / "keys"
    try:
        shards = sorted(os.scandir(keys), key=lambda d: d.name)
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise fsio.fs_error(keys, exc, "read") from exc
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        for item in sorted(os.scandir(shard.path), key=lambda d: d.name):
            if not item.name.endswith(".json"):
                continue  # (.lock files, temporaries)
            key, path = shard.name + item.name[:-5], Path(item.path)
            try:
                st = item.stat(follow_symlinks=False)
                data = json.loads(fsio.read_small(path, ENTRY_LIMIT))
            except FileNotFoundError:
                continue  # removed since the listing
            except (OSError, ValueError) as exc:
                out.append(_broken(key, path, f"cannot be read: {str(exc)[:120]}"))
                continue
            if not isinstance(data, dict) or data.get("key") != key:
                out.append(_broken(key, path, "not an entry for its key", st))
                continue
            files = parse_files(data.get("files"))
            if files is None:
                out.append(_broken(key, path, "its list of files is not valid", st))
                continue
            record = data.get("record") if isinstance(data.get("record"), dict) else {}
            models = sorted({f.path.split("/")[1][:-4] for f in files if f.path.endswith(".xml")})
            quantization = record.get("quantization")
            tools = {"nncf": str(quantization["nncf"])} \
                if isinstance(quantization, dict) and "nncf" in quantization else {}
            missing = [f for f in files if f.sha384 not in used]
            last = [used[f.sha384].last_used for f in files if f.sha384 in used]
            out.append(Conversion(
                key, path, ",".join(models) or None, sorted({f.path.split("/")[0] for f in files}),
                str(record["backend"]) if "backend" in record else None,
                str(record["backend_version"]) if "backend_version" in record else None, tools,
                sum(f.size for f in files), max(last) if last else st.st_mtime,
                f"{len(missing)} of its {len(files)} files are not in the IR store" if missing else None))
    return out


# -- what models use


class ModelUsage(NamedTuple):
    """One model's share of the cache."""

    name: str
    files: int  # files its descriptor names (of its stages too)
    cached: int  # of those, how many the cache holds as blobs
    bytes: int  # their size
    shared: int  # bytes of those blobs that another of the models also names
    last_used: float | None


def named_by(models: Iterable[Model]) -> dict[str, set[str]]:
    """SHA-384 -> names of the models (top level) whose descriptors name it."""
    names: dict[str, set[str]] = {}
    for model in models:
        for leaf in model.leaf_models():
            for f in leaf.files:
                names.setdefault(f.sha384, set()).add(model.name)
    return names


def usage(models: list[Model], found: Scan) -> tuple[list[ModelUsage], list[Entry]]:
    """Per model what the cache holds of it (models with nothing cached included, in order), and
    the blobs none of the models names."""
    blobs = {e.sha384: e for e in found.blobs()}
    owners = named_by(models)
    rows = []
    for model in models:
        shas = {f.sha384 for leaf in model.leaf_models() for f in leaf.files}
        mine = [blobs[s] for s in shas if s in blobs]
        rows.append(ModelUsage(model.name, len(shas), len(mine), sum(e.size for e in mine),
                               sum(e.size for e in mine if len(owners[e.sha384]) > 1),
                               max((e.last_used for e in mine), default=None)))
    return rows, [e for e in blobs.values() if e.sha384 not in owners]


# -- repair (verify itself: cache_verify.py)


def repair(cache: Cache, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """Remove corrupt blobs (with their records) and strays: links and FIFOs at once, files and
    folders older than USE_INTERVAL (a younger one may be a live temporary); blobs that changed
    while read stay. Returns (removed, left);
    what is no longer there or no longer wrong is in neither. A corrupt blob is hashed again
    under its lock first: a download may have put the right file there since it was verified.
    Waits for a prune running beside it (a verify's work is not thrown away for a busy cache)."""
    store = cache.root / "sha384"
    require_writable(cache, "repaired")
    removed, left = [], []
    with _one_prune(cache, wait=True) as store_fd:
        for f in findings:
            in_shard = f.path.parent.parent == store
            if f.status == CORRUPT and in_shard and _BASE.fullmatch(f.path.name):
                # (a corrupt blob another process holds is being dealt with by it: left, and reported)
                st = _remove_locked(cache, store_fd, f.path.parent.name + f.path.name, f.path.name, recheck=True)
                if st is False:
                    left.append(f)
                elif st is not None:
                    removed.append(f)
            elif f.detail == ORPHAN and in_shard:
                # (under the blob's lock: a download adds a blob and then its record, under it)
                sha = f.path.parent.name + f.path.name.partition(".")[0]
                st = _remove_locked(cache, store_fd, sha, f.path.name, orphan=True)
                if st is False:
                    left.append(f)
                elif st is not None:
                    removed.append(f)
            elif f.status == UNACCOUNTED and store_fd is not None and (in_shard or f.path.parent == store):
                gone = _remove_stray(store_fd, f.path.parent.name if in_shard else None, f.path.name)
                (removed if gone else left).append(f)
            else:
                left.append(f)
    return removed, left


_BASE = re.compile(r"[0-9a-f]{94}")


def remove_leftovers(cache: Cache, strays: list[Path]) -> list[Path]:
    """What ``prune`` removes besides entries: the temporaries among the strays ``scan`` found
    (a download, record or link a killed run left; another host's count once a day old, as
    ``scan`` says), each by name in its folder without following a link; returns those removed.
    Anything else a scan calls a stray is ``verify --repair``'s to judge."""
    from .. import fsio

    store = cache.root / "sha384"
    require_writable(cache, "pruned")
    removed = []
    with _one_prune(cache) as store_fd:
        if store_fd is None:
            return removed
        for path in strays:
            in_shard = path.parent.parent == store
            if fsio.temporary_owner(path.name) is None or not (in_shard or path.parent == store):
                continue
            if _remove_stray(store_fd, path.parent.name if in_shard else None, path.name):
                removed.append(path)
    return removed


def repair_ir_folders(ir_root: Path, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """What ``cache_verify.check_ir`` found in the IR cache's own folders, removed as ``repair``
    removes strays (links and FIFOs at once, files and folders once an hour old), each by name in
    its folder opened without following a link. Returns (removed, left)."""
    removed, left = [], []
    try:
        root_fd = os.open(ir_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return removed, list(findings)
    try:
        keys_fd: int | None = None
        try:
            keys_fd = os.open("keys", OPEN_SHARD, dir_fd=root_fd)
        except OSError:
            pass
        try:
            for f in findings:
                try:
                    rel = f.path.relative_to(ir_root).parts
                except ValueError:
                    rel = ()
                if len(rel) == 1:
                    gone = _remove_stray(root_fd, None, rel[0])
                elif len(rel) in (2, 3) and rel[0] == "keys" and keys_fd is not None:
                    gone = _remove_stray(keys_fd, rel[1] if len(rel) == 3 else None, rel[-1])
                else:
                    gone = False
                (removed if gone else left).append(f)
        finally:
            if keys_fd is not None:
                os.close(keys_fd)
    finally:
        os.close(root_fd)
    return removed, left


def _remove_stray(store_fd: int, shard: str | None, name: str) -> bool:
    """Remove a stray from the store (``shard`` None) or a shard folder, links not followed (a
    link is removed, never what it points at). A file or folder only once older than
    USE_INTERVAL (a younger one may be a live temporary); a link, FIFO or the like at once (no
    temporary of ours is one). True if it is gone."""
    import shutil

    try:
        dir_fd = store_fd if shard is None else os.open(shard, OPEN_SHARD, dir_fd=store_fd)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # the shard folder is now a link or not readable: not through it
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        # (a temporary of ours is a regular file or a folder; a link, a FIFO, a partial download
        # with another name elsewhere never is: no wait)
        planted = not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or \
            (st.st_nlink > 1 and name.endswith(".incomplete") and bool(_BASE.fullmatch(name.partition(".")[0])))
        if not planted and time.time() - st.st_mtime <= USE_INTERVAL:
            return False
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)  # (fd-based: never follows a link inside)
        else:
            os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
    finally:
        if dir_fd != store_fd:
            os.close(dir_fd)


# -- prune


class PruneResult(NamedTuple):
    removed: list[Entry]
    busy: list[Entry]  # held by another process: left alone
    freed: int  # bytes given back to the file system (entries no output folder links to)
    unlinked: int  # bytes of removed blobs that hard-linked outputs still hold


def choose(found: Scan, *, max_bytes: int | None = None, older_than: float | None = None,
           referenced: set[str] | None = None, partials: bool = False, keep: Iterable[str] = (),
           now: float | None = None) -> list[Entry]:
    """What a prune removes, in order (a pure decision): partials (``partials``), blobs whose
    SHA-384 is not in ``referenced`` (when given: what the descriptors name), entries not used
    for ``older_than`` seconds; then, least recently used first, whatever else must go for the
    rest to fit in ``max_bytes``. Nothing in ``keep`` (SHA-384s) is ever chosen."""
    now = time.time() if now is None else now
    kept = set(keep)
    chosen: dict[str, Entry] = {}

    def take(e: Entry) -> None:
        if e.sha384 not in kept:
            chosen.setdefault(f"{e.kind}:{e.sha384}", e)

    for e in found.entries:
        if (partials and e.kind == PARTIAL) \
                or (referenced is not None and e.kind == BLOB and e.sha384 not in referenced) \
                or (older_than is not None and now - e.last_used > older_than):
            take(e)
    if max_bytes is not None:
        rest = sorted((e for e in found.entries if f"{e.kind}:{e.sha384}" not in chosen),
                      key=lambda e: (e.last_used, e.path))
        total = sum(e.size for e in rest)
        for e in rest:
            if total <= max_bytes:
                break
            if e.sha384 not in kept:
                take(e)
                total -= e.size
    return list(chosen.values())


REMOVERS = 16  # entries removed at once: an unlink waits on the disk (1 ms each on this VM's
               # ext4 under load), and 16 at a time took 0.18 s for 1,500 files instead of 1.5 s


def remove(cache: Cache, entries: list[Entry], on_removed: Callable[[Entry], None] | None = None) -> PruneResult:
    """Remove the entries (see the module's guarantees), several at a time; the result lists
    them in the order given.

    Ctrl-C is held back (blocked) while the removers run and waited for with sigtimedwait: a
    KeyboardInterrupt raised inside a lock of a thread pool's own leaves that lock held, and the
    run then hung for ever waiting for it (seen here: 1 Ctrl-C in 9). Once it comes, no entry is
    started, the ones under way finish whole, and the interruption is raised."""
    import threading

    require_writable(cache, "pruned")
    results: list[os.stat_result | None | bool] = [None] * len(entries)
    with _one_prune(cache) as store_fd:
        if store_fd is None:
            return PruneResult([], [], 0, 0)  # nothing stored
        todo = iter(enumerate(entries))
        take, stop = threading.Lock(), threading.Event()

        def remover() -> None:
            while not stop.is_set():
                with take:
                    item = next(todo, None)
                if item is None:
                    return
                i, e = item
                results[i] = _remove_locked(cache, store_fd, e.sha384, e.path.name)

        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the removers inherit it
        threads = [threading.Thread(target=remover, name="prune", daemon=True)
                   for _ in range(min(REMOVERS, max(1, len(entries))))]
        interrupted = False
        try:
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                if signal.sigtimedwait({signal.SIGINT}, 0.02) is not None:  # wakes at once on Ctrl-C
                    interrupted = True
                    break
        finally:
            stop.set()
            for thread in threads:
                if thread.ident is not None:
                    thread.join()
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # (a Ctrl-C held back since is raised here)
        if interrupted:
            raise KeyboardInterrupt
    removed, busy, freed, unlinked = [], [], 0, 0
    for e, st in zip(entries, results):
        if st is False:
            busy.append(e)
        elif st is not None:
            removed.append(e)
            if st.st_nlink > 1:
                unlinked += st.st_size
            else:
                freed += st.st_size
            if on_removed is not None:
                on_removed(e)
    return PruneResult(removed, busy, freed, unlinked)


def prune_to(cache: Cache, max_bytes: int, keep: Iterable[str] = ()) -> PruneResult:
    """The cache's budget: remove least recently used entries until it holds at most
    ``max_bytes``, never one whose SHA-384 is in ``keep`` (a run passes the files it used) and
    never one another process holds. A CacheBusyError if another prune is running (a caller
    after a run may take that as done by the other), an OutputNotWritableError on a cache that
    cannot be written."""
    return remove(cache, choose(scan(cache), max_bytes=max_bytes, keep=keep))


def _remove_locked(cache: Cache, store_fd: int, sha384: str, name: str,
                   recheck: bool = False, orphan: bool = False) -> os.stat_result | None | bool:
    """Remove one blob (and its record) or partial (``name`` in its shard folder) under its lock:
    the stat it had, None if it was gone already (or, with ``recheck``, is the right file after
    all), False if another process holds it. With ``orphan``, ``name`` is a stat record, removed
    only while its blob is absent. The shard folder is opened without following a
    link, and everything is done in it by name: a folder swapped for a link to somewhere else
    since the scan is not gone into."""
    try:
        shard_fd = os.open(sha384[:2], OPEN_SHARD, dir_fd=store_fd)
    except OSError:
        return None  # gone, or no longer a folder of the cache (a link planted since the scan)
    try:
        lock = cache.try_lock(sha384, shard_fd)
        if lock is None:
            return False
        with lock:
            if orphan and present(sha384[2:], shard_fd):
                return None
            try:
                st = os.stat(name, dir_fd=shard_fd, follow_symlinks=False)
                if recheck and hash_blob(cache.blob_path(sha384).parent, name, sha384, shard_fd) == (st.st_size, None):
                    return None
                os.unlink(name, dir_fd=shard_fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise fsio.fs_error(cache.blob_path(sha384).parent / name, exc, "remove") from exc
            if not name.endswith((".incomplete", ".ok")):
                record = cache.record_path(sha384)
                try:
                    os.unlink(record.name, dir_fd=shard_fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise fsio.fs_error(record, exc, "remove") from exc
        return st
    finally:
        os.close(shard_fd)


def require_writable(cache: Cache, what: str) -> None:
    """OutputNotWritableError, in one line, for a cache that cannot be written."""
    if not cache.writable:
        raise OutputNotWritableError(f"cache folder {cache.root} cannot be written: it cannot be {what}")


@contextlib.contextmanager
def _one_prune(cache: Cache, wait: bool = False) -> Iterator[int | None]:
    """An exclusive flock on the store folder (without waiting, unless ``wait``): two prunes at
    once would each count what the other removes. Yields the store folder, open (what removals
    go through: the folder named by --cache_dir is followed once, here), or None if there is none."""
    store = cache.root / "sha384"
    try:
        fd = os.open(store, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None  # nothing stored, nothing to remove
        return
    except OSError as exc:
        raise fsio.fs_error(store, exc, "open") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise CacheBusyError(f"another prune of {cache.root} is running; try again when it is done") from None
            raise fsio.fs_error(store, exc, "lock") from exc
        yield fd
    finally:
        os.close(fd)

