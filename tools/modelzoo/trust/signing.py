"""Signed mirror manifests and per-IR signatures: OpenSSF model signing (``model-signing``, the
``[sign]`` extra) in key mode, which signs and verifies without any connection.

- ``DEST/modelzoo-mirror.json.sig`` signs the manifest (a Sigstore bundle over the file's
  SHA-256, as ``model_signing sign key`` writes it); the manifest names every file's SHA-384, so
  one signature vouches for the whole mirror. Written last, after the manifest (and the SBOM
  and its ``.sig``).
- ``DEST/ir/<key>/<model folder>/<precision>.sig`` signs that precision's IR folder, so that a
  consumer that never runs modelzoo checks it with the stock ``model_signing verify key``.

A key's id is what model signing writes in a bundle's hint: the SHA-256 of the public key's PEM
(SubjectPublicKeyInfo); a bundle says which key made it, so several trusted keys (a rotation)
cost one verification. Key mode proves that a holder of the private key signed, not who that
is; keyless Sigstore (an identity) needs the internet and is not used here.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .. import fsio
from ..errors import MirrorError, MissingExtraError, SignatureError
from ..mirror.manifest import MANIFEST, MAX_MANIFEST, SIGNATURE, decode_manifest, encode_manifest

MAX_SIGNATURE = 1 << 20  # bytes: a bundle is about 1.5 KB
KEY_LIMIT = 1 << 16


@dataclass(frozen=True)
class TrustedKey:
    path: Path
    key_id: str  # SHA-256 of the PEM public key, hex (model signing's hint)

    @property
    def short(self) -> str:
        return self.key_id[:16]


def _require_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("model_signing") is None or importlib.util.find_spec("OpenSSL") is None:
        raise MissingExtraError("signing needs model-signing and pyopenssl: pip install 'modelzoo[sign]'")


def _read_key(path: Path, flag: str) -> bytes:
    try:
        return fsio.read_small(path, KEY_LIMIT)
    except OSError as exc:
        raise SignatureError(f"{flag} {path}: cannot be read ({exc.strerror or exc})") from None


def _key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(encoding=serialization.Encoding.PEM,
                                  format=serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def load_private_key(path: Path) -> TrustedKey:
    """--sign_key: an unencrypted elliptic-curve private key in PEM (P-256, P-384 or P-521: what
    model signing's key mode takes); anything else is one line before any work."""
    _require_extra()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = _read_key(path, "--sign_key")
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"--sign_key {path}: not an unencrypted PEM private key ({str(exc)[:120]})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise SignatureError(f"--sign_key {path}: a {type(key).__name__.lstrip('_')}, not an elliptic-curve key "
                             "(P-256, P-384 or P-521), which model signing's key mode needs")
    return TrustedKey(path, _key_id(key.public_key()))


def load_public_keys(paths: Iterable[Path]) -> list[TrustedKey]:
    """--trust_key / MODELZOO_TRUSTED_KEYS: PEM elliptic-curve public keys."""
    _require_extra()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = []
    for path in paths:
        raw = _read_key(path, "--trust_key")
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"--trust_key {path}: not a PEM public key ({str(exc)[:120]})") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
            raise SignatureError(f"--trust_key {path}: a {type(key).__name__.lstrip('_')}, not an elliptic-curve "
                                 "public key (P-256, P-384 or P-521)")
        out.append(TrustedKey(path, _key_id(key)))
    return out


# ----------------------------------------------------------------------------- reading a mirror's files

def _read_remote(url: str, name: str, limit: int, timeout: float) -> bytes | None:
    """DEST/<name> of a mirror (a folder, file://, s3:// or http(s)://), None when it has none.
    HTTP through the package's one session factory (offline mode refuses it)."""
    from ..transport.sources import scheme_of

    scheme = scheme_of(url)
    if scheme in ("http", "https"):
        import requests

        from ..transport.fetch import make_session

        where = url.rstrip("/") + "/" + name
        session = make_session(1)
        try:
            with session.get(where, timeout=timeout, stream=True, headers={"Accept-Encoding": "identity"}) as r:
                if r.status_code == 404:
                    return None
                r.raise_for_status()
                raw = r.raw.read(limit + 1)
        except (requests.RequestException, OSError) as exc:
            raise MirrorError(f"{where}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") \
                from None
        finally:
            session.close()
    else:
        from ..mirror.stores import open_store

        store = open_store(url, timeout=timeout)
        raw = read_file(store, name, limit)
        if raw is None:
            return None
    if len(raw) > limit:
        raise MirrorError(f"{url}: {name} is larger than {limit:,} bytes")
    return raw


def read_file(store: Any, rel: str, limit: int) -> bytes | None:
    """A file of a store that is not a mirrored file (the manifest, a signature, the SBOM)."""
    if hasattr(store, "root"):  # a folder
        path = store.root / rel
        if path.is_symlink():
            raise MirrorError(f"{path}: a symbolic link")
        try:
            return fsio.read_small(path, limit + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise fsio.fs_error(path, exc, "read") from exc
    import botocore.exceptions

    try:
        return store.client.get_object(Bucket=store.bucket, Key=store.prefix + rel)["Body"].read(limit + 1)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise MirrorError(f"{store.url}: cannot read {rel}: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise MirrorError(f"{store.url}: cannot read {rel}: {exc}") from None


def write_file(store: Any, rel: str, data: bytes) -> None:
    """Put one of the mirror's own files (a signature, the SBOM) whole: a rename into the
    folder, or one PUT."""
    if hasattr(store, "root"):
        path = store.root / rel
        fsio.makedirs(path.parent)
        if path.is_dir():
            raise MirrorError(f"{path}: a folder, where a file is written")
        fsio.write_bytes(path, data)
        return
    import botocore.exceptions

    try:
        store.client.put_object(Bucket=store.bucket, Key=store.prefix + rel, Body=data)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise MirrorError(f"{store.url}: cannot write {rel}: {exc}") from None


# ----------------------------------------------------------------------------- verifying

def bundle_key_id(sig: bytes) -> str | None:
    """The key id a bundle names (its hint), None when it names none or is not a bundle."""
    try:
        hint = json.loads(sig)["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError):
        return None
    return hint if isinstance(hint, str) else None


def verify_bytes(data: bytes, name: str, sig: bytes, keys: list[TrustedKey], what: str) -> TrustedKey:
    """``data`` (a file called ``name``) is what ``sig`` signs with one of ``keys``: that key,
    or a SignatureError saying why not (naming ``what`` and the key ids)."""
    _require_extra()
    hint = bundle_key_id(sig)
    if hint is None:
        raise SignatureError(f"{what}: the signature is not a model signing bundle")
    chosen = [k for k in keys if k.key_id == hint]
    if not chosen:
        raise SignatureError(f"{what}: signed with key {hint[:16]}, which is not a trusted key "
                             f"({', '.join(k.short for k in keys)})")
    key = chosen[0]
    import model_signing

    with tempfile.TemporaryDirectory(prefix="modelzoo-verify-") as tmp:
        target, sig_path = Path(tmp) / name, Path(tmp) / (name + ".sig")
        target.write_bytes(data)
        sig_path.write_bytes(sig)
        try:
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key.path).verify(target, sig_path)
        except Exception as exc:  # noqa: BLE001 - model signing raises ValueError and protobuf/crypto errors
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise SignatureError(f"{what}: the signature does not verify with key {key.short} ({reason})") from None
    return key


def verify_mirror(url: str, keys: list[TrustedKey], timeout: float = 30.0) -> tuple[str, str]:
    """A mirror's manifest and its signature, read once and verified offline: (the key id, the
    SHA-384 of the manifest's canonical encoding, which the run pins). A SignatureError names
    the mirror and the key otherwise (unsigned, another key, a changed manifest)."""
    try:
        raw = _read_remote(url, MANIFEST, MAX_MANIFEST, timeout)
        sig = _read_remote(url, SIGNATURE, MAX_SIGNATURE, timeout) if raw is not None else None
    except (MirrorError, OSError) as exc:
        raise SignatureError(f"mirror {url}: the signed manifest cannot be read ({exc})") from None
    if raw is None:
        raise SignatureError(f"mirror {url}: no {MANIFEST}")
    if sig is None:
        raise SignatureError(f"mirror {url}: {MANIFEST} is not signed (no {SIGNATURE})")
    key = verify_bytes(raw, MANIFEST, sig, keys, f"mirror {url}")
    try:
        data = decode_manifest(raw, f"{url}/{MANIFEST}")
    except MirrorError as exc:
        raise SignatureError(f"mirror {url}: {exc}") from None
    return key.key_id, hashlib.sha384(encode_manifest(data)).hexdigest()


# ----------------------------------------------------------------------------- signing

def sign_bytes(data: bytes, name: str, key: TrustedKey) -> bytes:
    """The bundle model signing writes for a file called ``name`` holding ``data``."""
    import model_signing

    with tempfile.TemporaryDirectory(prefix="modelzoo-sign-") as tmp:
        target, sig_path = Path(tmp) / name, Path(tmp) / (name + ".sig")
        target.write_bytes(data)
        model_signing.signing.Config().use_elliptic_key_signer(private_key=key.path).sign(target, sig_path)
        return sig_path.read_bytes()


def ir_folders(manifest: dict[str, Any] | None) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The IR precision folders a manifest names (``ir/<key>/<model folder>/<precision>``),
    each with its files (name, entry)."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rel, entry in ((manifest or {}).get("files") or {}).items():
        if rel.startswith("ir/"):
            folder, _, name = rel.rpartition("/")
            out.setdefault(folder, []).append((name, entry))
    return out


def sign_ir_folder(store: Any, folder: str, files: list[tuple[str, dict[str, Any]]], key: TrustedKey,
                   cancel: Any) -> None:
    """``<folder>.sig`` beside an IR precision folder, as ``model_signing sign key FOLDER`` writes
    it. A folder mirror's folder is signed where it is (only the files the manifest names may be
    there); an S3 one's files are fetched, verified against the manifest, and signed here."""
    import model_signing

    signer = model_signing.signing.Config().use_elliptic_key_signer(private_key=key.path)
    with tempfile.TemporaryDirectory(prefix="modelzoo-sign-") as tmp:
        sig_path = Path(tmp) / "ir.sig"
        if hasattr(store, "root"):
            signer.sign(store.root / folder, sig_path)
        else:
            from ..verify import verify_file

            local = Path(tmp) / folder.rsplit("/", 1)[-1]
            local.mkdir()
            for name, entry in files:
                body = store.client.get_object(Bucket=store.bucket, Key=f"{store.prefix}{folder}/{name}")["Body"]
                with open(local / name, "wb") as fh:
                    while chunk := body.read(1 << 20):
                        fh.write(chunk)
                verify_file(local / name, entry["size"], entry["sha384"], f"{folder}/{name}")
            signer.sign(local, sig_path)
        write_file(store, folder + ".sig", sig_path.read_bytes())


def sign_mirror(store: Any, key: TrustedKey, changed_ir: Iterable[str] = (), extra: Iterable[str] = (),
                cancel: Any = None) -> list[str]:
    """After a sync: the per-IR signatures of IR folders with files published this run
    (``changed_ir``) or without a signature yet, then each of ``extra`` (the SBOM), then the
    manifest's signature, last. Returns what was written."""
    _require_extra()
    raw = read_file(store, MANIFEST, MAX_MANIFEST)
    if raw is None:
        return []
    manifest = decode_manifest(raw, f"{store.url}/{MANIFEST}")
    written = []
    changed = {rel.rpartition("/")[0] for rel in changed_ir}
    for folder, files in sorted(ir_folders(manifest).items()):
        if folder in changed or not _has(store, folder + ".sig"):
            sign_ir_folder(store, folder, files, key, cancel)
            written.append(folder + ".sig")
    for rel in extra:
        data = read_file(store, rel, MAX_MANIFEST)
        if data is not None:
            write_file(store, rel + ".sig", sign_bytes(data, rel, key))
            written.append(rel + ".sig")
    write_file(store, SIGNATURE, sign_bytes(raw, MANIFEST, key))
    written.append(SIGNATURE)
    return written


def _has(store: Any, rel: str) -> bool:
    """(A listing would not say: the mirror's own files are left out of it.)"""
    if hasattr(store, "root"):
        return (store.root / rel).is_file()
    return store.stat(rel) is not None
