"""After `mirror.py sync` has written its manifest: the SBOM (``--sbom``), then the signatures
(``--sign_key``), the manifest's last; and `mirror.py verify --trust_key`'s verdict on the
signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..descriptor import Model
from ..errors import MirrorError, SignatureError, UsageError
from ..mirror.manifest import MANIFEST, MAX_MANIFEST, SBOM, decode_manifest


def check_sbom_target(store: Any) -> None:
    """--sbom: refused before any work when DEST/modelzoo-sbom.cdx.json is a folder."""
    root = getattr(store, "root", None)
    if root is not None and (root / SBOM).is_dir():
        raise UsageError(f"--sbom: {root / SBOM} is a folder")


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    """--accuracy_json: the accuracy tool's --json files (a list of records, or an object with
    "records"); a file that is neither is one line before any work."""
    out: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--accuracy_json {path}: cannot be read as JSON ({str(exc)[:120]})") from None
        records = data.get("records") if isinstance(data, dict) else data
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UsageError(f"--accuracy_json {path}: not the accuracy tool's --json records")
        out += records
    return out


def after_sync(store: Any, models: list[Model], root: Path, key: Any, sbom: bool, published_ir: list[str],
               records: list[dict[str, Any]], say: Callable[[str], None],
               emit: Callable[..., None] | None = None) -> None:
    """``say``: a line for people; ``emit``: a JSON event for scripts (--progress_format json)."""
    from .signing import read_file, sign_mirror, write_file

    raw = read_file(store, MANIFEST, MAX_MANIFEST)
    if raw is None:
        say(f"{store.url}: no manifest (nothing mirrored): no SBOM, no signature")
        return
    if sbom:
        from . import sbom as cdx

        manifest = decode_manifest(raw, f"{store.url}/{MANIFEST}")
        quantization = {}
        for rel in manifest["files"]:
            if rel.startswith("ir/") and rel.endswith("/quantization.json"):
                data = read_file(store, rel, 1 << 20)
                try:
                    quantization[rel.rpartition("/")[0]] = json.loads(data or b"{}")
                except ValueError:
                    pass
        bom = cdx.build(manifest, models, root, records, quantization)
        write_file(store, SBOM, cdx.encode(bom))
        say(f"{'sbom':>10}  {SBOM}  {len(bom['components'])} components (CycloneDX {cdx.SPEC})")
        if emit is not None:
            emit("mirror_sbom", path=SBOM, components=len(bom["components"]), spec=cdx.SPEC)
    if key is not None:
        written = sign_mirror(store, key, published_ir, [SBOM] if sbom else [])
        say(f"{'signed':>10}  {len(written)} signatures with key {key.short} ({', '.join(written[-2:])})")
        if emit is not None:
            emit("mirror_signed", key_id=key.key_id, signatures=written)


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
