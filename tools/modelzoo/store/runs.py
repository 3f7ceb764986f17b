"""Run records: what each shard of a run (--shard K/N --run_dir DIR) did, one JSON file a shard,
written last and atomically when the shard ends (fsio.write_bytes), so that a record is there
only for a shard that finished. A rerun with the same --run_dir skips a shard whose record was
made with the same inputs, and refuses one made with other inputs (naming the shard, nothing
overwritten): the driver of a run (a scheduler, a person) may die and start again, and only the
shards without a record are done again. ``--merge`` reads every shard's record."""

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

FORMAT = 1
MAX_RECORD = 1 << 30  # bytes: an accuracy record holds every detection of its pictures


def sha384_of(path: Path) -> str:
    """A file's SHA-384 (an input or an output of a shard)."""
    digest = hashlib.sha384()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise fsio.fs_error(Path(path), exc, "read") from exc
    return digest.hexdigest()


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


class RunDir:
    """The records of one tool's shards in a folder (``<tool>.shard-K-of-N.json``)."""

    def __init__(self, root: Path, tool: str) -> None:
        self.root, self.tool = Path(root), tool

    def path(self, shard: Shard) -> Path:
        return self.root / f"{self.tool}.shard-{shard.index}-of-{shard.count}.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            record = json.loads(fsio.read_small(path, MAX_RECORD))
        except OSError as exc:
            raise fsio.fs_error(path, exc, "read") from exc
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
        if not os.path.lexists(path):
            return None
        record = self._read(path)
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
        fsio.makedirs(self.root)
        path = self.path(shard)
        fsio.write_bytes(path, (json.dumps(record, sort_keys=True) + "\n").encode())
        return path

    def gather(self) -> tuple[int, list[dict[str, Any]]]:
        """Every shard's record of one run (--merge): (N, records by shard index).

        Raises:
            RunIncompleteError: no record, records of different shard counts, or shards missing (named).
        """
        pattern = re.compile(re.escape(self.tool) + r"\.shard-([0-9]+)-of-([0-9]+)\.json")
        try:
            names = sorted(os.listdir(self.root))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise RunIncompleteError(f"--merge {self.root}: no such folder") from None
            raise FileSystemError(f"--merge {self.root}: {exc.strerror}") from None
        found: dict[int, dict[int, Path]] = {}
        for name in names:
            m = pattern.fullmatch(name)
            if m:
                found.setdefault(int(m.group(2)), {})[int(m.group(1))] = self.root / name
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
