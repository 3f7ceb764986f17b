"""Post-download steps: unpack_archive (refusing hostile members) and regex_replace.

Both stage their output beside the target and rename it into place, so a failure leaves
the model folder as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .descriptor import Postproc, RegexReplace, UnpackArchive
from .errors import PostprocessingError, UnsafeArchiveError

_TAR_MODES = {"tar": "r:", "gztar": "r:gz", "bztar": "r:bz2", "xztar": "r:xz"}


def apply(step: Postproc, model_dir: Path) -> None:
    if isinstance(step, UnpackArchive):
        unpack_archive(model_dir / step.file, step.format, model_dir)
    else:
        regex_replace(model_dir / step.file, step)


# ----------------------------------------------------------------------------- regex_replace

def regex_replace(path: Path, step: RegexReplace) -> None:
    """Edit a text file in place; the number of matches must be what the descriptor says
    (count 0: any number but zero)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PostprocessingError(f"regex_replace: {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise PostprocessingError(f"regex_replace: {path} is not UTF-8 text ({exc.reason})") from exc
    new_text, n = re.subn(step.pattern, step.replacement, text, count=step.count)
    if n == 0:
        raise PostprocessingError(f"regex_replace: pattern {step.pattern!r} not found in {path}")
    if step.count and n != step.count:
        raise PostprocessingError(f"regex_replace: pattern {step.pattern!r} found {n} times in {path}, "
                                  f"expected {step.count}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(new_text)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- unpack_archive

def _check_name(archive: Path, name: str) -> PurePosixPath:
    member = PurePosixPath(name)
    if member.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in member.parts or "\\" in name:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the model folder")
    return member


def _check_link(archive: Path, member: PurePosixPath, target: str, hard: bool) -> None:
    """A link may only point at something inside the extraction folder."""
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        raise UnsafeArchiveError(f"{archive}: link {str(member)!r} points to the absolute path {target!r}")
    base = PurePosixPath() if hard else member.parent
    depth = 0
    for part in (base / target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise UnsafeArchiveError(f"{archive}: link {str(member)!r} -> {target!r} points outside the model folder")


def _safe_tar_members(archive: Path, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        path = _check_name(archive, m.name)
        if m.isdev() or m.isfifo():
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo")
        if m.issym() or m.islnk():
            _check_link(archive, path, m.linkname, hard=m.islnk())
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} has an unsupported type")
    return members


def _extract_tar(archive: Path, fmt: str, dest: Path) -> None:
    try:
        with tarfile.open(archive, _TAR_MODES[fmt]) as tar:
            members = _safe_tar_members(archive, tar)
            # The 'data' filter repeats our checks and also strips set-uid bits and owners.
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise UnsafeArchiveError(f"{archive}: {exc}") from exc
        raise PostprocessingError(f"{archive}: cannot unpack as {fmt}: {exc}") from exc


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                path = _check_name(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    _check_link(archive, path, zf.read(info).decode("utf-8", "replace"), hard=False)
                elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a device or fifo")
            for info in infos:
                mode = info.external_attr >> 16
                target = dest / info.filename
                if stat.S_ISLNK(mode):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(zf.read(info).decode("utf-8"), target)
                else:
                    zf.extract(info, dest)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise PostprocessingError(f"{archive}: cannot unpack as zip: {exc}") from exc


def unpack_archive(archive: Path, fmt: str, model_dir: Path) -> None:
    """Unpack into a staging folder, then move every top-level entry into model_dir and
    delete the archive. A hostile member stops everything before a byte lands in model_dir."""
    if not archive.is_file():
        raise PostprocessingError(f"unpack_archive: {archive} does not exist")
    staging = Path(tempfile.mkdtemp(dir=archive.parent, prefix=f".{archive.name}.unpack-"))
    try:
        if fmt == "zip":
            _extract_zip(archive, staging)
        elif fmt in _TAR_MODES:
            _extract_tar(archive, fmt, staging)
        else:
            raise PostprocessingError(f"{archive}: unknown archive format {fmt!r}")
        target_root = archive.parent
        for entry in sorted(staging.iterdir()):
            target = target_root / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
        archive.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
