"""Downloading models: for each file, reuse (verified) or fetch, verify, and move into place.

Bytes only ever reach a final path by an atomic rename of a file whose size and SHA-384
matched the descriptor (fsio.place). Temporary files live beside their target (or in the
cache) and are removed on failure and on Ctrl-C; a partial download in the cache is kept to
be resumed.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Callable

from .. import fsio
from ..store.cache import run_cache
from ..descriptor import KNOWN_PRECISIONS, Model, ModelFile
from ..errors import Interrupted, ModelzooError, OfflineError
from ..events import FileProgress, Reporter
from ..executors import Pool
from .obtain import CACHED, Transport, obtain, source_urls
from ..verify import file_matches



class DownloadOptions:
    """What the downloader's command line says, minus the selection and -j. (A plain class, not
    a dataclass, for start-up time: see descriptor.py.)"""

    def __init__(self, output_dir: Path, cache_dir: Path | None = None, num_attempts: int = 1,
                 timeout: float = 60.0, connections: int = 1, mirrors: list[str] | None = None,
                 precisions: frozenset[str] = KNOWN_PRECISIONS, space_check: bool = True,
                 before_fetch: Callable[[list[tuple[str, str, int, list[str]]]], None] | None = None) -> None:
        self.output_dir = output_dir
        self.cache_dir = cache_dir
        self.num_attempts = num_attempts
        self.timeout = timeout
        self.connections = connections  # for one big file (segments.py); all fetches of a run share max(jobs, this)
        self.mirrors = mirrors if mirrors is not None else []
        self.precisions = precisions
        self.space_check = space_check  # refuse before the first request when the writes do not fit (space.py)
        # --locked: shown every file the run will fetch, as (model, file, size, sources), before the
        # first request; raising refuses the run (trust/policy.py's HEAD requests)
        self.before_fetch = before_fetch


class Downloader:
    """Downloads the files of models, verified, into ``OUTPUT/<model folder>/``.

    Guarantees: a final path holds the previous file or the verified new one, never anything
    else; a file already present and matching is not fetched; with a cache, a blob present and
    matching is not fetched, and one download serves every process that wants the same file;
    after Ctrl-C (Interrupted) no temporary is left beside a target. Failures are reported one
    per model through the reporter, which the command line formats.

    >>> reporter = Reporter("text")
    >>> failed = Downloader(DownloadOptions(Path("models")), reporter).run(models, jobs=4)  # doctest: +SKIP
    """

    def __init__(self, options: DownloadOptions, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.cancel = threading.Event()
        self.cache = run_cache(options.cache_dir, reporter.warning, "fetching the rest beside the targets")
        self._transport: Transport | None = None
        self._pool: Pool | None = None

    def run(self, models: list[Model], jobs: int = 1) -> list[str]:
        """Download every model, up to ``jobs`` at once; returns the names of those that failed,
        each reported in one line.

        Raises:
            InsufficientSpaceError: the run's files do not fit (checked before the first request).
            Interrupted: on Ctrl-C or SIGTERM, after the temporaries are removed.
        """
        self._transport = Transport(jobs=jobs, connections=self.options.connections,
                                    num_attempts=self.options.num_attempts, timeout=self.options.timeout,
                                    cancel=self.cancel)
        fsio.TEMPORARIES.reopen()  # a program may run again after an interrupted run
        if self.options.space_check:
            from .space import check_space, download_writes, space_needed

            check_space(space_needed(download_writes(models, self.options.precisions, self.options.output_dir,
                                                     self.cache, self._wanted)))
        if self.options.before_fetch is not None:
            self.options.before_fetch(self.to_fetch(models))

        def on_cancel() -> str:
            fsio.TEMPORARIES.remove_all()
            kept = " (partial downloads kept in the cache for resuming)" if self.cache else ""
            return f"interrupted; temporary files removed{kept}"

        try:
            self._pool = Pool(jobs, self.cancel)
            failed = self._pool.run(models, self.download_model, on_cancel)
        finally:
            self._transport.close()
        return [m.name for m in failed]

    @staticmethod
    def _present(path: Path, size: int, follow: bool = True) -> bool:
        try:
            st = os.stat(path, follow_symlinks=follow)
        except OSError:
            return False
        return st.st_size == size and stat.S_ISREG(st.st_mode)

    def to_fetch(self, models: list[Model]) -> list[tuple[str, str, int, list[str]]]:
        """Every file the run will fetch (neither at its target with its size nor in the cache),
        once, as (model, file, size, its sources in the order they will be tried)."""
        out, seen = [], set()
        for top in models:
            for leaf in top.leaf_models():
                if not leaf.precisions & self.options.precisions:
                    continue
                out_dir = self.options.output_dir / leaf.subdirectory
                for f in leaf.files:
                    # (the cache's blob by a plain lstat, 10 us, not the confined Cache.has_blob, 100 us:
                    # a hint only; a link planted on the way makes at most one HEAD request fewer)
                    if not self._wanted(f) or f.sha384 in seen or self._present(out_dir / f.name, f.size) \
                            or (self.cache is not None and self._present(self.cache.blob_path(f.sha384), f.size,
                                                                         follow=False)):
                        continue
                    seen.add(f.sha384)
                    out.append((leaf.name, f.name.as_posix(), f.size, source_urls(leaf, f, self.options.mirrors)))
        return out

    # -- one model

    def download_model(self, model: Model) -> bool:
        """All files of a model (of each stage of a composite), then its post-processing."""
        return all(self._download_leaf(leaf) for leaf in model.leaf_models())

    def _wanted(self, file: ModelFile) -> bool:
        parts = file.name.parts
        return not (len(parts) == 2 and parts[0] in KNOWN_PRECISIONS and parts[0] not in self.options.precisions)

    def _download_leaf(self, model: Model) -> bool:
        r = self.reporter
        if not (model.precisions & self.options.precisions):
            r.say(f"   skipped  {model.name}: none of its precisions ({', '.join(sorted(model.precisions))}) "
                  "was requested")
            return True
        files = [f for f in model.files if self._wanted(f)]
        r.model_begin(model.name, len(files))
        out_dir = self.options.output_dir / model.subdirectory
        ok = True
        try:
            fsio.makedirs(out_dir)
            # one run at a time in a model folder: two unpacking the same archive would trip
            # over each other's renames
            with fsio.folder_lock(out_dir, self._check_cancel):
                missing = 0
                for f in files:
                    try:
                        self._download_file(model, f, out_dir)
                    except OfflineError as exc:  # one line a file, then the next file (none is fetched)
                        r.failure(model.name, exc)
                        missing += 1
                if missing:
                    r.model_end(model.name, False)
                    return False
                if model.postprocessing:
                    from . import unpack

                    r.postprocessing(model.name, True)
                    for step in model.postprocessing:
                        unpack.apply(step, out_dir, self._check_cancel)
                    r.postprocessing(model.name, False)
        except Interrupted:
            r.model_end(model.name, False)
            raise
        except Exception as exc:
            if self.cancel.is_set():  # cleaned up under our feet after Ctrl-C: the interruption is the news
                r.model_end(model.name, False)
                raise Interrupted("interrupted") from None
            if not isinstance(exc, ModelzooError):  # a bug must not hang the pool or lose the end event
                exc = RuntimeError(f"unexpected {type(exc).__name__}: {exc}")
            r.failure(model.name, exc)
            ok = False
        r.model_end(model.name, ok)
        return ok

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted")

    # -- one file

    def _download_file(self, model: Model, file: ModelFile, out_dir: Path) -> None:
        dest = out_dir / file.name
        label = f"{model.subdirectory.as_posix()}/{file.name.as_posix()}"
        progress = self.reporter.file(model.name, file.name.as_posix(), file.size, label)
        try:
            if len(file.name.parts) > 1:  # a file in a subfolder: none of them may be a link out
                fsio.check_inside(dest, out_dir)
                fsio.makedirs(dest.parent)
            if dest.is_file() and ((self.cache is not None and self.cache.holds(dest, file.sha384, file.size))
                                   or file_matches(dest, file.size, file.sha384)):
                progress.finish(True, "present")
                return
            if self.cache is not None and self.cache.link_at(file.sha384, file.size, dest):
                progress.finish(True, "cached")
                return
            urls = source_urls(model, file, self.options.mirrors)

            def waiting() -> None:
                self.reporter.say(f"   waiting  {label}: another process is fetching it into the cache")

            with fsio.temporary_beside(dest) as tmp:
                how = obtain(file.sha384, file.size, label, tmp, self.cache,
                             lambda path: self._fetch(urls, path, file, label, progress), self.reporter.warning,
                             waiting)
                fsio.place(tmp, dest, size=file.size)
            progress.finish(True, "cached" if how == CACHED else "downloaded")
        except BaseException:
            progress.finish(False)
            raise

    def _fetch(self, urls: list[str], partial: Path, file: ModelFile, label: str, progress: FileProgress) -> None:
        if self._pool is not None:
            self._pool.grow()
        assert self._transport is not None
        self._transport.fetch(urls, partial, file.size, file.sha384, label, progress.update)
