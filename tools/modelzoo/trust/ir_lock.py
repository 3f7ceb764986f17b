"""The IR a lock pins (``modelzoo-lock --ir``): per precision the conversion or quantization key,
the tools that made it and each file's size and SHA-384, read from the IR cache (``--cache_dir``)
or a mirror's manifest (``--mirror``), and every file's bytes verified before it is written into
the lock: a lock must never pin bytes nobody checked.

Where IR comes from, for one (leaf) model, the first source that has any:

- the IR cache: its entries name no model, but their records do (a conversion's arguments end
  with ``--model_name=<name>`` and carry the descriptor's ``model_info``; a quantization's record
  names the model and the SHA-384 of the FP32 IR it was made from). Per precision the most
  recently written entry of the model is taken (a cache may hold conversions by several OpenVINO
  releases or of an older descriptor), INT8 only when it was quantized from the FP32 IR taken.
  Its files are verified as the converter takes them (``IrCache.place``: a blob unchanged since
  it was verified is linked, any other re-hashed; a corrupt one discards the entry);
- each mirror in turn: the most recently verified key per precision its manifest names
  (lock.ir_from_manifest), its files fetched and verified as they stream in (ir_share.fetch_ir),
  unless the IR cache holds that key with the very same files (then verified there).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from .. import fsio
from ..descriptor import Model
from ..errors import ModelzooError
from ..mirror.ir_share import fetch_ir, read_manifest
from ..store.ir_cache import ENTRY_LIMIT, IrCache, IrFile, files_digest, parse_files
from .lock import ir_from_manifest

IrEntry = dict[str, Any]  # {"key": ..., "tools": ..., "files": {name: {"size", "sha384"}}}


class _CacheEntry:
    """One entry of the IR cache, as read: its key, record, files and when it was written."""

    def __init__(self, key: str, record: dict[str, Any], files: list[IrFile], written: float) -> None:
        self.key, self.record, self.files, self.written = key, record, files, written

    def precisions(self) -> list[str]:
        return sorted({f.path.split("/", 1)[0] for f in self.files})

    def of(self, precision: str) -> dict[str, dict[str, Any]]:
        return {f.path.split("/", 1)[1]: {"size": f.size, "sha384": f.sha384}
                for f in self.files if f.path.startswith(precision + "/")}


def _read_entries(ir_cache: IrCache) -> list[_CacheEntry]:
    """Every entry of the IR cache that is the cache's own (as IrCache.entry reads one: the key
    it is stored under, well-formed files), with its record."""
    out = []
    for shard in sorted((ir_cache.root / "keys").glob("??")):
        if shard.is_symlink() or not shard.is_dir():
            continue  # not the cache's: nothing listed through it
        for path in sorted(shard.glob("*.json")):
            key = shard.name + path.name[:-5]
            try:
                data = json.loads(fsio.read_small(path, ENTRY_LIMIT))
                written = os.lstat(path).st_mtime
            except (OSError, ValueError):
                continue
            files = parse_files(data.get("files")) if isinstance(data, dict) and data.get("key") == key else None
            if files is not None and isinstance(data.get("record"), dict):
                out.append(_CacheEntry(key, data["record"], files, written))
    return out


def _fp32_digest(model: Model, fp32: dict[str, dict[str, Any]]) -> str | None:
    """files_digest of a model's FP32 .xml and .bin as the quantizer keys its input (names below
    the model's IR folder), from their known SHA-384: the link from INT8 IR to its FP32 IR."""
    rels = [f"FP32/{model.name}.xml", f"FP32/{model.name}.bin"]
    root = Path("/ir")
    known = {str(root / r): fp32[r.split("/", 1)[1]]["sha384"] for r in rels if r.split("/", 1)[1] in fp32}
    return files_digest([root / r for r in rels], root, known) if len(known) == 2 else None


class IrSources:
    """The IR cache and the mirrors of one ``lock --ir`` (or ``--check --ir``) run, read once.

    >>> sources = IrSources(Path("~/.cache/modelzoo"), [], Path("~/.cache/modelzoo"), warn=print)  # doctest: +SKIP
    >>> sources.ir_of(model)  # {"FP16": {"key": ..., "tools": ..., "files": {...}}, ...}  # doctest: +SKIP
    """

    def __init__(self, cache_dir: Path | None, mirrors: list[str], work: Path, warn: Callable[[str], None],
                 timeout: float = 30.0) -> None:
        """``work``: a folder where IR files are verified (hard links out of the IR cache when it is
        on the same file system; a mirror's files as they are fetched), each in a staging folder of
        its own removed at once."""
        self.ir_cache = IrCache(cache_dir) if cache_dir is not None else None
        self.work = Path(work).absolute()
        self.warn, self.timeout = warn, timeout
        self._entries: list[_CacheEntry] | None = None
        # (each manifest read once, through the one session: offline refuses an http(s) mirror)
        self.manifests = [(url, read_manifest(url, timeout=timeout)) for url in mirrors]

    def ir_of(self, model: Model) -> dict[str, IrEntry]:
        """The verified IR of one leaf model by precision, from the first source that has any
        ({} when none does).

        Raises:
            ModelzooError: the IR cache or the staging folder cannot be read or written.
        """
        ir = self._from_cache(model)
        if ir:
            return ir
        for url, manifest in self.manifests:
            ir = ir_from_manifest(manifest, model)
            if ir and self._verify_from_mirror(url, model, ir):
                return ir
        return {}

    # -- the IR cache

    def _chosen(self, model: Model) -> dict[str, tuple[_CacheEntry, str]]:
        """precision -> (the model's most recent entry with it, its tools)."""
        if self.ir_cache is None:
            return {}
        if self._entries is None:
            self._entries = sorted(_read_entries(self.ir_cache), key=lambda e: e.written)
        info = json.loads(json.dumps(dict(model.model_info or {})))
        chosen: dict[str, tuple[_CacheEntry, str]] = {}
        for e in self._entries:  # oldest first: a later entry replaces an earlier one
            r = e.record
            if "quantization" not in r and f"--model_name={model.name}" in (r.get("arguments") or []) \
                    and r.get("model_info") == info:
                for p in e.precisions():
                    chosen[p] = (e, f"{r.get('backend')} {r.get('backend_version')}")
        fp32 = chosen.get("FP32")
        digest = _fp32_digest(model, fp32[0].of("FP32")) if fp32 else None
        for e in self._entries:
            r, q = e.record, e.record.get("quantization")
            if isinstance(q, dict) and r.get("model") == model.name and digest is not None \
                    and r.get("input_ir") == digest:
                for p in e.precisions():
                    chosen[p] = (e, f"nncf {q.get('nncf')} openvino {r.get('backend_version')} from {fp32[1]}")
        return chosen

    def _from_cache(self, model: Model) -> dict[str, IrEntry]:
        out: dict[str, IrEntry] = {}
        by_key: dict[str, list[str]] = {}
        chosen = self._chosen(model)
        for p, (e, _) in chosen.items():
            by_key.setdefault(e.key, []).append(p)
        for key, precisions in by_key.items():
            with fsio.staged_dir(self.work, ".lock-ir-") as staging:
                assert self.ir_cache is not None
                if not self.ir_cache.place(key, staging):  # every file verified, or the entry discarded
                    self.warn(f"{model.name}: the IR cache's entry {key[:16]}... is corrupt (discarded); "
                              f"{', '.join(sorted(precisions))} not locked from it")
                    continue
            for p in precisions:
                e, tools = chosen[p]
                out[p] = {"key": key, "tools": tools, "files": e.of(p)}
        return dict(sorted(out.items()))

    # -- mirrors

    def _cached_as(self, key: str, precision: str, files: dict[str, dict[str, Any]]) -> bool:
        """The IR cache holds this key with the very files a manifest names for a precision."""
        if self.ir_cache is None:
            return False
        entry = self.ir_cache.entry(key)
        if entry is None:
            return False
        mine = {f.path.split("/", 1)[1]: {"size": f.size, "sha384": f.sha384}
                for f in entry if f.path.startswith(precision + "/")}
        return mine == files

    def _verify_from_mirror(self, url: str, model: Model, ir: dict[str, IrEntry]) -> bool:
        """Every file of the IR a manifest names, verified: fetched and checked as it streams in,
        or found with the same key and files in the IR cache (verified there). False, with one
        warning, when a file is not what the manifest says."""
        model_dir = model.subdirectory.as_posix()
        try:
            with fsio.staged_dir(self.work, ".lock-ir-") as staging:
                for precision, entry in ir.items():
                    if self._cached_as(entry["key"], precision, entry["files"]):
                        assert self.ir_cache is not None
                        if self.ir_cache.place(entry["key"], staging / entry["key"][:16]):
                            continue
                    files = [IrFile(f"{precision}/{name}", f["size"], f["sha384"])
                             for name, f in sorted(entry["files"].items())]
                    fetch_ir(url, entry["key"], model_dir, files, staging / entry["key"][:16], self.timeout)
        except (ModelzooError, OSError) as exc:
            self.warn(f"{model.name}: mirror {url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                      "its IR is not locked")
            return False
        return True
