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
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

from ..errors import InsufficientSpaceError
from ..events import human_size

if TYPE_CHECKING:
    from ..store.cache import Cache
    from ..descriptor import Model, ModelFile

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
    read_only: bool = False  # mounted read-only: writing fails at once, with a clearer line than ours

    @property
    def fits(self) -> bool:
        return self.needed <= self.free

    def __str__(self) -> str:
        return f"needs {human_size(self.needed)} on {self.mount} ({human_size(self.free)} free)"


def _existing(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists (where a file will land)."""
    path = Path(path).absolute()
    while path != path.parent:
        try:
            os.stat(path)
            break
        except OSError:  # absent, or a name too long for the file system (ENAMETOOLONG): its folder
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
        needs.append(Need(_mount_point(where, dev), needed, st.f_bavail * st.f_frsize,
                          bool(st.f_flag & os.ST_RDONLY)))
    return needs


def check_space(needs: list[Need]) -> None:
    """InsufficientSpaceError naming every file system that is too small, in one line (a
    read-only one is left to the write that fails on it: "Read-only file system" says more)."""
    short = [n for n in needs if not n.fits and not n.read_only]
    if short:
        raise InsufficientSpaceError("; ".join(map(str, short)))


# -- what each pipeline will write (the sums behind check_space; estimates are said to be so)

def _size_of(path: Path) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(_existing(a)).st_dev == os.stat(_existing(b)).st_dev
    except OSError:
        return False


def _unpacked(archive: Path | None, size: int) -> int:
    """What an archive unpacks to: a zip on disk says it exactly (its central directory); for
    anything else (a tar, one not fetched yet) its own size is the estimate."""
    import zipfile

    if archive is not None and zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as z:
                return sum(i.file_size for i in z.infolist())
        except (OSError, zipfile.BadZipFile):
            pass
    return size


def fetch_writes(sha384: str, size: int, target: Path | None, cache: "Cache | None") -> list[tuple[Path, int]]:
    """What getting one file to ``target`` writes (obtain.py's ways): with a cache that holds it,
    nothing where a hard link will do (the cache's file system), else a copy; with a writable
    cache that lacks it, the rest of its partial download in the cache, then the same; without
    a (writable) cache, the file beside its target (the ``.part`` renamed onto it). ``target``
    None: a remote one (an S3 mirror), only the cache's writes count."""
    out = []
    if cache is not None:
        held = _size_of(cache.blob_path(sha384)) == size
        if held or cache.writable:
            if target is not None:
                out.append((target, 0 if _same_fs(cache.root, target) else size))
            if held:
                return out
            partial = _size_of(cache.partial_path(sha384)) or 0
            return [(cache.partial_path(sha384), max(0, size - partial))] + out
    return [(target, size)] if target is not None else []


def download_writes(models: Iterable["Model"], precisions: frozenset[str], output_dir: Path,
                    cache: "Cache | None", wanted: Callable[["ModelFile"], bool]) -> list[tuple[Path, int]]:
    """What a download of ``models`` writes: each file not present (a file of the right size at
    its target counts as present) as ``fetch_writes`` says (a blob shared by several models is
    fetched into the cache once), each archive's unpacked content beside it until the archive is
    removed, and each regex_replace's new copy of a file, at the size it may grow to."""
    writes: list[tuple[Path, int]] = []
    fetched: set[str] = set()
    for top in models:
        for leaf in top.leaf_models():
            if not leaf.precisions & precisions:
                continue
            out_dir = output_dir / leaf.subdirectory
            sizes = {}
            for f in leaf.files:
                if not wanted(f):
                    continue
                target = out_dir / f.name
                sizes[f.name] = f.size
                if _size_of(target) == f.size:
                    continue
                for path, n in fetch_writes(f.sha384, f.size, target, cache):
                    if path != target and f.sha384 in fetched:
                        continue  # its partial download in the cache: once
                    writes.append((path, n))
                fetched.add(f.sha384)
            for step in leaf.postprocessing:
                from ..descriptor import RegexReplace, UnpackArchive, regex_output_limit

                if isinstance(step, RegexReplace) and step.file in sizes:
                    # the edited copy beside the file, at the most it may grow to (unpack.py)
                    writes.append((out_dir / step.file, regex_output_limit(sizes[step.file])))
                if isinstance(step, UnpackArchive) and step.file in sizes:
                    archive = out_dir / step.file
                    if not archive.is_file() and cache is not None:
                        blob = next((cache.blob_path(f.sha384) for f in leaf.files if f.name == step.file), None)
                        archive = blob if blob is not None and blob.is_file() else archive
                    writes.append((out_dir, _unpacked(archive if archive.is_file() else None, sizes[step.file])))
    return writes


def conversion_writes(models: Iterable["Model"], precisions: list[str] | tuple[str, ...], download_dir: Path,
                      output_dir: Path) -> list[tuple[Path, int]]:
    """An estimate of the IR a conversion writes: per precision, FP32 as many bytes as the
    model's files (weights stay as they are), FP16 half as many, each in the model's output
    folder (its staging folder is there too, and the old IR stays until the new one is swapped
    in). The model's files are what its download folder holds (precision folders aside), or
    the descriptor's sizes when it holds nothing."""
    writes = []
    for top in models:
        for leaf in top.leaf_models():
            wanted = [p for p in precisions if p in leaf.precisions]
            if leaf.mo_args is None or not wanted:
                continue
            base = _model_bytes(download_dir / leaf.subdirectory) or sum(f.size for f in leaf.files)
            out = output_dir / leaf.subdirectory
            for p in wanted:
                writes.append((out, base if p == "FP32" else base // 2))
    return writes


def _model_bytes(folder: Path) -> int:
    """The bytes of a downloaded model's files: its folder, without IR precision folders and
    hidden entries (staging folders, temporaries)."""
    from ..descriptor import KNOWN_PRECISIONS

    return _folder_bytes(folder, skip=KNOWN_PRECISIONS)


def _folder_bytes(folder: Path, skip: frozenset[str] = frozenset()) -> int:
    total = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        if e.name in skip or e.name.startswith("."):
            continue
        try:
            if e.is_file(follow_symlinks=False):
                total += e.stat(follow_symlinks=False).st_size
            elif e.is_dir(follow_symlinks=False):
                total += _folder_bytes(Path(e.path))
        except OSError:
            continue
    return total
