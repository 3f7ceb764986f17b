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

from . import fsio
from .cache import USE_INTERVAL, Cache
from .errors import CacheBusyError, CacheError, CacheFolderError, OutputNotWritableError

if TYPE_CHECKING:
    from .descriptor import Model

BLOB = "blob"
PARTIAL = "partial"
CORRUPT = "corrupt"
CHANGED = "changed"
UNACCOUNTED = "unaccounted"

_HEX = re.compile(r"[0-9a-f]+")
_RECORD_TEMP = re.compile(r"\.[0-9a-f]{94}\.ok\.[0-9]+-[0-9a-f]{12}\.tmp")  # fsio.write_bytes's temporary for a .ok record
_REST = 94  # hex digits of a SHA-384 after the two of its shard folder


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


def _live_temporary(name: str, stat_it: Callable[[], os.stat_result]) -> bool:
    """A stat record being written right now (fsio's temporary beside it, renamed over it a
    moment later; every download writes them): not a stray. One whose process is gone, or an
    hour old, is a stray. (Only such names are stat'ed.)"""
    if not _RECORD_TEMP.fullmatch(name):
        return False
    owner = fsio.temporary_owner(name)
    if owner is None or not fsio.process_alive(owner):
        return False
    try:
        return time.time() - stat_it().st_mtime <= USE_INTERVAL
    except FileNotFoundError:
        return True  # renamed into place since the listing
    except OSError:
        return False


def open_cache(root: Path) -> Cache:
    """An existing cache folder, opened without creating anything in it. A missing folder or a
    file where the folder should be is a CacheFolderError (a usage error)."""
    root = Path(root).absolute()
    if not root.exists():
        raise CacheFolderError(f"cache folder {root} does not exist")
    if not root.is_dir():
        raise CacheFolderError(f"cache folder {root} is not a folder")
    store = root / "sha384"
    if store.exists() and not store.is_dir():
        raise CacheFolderError(f"{store} is not a folder: {root} is not a modelzoo cache")
    return Cache(root, create=False)


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
        if not (len(shard.name) == 2 and _HEX.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False)):
            strays.append(Path(shard.path))
            continue
        records: dict[str, float] = {}
        files: list[tuple[str, str, os.stat_result, Path]] = []
        for item in os.scandir(shard.path):
            name = item.name
            base, dot, suffix = name.partition(".")
            if len(base) != _REST or not _HEX.fullmatch(base) or suffix not in ("", "ok", "lock", "incomplete"):
                if not _live_temporary(name, lambda: item.stat(follow_symlinks=False)):
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


# -- verify


class Finding(NamedTuple):
    """verify's verdict on one path that is not a good entry."""

    path: Path
    status: str  # CORRUPT, CHANGED or UNACCOUNTED
    detail: str


_BUFFER = bytearray(1 << 20)  # one per process: verify's workers are processes, and a new 1 MiB
                              # buffer per blob cost as much as hashing the small ones


_OPEN_BLOB = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # (a FIFO put there since the listing
                                                                       # must not block: it is then no file)
_OPEN_SHARD = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


_VIEW = memoryview(_BUFFER)


GONE = -1  # the size _hash_blob gives a blob removed since it was listed: no blob, and no finding


def _hash_blob(folder: Path, name: str, sha384: str, dir_fd: int | None = None) -> tuple[int, Finding | None]:
    """Re-hash the blob ``folder/name``: (its size, a finding if it is not the file its name says
    or changed while read). A blob removed since it was listed (discarded or pruned by another
    process) is (GONE, None). With ``dir_fd`` (that folder, open), the blob is opened there by name;
    a link is never followed. (No Path is made unless there is a finding: a zoo's cache is a
    thousand small files, and per-file work is what verify spends beside the hashing.)"""
    import hashlib

    if dir_fd is None:
        name = os.path.join(folder, name)
    try:
        fd = os.open(name, _OPEN_BLOB, dir_fd=dir_fd)
    except FileNotFoundError:
        return GONE, None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
        return 0, Finding(folder / name, CORRUPT, f"cannot be read: {exc.strerror}")
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
        digest = hashlib.sha384()
        left = before.st_size  # (read up to its size: a file that grows meanwhile shows in the fstat after)
        while left > 0 and (n := os.readv(fd, [_BUFFER])):
            digest.update(_VIEW[:n])
            left -= n
        after = os.fstat(fd)
    except OSError as exc:
        return 0, Finding(folder / name, CORRUPT, f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return GONE, None
    stamp = (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino)
    if stamp != (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) or \
            stamp != (now.st_size, now.st_mtime_ns, now.st_ctime_ns, now.st_ino):
        return before.st_size, Finding(folder / name, CHANGED, "changed while being verified; verify again")
    actual = digest.hexdigest()
    if actual != sha384:
        return before.st_size, Finding(folder / name, CORRUPT,
                                       f"SHA-384 is {actual[:16]}..., its name says {sha384[:16]}...")
    return before.st_size, None


def _check_shard(store: Path, shard: str) -> Iterator[tuple[int, Finding | None]]:
    """(size, finding) for every blob of one shard folder, and (0, finding) for every stray. The
    folder is opened once, without following a link (one planted since the store was listed is a
    stray: nothing outside the cache is read), and its files are opened in it by name."""
    folder = store / shard
    try:
        fd = os.open(folder, _OPEN_SHARD)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            yield 0, Finding(folder, UNACCOUNTED, "not made by the cache")
        else:
            yield 0, Finding(folder, CORRUPT, f"cannot be read: {exc.strerror}")
        return
    try:
        items = [(item.name, item.is_file(follow_symlinks=False)) for item in os.scandir(fd)]
        blobs = {name for name, regular in items if regular and "." not in name}
        for name, regular in items:
            base, _, suffix = name.partition(".")
            if len(base) != _REST or not _HEX.fullmatch(base) or suffix not in ("", "ok", "lock", "incomplete"):
                if not _live_temporary(name, lambda: os.stat(name, dir_fd=fd, follow_symlinks=False)):
                    yield 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
            elif not regular:  # (the listing's file type: a link, a folder, a FIFO...)
                yield 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
            elif suffix == "":
                yield _hash_blob(folder, name, shard + base, fd)
            elif suffix == "ok" and base not in blobs and not _present(base, fd):  # (added since the listing?)
                yield 0, Finding(folder / name, UNACCOUNTED, ORPHAN)
    except OSError as exc:
        yield 0, Finding(folder, CORRUPT, f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)


ORPHAN = "a stat record without its blob"  # (what a prune killed between its two unlinks leaves)


def _present(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False


class Verified(NamedTuple):
    blobs: int
    bytes: int
    findings: list[Finding]  # by path

    @property
    def clean(self) -> bool:
        return not self.findings


def verify(cache: Cache, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> Verified:
    """Re-hash every blob against the SHA-384 that is its name, in ``jobs`` (default: every core)
    forked worker processes that take the store's shard folders from a shared queue as they go
    (so a huge file holds up one worker, not the others) and list them themselves (so hashing
    starts at once). Processes, not threads: a zoo's many small files make hashing mostly
    per-file Python work, which threads take turns at under the GIL (two threads were slower
    than one here). Findings: corrupt blobs, blobs that changed while read, files the cache did
    not make. ``progress`` is called with the bytes of blobs as they are done."""
    store = cache.root / "sha384"
    try:
        tops = sorted(os.scandir(store), key=lambda d: d.name)
    except FileNotFoundError:
        return Verified(0, 0, [])
    except OSError as exc:
        raise fsio.fs_error(store, exc, "read") from exc
    shards = [d.name for d in tops if len(d.name) == 2 and _HEX.fullmatch(d.name) and d.is_dir(follow_symlinks=False)]
    findings = [Finding(Path(d.path), UNACCOUNTED, "not made by the cache") for d in tops if d.name not in shards]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(shards)))
    import hashlib  # noqa: F401  (once, here: forked workers inherit it instead of each importing it)

    blobs = total = 0
    results = _forked(store, shards, workers) if workers > 1 else \
        (r for shard in shards for r in _check_shard(store, shard))
    for size, finding in results:
        if size == GONE:
            continue
        if finding is not None:
            findings.append(finding)
        if finding is None or finding.status != UNACCOUNTED:
            blobs += 1
            total += size
            if progress is not None:
                progress(size)
    findings.sort(key=lambda f: f.path)
    return Verified(blobs, total, findings)


def _forked(store: Path, shards: list[str], workers: int) -> Iterator[tuple[int, Finding | None]]:
    """_check_shard in worker processes. The shard names wait in a pipe, three bytes each: a
    read of three bytes from a pipe is atomic, so each worker takes the next one. Each reports
    on its own pipe, a line a blob: its size, or a finding as JSON."""
    import json
    import select  # (poll itself: the selectors module costs a millisecond of imports on verify's start)

    queue_r, queue_w = os.pipe()
    os.write(queue_w, "".join(f"{s}\n" for s in shards).encode())  # 768 bytes at most: fits the pipe
    os.close(queue_w)
    children: dict[int, int] = {}  # report pipe -> pid
    done = False
    # Ctrl-C reaches the workers too (a terminal signals the whole process group). Blocked while
    # forking, so that it cannot land in Python's after-fork code in a child (a traceback there);
    # a worker then dies of it at once, quietly (SIGINT's default), and the parent, which gets it
    # when the mask is restored, stops and reaps them all.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(workers):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: hash, report, leave without running the parent's cleanup
                code = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                    os.close(r)
                    with open(w, "wb") as out:
                        said = time.monotonic()
                        while shard := os.read(queue_r, 3)[:2].decode():
                            for size, f in _check_shard(store, shard):
                                out.write(b"%d\n" % size if f is None else json.dumps(
                                    [size, os.fsdecode(f.path), f.status, f.detail]).encode() + b"\n")
                            if time.monotonic() - said > 0.1:  # progress ten times a second
                                out.flush()
                                said = time.monotonic()
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children[r] = pid
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(queue_r)
        queue_r = -1
        pending = {r: b"" for r in children}
        poll = select.poll()
        for r in children:
            poll.register(r, select.POLLIN)
        while pending:
            for fd, _ in poll.poll():
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # (a hang-up comes as an empty read once the pipe is drained)
                    poll.unregister(fd)
                    del pending[fd]
                    continue
                *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
                for line in lines:
                    if line[:1] == b"[":
                        size, path, status, detail = json.loads(line)
                        yield size, Finding(Path(path), status, detail)
                    else:
                        yield int(line), None
        done = True
    finally:
        if queue_r >= 0:
            os.close(queue_r)
        failed = 0
        for r, pid in children.items():
            if not done:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(r)
            failed += status != 0
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # (if forking failed: a Ctrl-C held back lands now)
        if done and failed:  # (an interruption in flight is the news, not its effect on the workers)
            raise CacheError(f"{failed} verify worker process(es) failed")


def repair(cache: Cache, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """Remove corrupt blobs (with their records) and strays older than USE_INTERVAL (a younger
    one may be a live temporary); blobs that changed while read stay. Returns (removed, left);
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


def _remove_stray(store_fd: int, shard: str | None, name: str) -> bool:
    """Remove a stray older than USE_INTERVAL from the store (``shard`` None) or a shard folder,
    links not followed (a link is removed, never what it points at). True if it is gone."""
    import shutil

    try:
        dir_fd = store_fd if shard is None else os.open(shard, _OPEN_SHARD, dir_fd=store_fd)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # the shard folder is now a link or not readable: not through it
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if time.time() - st.st_mtime <= USE_INTERVAL:
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
        shard_fd = os.open(sha384[:2], _OPEN_SHARD, dir_fd=store_fd)
    except OSError:
        return None  # gone, or no longer a folder of the cache (a link planted since the scan)
    try:
        lock = cache.try_lock(sha384, shard_fd)
        if lock is None:
            return False
        with lock:
            if orphan and _present(sha384[2:], shard_fd):
                return None
            try:
                st = os.stat(name, dir_fd=shard_fd, follow_symlinks=False)
                if recheck and _hash_blob(cache.blob_path(sha384).parent, name, sha384, shard_fd) == (st.st_size, None):
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

