"""What a mirror should hold and what verify finds there: the files wanted for a selection (a
descriptor's files, and IR made here), the per-file decision against the manifest and the listing
(pure), what --delete may remove, and the verdicts. Shared by sync and verify of model files and
of IR: both kinds of file are items with a path, a size, a SHA-384 and a manifest entry.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from ..descriptor import KNOWN_PRECISIONS, Model, ModelFile
from ..errors import ModelzooError
from ..mirror.manifest import IR_PREFIX, IR_SIGNATURES, Present
from ..download.obtain import source_url


@dataclass(frozen=True)
class Wanted:
    """One file a selected descriptor names, and where it goes in the mirror."""

    top: str  # the selected model (a composite's name for its stages' files)
    leaf: Model
    file: ModelFile
    rel: str  # "<model folder>/<file>", the path below DEST
    descriptor: str  # the descriptor's path below the models root
    descriptor_sha384: str

    @property
    def size(self) -> int:
        return self.file.size

    @property
    def sha384(self) -> str:
        return self.file.sha384

    @property
    def source(self) -> str:
        return source_url(self.file)

    @property
    def model(self) -> str:
        """The model whose file this is (a composite's stage: the stage's name)."""
        return self.leaf.name

    origin = "the descriptor's file"  # what the mirror's copy should be (sync's warning names it)

    def expected(self) -> str:
        """verify's detail when the file is missing."""
        return f"expected {self.size} bytes"

    def entry(self, stamp: str, verified: str) -> dict[str, Any]:
        """This file's manifest entry."""
        return {"model": self.leaf.name, "size": self.size, "sha384": self.sha384, "source": self.source,
                "descriptor": self.descriptor, "descriptor_sha384": self.descriptor_sha384,
                "verified": verified, "stamp": stamp}


def file_wanted(file: ModelFile, precisions: frozenset[str]) -> bool:
    """A file under a precision folder (FP16/...) is wanted only for a requested precision, as
    the downloader decides."""
    parts = file.name.parts
    return not (len(parts) == 2 and parts[0] in KNOWN_PRECISIONS and parts[0] not in precisions)


def wanted_files(models: list[Model], precisions: frozenset[str], models_root: Path) -> list[Wanted]:
    """Every file of the selected models, in selection order, each once."""
    digests: dict[Path, str] = {}
    out: dict[str, Wanted] = {}
    for top in models:
        for leaf in top.leaf_models():
            if not leaf.precisions & precisions:
                continue
            cfg = leaf.config_path
            if cfg not in digests:
                digests[cfg] = hashlib.sha384(cfg.read_bytes()).hexdigest()
            descriptor = Path(cfg).absolute().relative_to(models_root).as_posix()
            for f in leaf.files:
                if file_wanted(f, precisions):
                    rel = f"{leaf.subdirectory.as_posix()}/{f.name.as_posix()}"
                    out.setdefault(rel, Wanted(top.name, leaf, f, rel, descriptor, digests[cfg]))
    return list(out.values())


@dataclass(frozen=True)
class WantedIr:
    """One file of converted IR the mirror holds at ``ir/<key>/<model folder>/<precision>/<file>``:
    made by this run (``src``, for sync --ir) or known only from its manifest entry (verify)."""

    rel: str
    size: int
    sha384: str
    model: str  # the (leaf) model it was converted from
    key: str  # the conversion or quantization key
    tools: str  # what made it, as the entry says it (read back by verify --repair)
    top: str = ""  # the selected model a failure is said under
    src: Path | None = None  # the local file sync publishes

    origin = "the IR made here"  # (Wanted.origin: what the mirror's copy should be)

    @classmethod
    def recorded(cls, rel: str, entry: dict[str, Any]) -> "WantedIr":
        """The IR file a manifest entry (checked by mirror.manifest.decode_manifest) names."""
        return cls(rel, entry["size"], entry["sha384"], entry["model"], entry["ir_key"], entry.get("tools", ""),
                   entry["model"])

    def entry(self, stamp: str, verified: str) -> dict[str, Any]:
        """This file's manifest entry."""
        return {"model": self.model, "size": self.size, "sha384": self.sha384, "stamp": stamp,
                "verified": verified, "ir_key": self.key, "tools": self.tools}

    def expected(self) -> str:
        """verify's detail when the file is missing: which model's IR, made by what."""
        return f"IR of {self.model} ({self.tools}); expected {self.size} bytes"


Item = Union[Wanted, WantedIr]  # what sync publishes and verify audits, one file each


# ----------------------------------------------------------------------------- decisions

class Decision(StrEnum):
    """What sync does with a wanted file (decide)."""

    PRESENT = "present"  # there and vouched for by the manifest: nothing to do
    CHECK = "check"  # there, not vouched for: hash it
    FETCH = "fetch"  # missing or wrong: obtain and publish it


PRESENT, CHECK, FETCH = Decision


def decide(w: Item, recorded: dict[str, Any] | None, there: Present | None, full: bool = False) -> str:
    """What one file needs: PRESENT (nothing to do), CHECK (something of the right size is there
    that the manifest does not vouch for: look at it, fetch only if it is wrong) or FETCH.
    With full=True everything that is there is checked (re-hashed)."""
    if there is None or there.size != w.size:
        return FETCH
    if full:
        return CHECK
    if (recorded and recorded.get("sha384") == w.sha384 and recorded.get("size") == w.size
            and recorded.get("stamp") == there.stamp):
        return PRESENT
    return CHECK


@dataclass
class Plan:
    """What a sync will do: a decision per wanted file, and what --delete removes."""

    decisions: list[tuple[Item, str]]
    delete: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Item]:
        return [w for w, d in self.decisions if d == kind]


Owned = Callable[[str, dict[str, Any]], bool]  # may --delete remove this recorded path (rel, entry)?


def model_files_owned(protected: list[str] | tuple[str, ...] = ()) -> Owned:
    """What a sync of model files may delete: recorded paths outside `protected` folders (models
    whose descriptor could not be loaded) and outside ir/ (sync --ir's, see ir_owned)."""
    prefixes = tuple(p.rstrip("/") + "/" for p in protected)
    return lambda rel, entry: not rel.startswith((*prefixes, IR_PREFIX))


def ir_owned(models: set[str], tools: set[str]) -> Owned:
    """What sync --ir may delete: recorded IR of models not selected (`models`: the selected
    leaves), and IR the same `tools` made for a selected model under another key (an older
    descriptor or model file)."""
    return lambda rel, entry: rel.startswith(IR_PREFIX) and (entry.get("model") not in models
                                                             or entry.get("tools") in tools)


def make_plan(wanted: list[Item], manifest: dict[str, Any] | None, listing: dict[str, Present], *,
              full: bool = False, delete: bool = False, protected: list[str] | tuple[str, ...] = (),
              owned: Owned | None = None) -> Plan:
    """The sync plan, for model files or IR alike. --delete removes only paths the manifest
    records that no wanted item has and that `owned` (default: model_files_owned(protected))
    says this sync may remove."""
    recorded = (manifest or {}).get("files", {})
    decisions = [(w, decide(w, recorded.get(w.rel), listing.get(w.rel), full)) for w in wanted]
    doomed: list[str] = []
    if delete:
        keep = {w.rel for w in wanted}
        may = owned or model_files_owned(protected)
        doomed = sorted(rel for rel, entry in recorded.items() if rel not in keep and may(rel, entry))
    return Plan(decisions, doomed)


def freed_signatures(dropped: set[str] | list[str], files: dict[str, Any]) -> list[str]:
    """The per-IR signatures (``ir/<key>/<model folder>/<precision>.sig``, trust/signing.py) of
    the IR folders this run dropped files of and in which the manifest (``files``, as written)
    names no file any more: stale, so the sync deletes them with their IR. Never the signature
    of a folder that still holds a recorded file, nor a name the mirror does not own."""
    kept = {rel.rpartition("/")[0] for rel in files}
    folders = {rel.rpartition("/")[0] for rel in dropped if rel.startswith(IR_PREFIX)}
    return _own_signatures(folder + ".sig" for folder in folders - kept)


def outdated_signatures(published: list[WantedIr], before: dict[str, Any]) -> list[str]:
    """The per-IR signatures of the IR folders into which a run that does not sign published a
    file with other bytes than the manifest (``before``: its files as this run found them)
    recorded there, or a file it did not record: that signature no longer verifies over the
    folder, and one that does not verify misleads, so the sync deletes it. A file put back with
    the bytes it had (a repair) keeps its folder's signature, which verifies again."""
    folders = {w.rel.rpartition("/")[0] for w in published
               if w.rel.startswith(IR_PREFIX) and (before.get(w.rel) or {}).get("sha384") != w.sha384}
    return _own_signatures(folder + ".sig" for folder in folders)


def _own_signatures(sigs: Iterable[str]) -> list[str]:
    """Only names the mirror writes signatures at (``ir/<key>/.../<precision>.sig``)."""
    return sorted(s for s in sigs if s.count("/") >= 3 and s.rpartition("/")[2] in IR_SIGNATURES)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Verdict(StrEnum):
    """verify's finding on one path (the words of its report and JSON events)."""

    OK = "ok"
    MISSING = "missing"
    WRONG_SIZE = "wrong size"
    WRONG_SHA = "wrong SHA-384"
    UNRECORDED = "not in manifest"
    UNKNOWN = "unknown"
    REPAIRED = "repaired"


OK, MISSING, WRONG_SIZE, WRONG_SHA, UNRECORDED, UNKNOWN, REPAIRED = Verdict
STATUSES = (OK, REPAIRED, MISSING, WRONG_SIZE, WRONG_SHA, UNRECORDED, UNKNOWN)  # the order of a summary


@dataclass
class Outcome:
    """What happened to one wanted item in a sync (or a repair)."""

    wanted: Item
    how: str = ""  # fetched, cached (a model's file), copied (IR made here), adopted, verified, present
    present: Present | None = None
    error: ModelzooError | None = None


@dataclass
class Finding:
    """verify's verdict on one path: a STATUSES value and a human detail."""

    rel: str
    status: str
    detail: str = ""
    wanted: Wanted | None = None  # a model's file (None: IR, or a path nobody wants)
    present: Present | None = None
