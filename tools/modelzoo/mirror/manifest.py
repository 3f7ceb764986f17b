"""A mirror's manifest (modelzoo-mirror.json): its names, the store protocol every mirror
destination follows, and the codec. The manifest is input from disk or a bucket like any other:
decoded with every key and entry checked, so nothing it says can point outside DEST. Sits below
the stores, the S3 store and the readers of IR mirrors, which all speak it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from .. import fsio
from ..errors import MirrorError

MANIFEST = "modelzoo-mirror.json"
FORMAT = "modelzoo-mirror/1"
LOCK = ".modelzoo-mirror.lock"
# The mirror's own files beside the manifest (trust/): its signature, the CycloneDX SBOM and the
# SBOM's signature; and ir/<key>/<model folder>/<precision>.sig, each IR folder's signature.
SIGNATURE = MANIFEST + ".sig"
SBOM = "modelzoo-sbom.cdx.json"
TRUST_FILES = (SIGNATURE, SBOM, SBOM + ".sig")
IR_SIGNATURES = ("FP16.sig", "FP32.sig", "FP16-INT8.sig", "FP32-INT8.sig")
IR_PREFIX = "ir/"  # converted IR: ir/<key>/<model folder>/<precision>/<file>


@dataclass(frozen=True)
class Present:
    """What DEST holds at a path: its size and a stamp that changes when it is replaced."""

    size: int
    stamp: str


class Store(Protocol):
    """A mirror destination (a folder, or a prefix in an S3 bucket)."""

    url: str
    remote: bool  # publishing is an upload (worth overlapping with downloads), not a rename

    def list(self) -> dict[str, Present]:
        """Every file below DEST but the manifest and our temporaries, by path below DEST."""

    def stat(self, rel: str) -> Present | None: ...

    def stored_sha384(self, rel: str) -> str | None:
        """The SHA-384 recorded with the object itself (S3 metadata), or None (folders)."""

    def hash(self, rel: str, cancel: threading.Event) -> tuple[int, str]:
        """Read the file at rel through: (size, SHA-384)."""

    def incoming(self, rel: str) -> contextlib.AbstractContextManager[Path]:
        """A fresh local path to fetch rel into before publishing it (removed afterwards)."""

    def publish(self, rel: str, path: Path, size: int, sha384: str, cancel: threading.Event) -> Present:
        """Put the verified local file at rel (atomically); returns what is there now."""

    def delete(self, rel: str, stamp: str | None = None) -> None:
        """Remove rel, only if it is still the file with this stamp (what the manifest recorded)."""

    def leftovers(self) -> dict[str, str]:
        """Our temporaries the last list() found, each with a word on what it is."""

    def remove_dead(self) -> list[str]:
        """Remove temporaries that killed runs left; returns them."""

    def read_manifest(self) -> tuple[dict[str, Any] | None, Any]:
        """The manifest (None if there is none) and a token for a conditional write."""

    def update_manifest(self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Read, change, write back atomically, without losing a concurrent writer's update.
        `change` returns None for "nothing to write". True if something was written."""

    def abort_all(self) -> None:
        """Undo uploads in flight (Ctrl-C)."""


MAX_MANIFEST = 64 << 20  # bytes: about 150,000 entries; anything bigger was not written by us


def is_internal(name: str) -> bool:
    """Our own files in DEST that are not mirrored files: the manifest, the lock, temporaries
    (named by fsio.temp_name, so they say which process made them)."""
    base = name.rsplit("/", 1)[-1]
    return (name in (MANIFEST, LOCK, *TRUST_FILES) or fsio.temporary_owner(base) is not None
            or (name.startswith(IR_PREFIX) and name.count("/") >= 3 and base in IR_SIGNATURES))


def path_problem(rel: object) -> str | None:
    """Why rel cannot be a mirrored file's path below DEST (None: it can): a relative POSIX path
    of a model folder and a file, without '..', '.', empty parts or NUL, never our own files."""
    if not isinstance(rel, str):
        return "not a string"
    parts = rel.split("/")
    if "\0" in rel:
        return "a NUL character in the path"
    if any(p in ("", ".", "..") for p in parts):
        return "not a relative path below the mirror (an absolute path, '..', '.' or an empty part)"
    if len(parts) < 2:
        return "not a path below a model folder"
    if is_internal(rel) or MANIFEST in parts or LOCK in parts:
        return "one of the mirror's own files"
    return None


_ENTRY_FIELDS = {"model": str, "size": int, "sha384": str, "source": str, "descriptor": str,
                 "descriptor_sha384": str, "verified": str, "stamp": str, "ir_key": str, "tools": str}
_REQUIRED = ("size", "sha384", "stamp")


def entry_problem(entry: object) -> str | None:
    """Why a manifest entry is not one this tool writes (None: it is)."""
    if not isinstance(entry, dict):
        return f"an entry must be an object, not {type(entry).__name__}"
    for key in _REQUIRED:
        if key not in entry:
            return f"no {key!r}"
    for key, kind in _ENTRY_FIELDS.items():
        value = entry.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"{key!r} must be {'an integer' if kind is int else 'a string'}"
    if entry["size"] < 0:
        return "'size' must not be negative"
    return None


def ir_problem(rel: str, entry: dict[str, Any]) -> str | None:
    """Why an entry below ir/ is not converted IR as `sync --ir` records it (None: it is, or it
    is no IR entry): its key must be a SHA-384 and the path's, below a model folder and a
    precision; a key anywhere else is a lie too."""
    key = entry.get("ir_key")
    if not rel.startswith(IR_PREFIX):
        return None if key is None else "'ir_key' on a file outside ir/"
    parts = rel.split("/")
    if key is None or not (len(key) == 96 and all(c in "0123456789abcdef" for c in key)):
        return "an IR file needs 'ir_key', a SHA-384 in hex"
    if parts[1] != key:
        return f"'ir_key' {key[:16]}... is not the key its path names"
    if len(parts) < 5 or "tools" not in entry or "model" not in entry:
        return "not ir/<key>/<model folder>/<precision>/<file> with 'model' and 'tools'"
    return None


def encode_manifest(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def decode_manifest(raw: bytes, where: str) -> dict[str, Any]:
    """The manifest's data, every key and entry checked: a manifest is input like any other (an
    edited one must not make --delete reach outside DEST). One MirrorError naming it otherwise."""
    if len(raw) > MAX_MANIFEST:
        raise MirrorError(f"{where}: larger than {MAX_MANIFEST:,} bytes; not a manifest this tool wrote")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # (huge integers are ValueErrors)
        raise MirrorError(f"{where}: not a modelzoo mirror manifest ({str(exc)[:200]})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise MirrorError(f"{where}: not a {FORMAT} manifest")
    for rel, entry in data["files"].items():
        problem = path_problem(rel) or entry_problem(entry) or ir_problem(rel, entry)
        if problem:
            raise MirrorError(f"{where}: entry {rel!r}: {problem}")
    return data
