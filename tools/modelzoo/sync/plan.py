"""What a mirror should hold and what verify finds there: the files wanted for a selection, the
per-file decision against the manifest and the listing (pure), and the verdicts. Shared by sync
and verify of model files and of IR.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..descriptor import KNOWN_PRECISIONS, Model, ModelFile
from ..mirror.manifest import Present
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



# ----------------------------------------------------------------------------- decisions

class Decision(StrEnum):
    """What sync does with a wanted file (decide)."""

    PRESENT = "present"  # there and vouched for by the manifest: nothing to do
    CHECK = "check"  # there, not vouched for: hash it
    FETCH = "fetch"  # missing or wrong: obtain and publish it


PRESENT, CHECK, FETCH = Decision


def decide(w: Wanted, recorded: dict[str, Any] | None, there: Present | None, full: bool = False) -> str:
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

    decisions: list[tuple[Wanted, str]]
    delete: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Wanted]:
        return [w for w, d in self.decisions if d == kind]


def make_plan(wanted: list[Wanted], manifest: dict[str, Any] | None, listing: dict[str, Present], *,
              full: bool = False, delete: bool = False, protected: list[str] = ()) -> Plan:
    """The sync plan. --delete removes only paths the manifest owns that no wanted file has,
    except below `protected` folders (models whose descriptor could not be loaded)."""
    recorded = (manifest or {}).get("files", {})
    decisions = [(w, decide(w, recorded.get(w.rel), listing.get(w.rel), full)) for w in wanted]
    doomed: list[str] = []
    if delete:
        keep = {w.rel for w in wanted}
        prefixes = tuple(p.rstrip("/") + "/" for p in protected)
        # (IR below ir/ is sync --ir's to delete: mirror_ir.sync_ir)
        doomed = sorted(rel for rel in recorded if rel not in keep and not rel.startswith((*prefixes, "ir/")))
    return Plan(decisions, doomed)


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
class Finding:
    """verify's verdict on one path: a STATUSES value and a human detail."""

    rel: str
    status: str
    detail: str = ""
    wanted: Wanted | None = None
    present: Present | None = None
