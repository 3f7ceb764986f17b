"""Converted IR by the key of its conversion: convert once per team.

The key of a conversion is the SHA-384 of a canonical JSON record of everything that decides
the IR (``conversion_record``): the schema version, the backend and its version, the arguments
after placeholder expansion with every argument that names a file replaced by that file's
SHA-384 (a folder: the SHA-384 of its sorted listing of names and file hashes), the
descriptor's model_info (it is written into the IR's rt_info) and the precisions. Paths
themselves never enter the key: the same model downloaded elsewhere has the same key. (The ovc
backend's record keeps ``$mo_ext_dir/...`` as written: it knows a transformation config by that
name, whether or not openvino-dev's copy is installed.)

Layout, a namespace of its own inside the downloader's --cache_dir:

    ir/keys/<key[:2]>/<key[2:]>.json     an entry: the record and every file (precision/name, size, SHA-384)
    ir/keys/<key[:2]>/<key[2:]>.lock     held while that key is looked up, converted and added
    ir/sha384/...                        the IR files themselves, as the download cache keeps
                                         blobs (cache.Cache: read-only, ``.ok`` stat records,
                                         hard links out, a lock per blob)

An entry is written last, atomically, after every file it names is a verified blob: an
interrupted or failed conversion leaves no entry (at most blobs no entry names). A hit exports
every file with ``Cache.export``, which re-hashes a blob whose stat record does not match and
deletes it if it is corrupt; one bad file discards the entry and the model is converted again.

For INT8 (the quantizer, ``quantization_record``): the key of a quantization covers the
OpenVINO that quantizes and saves, NNCF's version, the model's name, the input FP32 IR's bytes
(``files_digest`` of its .xml and .bin: the IR decides everything the conversion did, so the same
FP32 IR reached by any path, converted here, from the cache or from a mirror, gives the same key),
the SHA-384 of the accuracy-check.yml (it preprocesses the calibration pictures), the quantizer's
options, ``files_digest`` of the calibration files in the order NNCF gets them, the SHA-384 of the
annotations when they are used (``--max_drop``, or accuracy measured into quantization.json), and
the precisions. The entry also holds each precision's quantization.json. ``files_digest`` is the
one digest of a list of files: quantization.json's ``files_sha384`` is the same value.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterable

from .. import fsio
from .cache import Cache, _Lock, _matches
from ..errors import FileSystemError, OutputNotWritableError

SCHEMA = 1  # raise when the record's meaning changes: every old key is then a miss
ENTRY_LIMIT = 1 << 20  # an entry is a small JSON document; anything larger is not ours


def file_sha384(path: Path) -> str:
    from ..verify import file_digest

    return file_digest(path)[1]


def files_digest(paths: Iterable[Path], root: Path | None = None, known: dict[str, str] | None = None) -> str:
    """The SHA-384 of a list of files: each file's name (relative to ``root``) and SHA-384, in
    the order given (callers sort, or give the order that matters). ``known``: path -> SHA-384
    of files already known to hold it (a hard link to a verified cache blob), not read again.
    The one digest of a list of files: keys, quantization.json and folder arguments use it."""
    h = hashlib.sha384()
    for p in paths:
        name = str(p.relative_to(root)) if root is not None else str(p)
        sha = (known or {}).get(str(p)) or file_sha384(p)
        h.update(f"{name}\0{sha}\n".encode())
    return h.hexdigest()


def _content(value: str, known: dict[str, str]) -> str | None:
    """What a path argument's value stands for in the key: its content's SHA-384 (None: not a
    path on this machine, kept as written)."""
    if not value.startswith("/"):
        return None
    if value in known:
        return "sha384:" + known[value]
    path = Path(value)
    try:
        if path.is_file():
            return "sha384:" + file_sha384(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            return "tree-sha384:" + files_digest(files, path)
    except OSError:
        return None
    return None


def canonical_arguments(args: list[str], known: dict[str, str] | None = None) -> list[str]:
    """The arguments with every value that names a file or folder replaced by its content's hash.
    ``known``: path -> SHA-384 of files already known to hold it (a hard link to a download
    cache blob unchanged since it was verified: ``Cache.holds``), which are not read again."""
    out = []
    for arg in args:
        flag, eq, value = arg.partition("=")
        content = _content(value, known or {}) if eq else _content(arg, known or {})
        if content is None:
            out.append(arg)
        else:
            out.append(f"{flag}={content}" if eq else content)
    return out


def conversion_record(backend: str, backend_version: str, args: list[str], precisions: list[str],
                      model_info: dict[str, Any] | None = None, known: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything that decides the IR of one conversion, without a path in it."""
    return {"schema": SCHEMA, "backend": backend, "backend_version": backend_version,
            "arguments": canonical_arguments(args, known), "model_info": dict(model_info or {}),
            "precisions": sorted(precisions)}


def quantization_record(model: str, input_ir: str, openvino: str, nncf: str, accuracy_config: str,
                        options: dict[str, Any], calibration: str, annotations: str | None,
                        precisions: list[str]) -> dict[str, Any]:
    """Everything that decides an INT8 IR and its quantization.json, without a path in it:
    ``input_ir`` is files_digest of the FP32 .xml and .bin (names relative to the model's IR
    folder), ``accuracy_config`` the SHA-384 of the accuracy-check.yml, ``calibration``
    files_digest of the calibration pictures (names relative to their folder), ``annotations``
    the SHA-384 of the annotations when they are used. ``backend`` is the OpenVINO that runs NNCF
    and saves the IR (what ``cache.py ls`` shows, with NNCF's version)."""
    return {"schema": SCHEMA, "backend": "openvino", "backend_version": openvino, "model": model,
            "input_ir": input_ir, "precisions": sorted(precisions),
            "quantization": {"nncf": nncf, "options": dict(sorted(options.items())),
                             "accuracy_config": accuracy_config, "calibration": calibration,
                             "annotations": annotations}}


def key_of(record: dict[str, Any]) -> str:
    """The SHA-384 of the record's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha384(text.encode()).hexdigest()


@dataclass(frozen=True)
class IrFile:
    path: str  # <precision>/<name>.xml|.bin, relative to the model's IR folder
    size: int
    sha384: str


def _valid_rel(path: object) -> bool:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return len(parts) == 2 and all(p and p not in (".", "..") and not p.startswith(".") for p in parts)


def _valid_sha(value: object) -> bool:
    return isinstance(value, str) and len(value) == 96 and all(c in "0123456789abcdef" for c in value)


def parse_files(data: object) -> list[IrFile] | None:
    """The files of an entry (or a mirror's IR entry), None if anything about them is wrong."""
    if not isinstance(data, list) or not data:
        return None
    files = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"path", "size", "sha384"}:
            return None
        size = item["size"]
        if not _valid_rel(item["path"]) or not isinstance(size, int) or isinstance(size, bool) or size < 0 \
                or not _valid_sha(item["sha384"]):
            return None
        files.append(IrFile(item["path"], size, item["sha384"]))
    if len({f.path for f in files}) != len(files):
        return None
    return files


def known_downloads(cache_dir: Path | None, dl_dir: Path, files: Iterable[Any]) -> dict[str, str]:
    """The model's downloaded files that are hard links to download-cache blobs unchanged since
    they were verified (the downloader's own trust rule), by path: their SHA-384 is known."""
    if cache_dir is None:
        return {}
    cache = Cache(cache_dir, create=False)
    known = {}
    for f in files:
        path = dl_dir / f.name
        if cache.holds(path, f.sha384, f.size):
            known[str(path)] = f.sha384
    return known


def scan_ir(folder: Path) -> list[IrFile]:
    """Every file of a staged IR folder (<precision>/<file>), hashed."""
    from ..verify import file_digest

    files = []
    for p in sorted(folder.glob("*/*")):
        if p.is_file() and not p.name.startswith("."):
            size, sha = file_digest(p)
            files.append(IrFile(f"{p.parent.name}/{p.name}", size, sha))
    return files


class IrCache:
    """Converted IR by conversion key, in ``<cache_dir>/ir``; safe for many processes at once.

    >>> ir = IrCache(Path("~/.cache/modelzoo").expanduser())          # doctest: +SKIP
    >>> with ir.lock(key):                                            # doctest: +SKIP
    ...     if not ir.place(key, staging): convert into staging; ir.add(key, record, staging)
    """

    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir).absolute() / "ir"
        # nothing inside ir/ is reached through a link (ir/ itself is followed once, as the
        # download cache's sha384/): keys/<2>/ and sha384/<2>/ planted as links are replaced
        fsio.confine(self.root)
        try:
            fsio.makedirs(self.root)
        except OutputNotWritableError:
            pass  # a read-only cache (a team's download cache without IR): it serves what it holds, nothing is written
        self.blobs = Cache(self.root)
        self.writable = self.blobs.writable

    def entry_path(self, key: str) -> Path:
        return self.root / "keys" / key[:2] / f"{key[2:]}.json"

    def lock(self, key: str) -> ContextManager[object]:
        """One process converts a key at a time; the others wait, then find the entry."""
        if not self.writable:
            return contextlib.nullcontext()
        path = self.entry_path(key).with_suffix(".lock")
        fsio.makedirs(path.parent)
        return _Lock(path)

    def entry(self, key: str) -> list[IrFile] | None:
        """The files of the entry for key, None when there is none (or it is not ours)."""
        try:
            data = json.loads(fsio.read_small(self.entry_path(key), ENTRY_LIMIT))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return parse_files(data.get("files"))

    def known_files(self, folder: Path, rels: list[str]) -> tuple[dict[str, str], str | None]:
        """The SHA-384 of files of an IR folder (``folder/<precision>/<file>``, ``rels``) that
        are hard links to blobs of this store unchanged since they were verified (the converter
        put them there from this cache: the download cache's trust rule), found through the
        entries that name them, without reading them; and the key of the entry that names them
        all (the FP32 conversion's), if one does. Files not found are left out (the caller
        hashes them)."""
        wanted = {rel: folder / rel for rel in rels}
        try:
            stats = {rel: os.stat(path) for rel, path in wanted.items()}
        except OSError:
            return {}, None
        if any(st.st_nlink < 2 for st in stats.values()):
            return {}, None  # not links to anything: nothing to find
        found: dict[str, str] = {}  # rel -> SHA-384 of the blob the file is a link to
        complete = None
        for shard in sorted(self.root.glob("keys/??")):
            if shard.is_symlink() or not shard.is_dir():
                continue  # not the cache's: nothing listed through it
            for path in sorted(shard.glob("*.json")):
                key = shard.name + path.name[:-5]
                files = self.entry(key)
                if files is None:
                    continue
                mine = {f.path: f for f in files if f.path in wanted}
                for rel, f in mine.items():
                    if rel not in found and self.blobs.holds(wanted[rel], f.sha384, f.size):
                        found[rel] = f.sha384
                if len(mine) == len(wanted) and all(found.get(r) == f.sha384 for r, f in mine.items()):
                    complete = key
                    break
            if complete is not None:
                break
        return {str(wanted[rel]): sha for rel, sha in found.items()}, complete

    def discard(self, key: str) -> None:
        if self.writable:
            fsio.remove(self.entry_path(key))

    def place(self, key: str, staging: Path) -> bool:
        """Put the entry's files into staging/<precision>/ (links to verified blobs); False,
        with the entry discarded, when one of them is missing or corrupt."""
        files = self.entry(key)
        if files is None:
            return False
        for f in files:
            dest = staging / f.path
            fsio.makedirs(dest.parent)
            # the download cache's warm path: a blob unchanged since it was verified is linked
            # without a lock or a read; anything else is checked under its lock
            how = self.blobs.export(f.sha384, f.size, dest, trusted=True) \
                if self.blobs.trusted(f.sha384, f.size) is not None else None
            if how is None:
                with self.blobs.lock(f.sha384):
                    how = self.blobs.export(f.sha384, f.size, dest)
            if how is None:
                self.discard(key)
                for p in staging.iterdir():
                    fsio.remove(p)
                return False
        return True

    def add(self, key: str, record: dict[str, Any], staging: Path, files: list[IrFile] | None = None) -> list[IrFile]:
        """Every file of the staged IR into the store (verified, read-only), then the entry,
        last and atomically. The staged files become the blobs' hard links where they can.
        ``files``: the staged files' sizes and SHA-384 when the caller has just verified them
        (fetched from a mirror); otherwise they are hashed here."""
        files = files if files is not None else scan_ir(staging)
        if not self.writable:
            return files
        for f in files:
            src = staging / f.path
            blob = self.blobs.blob_path(f.sha384)
            fsio.makedirs(blob.parent)
            with self.blobs.lock(f.sha384):
                if self.blobs.trusted(f.sha384, f.size) is not None:
                    # the store has these bytes already (another conversion wrote the same file):
                    # the staged copy becomes a link to that blob, as a hit's files are, so the
                    # output holds no second copy and a later key (the quantizer's) knows its
                    # SHA-384 without reading it
                    with fsio.temporary_beside(src, ".link") as tmp:
                        try:
                            with fsio.at(blob) as (blob_dir, blob_name):  # (the store's own folder, no link followed)
                                os.link(blob_name, tmp, src_dir_fd=blob_dir, follow_symlinks=False)
                            os.replace(tmp, src)
                        except OSError:
                            pass  # another file system: the verified copy stays
                    continue
                with fsio.temporary_beside(blob, ".incomplete") as tmp:
                    try:
                        with fsio.at(tmp) as (tmp_dir, tmp_name):
                            # the very file just hashed (in this run's own staging folder)
                            os.link(src, tmp_name, dst_dir_fd=tmp_dir)
                        fsio.check_size(tmp, f.size)
                    except OSError:
                        fsio.copy_file(src, tmp)  # another file system: the copy is hashed again
                        try:
                            fd = fsio.open_regular(tmp)
                        except OSError as exc:
                            raise fsio.fs_error(tmp, exc, "read") from exc
                        try:
                            same = _matches(fd, f.size, f.sha384)
                        finally:
                            os.close(fd)
                        if not same:
                            raise FileSystemError(f"{src}: changed while it was added to the cache") from None
                    self.blobs.add(f.sha384, tmp, f.size)
        entry = {"key": key, "record": record,
                 "files": [{"path": f.path, "size": f.size, "sha384": f.sha384} for f in files]}
        dest = self.entry_path(key)
        fsio.makedirs(dest.parent)
        fsio.write_bytes(dest, json.dumps(entry, indent=1, sort_keys=True).encode())
        return files
