"""Downloading models: for each file, reuse (verified) or fetch, verify, and move into place.

Bytes only ever reach a final path by an atomic rename of a file whose size and SHA-384
matched the descriptor. Temporary files live beside their target (or in the cache) and are
removed on failure and on Ctrl-C; a partial download in the cache is kept to be resumed.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from . import unpack
from .cache import Cache
from .descriptor import KNOWN_PRECISIONS, GoogleDriveSource, Model, ModelFile
from .errors import (
    ChecksumMismatchError, Interrupted, ModelzooError, OutputNotWritableError, SizeMismatchError,
)
from .events import Reporter
from .fetch import Fetcher, copy_file, make_session, write_error
from .verify import file_matches

GOOGLE_DRIVE_URL = "https://drive.google.com/uc?export=download&confirm=t&id="
CANCEL_GRACE = 0.8  # seconds the workers get to notice Ctrl-C before we clean up without them


@dataclass
class DownloadOptions:
    output_dir: Path
    cache_dir: Path | None = None
    num_attempts: int = 1
    timeout: float = 60.0
    jobs: int = 1
    mirrors: list[str] = field(default_factory=list)
    precisions: frozenset[str] = KNOWN_PRECISIONS


def source_urls(model: Model, file: ModelFile, mirrors: list[str]) -> list[str]:
    """Mirrors first (URL/<model folder>/<file>), then the descriptor's own source."""
    rel = quote(f"{model.subdirectory.as_posix()}/{file.name.as_posix()}")
    urls = [m.rstrip("/") + "/" + rel for m in mirrors]
    if isinstance(file.source, GoogleDriveSource):
        urls.append(GOOGLE_DRIVE_URL + quote(file.source.id))
    else:
        urls.append(file.source.url)
    return urls


class Downloader:
    def __init__(self, options: DownloadOptions, reporter: Reporter, prog: str = "modelzoo-downloader") -> None:
        self.options = options
        self.reporter = reporter
        self.prog = prog
        self.cancel = threading.Event()
        self.cache = Cache(options.cache_dir) if options.cache_dir else None
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._temps: set[Path] = set()

    # -- running many models

    def run(self, models: list[Model]) -> list[str]:
        """Download every model; returns the names of the models that failed."""
        work: queue.Queue[Model] = queue.Queue()
        for m in models:
            work.put(m)
        failed: list[str] = []

        def worker() -> None:
            while not self.cancel.is_set():
                try:
                    model = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    ok = self.download_model(model)
                except Interrupted:
                    return
                except Exception as exc:  # a bug must not hang the pool; report it as a failure
                    self.reporter.error(f"{self.prog}: error: {model.name}: unexpected {type(exc).__name__}: {exc}")
                    ok = False
                if not ok:
                    with self._lock:
                        failed.append(model.name)

        threads = [threading.Thread(target=worker, daemon=True, name=f"download-{i}")
                   for i in range(max(1, min(self.options.jobs, len(models))))]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.1)
        except KeyboardInterrupt:
            self.cancel.set()
            deadline = time.monotonic() + CANCEL_GRACE
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            self.remove_temporaries()
            kept = " (partial downloads kept in the cache for resuming)" if self.cache else ""
            raise Interrupted(f"interrupted; temporary files removed{kept}") from None
        finally:
            if self._session is not None:
                self._session.close()
        order = {m.name: i for i, m in enumerate(models)}
        return sorted(failed, key=order.__getitem__)

    def remove_temporaries(self) -> None:
        with self._lock:
            temps, self._temps = list(self._temps), set()
        for path in temps:
            try:
                path.unlink()
            except OSError:
                pass

    # -- one model

    def download_model(self, model: Model) -> bool:
        return all(self._download_leaf(leaf) for leaf in model.leaf_models())

    def _wanted(self, model: Model, file: ModelFile) -> bool:
        parts = file.name.parts
        return not (len(parts) == 2 and parts[0] in KNOWN_PRECISIONS and parts[0] not in self.options.precisions)

    def _download_leaf(self, model: Model) -> bool:
        r = self.reporter
        if not (model.precisions & self.options.precisions):
            r.say(f"   skipped  {model.name}: none of its precisions ({', '.join(sorted(model.precisions))}) "
                  "was requested")
            return True
        files = [f for f in model.files if self._wanted(model, f)]
        r.model_begin(model.name, len(files))
        out_dir = self.options.output_dir / model.subdirectory
        ok = True
        try:
            _mkdir(out_dir)
            for f in files:
                self._download_file(model, f, out_dir)
            if model.postprocessing:
                r.postprocessing(model.name, True)
                for step in model.postprocessing:
                    unpack.apply(step, out_dir)
                r.postprocessing(model.name, False)
        except Interrupted:
            r.model_end(model.name, False)
            raise
        except ModelzooError as exc:
            r.error(f"{self.prog}: error: {model.name}: {exc}")
            ok = False
        r.model_end(model.name, ok)
        return ok

    # -- one file

    def _session_for_fetch(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = make_session(self.options.num_attempts, pool_size=max(10, self.options.jobs))
            return self._session

    def _fetch(self, urls: list[str], partial: Path, file: ModelFile, label: str, progress) -> None:
        fetcher = Fetcher(self._session_for_fetch(), timeout=self.options.timeout,
                          num_attempts=self.options.num_attempts, cancel=self.cancel, progress=progress)
        fetcher.fetch(urls, partial, file.size, file.sha384, label)

    def _temp_beside(self, dest: Path) -> Path:
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        with self._lock:
            self._temps.add(tmp)
        return tmp

    def _forget(self, tmp: Path, remove: bool) -> None:
        with self._lock:
            self._temps.discard(tmp)
        if remove:
            tmp.unlink(missing_ok=True)

    def _place(self, tmp: Path, dest: Path) -> None:
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise write_error(dest, exc) from exc
        self._forget(tmp, remove=False)

    def _download_file(self, model: Model, file: ModelFile, out_dir: Path) -> None:
        dest = out_dir / file.name
        label = f"{model.subdirectory.as_posix()}/{file.name.as_posix()}"
        progress = self.reporter.file(model.name, file.name.as_posix(), file.size, label)
        tmp: Path | None = None
        try:
            _mkdir(dest.parent)
            if dest.is_file() and file_matches(dest, file.size, file.sha384):
                progress.finish(True, "present")
                return
            urls = source_urls(model, file, self.options.mirrors)
            if self.cache is None:
                tmp = self._temp_beside(dest)
                self._fetch(urls, tmp, file, label, progress.update)
                self._place(tmp, dest)
                progress.finish(True)
                return
            sha = file.sha384
            with self.cache.lock(sha):
                tmp = self._temp_beside(dest)
                had_blob = self.cache.blob_path(sha).exists()
                if had_blob and self.cache.copy_to(sha, file.size, tmp):
                    self._place(tmp, dest)
                    progress.finish(True, "cached")
                    return
                if had_blob:
                    self.reporter.error(f"{self.prog}: warning: {label}: cache entry was corrupt; "
                                        "discarded, fetching again")
                partial = self.cache.partial_path(sha)
                try:
                    self._fetch(urls, partial, file, label, progress.update)
                except (ChecksumMismatchError, SizeMismatchError):
                    partial.unlink(missing_ok=True)  # wrong bytes are no prefix worth resuming
                    raise
                blob = self.cache.add(sha, partial)
            copy_file(blob, tmp)
            self._place(tmp, dest)
            progress.finish(True)
        except BaseException:
            progress.finish(False)
            if tmp is not None:
                self._forget(tmp, remove=True)
            raise


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = write_error(path, exc)
        raise (err if not isinstance(err, OutputNotWritableError) else
               OutputNotWritableError(f"cannot create folder {path}: {exc.strerror}")) from exc
