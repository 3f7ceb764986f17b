"""Finding descriptors under a models root and selecting models by name, pattern, list or all.

Names come from folder names, so a catalog is built without parsing any YAML; only the
selected descriptors are loaded (and validated). A broken descriptor of a model nobody
asked for does not stop a download of another, and `load_each` lets a bulk run go on past
a broken descriptor of one it did ask for.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .descriptor import DescriptorWarning, Model, load_composite, load_model
from .errors import DescriptorError, SelectionError

if TYPE_CHECKING:
    from .descriptor_memo import DescriptorMemo


class _Entry(NamedTuple):  # (not a dataclass, for start-up time: see descriptor.py)
    name: str
    config_path: Path
    composite: bool
    parent: str | None = None  # for a stage: the composite model's name


class Loaded:
    """The outcome of loading a selection: the models that loaded, in selection order, the
    ones whose descriptor is invalid (name -> error) and what the loader ignored."""

    def __init__(self) -> None:
        self.models: list[Model] = []
        self.failed: dict[str, DescriptorError] = {}
        self.warnings: list[DescriptorWarning] = []


def model_warnings(model: Model) -> list[DescriptorWarning]:
    """The warnings of a model and of its stages."""
    return [*model.warnings, *(w for s in model.stages for w in s.warnings)]


class Catalog:
    """The models under one root folder (Open Model Zoo's `models/` layout). With strict=True an
    unknown key in a descriptor is an error; otherwise it is a warning and the key is ignored."""

    def __init__(self, root: Path, strict: bool = False, memo: DescriptorMemo | None = None) -> None:
        self.root = Path(root).absolute()
        self.strict = strict
        self.memo = memo  # parsed descriptors from an earlier run (descriptor_memo.py)
        if not self.root.is_dir():
            raise SelectionError(f"models folder {self.root} does not exist")
        self._top: dict[str, _Entry] = {}
        self._stages: dict[str, _Entry] = {}
        self._loaded: dict[str, Model] = {}
        self._broken: dict[str, DescriptorError] = {}
        composites, models = _find_descriptors(self.root)
        for cfg in composites:
            self._add(self._top, _Entry(cfg.parent.name, cfg, composite=True))
        for cfg in models:
            parent = cfg.parent.parent
            if (parent / "composite-model.yml").exists():
                self._add(self._stages, _Entry(cfg.parent.name, cfg, composite=False, parent=parent.name))
            else:
                self._add(self._top, _Entry(cfg.parent.name, cfg, composite=False))

    def _add(self, table: dict[str, _Entry], entry: _Entry) -> None:
        other = self._top.get(entry.name) or self._stages.get(entry.name)
        if other is not None:
            raise DescriptorError(entry.config_path, "", f"duplicate model name {entry.name!r} "
                                  f"(also {other.config_path})")
        table[entry.name] = entry

    def folder(self, name: str) -> str:
        """A model's folder below the root ("public/x"), known without loading its descriptor."""
        entry = self._top.get(name) or self._stages.get(name)
        if entry is None:
            raise SelectionError(self._unknown_message(name))
        return entry.config_path.parent.relative_to(self.root).as_posix()

    def names(self) -> list[str]:
        """Every top-level model (composites count once, not per stage), sorted."""
        return sorted(self._top)

    def load(self, name: str) -> Model:
        """Load and validate one model (top-level or stage) by exact name."""
        if name in self._broken:
            raise self._broken[name]  # the same error object: reported once however it is reached
        if name not in self._loaded:
            entry = self._top.get(name) or self._stages.get(name)
            if entry is None:
                raise SelectionError(self._unknown_message(name))
            try:
                self._loaded[name] = self._load_entry(entry)
            except DescriptorError as exc:
                self._broken[name] = exc
                raise
        return self._loaded[name]

    def _load_entry(self, entry: _Entry) -> Model:
        if entry.composite:
            return load_composite(entry.config_path, self.root, strict=self.strict, memo=self.memo)
        if entry.parent is not None:
            composite = self.load(entry.parent)
            return next(s for s in composite.stages if s.name == entry.name)
        return load_model(entry.config_path, self.root, strict=self.strict, memo=self.memo)

    def all(self) -> list[Model]:
        return [self.load(n) for n in self.names()]

    def select(self, patterns: list[str]) -> list[Model]:
        """Models matching any of the shell-style patterns, in first-match order, no repeats.
        A pattern matching nothing is an error naming it (and the closest names)."""
        return [self.load(n) for n in self.select_names(patterns)]

    def load_each(self, names: list[str]) -> Loaded:
        """Load every named model; an invalid descriptor fails only its own model."""
        result = Loaded()
        seen: set[int] = set()
        for name in names:
            try:
                model = self.load(name)
            except DescriptorError as exc:
                result.failed[name] = exc
                continue
            result.models.append(model)
            for w in model_warnings(model):
                if id(w) not in seen:
                    seen.add(id(w))
                    result.warnings.append(w)
        return result

    def select_names(self, patterns: list[str]) -> list[str]:
        """The names matching any of the patterns, in first-match order, no repeats; nothing is loaded."""
        chosen: dict[str, None] = {}
        for pattern in patterns:
            hits = [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
            covered = set()
            for n in hits:
                if self._top[n].composite:
                    covered.update(e.name for e in self._stages.values() if e.parent == n)
            hits += [n for n in sorted(self._stages)
                     if n not in covered and fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise SelectionError(self._unknown_message(pattern))
            for n in hits:
                chosen.setdefault(n, None)
        return list(chosen)

    def _unknown_message(self, pattern: str) -> str:
        universe = self.names() + sorted(self._stages)
        import difflib  # (difflib, shlex: only for an error message or a list file)

        close = difflib.get_close_matches(pattern, universe, n=3, cutoff=0.6)
        hint = f" (closest: {', '.join(close)})" if close else ""
        return f"no model matches {pattern!r} in {self.root}{hint}"


def _find_descriptors(root: Path) -> tuple[list[Path], list[Path]]:
    """(composite-model.yml files, model.yml files) below root, each sorted: one walk of the
    tree (pathlib's two recursive globs took 12 ms of a 0.19 s warm run on a 200-model zoo)."""
    composites, models = [], []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if "composite-model.yml" in files:
            composites.append(Path(folder, "composite-model.yml"))
        if "model.yml" in files:
            models.append(Path(folder, "model.yml"))
    return sorted(composites), sorted(models)


MAX_LIST = 1 << 20  # bytes in a --list file (a zoo's every name takes a few kilobytes)


def read_list_file(path: Path) -> list[str]:
    """Patterns from a --list file: the first word of each line, '#' starts a comment."""
    from . import fsio

    try:
        raw = fsio.read_small(Path(path), MAX_LIST + 1)  # non-blocking: a FIFO or a device is refused
        text = raw.decode("utf-8")
    except OSError as exc:
        raise SelectionError(f"cannot read model list {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SelectionError(f"model list {path} is not UTF-8 text (byte {exc.start})") from exc
    if len(raw) > MAX_LIST:
        raise SelectionError(f"model list {path} is larger than {MAX_LIST:,} bytes")
    patterns = []
    import shlex

    for number, line in enumerate(text.splitlines(), 1):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise SelectionError(f"{path}:{number}: {exc}") from exc
        if tokens:
            patterns.append(tokens[0])
    if not patterns:
        raise SelectionError(f"model list {path} names no models")
    return patterns


def split_names(value: str, flag: str = "--name") -> list[str]:
    """--name a,b*,c -> ['a', 'b*', 'c']; empty items are an error (naming ``flag``), not silently dropped."""
    parts = [p.strip() for p in value.split(",")]
    if not all(parts):
        raise SelectionError(f"{flag} {value!r}: empty name in the list")
    return parts
