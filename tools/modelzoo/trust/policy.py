"""What one run holds to, decided before its first request: the lock (``--locked``: every
selected model as locked, IR checked against it afterwards) and the trusted keys
(``--trust_key``: only mirrors whose signed manifest verifies are used; ``--require_signature``:
any other is an error). The command lines call :func:`start` and the returned :class:`Policy`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from ..descriptor import Model
from ..errors import LockError, LockMismatchError, SignatureError, UsageError

KEYS_ENV = "MODELZOO_TRUSTED_KEYS"  # public keys (PEM files), separated by os.pathsep, as --trust_key


class Policy:
    """(A plain class, not a dataclass: importing dataclasses costs the downloader's start 6 ms.)"""

    def __init__(self, mirrors: list[str] | None = None) -> None:
        self.lock: dict[str, Any] | None = None
        self.lock_path: Path | None = None
        self.mirrors = list(mirrors or [])  # the --mirror URLs this run may use
        self.verified: dict[str, str] = {}  # mirror -> the key id its manifest verified with

    def before_fetch(self, timeout: float, jobs: int) -> Callable[[list[tuple[str, str, int, list[str]]]], None] | None:
        """With a lock, what a pipeline calls with the files it is about to fetch (model, file,
        size, sources): HEAD requests that refuse the run when upstream no longer serves a file
        as locked (lock.preflight). None without a lock."""
        if self.lock is None:
            return None
        where = str(self.lock_path)

        def check(files: list[tuple[str, str, int, list[str]]]) -> None:
            from .lock import preflight

            preflight(files, where, timeout=timeout, jobs=jobs)
        return check

    def check_ir(self, models: Iterable[Model], root: Path, precisions: Iterable[str], what: str,
                 keys: dict[str, str] | None = None, line: Callable[[str], None] | None = None,
                 remove: bool = True) -> list[str]:
        """After a conversion or quantization: each leaf's IR at root/<model folder>/<precision>/
        must be the locked IR where the lock has it (a reproducibility check); one line per
        model that is not (its IR removed), and the names returned as failed."""
        if self.lock is None:
            return []
        failed = []
        for model in models:
            for leaf in model.leaf_models():
                key = (keys or {}).get(leaf.name)
                locked = (self.lock["models"].get(leaf.name) or {}).get("ir") or {}
                done = [p for p in precisions if (root / leaf.subdirectory / p).is_dir()]
                with_key = {p for p, ir in locked.items() if key is not None and ir["key"] != key}
                # the key decides a conversion of exactly the locked set of precisions that share it
                # (a run of more precisions, or fewer, has another key by right: its bytes decide)
                mismatched = {p: key for p in done if p in with_key
                              and {q for q, ir in locked.items() if ir["key"] == locked[p]["key"]} == set(done)}
                try:
                    from .lock import require_ir

                    require_ir(self.lock, leaf, root / leaf.subdirectory, done, what, keys=mismatched, remove=remove)
                except LockMismatchError as exc:
                    if line is not None:
                        line(str(exc))
                    failed.append(model.name)
                    break
        return failed


def trusted_key_paths(given: list[Path]) -> list[Path]:
    """--trust_key files, then MODELZOO_TRUSTED_KEYS's (two keys at once: rotation)."""
    env = [Path(p) for p in os.environ.get(KEYS_ENV, "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for p in [*given, *env]:
        if p not in out:
            out.append(p)
    return out


def start(args: Any, models: list[Model], root: Path, failed_to_load: list[str], mirrors: list[str] | None,
          warn: Callable[[str], None]) -> Policy:
    """--locked, --trust_key, --require_signature of one run (attributes of ``args`` that a
    command does not have count as not given), before any work: a refusal is one exception."""
    policy = Policy(mirrors=list(mirrors or []))
    locked = getattr(args, "locked", None)
    if locked is not None:
        from .lock import check_selection, read

        policy.lock, policy.lock_path = read(locked), locked
        if failed_to_load:
            raise LockError(f"--locked {locked}: {failed_to_load[0]}'s descriptor is invalid; refusing the run")
        check_selection(policy.lock, models, root, str(locked))
    keys = trusted_key_paths(getattr(args, "trust_key", None) or [])
    require = getattr(args, "require_signature", False)
    if require and not keys:
        raise UsageError(f"--require_signature needs --trust_key PUB.pem (or {KEYS_ENV})")
    if not keys:
        return policy
    from ..mirror.ir_share import PINS_ENV  # (here: a run without keys does not import the IR reader)
    from .signing import load_public_keys, verify_mirror

    trusted = load_public_keys(keys)
    pins: dict[str, str] = {}
    kept = []
    for url in policy.mirrors:
        try:
            key_id, digest = verify_mirror(url, trusted, timeout=getattr(args, "timeout", 30.0))
        except SignatureError as exc:
            if require:
                raise SignatureError(f"--require_signature: {exc}") from None
            warn(f"{exc}; this mirror is not used")
            continue
        policy.verified[url], pins[url] = key_id, digest
        kept.append(url)
    policy.mirrors = kept
    # the manifests whose signature verified, by their canonical SHA-384: mirror/ir_share.py
    # takes IR only from a manifest that is one of these (also in the converter's worker processes)
    os.environ[PINS_ENV] = json.dumps(pins, sort_keys=True)
    return policy
