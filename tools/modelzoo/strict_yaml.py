"""Strict, safe YAML: PyYAML's safe loader, refusing what a plain-data descriptor never needs.

Kept apart from descriptor.py so that PyYAML (12 ms to import) is loaded only when a text
actually needs parsing: a warm run reads its descriptors from the memo (descriptor_memo.py).
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlProblem(Exception):
    """Why a text is not acceptable YAML, and where (``line N``, ``YAML`` or empty)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


class _NoDuplicateKeys:
    """Mixed into a safe loader: a duplicate key silently drops the first value, so refuse it."""

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.MarkedYAMLError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse_event(event: yaml.Event) -> None:
    """Descriptors are plain data; a tag or an alias in one is a mistake or an attack (alias
    expansion is the 'billion laughs' vector)."""
    if isinstance(event, yaml.AliasEvent):
        raise yaml.MarkedYAMLError(None, None, "YAML aliases are not allowed", event.start_mark)
    tag = getattr(event, "tag", None)
    if tag not in (None, "!"):
        raise yaml.MarkedYAMLError(None, None, f"YAML tags are not allowed (found {tag!r})", event.start_mark)


class _StrictLoader(_NoDuplicateKeys, yaml.SafeLoader):
    """The pure-Python safe loader with our refusals, for PyYAML builds without libyaml."""

    def compose_node(self, parent, index):  # type: ignore[override]
        _refuse_event(self.peek_event())
        return super().compose_node(parent, index)


_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
if _LIBYAML:
    class _FastLoader(_NoDuplicateKeys, yaml.CSafeLoader):  # type: ignore[misc]
        """libyaml's parser (about 5x faster, it matters for a zoo of hundreds) with our refusals."""


def _load_strict(text: str) -> Any:
    if not _LIBYAML:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):  # events only, nothing constructed
        _refuse_event(event)
    return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader


def load(text: str) -> Any:
    """Parse one YAML document with the safe loader; aliases, tags and duplicate keys refused."""
    try:
        return _load_strict(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise YamlProblem(where, str(exc.problem)) from exc
    except yaml.YAMLError as exc:  # (a ReaderError's text spans two lines)
        raise YamlProblem("", "invalid YAML: " + " ".join(str(exc).split())) from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise YamlProblem("", f"invalid YAML: {exc}") from exc
    except RecursionError:
        raise YamlProblem("", "invalid YAML: nested too deeply") from None
