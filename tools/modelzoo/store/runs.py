"""Run records: what each shard of a run (--shard K/N --run_dir DIR) did, one JSON file a shard,
written last and atomically when the shard ends (fsio.write_bytes), so that a record is there
only for a shard that finished. A rerun with the same --run_dir skips a shard whose record was
made with the same inputs, and refuses one made with other inputs (naming the shard, nothing
overwritten): the driver of a run (a scheduler, a person) may die and start again, and only the
shards without a record are done again. ``--merge`` reads every shard's record.

The records live in a folder or under an S3 prefix (``s3://bucket/prefix``, through
transport/s3.py's client, so the standard AWS variables and AWS_ENDPOINT_URL apply): an S3 PUT is
atomic (the object is there whole or not at all) and is the shard's last write, as the rename is
in a folder; each record object carries its SHA-384 (``x-amz-meta-sha384``), checked when read."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from .. import __version__, fsio
from ..errors import FileSystemError, RunIncompleteError, RunRecordMismatchError
from ..shards import Shard
from ..verify import file_digest

FORMAT = 1
MAX_RECORD = 1 << 30  # bytes: an accuracy record holds every detection of its pictures


def sha384_of(path: Path) -> str:
    """A file's SHA-384 (an input or an output of a shard)."""
    try:
        return file_digest(Path(path))[1]
    except OSError as exc:
        raise fsio.fs_error(Path(path), exc, "read") from exc


def cpu_flags() -> list[str]:
    """The CPU's flags (/proc/cpuinfo): INT8 and FP32's last bits differ between AVX2 and AMX."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def tool_versions(*modules: str) -> dict[str, str]:
    """modelzoo's, Python's and these packages' versions (those installed)."""
    from importlib import metadata

    versions = {"modelzoo": __version__, "python": platform.python_version()}
    for name in modules:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def still_there(files: dict[str, str], root: Path) -> bool:
    """A record is true only while the files it says the shard wrote (relative to ``root``, with
    their SHA-384) are still there, byte for byte."""
    return all((root / rel).is_file() and sha384_of(root / rel) == sha for rel, sha in files.items())


class _Folder:
    """Records as files of a folder: written through fsio (a temporary, then a rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def where(self, name: str) -> Path:
        return self.root / name

    def exists(self, name: str) -> bool:
        return os.path.lexists(self.root / name)

    def read(self, name: str) -> bytes:
        try:
            return fsio.read_small(self.root / name, MAX_RECORD)
        except OSError as exc:
            raise fsio.fs_error(self.root / name, exc, "read") from exc

    def write(self, name: str, data: bytes) -> None:
        fsio.makedirs(self.root)
        fsio.write_bytes(self.root / name, data)

    def names(self, what: str) -> list[str]:
        try:
            return sorted(os.listdir(self.root))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise RunIncompleteError(f"{what} {self.root}: no such folder") from None
            raise FileSystemError(f"{what} {self.root}: {exc.strerror}") from None


class _S3Prefix:
    """Records as objects under an S3 prefix: one PUT each (atomic), with its SHA-384."""

    def __init__(self, url: str) -> None:
        from ..transport import s3

        self.s3, self.url = s3, url.rstrip("/")
        self.bucket, self.prefix = s3.parse_s3_url(url)
        self.client = s3.make_client()

    def where(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _fail(self, name: str, exc: Exception, doing: str) -> FileSystemError:
        return FileSystemError(f"{self.where(name)}: cannot {doing} ({self.s3._message(exc)})")

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
            return True
        except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart by their code
            if self.s3._code(exc) in self.s3.MISSING_CODES:
                return False
            raise self._fail(name, exc, "read") from None

    def read(self, name: str) -> bytes:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            data = got["Body"].read(MAX_RECORD + 1)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(name, exc, "read") from None
        want = got.get("Metadata", {}).get("sha384")
        if len(data) > MAX_RECORD or (want is not None and hashlib.sha384(data).hexdigest() != want):
            raise RunRecordMismatchError(f"{self.where(name)}: not the record that was written (size or SHA-384)")
        return data

    def write(self, name: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data,
                                   Metadata={"sha384": hashlib.sha384(data).hexdigest()},
                                   ContentType="application/json")
        except Exception as exc:  # noqa: BLE001
            raise self._fail(name, exc, "write") from None

    def names(self, what: str) -> list[str]:
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                               Prefix=self.prefix):
                found += [o["Key"][len(self.prefix):] for o in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001
            raise FileSystemError(f"{what} {self.url}: cannot list ({self.s3._message(exc)})") from None
        return sorted(n for n in found if "/" not in n)


def is_url(where: Any) -> bool:
    """A --run_dir given as s3://bucket/prefix (else a folder)."""
    return isinstance(where, str) and where.startswith("s3://")


class RunDir:
    """The records of one tool's shards (``<tool>.shard-K-of-N.json``) in a folder or under an
    ``s3://`` prefix."""

    def __init__(self, root: Path | str, tool: str) -> None:
        self.store = _S3Prefix(root) if is_url(root) else _Folder(Path(root))
        self.root, self.tool = root if is_url(root) else Path(root), tool

    def name(self, shard: Shard) -> str:
        return f"{self.tool}.shard-{shard.index}-of-{shard.count}.json"

    def path(self, shard: Shard) -> Path | str:
        return self.store.where(self.name(shard))

    def _read(self, name: str) -> dict[str, Any]:
        path = self.store.where(name)
        try:
            record = json.loads(self.store.read(name))
        except ValueError as exc:
            raise RunRecordMismatchError(f"{path}: not a run record ({exc})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT or "inputs" not in record:
            raise RunRecordMismatchError(f"{path}: not a run record of this modelzoo")
        return record

    def done(self, shard: Shard, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """This shard's record when it exists and was made with ``inputs`` (skip the shard), None
        when there is none (do it).

        Raises:
            RunRecordMismatchError: the record was made with other inputs (one line naming the shard).
        """
        path = self.path(shard)
        if not self.store.exists(self.name(shard)):
            return None
        record = self._read(self.name(shard))
        if record["inputs"] != _plain(inputs):
            changed = sorted(k for k in set(record["inputs"]) | set(inputs)
                             if record["inputs"].get(k) != _plain(inputs).get(k))
            raise RunRecordMismatchError(
                f"shard {shard}: its record {path} was made with other inputs ({', '.join(changed)} differ); "
                "nothing overwritten: use another --run_dir or remove that record")
        return record

    def write(self, shard: Shard, inputs: dict[str, Any], outputs: Any, *, versions: dict[str, str]) -> Path:
        """The shard's record, last and atomically."""
        record = {"format": FORMAT, "tool": self.tool, "shard": str(shard), "inputs": _plain(inputs),
                  "outputs": outputs, "versions": versions, "cpu_flags": cpu_flags(), "host": platform.node()}
        self.store.write(self.name(shard), (json.dumps(record, sort_keys=True) + "\n").encode())
        return self.path(shard)

    def gather(self) -> tuple[int, list[dict[str, Any]]]:
        """Every shard's record of one run (--merge): (N, records by shard index).

        Raises:
            RunIncompleteError: no record, records of different shard counts, or shards missing (named).
        """
        pattern = re.compile(re.escape(self.tool) + r"\.shard-([0-9]+)-of-([0-9]+)\.json")
        found: dict[int, dict[int, str]] = {}
        for name in self.store.names("--merge"):
            m = pattern.fullmatch(name)
            if m:
                found.setdefault(int(m.group(2)), {})[int(m.group(1))] = name
        if not found:
            raise RunIncompleteError(f"--merge {self.root}: no {self.tool} shard records there")
        if len(found) > 1:
            raise RunIncompleteError(f"--merge {self.root}: records of runs of {', '.join(map(str, sorted(found)))} "
                                     "shards; keep one run's records in a folder")
        (count, paths), = found.items()
        missing = [f"{k}/{count}" for k in range(count) if k not in paths]
        if missing:
            raise RunIncompleteError(f"--merge {self.root}: shards missing: {', '.join(missing)}")
        return count, [self._read(paths[k]) for k in range(count)]


def _plain(value: Any) -> Any:
    """Inputs as a JSON round trip gives them back (tuples become lists), so that they compare."""
    return json.loads(json.dumps(value, sort_keys=True))
