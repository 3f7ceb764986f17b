"""After `mirror.py sync` has written its manifest: the signatures (``--sign_key``), the
manifest's last; and `mirror.py verify --trust_key`'s verdict on the
signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import MirrorError, SignatureError
from ..mirror.manifest import MANIFEST, MAX_MANIFEST


def after_sync(store: Any, key: Any, published_ir: list[str], say: Callable[[str], None]) -> None:
    from .signing import read_file, sign_mirror

    if read_file(store, MANIFEST, MAX_MANIFEST) is None:
        say(f"{store.url}: no manifest (nothing mirrored): no signature")
        return
    written = sign_mirror(store, key, published_ir)
    say(f"{'signed':>10}  {len(written)} signatures with key {key.short} ({', '.join(written[-2:])})")


def verify_signature(url: str, key_paths: list[Path], timeout: float) -> tuple[bool, str]:
    """`mirror.py verify --trust_key`: (verified, the line that says which key or why not)."""
    from .signing import load_public_keys, verify_mirror

    keys = load_public_keys(key_paths)
    try:
        key_id, _ = verify_mirror(url, keys, timeout)
    except (SignatureError, MirrorError) as exc:
        return False, str(exc)
    path = next(k.path for k in keys if k.key_id == key_id)
    return True, f"signature: {MANIFEST} verified with key {key_id[:16]} ({path})"
