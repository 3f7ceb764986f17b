"""Parsed descriptors remembered in the cache folder, so a warm run does not parse YAML.

Parsing YAML is most of what a warm run over a zoo costs (200 descriptors: ~40 ms of a
~180 ms run, and 12 ms more to import PyYAML). The memo maps a descriptor's exact text to
what the strict YAML loader made of it. It is keyed by the whole text, not by a path or a
file's stat, so an edited descriptor simply misses: there is no staleness to detect and no
collision to fear. Only the parse is remembered; validation (descriptor.parse_model) runs on
every load, so the memo cannot change what a descriptor means, and warnings and errors stay.

Only data that survives a JSON round trip unchanged is kept (a YAML date or a non-string key
does not, and is parsed every time). The file is JSON, never pickle: reading it runs no code.
Whoever may write the cache folder is trusted with its blobs already (cache.py), so they are
trusted with this file too; a file we cannot read or that is not ours is ignored and replaced.

The file is replaced atomically; two runs saving at once lose at most the other's new entries,
which then cost one parse next time. It keeps the MAX_ENTRIES most recently used texts.
FORMAT names what the loader makes of a text (PyYAML's YAML 1.1 rules with our refusals);
raise it when that changes, and every older memo is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import fsio
from .errors import FileSystemError

FILE_NAME = "descriptors.json"
FORMAT = 1
MAX_ENTRIES = 1024  # Open Model Zoo has ~270 descriptors: room for a few zoos and their edits, while
#                     reading the file (~3 KB an entry) stays far cheaper than parsing the YAML it saves
MAX_FILE_BYTES = 64 << 20
MAX_TEXT = 256 << 10  # Open Model Zoo's largest descriptor is ~6 KB


def _parser() -> str:
    """Which PyYAML build parses here, found without importing it (that is what the memo saves):
    its installed location and version file, and whether its libyaml extension is there. The
    two parsers do not accept exactly the same texts, so a memo written by one is not used by
    the other."""
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec("yaml")
    if spec is None or not spec.origin:
        return "none"
    folder = os.path.dirname(spec.origin)
    try:
        st = os.stat(spec.origin)
        libyaml = any(n.startswith("_yaml.") for n in os.listdir(folder))
    except OSError:
        return "none"
    return f"{spec.origin} {st.st_size} {st.st_mtime_ns} {'libyaml' if libyaml else 'python'}"


class DescriptorMemo:
    """What ``load_yaml_mapping`` asks before parsing and tells after parsing."""

    def __init__(self, cache_root: Path) -> None:
        self.path = Path(cache_root) / FILE_NAME
        self._parser = _parser()
        self._entries: dict[str, Any] = {}
        self._used: dict[str, None] = {}
        self._added = False
        self._read()

    def _read(self) -> None:
        try:
            raw = fsio.read_small(self.path, MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                return
            doc = json.loads(raw)
        except (OSError, ValueError, RecursionError):  # missing, not a file, not JSON, absurd: start afresh
            return
        if (isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("parser") == self._parser
                and isinstance(doc.get("entries"), list)):
            self._entries = {e[0]: e[1] for e in doc["entries"]
                             if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)}

    def get(self, text: str) -> Any | None:
        """The parsed form of ``text``, or None when it has not been seen (or did not keep)."""
        data = self._entries.get(text)
        if data is not None:
            self._used[text] = None
        return data

    def put(self, text: str, data: Any) -> None:
        """Remember a successful strict parse, if JSON keeps it exactly."""
        if len(text) > MAX_TEXT:
            return  # one huge descriptor must not push the memo past MAX_FILE_BYTES for all the others
        try:
            kept = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError, RecursionError):  # a date, bytes, a non-string key, nan, deep nesting...
            return
        if kept == data and data is not None:
            self._entries[text] = kept
            self._used[text] = None
            self._added = True

    def save(self) -> None:
        """Write the memo if this run parsed something new; a failure only costs parsing again."""
        if not self._added:
            return
        # most recently used last; the oldest go first when there are too many
        order = [t for t in self._entries if t not in self._used] + list(self._used)
        keep = order[-MAX_ENTRIES:]
        doc = {"format": FORMAT, "parser": self._parser, "entries": [[t, self._entries[t]] for t in keep]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(self.path.parent, os.W_OK):  # a read-only cache is only read
                return
            fsio.write_bytes(self.path, json.dumps(doc, separators=(",", ":")).encode())
        except (OSError, FileSystemError):
            return
        self._added = False
