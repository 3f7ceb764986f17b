"""Mirroring a zoo: sync every file of the selected models to a folder or an S3 bucket, verified,
with a manifest; audit a mirror against the descriptors; repair it.

A mirror has the layout `downloader.py --mirror` reads: ``DEST/<model folder>/<file>``, files
exactly as downloaded (archives are not unpacked), and a manifest ``DEST/modelzoo-mirror.json``
that says, for each file, its size, SHA-384, source URL, the descriptor it came from (path and
SHA-384) and when it was last verified, plus a *stamp* (an S3 ETag, or a folder file's inode,
mtime and size) that changes whenever the file is replaced behind our back.

Guarantees (docs/mirror.md says more):

- A file enters DEST only after its size and SHA-384 matched: a rename of a verified temporary
  into the folder, or an S3 object written from bytes hashed on their way out (a multipart
  upload is completed only when the hash matched, and aborted otherwise).
- The manifest is written last, atomically (a rename; an S3 PUT), by a read-merge-write under a
  lock (folders) or a conditional PUT (S3): two runs never lose each other's entries, and an
  entry is written only if the file at its path is still the one this run published.
- Nothing changed means no upstream request and no upload: decisions come from the manifest
  and one listing of DEST (sizes, stamps), never from re-reading every byte (``--verify full``
  does that on purpose).

The decision for one file is a pure function (:func:`decide`); :class:`Mirror` carries it out,
for a model's files and for IR made here (sync/ir.py) alike: one routine decides, writes the file
to the store and makes its manifest entry, and one audits it (``Auditor.audit_file``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import fsio
from ..store.cache import run_cache
from ..descriptor import KNOWN_PRECISIONS, Model
from ..executors import Pool
from ..errors import (
    DiskFullError, FileSystemError, Interrupted, MirrorAccessError, MirrorError, ModelzooError,
    OutputNotWritableError, UsageError,
)
from ..events import Reporter, human_size, status_line
from ..download.obtain import CACHED, Transport, obtain, source_urls
from ..download.space import Need, check_space, fetch_writes, space_needed
from ..mirror.manifest import FORMAT, IR_PREFIX
from ..mirror.stores import MANIFEST, Present, Store
from ..verify import verify_file
from .plan import (
    CHECK, FETCH, MISSING, OK, PRESENT, REPAIRED, STATUSES, UNKNOWN, UNRECORDED, WRONG_SHA, WRONG_SIZE, Finding,
    Item, Outcome, Plan, Wanted, WantedIr, make_plan, now, wanted_files,
)
from .voice import FileVoice, IrVoice, Voice

# Errors after which no other file can succeed either: the run stops at once, with one line.
FATAL = (MirrorAccessError, DiskFullError, OutputNotWritableError)
CANCEL_GRACE = 1.0  # seconds the workers get to notice Ctrl-C before we clean up without them
# Big files are bound by bandwidth, not latency, and each one being fetched holds up to 16 MiB of
# chunks waiting to be hashed: at most this many are fetched at once, whatever -j is.
BIG_FILE = 16 << 20
BIG_FETCHES = 4


# ----------------------------------------------------------------------------- what is wanted

def check_proxies(wanted: list[Wanted], upstream: list[str], timeout: float) -> None:
    """A proxy that is down would fail every file with the same error, one line a model: say it
    once, before starting. Looks at the first URL each file would try (HTTP_PROXY, HTTPS_PROXY
    and NO_PROXY as requests reads them) and connects to each proxy once."""
    import socket
    from urllib.parse import urlparse

    import requests.utils

    from ..transport.offline import is_offline

    if is_offline():  # (the one socket opened outside fetch.py's table: offline, no proxy is reached)
        return
    checked: set[str] = set()
    hosts: set[tuple[str, str]] = set()
    for w in wanted:
        url = source_urls(w.leaf, w.file, upstream)[0]
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or (parsed.scheme, parsed.netloc) in hosts:
            continue
        hosts.add((parsed.scheme, parsed.netloc))
        proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        if not proxy or proxy in checked:
            continue
        checked.add(proxy)
        p = urlparse(proxy if "://" in proxy else "http://" + proxy)
        try:
            with socket.create_connection((p.hostname or "", p.port or 80), timeout=min(timeout, 10)):
                pass
        except OSError as exc:
            raise MirrorError(f"proxy {proxy} (for {parsed.scheme}://{parsed.netloc}) does not answer: "
                              f"{exc.strerror or exc}") from exc


def check_writable(path: Path) -> None:
    """A file can be written at path (a temporary beside it is made and removed): a UsageError
    otherwise, said before any work."""
    path = path.absolute()
    try:
        if path.is_dir():
            raise UsageError(f"--changes {path}: a folder, not a file")
        with fsio.temporary_beside(path) as tmp:
            fsio.Writer(tmp, "wb").close()
    except FileSystemError as exc:
        raise UsageError(f"--changes {path} cannot be written ({exc})") from exc


# ----------------------------------------------------------------------------- carrying it out

@dataclass
class MirrorOptions:
    """The downloader-like knobs of a sync or a repair (see `mirror.py sync --help`)."""

    cache_dir: Path | None = None
    jobs: int = 1
    num_attempts: int = 1
    timeout: float = 60.0
    upstream: list[str] = field(default_factory=list)  # --mirror URLs read before the sources
    connections: int = 1  # a big file over up to N connections (the downloader's segments.py)
    precisions: frozenset[str] = KNOWN_PRECISIONS
    models_root: Path = Path(".")  # where the descriptors are (the manifest names them below it)
    protected: list[str] = field(default_factory=list)  # model folders --delete must leave (unloadable descriptors)
    full: bool = False  # sync --verify full / verify without --quick: re-hash what DEST holds
    delete: bool = False  # sync --delete
    dry_run: bool = False  # sync --dry_run: the plan only
    changes: Path | None = None  # sync --changes FILE
    repair: bool = False  # verify --repair
    space_check: bool = True  # refuse a sync whose writes do not fit, before the first request (space.py)
    calibration: Any = None  # sync --ir FP16-INT8 / verify --repair of INT8 IR: the data set (accuracy.dataset.Dataset)
    executor: Any = None  # sync --ir: where conversions run (executors.Executor; None: this process, one at a time)
    # --locked: called with the files a repair is about to fetch (trust/policy.py: Policy.before_fetch)
    before_fetch: Callable[[list[tuple[str, str, int, list[str]]]], None] | None = None


def fetch_sources(wanted: list[Wanted], options: MirrorOptions) -> list[tuple[str, str, int, list[str]]]:
    """What --locked's preflight asks for (trust/lock.py: preflight): of these files about to be
    fetched, those not in the cache, as (model, file, size, the sources tried in order)."""
    from ..store.cache import Cache

    cache = Cache(options.cache_dir, create=False) if options.cache_dir is not None else None
    return [(w.leaf.name, w.file.name.as_posix(), w.size, source_urls(w.leaf, w.file, options.upstream))
            for w in wanted if cache is None or not cache.has_blob(w.sha384)]


class Mirror:
    """Runs file jobs on a pool of threads against one store; keeps what completed for the
    manifest. One failing file fails its model; access errors of the store stop the run."""

    def __init__(self, store: Store, options: MirrorOptions, reporter: Reporter) -> None:
        self.store = store
        self.options = options
        self.reporter = reporter
        self.cancel = threading.Event()
        self.cache = run_cache(options.cache_dir, reporter.warning, "fetching the rest")
        self._transport = Transport(jobs=options.jobs, connections=options.connections,
                                    num_attempts=options.num_attempts, timeout=options.timeout, cancel=self.cancel)
        self._lock = threading.Lock()
        self.upstream_requests = 0
        self.manifest_changed = False  # this run wrote DEST's manifest (its signature, if any, is now stale)
        self._fatal: ModelzooError | None = None
        self._uploads_apart = store.remote
        self._set_jobs(options.jobs)

    def _set_jobs(self, jobs: int) -> None:
        # Up to -j downloads and -j uploads at once: a worker that finished fetching goes on to
        # upload while another one fetches, so the two overlap (a folder's "upload" is a rename).
        self.options.jobs = self._transport.jobs = jobs
        self._fetching = threading.BoundedSemaphore(jobs)
        self._big_fetches = threading.BoundedSemaphore(min(jobs, BIG_FETCHES))
        self._publishing = threading.BoundedSemaphore(jobs)

    # -- pool

    def run_jobs(self, items: list[Item], job: Callable[[Item], Outcome]) -> list[Outcome]:
        """Run job on every item with -j threads; Ctrl-C cancels, cleans up and raises Interrupted."""
        if not items:
            return []

        def guarded(w: Item) -> Outcome:
            if self.cancel.is_set():
                return Outcome(w, error=Interrupted("interrupted"))
            try:
                return job(w)
            except FATAL as exc:
                with self._lock:
                    self._fatal = self._fatal or exc
                self.cancel.set()
                return Outcome(w, error=exc)
            except ModelzooError as exc:
                return Outcome(w, error=exc)
            except OSError as exc:
                return Outcome(w, error=FileSystemError(f"{w.rel}: {exc.strerror or exc}"))
            except Exception as exc:  # a bug must not hang the pool or kill the run: fail this file
                return Outcome(w, error=MirrorError(f"{w.rel}: unexpected {type(exc).__name__}: {exc}"))

        # The downloader's pool (daemon threads: Ctrl-C ends the run within the grace even when
        # a worker is blocked on a silent server), every worker started at once.
        results: list[Outcome | None] = [None] * len(items)

        def work(pair: tuple[int, Item]) -> bool:
            results[pair[0]] = guarded(pair[1])
            return True

        def on_cancel() -> str:
            self.store.abort_all()
            fsio.TEMPORARIES.remove_all()
            return "interrupted; unfinished uploads aborted, temporary files removed"

        workers = self.options.jobs * (2 if self._uploads_apart else 1)
        Pool(workers, self.cancel, grace=CANCEL_GRACE, eager=True).run(list(enumerate(items)), work, on_cancel)
        if self._fatal is not None:
            raise self._fatal
        lost = [w.rel for w, o in zip(items, results) if o is None]
        if lost:  # (guarded catches every Exception: only a BaseException could do this)
            raise MirrorError(f"{lost[0]}: its worker stopped without an outcome")
        return results  # type: ignore[return-value]

    # -- getting verified bytes

    def survey(self, models: list[Model], jobs: int | None) -> tuple[list[Wanted], dict[str, Any] | None,
                                                                  dict[str, Present]]:
        """What a run starts from: the selected models' files, DEST's manifest, one listing of DEST."""
        if jobs is not None:
            self._set_jobs(jobs)
        wanted = wanted_files(models, self.options.precisions, self.options.models_root)
        manifest, _ = self.store.read_manifest()
        return wanted, manifest, self.store.list()

    def close(self) -> None:
        self._transport.close()
        close_store = getattr(self.store, "close", None)
        if close_store is not None:
            close_store()

    def _fetch(self, w: Wanted, partial: Path) -> None:
        with self._lock:
            self.upstream_requests += 1
        big = self._big_fetches if w.size >= BIG_FILE else contextlib.nullcontext()
        with big, self._fetching:
            self._transport.fetch(source_urls(w.leaf, w.file, self.options.upstream), partial, w.size, w.sha384,
                                  w.rel)

    def _publish(self, w: Item, path: Path) -> Present:
        with self._publishing:
            return self.store.publish(w.rel, path, w.size, w.sha384, self.cancel)

    def _verified_bytes(self, w: Item, tmp: Path) -> str:
        """Put the item's bytes at tmp, verified: a model's file from the cache or upstream (as
        the downloader does), IR from where this run made it. Says how."""
        if isinstance(w, WantedIr):
            if w.src is None:
                raise MirrorError(f"{w.rel}: no IR made here to publish (verify --repair converts again)")
            fsio.copy_file(w.src, tmp)
            verify_file(tmp, w.size, w.sha384, w.rel)
            return "copied"
        how = obtain(w.sha384, w.size, w.rel, tmp, self.cache, lambda path: self._fetch(w, path),
                     self.reporter.warning)
        return "cached" if how == CACHED else "fetched"

    def fetch_and_publish(self, w: Item) -> Outcome:
        """Get the item's verified bytes and publish them."""
        with self.store.incoming(w.rel) as tmp:
            how = self._verified_bytes(w, tmp)
            return Outcome(w, how, self._publish(w, tmp))

    def check(self, w: Item, full: bool) -> tuple[bool, str]:
        """Is what DEST holds at w.rel the wanted file? (ok, what was found). Without full, a
        stored SHA-384 (S3 metadata) is trusted; a folder file is re-hashed."""
        if not full:
            stored = self.store.stored_sha384(w.rel)
            if stored is not None:
                return stored == w.sha384, stored
        size, sha = self.store.hash(w.rel, self.cancel)
        return size == w.size and sha == w.sha384, sha


# ----------------------------------------------------------------------------- manifest merging

def merge_manifest(current: dict[str, Any] | None, recorded: dict[str, dict[str, Any]], dropped: set[str],
                   still_there: Callable[[str, dict[str, Any]], dict[str, Any] | None],
                   listing: dict[str, Present] | None = None) -> dict[str, Any] | None:
    """The manifest after this run: the current one (a concurrent run's entries included), this
    run's entries, minus what it deleted. `still_there(rel, entry)` confirms that DEST still
    holds this run's file at rel (returns the entry to write, perhaps with a new stamp), or says
    None: someone replaced it since, and this run's entry must not name it. With `listing` (what
    DEST holds now), an entry whose file is gone or has another size is dropped, whoever wrote
    it. Returns None when nothing changes (so a no-change run writes nothing)."""
    files = dict((current or {}).get("files", {}))
    changed = current is None and bool(recorded or dropped)
    if listing is not None:
        for rel, entry in list(files.items()):
            there = listing.get(rel)
            if there is None or there.size != entry.get("size"):
                del files[rel]  # removed or truncated behind our back: the manifest must not name it
                changed = True
    for rel in dropped:
        if files.pop(rel, None) is not None:
            changed = True
    for rel, entry in recorded.items():
        confirmed = still_there(rel, entry)
        if confirmed is None:
            if rel in files and files[rel].get("stamp") == entry.get("stamp"):
                del files[rel]  # names our file, which is gone: the run that replaced it records its own
                changed = True
            continue
        if files.get(rel) != confirmed:
            files[rel] = confirmed
            changed = True
    if not changed:
        return None
    return {"format": FORMAT, "updated": now(), "files": dict(sorted(files.items()))}


# ----------------------------------------------------------------------------- sync

PUBLISHED = ("fetched", "cached", "copied")  # Outcome.how of an item whose bytes this run wrote

@dataclass
class SyncResult:
    """What a sync did, for the summary line, the JSON events and --changes."""

    failed: list[str]  # selected models with a file that failed, in selection order
    outcomes: list[Outcome]
    deleted: list[str]
    manifest_written: bool

    def count(self, *hows: str) -> int:
        return sum(1 for o in self.outcomes if o.error is None and o.how in hows)

    def bytes(self, *hows: str) -> int:
        return sum(o.wanted.size for o in self.outcomes if o.error is None and o.how in hows)

    def changes(self) -> list[str]:
        """Paths below DEST added or replaced by this run (the manifest last, if written)."""
        paths = sorted(o.wanted.rel for o in self.outcomes if o.error is None and o.how in PUBLISHED)
        return paths + ([MANIFEST] if self.manifest_written else [])


class Syncer(Mirror):
    """`mirror sync`: carry out a Plan, then merge the manifest, then delete.

    >>> failed = Syncer(open_store("/srv/omz"), MirrorOptions(models_root=zoo), reporter).run(models, jobs=8)  # doctest: +SKIP
    """

    def run(self, models: list[Model], jobs: int | None = None) -> list[str]:
        """Sync the selected models to the store, up to ``jobs`` files at once (the other
        pipelines' shape); returns the names of the models that failed, each reported in one
        line. With dry_run, says the plan and changes nothing.

        Raises:
            MirrorAccessError, DiskFullError, OutputNotWritableError: no file could succeed.
            InsufficientSpaceError: the files do not fit (before the first request).
            Interrupted: on Ctrl-C, after the temporaries and uploads in flight are undone.
        """
        o, say = self.options, self.reporter.say
        wanted, manifest, listing = self.survey(models, jobs)
        plan = make_plan(wanted, manifest, listing, full=o.full, delete=o.delete, protected=o.protected)
        fetch, check = plan.of(FETCH), plan.of(CHECK)
        fetch_bytes = sum(w.size for w in fetch)
        needs = self.space_needs(fetch) if o.space_check else []
        if o.dry_run:
            for need in needs:
                say(f"     space  {need}{'' if need.fits else ': does not fit'}")
            for w in fetch:
                say(f"     fetch  {w.rel}  {human_size(w.size)}")
            for w in check:
                say(f"     check  {w.rel}  {human_size(w.size)} (there, not vouched for by the manifest)")
            for rel in plan.delete:
                say(f"    delete  {rel}")
            self.reporter.emit("mirror_plan", fetch=len(fetch), fetch_bytes=fetch_bytes, check=len(check),
                               present=len(wanted) - len(fetch) - len(check), delete=len(plan.delete),
                               files=[w.rel for w in fetch], deletes=plan.delete)
            say(f"plan for {self.store.url}: {len(wanted)} files selected; {len(fetch)} to fetch "
                f"({human_size(fetch_bytes)}, {fetch_bytes:,} bytes), {len(check)} to check, "
                f"{len(wanted) - len(fetch) - len(check)} present, {len(plan.delete)} to delete; "
                "nothing changed (dry run)")
            return []
        check_space(needs)
        check_proxies(fetch, o.upstream, o.timeout)
        if o.changes is not None:
            check_writable(o.changes)  # before the first byte: a rerun would have nothing to list
        for rel in self.store.remove_dead():
            say(status_line("removed", rel, "(a temporary left by a run that was killed)"))
        result = self.sync(plan, manifest, full=o.full)
        if o.changes is not None:
            fsio.write_bytes(o.changes.absolute(),
                             "".join(p + "\n" for p in result.changes()).encode("utf-8", "surrogateescape"))
        self.reporter.emit("mirror_sync_end", fetched=result.count("fetched", "cached"),
                           fetched_bytes=result.bytes("fetched", "cached"),
                           adopted=result.count("adopted", "verified"), present=result.count("present"),
                           deleted=len(result.deleted), failed=result.failed,
                           manifest_written=result.manifest_written, upstream_requests=self.upstream_requests)
        say(f"synced {self.store.url}: {len(wanted)} files; {result.count('fetched', 'cached')} published "
            f"({human_size(result.bytes('fetched', 'cached'))}), {result.count('adopted', 'verified')} "
            f"checked in place, {result.count('present')} unchanged, {len(result.deleted)} deleted"
            + ("; manifest updated" if result.manifest_written else "; manifest unchanged"))
        return result.failed

    def space_needs(self, fetch: list[Wanted]) -> list[Need]:
        """What fetching these files writes per file system (space.py): in a folder DEST and
        the cache; an S3 destination's own space is not ours to count."""
        root = None if self.store.remote else Path(self.store.url)
        writes = [(self.cache.root, 0)] if self.cache is not None else []
        for w in fetch:
            writes += fetch_writes(w.sha384, w.size, root / w.rel if root is not None else None, self.cache)
        return space_needed(writes)

    def _report(self, o: Outcome, t0: float, voice: Voice) -> Outcome:
        if o.error is not None and not isinstance(o.error, (Interrupted, *FATAL)) and not self.cancel.is_set():
            self.reporter.failure(o.wanted.top, o.error)  # (once cancelled, failures are its echoes)
        voice.end(o, time.monotonic() - t0)
        return o

    def _job(self, decision: str, full: bool, voice: Voice) -> Callable[[Item], Outcome]:
        """The one per-file routine of a sync, for a model's file or IR: carry out the item's
        decision (CHECK: look at what DEST holds and adopt it if right; FETCH, or CHECK found
        it wrong: put verified bytes in place), say what happened, return the outcome (from
        which sync makes the item's manifest entry)."""
        def job(w: Item) -> Outcome:
            t0 = time.monotonic()
            voice.begin(w)
            try:
                if decision == CHECK:
                    ok, found = self.check(w, full)
                    if ok:
                        o = Outcome(w, "verified" if full else "adopted", self.store.stat(w.rel))
                        return self._report(o, t0, voice)
                    self.reporter.warning(f"{w.rel}: the mirror's copy is not {w.origin} "
                                          f"(SHA-384 {found[:16]}...); fetching it again")
                return self._report(self.fetch_and_publish(w), t0, voice)
            except (Interrupted, *FATAL):
                raise
            except ModelzooError as exc:
                return self._report(Outcome(w, error=exc), t0, voice)
            except Exception as exc:  # noqa: BLE001 - a bug fails this file, with its line
                return self._report(Outcome(w, error=MirrorError(f"{w.rel}: unexpected {type(exc).__name__}: "
                                                                 f"{exc}")), t0, voice)
        return job

    def sync(self, plan: Plan, manifest: dict[str, Any] | None, *, full: bool = False,
             voice: Voice | None = None) -> SyncResult:
        """Carry out a plan (model files or IR alike): the per-file jobs, then the manifest's
        entries merged in, then what --delete removes (only the files the manifest recorded).
        ``voice``: what is said per file (default: a model's files' lines and events)."""
        voice = voice or FileVoice(self.reporter)
        recorded_before = (manifest or {}).get("files", {})
        outcomes: list[Outcome] = []
        for decision in (FETCH, CHECK):
            outcomes += self.run_jobs(plan.of(decision), self._job(decision, full, voice))
        stamp_time = now()
        recorded: dict[str, dict[str, Any]] = {}
        for o in outcomes:
            if o.error is None and o.present is not None:
                recorded[o.wanted.rel] = o.wanted.entry(o.present.stamp, stamp_time)
        for w in plan.of(PRESENT):  # keep entries in step with descriptors that changed elsewhere
            old = recorded_before[w.rel]
            entry = w.entry(old["stamp"], old.get("verified", stamp_time))
            if entry != old:
                recorded[w.rel] = entry
            outcomes.append(Outcome(w, "present"))
        written = self.write_manifest(recorded, set(plan.delete))
        deleted = []
        for rel in plan.delete:  # after the manifest stopped naming them
            try:
                self.store.delete(rel, recorded_before[rel]["stamp"])  # only the file it recorded
                deleted.append(rel)
                voice.deleted(rel)
            except ModelzooError as exc:
                self.reporter.warning(f"not deleting {rel}: {exc}")
        order = {}
        for w, _ in plan.decisions:
            order.setdefault(w.top, len(order))
        failed = sorted({o.wanted.top for o in outcomes if o.error is not None}, key=order.__getitem__)
        return SyncResult(failed, outcomes, deleted, written)

    def write_manifest(self, recorded: dict[str, dict[str, Any]], dropped: set[str]) -> bool:
        """Merge this run's entries into DEST's manifest (see merge_manifest)."""
        if not recorded and not dropped:
            return False

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            fresh = self.store.list()

            def still_there(rel: str, entry: dict[str, Any]) -> dict[str, Any] | None:
                there = fresh.get(rel)
                if there is None or there.size != entry["size"]:
                    return None
                if there.stamp == entry["stamp"]:
                    return entry
                stored = self.store.stored_sha384(rel)
                if stored is None:
                    stored = self.store.hash(rel, self.cancel)[1]
                return {**entry, "stamp": there.stamp} if stored == entry["sha384"] else None

            return merge_manifest(current, recorded, dropped, still_there, fresh)

        written = self.store.update_manifest(change)
        self.manifest_changed = self.manifest_changed or bool(written)
        return written


# ----------------------------------------------------------------------------- verify

class Auditor(Syncer):
    """`mirror verify`: compare DEST with the descriptors; with repair, fix what is broken."""

    failed_repairs: tuple[str, ...] | list[str] = ()  # models a repair could not fix (set by run)

    def run(self, models: list[Model], jobs: int | None = None) -> list[str]:
        """Audit (and with repair, repair) the selected models' files; returns what keeps the
        mirror from being clean: the models with a problem left, and files nobody accounts for
        (empty: clean). Each problem is a line of the table.

        Raises:
            MirrorError: the mirror or its manifest cannot be read.
            Interrupted: on Ctrl-C.
        """
        o = self.options
        wanted, manifest, listing = self.survey(models, jobs)
        findings = self.audit(wanted, manifest, listing, quick=not o.full)
        failed_repairs = self.repair(findings) if o.repair else []
        if o.repair and any(f.wanted is None and f.rel.startswith(IR_PREFIX) for f in findings):
            from .ir import repair_ir  # start-up: the converter's code only when the mirror has IR

            failed_repairs += [m for m in repair_ir(self, findings, models) if m not in failed_repairs]
        problems = [f for f in findings if f.status != OK]
        if problems:
            width = max(len(f.status) for f in problems)
            self.reporter.say(f"{'STATUS':<{width}}  PATH  DETAIL")
            for f in problems:
                self.reporter.say(f"{f.status:<{width}}  {f.rel}  {f.detail}")
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.status] = counts.get(f.status, 0) + 1
        remaining = [f for f in findings if f.status not in (OK, REPAIRED)]
        checked = [f for f in findings if f.wanted is not None]
        text = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
        mode = "full SHA-384" if o.full else "sizes and stored checksums"
        self.reporter.emit("mirror_verify_end", clean=not remaining and not o.protected, counts=counts,
                           files=len(checked))
        self.reporter.say(f"verify {self.store.url} ({mode}): {len(checked)} files "
                          f"({human_size(sum(f.wanted.size for f in checked))}): {text or 'nothing selected'}; "
                          + ("clean" if not remaining and not o.protected else "NOT clean"))
        if [f for f in remaining if f.status == UNKNOWN] and o.repair:
            self.reporter.say("unknown files are not touched: the manifest does not say the mirror owns them")
        self.failed_repairs = failed_repairs
        not_clean = {f.wanted.top if f.wanted is not None else f.rel: None for f in remaining}
        return list(not_clean)

    def audit_file(self, item: Item, recorded: dict[str, Any] | None, there: Present | None,
                   quick: bool) -> Finding:
        """verify's verdict on one item (a model's file, or IR as its manifest entry names it):
        there, of its size, with its SHA-384 (quick: the manifest's stamp or the store's own
        record vouches for it), and named by the manifest."""
        rel, size, sha384 = item.rel, item.size, item.sha384
        w = item if isinstance(item, Wanted) else None  # (IR is repaired by converting, not fetching)
        if there is None:
            return Finding(rel, MISSING, item.expected(), w)
        if there.size != size:
            return Finding(rel, WRONG_SIZE, f"{there.size} bytes, expected {size}", w, there)
        sha = None
        if quick:
            if recorded and recorded.get("stamp") == there.stamp:
                sha = recorded.get("sha384")  # the manifest vouches for this very file (same stamp)
            elif not recorded:
                sha = self.store.stored_sha384(rel)  # S3 metadata, written only after verification
            # recorded, but replaced since (another stamp): only its bytes can say what it is
        if sha is None:
            _, sha = self.store.hash(rel, self.cancel)
        if sha != sha384:
            return Finding(rel, WRONG_SHA, f"got {sha[:16]}..., expected {sha384[:16]}...", w, there)
        if not recorded or recorded.get("sha384") != sha384 or recorded.get("size") != size:
            return Finding(rel, UNRECORDED, "content is right; the manifest does not name it", w, there)
        return Finding(rel, OK, "", w, there)

    def audit_items(self, items: list[Item], recorded: dict[str, Any], listing: dict[str, Present], quick: bool,
                    voice: Voice) -> list[Finding]:
        """audit_file on every item, -j at once; a file that cannot be read is its finding."""
        findings: dict[str, Finding] = {}

        def job(w: Item) -> Outcome:
            try:
                f = self.audit_file(w, recorded.get(w.rel), listing.get(w.rel), quick)
            except (Interrupted, *FATAL):
                raise
            except Exception as exc:  # noqa: BLE001 - one file's problem is its finding, never a lost line
                f = Finding(w.rel, WRONG_SHA, f"cannot read: {exc}", w if isinstance(w, Wanted) else None)
            findings[w.rel] = f
            voice.audited(w, f)
            return Outcome(w)

        self.run_jobs(items, job)
        return [findings[w.rel] for w in items]

    def audit(self, wanted: list[Wanted], manifest: dict[str, Any] | None, listing: dict[str, Present],
              quick: bool) -> list[Finding]:
        """Findings on the selected models' files, then on what nobody accounts for (unknown
        files, temporaries), then on the IR the manifest records for the selected models."""
        recorded = (manifest or {}).get("files", {})
        out = self.audit_items(wanted, recorded, listing, quick, FileVoice(self.reporter))
        names = {w.rel for w in wanted}
        for rel in sorted(set(listing) - set(recorded) - names):
            out.append(Finding(rel, UNKNOWN, f"{listing[rel].size} bytes; not made by this mirror tool", None,
                               listing[rel]))
            self.reporter.emit("mirror_verify_file", path=rel, model=None, status=UNKNOWN, detail=out[-1].detail)
        for rel, what in self.store.leftovers().items():  # temporaries: nothing is hidden from an audit
            out.append(Finding(rel, UNKNOWN, what))
            self.reporter.emit("mirror_verify_file", path=rel, model=None, status=UNKNOWN, detail=what)
        models = {w.model for w in wanted}
        ir = [WantedIr.recorded(rel, e) for rel, e in sorted(recorded.items())
              if rel.startswith(IR_PREFIX) and e.get("model") in models]
        return out + self.audit_items(ir, recorded, listing, quick, IrVoice(self.reporter))

    def repair(self, findings: list[Finding]) -> list[str]:
        """Re-fetch what is missing or wrong through the verified path, record what is right but
        unrecorded, merge the manifest. Returns the models that could not be repaired.

        Raises:
            LockError: with --locked, upstream no longer serves a file to re-fetch as locked
                (its HEAD preflight, as sync's, before anything is written).
        """
        broken = [f for f in findings if f.wanted is not None and f.status in (MISSING, WRONG_SIZE, WRONG_SHA)]
        if self.options.before_fetch is not None and broken:
            self.options.before_fetch(fetch_sources([f.wanted for f in broken], self.options))
        removed = set(self.store.remove_dead())  # temporaries of killed runs: ours to remove
        for f in findings:
            if f.wanted is None and f.rel in removed:
                f.status, f.detail = REPAIRED, "removed (a temporary left by a run that was killed)"
        outcomes = self.run_jobs([f.wanted for f in broken], self._job(FETCH, False, FileVoice(self.reporter)))
        by_rel = {o.wanted.rel: o for o in outcomes}
        stamp_time = now()
        recorded: dict[str, dict[str, Any]] = {}
        for f in findings:
            o = by_rel.get(f.rel)
            if o is not None and o.error is None and o.present is not None:
                recorded[f.rel] = f.wanted.entry(o.present.stamp, stamp_time)
                f.status, f.detail = REPAIRED, f"was {f.status}; {o.how}"
            elif f.status == UNRECORDED and f.present is not None:
                recorded[f.rel] = f.wanted.entry(f.present.stamp, stamp_time)
                f.status, f.detail = REPAIRED, "was not in manifest; recorded"
        self.write_manifest(recorded, set())
        if recorded:  # say "repaired" only of what DEST now holds as recorded
            listing = self.store.list()
            for f in findings:
                there = listing.get(f.rel)
                if f.rel in recorded and f.status == REPAIRED and (there is None
                                                                    or there.stamp != recorded[f.rel]["stamp"]):
                    f.status, f.detail = MISSING, "repaired, but the mirror does not hold it afterwards"
        return sorted({o.wanted.top for o in outcomes if o.error is not None})
