"""The one registry of URL schemes: what each one is (does opening it make a network connection,
may it serve as a mirror), read by offline mode, by the command lines' checks of --mirror and by
their messages, so that a new scheme is one entry here and one opener in fetch.py's table.

Every HTTP request of the package goes through ``fetch.make_session`` (the one session factory,
where offline mode mounts an adapter that refuses every request) and every S3 client through
``s3.make_client`` (which refuses offline); tests/unit/test_layers.py fails on any other caller.
"""

from __future__ import annotations

from typing import NamedTuple


class Scheme(NamedTuple):
    name: str
    network: bool  # opening a URL of it makes a network connection: refused offline
    mirror: bool  # may serve as --mirror (files by model folder, converted IR)


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("http", network=True, mirror=True),
    Scheme("https", network=True, mirror=True),
    Scheme("file", network=False, mirror=True),
    Scheme("s3", network=True, mirror=True),
)}

NETWORK_SCHEMES = frozenset(s.name for s in SCHEMES.values() if s.network)
MIRROR_PREFIXES = tuple(f"{s.name}://" for s in SCHEMES.values() if s.mirror)


def scheme_of(url: str) -> str | None:
    """The scheme of a URL as the registry spells it (lower case), or None for a plain path."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else None


def uses_network(url: str) -> bool:
    """Whether fetching this URL (a mirror, a source) opens a network connection."""
    return scheme_of(url) in NETWORK_SCHEMES


def mirror_schemes_text() -> str:
    """'an http://, https://, file:// or s3:// URL', for messages: from the registry, never a
    list written again beside it."""
    names = [f"{s.name}://" for s in SCHEMES.values() if s.mirror]
    return "an " + ", ".join(names[:-1]) + " or " + names[-1] + " URL"
