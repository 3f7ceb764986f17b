"""Re-hashing every blob of the cache against the SHA-384 that is its name (`modelzoo-cache verify`).

Apart from ``cache_admin`` (listing, pruning, repair), so that verify starts with little more
than ``os`` and ``hashlib``: on a zoo's cache of a thousand small files its whole run is only
as long as a few interpreter starts, and every import shows in it (docs/performance.md).

What it guarantees: every regular file named like a blob is read to its end and hashed; a blob
that changes while it is read (written, truncated, replaced: its size, mtime, ctime or inode
differ between the open and the end) is reported as changed, never as good or corrupt; a link,
folder or FIFO where a blob, record or shard folder belongs is reported, never followed or
opened for reading (nor is a partial download that has another name elsewhere, a hard link to
someone's file); nothing is written.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import time
from collections import namedtuple
from pathlib import Path

from .cache import USE_INTERVAL, Cache

TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of verify's start; so too
if TYPE_CHECKING:      # collections.namedtuple below, not typing.NamedTuple)
    from typing import Callable, Iterator

CORRUPT = "corrupt"
CHANGED = "changed"
UNACCOUNTED = "unaccounted"
ORPHAN = "a stat record without its blob"  # (what a prune killed between its two unlinks leaves)

HEX = re.compile(r"[0-9a-f]+")
# fsio's temporaries in a store: write_bytes's for a .ok record, and IrCache.add's for a blob it adds
_OWNER = r"(?:\.@[A-Za-z0-9_-]{1,64})?\.[0-9]+-[0-9a-f]{12}"  # fsio.temp_name's [.@<host>].<pid>-<12 hex>
RECORD_TEMP = re.compile(rf"\.[0-9a-f]{{94}}(?:\.ok{_OWNER}\.tmp|{_OWNER}\.incomplete)")
KEY_TEMP = re.compile(rf"\.[0-9a-f]{{94}}\.json{_OWNER}\.tmp")  # fsio.write_bytes's temporary for an IR cache entry
REST = 94  # hex digits of a SHA-384 after the two of its shard folder
GONE = -1  # the size hash_blob gives a blob removed since it was listed: no blob, and no finding


class Finding(namedtuple("Finding", "path status detail")):
    """verify's verdict on one path (a Path) that is not a good entry: its status (CORRUPT,
    CHANGED or UNACCOUNTED) and a detail (str)."""

    __slots__ = ()


class Verified(namedtuple("Verified", "blobs bytes findings")):
    """What verify found: blobs and bytes hashed, and the findings (a list of Finding, by path)."""

    __slots__ = ()

    @property
    def clean(self) -> bool:
        return not self.findings


def live_temporary(name: str, stat_it: Callable[[], os.stat_result], key: bool = False) -> bool:
    """A stat record being written right now (fsio's temporary beside it, renamed over it a
    moment later; every download writes them), or a blob the IR cache is adding: not a stray.
    One whose process is gone, or an hour old, is a stray; one of another host (a cache shared
    between machines: its pid says nothing here) only once a day old. (Only such names are
    stat'ed.) ``key``: the name is in a key shard of the IR cache (an entry being written)."""
    if not (KEY_TEMP if key else RECORD_TEMP).fullmatch(name):
        return False
    from .. import fsio

    owner = fsio.temporary_owner(name)
    if owner is None or not fsio.process_alive(owner):
        return False
    try:
        return time.time() - stat_it().st_mtime <= (USE_INTERVAL if owner.here else fsio.OTHER_HOST_GRACE)
    except FileNotFoundError:
        return True  # renamed into place since the listing
    except OSError:
        return False


_BUFFER = bytearray(256 << 10)  # one per process (a new one per blob cost as much as hashing the small ones);
                               # 256 KiB: as fast as 1 MiB here, and a quarter of the pages to fill and to copy in a fork
_VIEW = memoryview(_BUFFER)
_OPEN_BLOB = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # (a FIFO put there since the listing
                                                                       # must not block: it is then no file)
OPEN_SHARD = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY


def hash_blob(folder: Path, name: str, sha384: str, dir_fd: int | None = None) -> tuple[int, Finding | None]:
    """Re-hash the blob ``folder/name``: (its size, a finding if it is not the file its name says
    or changed while read). A blob removed since it was listed (discarded or pruned by another
    process) is (GONE, None). With ``dir_fd`` (that folder, open), the blob is opened there by name;
    a link is never followed. (No Path is made unless there is a finding: a zoo's cache is a
    thousand small files, and per-file work is what verify spends beside the hashing.)

    Changed while read: the file's size, mtime, ctime and inode when opened (``fstat``) against
    those its name has after the last read (``stat``). A write or truncation changes the inode's
    mtime and ctime; a rename over the name gives another inode; a removal is GONE. (An ``fstat``
    after the reads would add nothing: with the same inode the name's ``stat`` is that inode's,
    taken later.)"""
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
        left = before.st_size  # (read up to its size: a file that grows meanwhile shows in the stat after)
        while left > 0 and (n := os.readv(fd, [_BUFFER])):
            digest.update(_VIEW[:n])
            left -= n
    except OSError as exc:
        return 0, Finding(folder / name, CORRUPT, f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return GONE, None
    if (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino) != \
            (now.st_size, now.st_mtime_ns, now.st_ctime_ns, now.st_ino):
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
        fd = os.open(folder, OPEN_SHARD)
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
            if len(base) != REST or not HEX.fullmatch(base) or suffix not in ("", "ok", "lock", "incomplete"):
                if not live_temporary(name, lambda: os.stat(name, dir_fd=fd, follow_symlinks=False)):
                    yield 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
            elif not regular:  # (the listing's file type: a link, a folder, a FIFO...)
                yield 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
            elif suffix == "":
                yield hash_blob(folder, name, shard + base, fd)
            elif suffix == "incomplete" and other_names(name, fd):
                # (the cache makes its partials afresh: one with a name elsewhere is someone's file)
                yield 0, Finding(folder / name, UNACCOUNTED, "not made by the cache")
            elif suffix == "ok" and base not in blobs and not present(base, fd):  # (added since the listing?)
                yield 0, Finding(folder / name, UNACCOUNTED, ORPHAN)
    except OSError as exc:
        yield 0, Finding(folder, CORRUPT, f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)


def other_names(name: str, dir_fd: int) -> bool:
    """The file has hard links elsewhere (a partial download never has)."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_nlink > 1
    except OSError:
        return False




def check_ir(ir_root: Path) -> tuple[bool, list[Finding]]:
    """The IR cache's own folders (``ir/sha384``, ``ir/keys`` and its shard folders, each opened
    without following a link: ``ir`` itself is followed, as ``--cache_dir`` is) and what is in
    the key shards: whether its blob store is a folder of its own (only then is it hashed, as the
    download cache's store is), and a finding for everything the IR cache did not make (a link, a
    FIFO, a folder or an unknown file where an entry, its lock or a shard folder belongs)."""
    findings: list[Finding] = []
    try:
        root = os.open(ir_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False, findings
    try:
        store_ok = True
        for name in ("sha384", "keys"):
            try:
                fd = os.open(name, OPEN_SHARD, dir_fd=root)
            except FileNotFoundError:
                store_ok = store_ok and name != "sha384"
                continue
            except OSError as exc:
                store_ok = store_ok and name != "sha384"
                detail = "not made by the cache" if exc.errno in (errno.ELOOP, errno.ENOTDIR) or \
                    not present_dir(name, root) else f"cannot be read: {exc.strerror}"
                findings.append(Finding(ir_root / name, UNACCOUNTED if detail.startswith("not") else CORRUPT, detail))
                continue
            if name == "keys":
                try:
                    findings.extend(_check_keys(ir_root / name, fd))
                finally:
                    os.close(fd)
            else:
                os.close(fd)
        return store_ok, findings
    finally:
        os.close(root)


def present_dir(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _check_keys(keys: Path, keys_fd: int) -> Iterator[Finding]:
    for item in sorted(os.scandir(keys_fd), key=lambda d: d.name):
        if not (len(item.name) == 2 and HEX.fullmatch(item.name) and item.is_dir(follow_symlinks=False)):
            yield Finding(keys / item.name, UNACCOUNTED, "not made by the cache")
            continue
        try:
            fd = os.open(item.name, OPEN_SHARD, dir_fd=keys_fd)
        except OSError:
            yield Finding(keys / item.name, UNACCOUNTED, "not made by the cache")  # (swapped since the listing)
            continue
        try:
            for entry in os.scandir(fd):
                name = entry.name
                base, _, suffix = name.partition(".")
                ours = len(base) == REST and HEX.fullmatch(base) and suffix in ("json", "lock")
                if ours and entry.is_file(follow_symlinks=False):
                    continue
                if not ours and KEY_TEMP.fullmatch(name) and entry.is_file(follow_symlinks=False) and \
                        live_temporary(name, lambda: entry.stat(follow_symlinks=False), key=True):
                    continue  # an entry being written right now
                yield Finding(keys / item.name / name, UNACCOUNTED, "not made by the cache")
        finally:
            os.close(fd)


def present(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False


def verify(cache: Cache, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> Verified:
    """Re-hash every blob of the cache against the SHA-384 that is its name, in ``jobs``
    processes (default: one per core): this one and forked workers, all taking the store's shard
    folders from a shared queue as they go (so a huge file holds up one of them, not the others)
    and listing them themselves (so hashing starts at once). Processes, not threads: a zoo's many small files make hashing mostly per-file Python work, which
    threads take turns at under the GIL (two threads were slower than one here). Findings:
    corrupt blobs, blobs that changed while read, files the cache did not make. ``progress`` is
    called with the bytes of each blob as it is done."""
    store = cache.root / "sha384"
    try:
        tops = sorted(os.scandir(store), key=lambda d: d.name)
    except FileNotFoundError:
        return Verified(0, 0, [])
    except OSError as exc:
        from .. import fsio

        raise fsio.fs_error(store, exc, "read") from exc
    shards = [d.name for d in tops if len(d.name) == 2 and HEX.fullmatch(d.name) and d.is_dir(follow_symlinks=False)]
    findings = [Finding(Path(d.path), UNACCOUNTED, "not made by the cache") for d in tops if d.name not in shards]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(shards)))
    import hashlib  # noqa: F401  (once, here: forked workers inherit it instead of each importing it)

    blobs = total = 0
    results = _shared(store, shards, workers) if workers > 1 else \
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


def _shared(store: Path, shards: list[str], workers: int) -> Iterator[tuple[int, Finding | None]]:
    """_check_shard in this process and ``workers - 1`` forked ones. The shard names wait in a
    pipe, three bytes each: a read of three bytes from a pipe is atomic, so each process takes
    the next one. A worker reports on its own pipe, a line a blob: its size, or a finding as
    JSON; this process reads what they said after each shard of its own (so a progress bar
    moves with all of them) and the rest when the queue is empty. (This process works too: a
    fork and a process's start and exit cost more than a shard's share of the work.)"""
    import select  # (poll itself: the selectors module costs a millisecond of imports on verify's start)

    queue_r, queue_w = os.pipe()
    os.write(queue_w, "".join(f"{s}\n" for s in shards).encode())  # 768 bytes at most: fits the pipe
    os.close(queue_w)
    children: dict[int, int] = {}  # report pipe -> pid
    done = False
    # Ctrl-C reaches the workers too (a terminal signals the whole process group). Blocked while
    # forking, so that it cannot land in Python's after-fork code in a child (a traceback there);
    # a worker then dies of it at once, quietly (SIGINT's default), and this process, which gets
    # it when the mask is restored, stops and reaps them all.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(workers - 1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: hash, report, leave without running the parent's cleanup
                code = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                    os.close(r)
                    _work(store, queue_r, w)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children[r] = pid
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        pending = {r: b"" for r in children}
        poll = select.poll()
        for r in children:
            poll.register(r, select.POLLIN)

        def reports(timeout: int | None) -> Iterator[tuple[int, Finding | None]]:
            for fd, _ in poll.poll(timeout):
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # (a hang-up comes as an empty read once the pipe is drained)
                    poll.unregister(fd)
                    del pending[fd]
                    continue
                *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
                for line in lines:
                    if line[:1] == b"[":
                        import json

                        size, path, status, detail = json.loads(line)
                        yield size, Finding(Path(path), status, detail)
                    else:
                        yield int(line), None

        while shard := os.read(queue_r, 3)[:2].decode():
            yield from _check_shard(store, shard)
            yield from reports(0)
        while pending:
            yield from reports(None)
        done = True
    finally:
        os.close(queue_r)
        failed = 0
        for r, pid in children.items():
            if not done:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            _, status = os.waitpid(pid, 0)
            os.close(r)
            failed += status != 0
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # (if forking failed: a Ctrl-C held back lands now)
        if done and failed:  # (an interruption in flight is the news, not its effect on the workers)
            from ..errors import CacheError

            raise CacheError(f"{failed} verify worker process(es) failed")


def _work(store: Path, queue_r: int, w: int) -> None:
    """A worker: shards from the queue until it is empty, a line a blob on ``w`` (flushed ten
    times a second, for the progress bar)."""
    with open(w, "wb") as out:
        said = time.monotonic()
        while shard := os.read(queue_r, 3)[:2].decode():
            for size, f in _check_shard(store, shard):
                if f is None:
                    out.write(b"%d\n" % size)
                else:
                    import json

                    out.write(json.dumps([size, os.fsdecode(f.path), f.status, f.detail]).encode() + b"\n")
            if time.monotonic() - said > 0.1:
                out.flush()
                said = time.monotonic()
