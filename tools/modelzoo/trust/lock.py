"""The lock file (``modelzoo-lock/1``): a selection of models pinned so that tomorrow's run
fetches exactly today's bytes, and ``--locked`` (all or nothing, as pip's hash mode).

One JSON object, keys sorted, indented::

    {"format": "modelzoo-lock/1",
     "models": {
       "<name>": {"descriptor": "<path below the zoo>", "descriptor_sha384": "<hex>",
                  "files": {"<file>": {"size": N, "sha384": "<hex>", "urls": ["<url>", ...]}},
                  "ir": {"<precision>": {"key": "<conversion or quantization key>", "tools": "...",
                                         "files": {"<file>": {"size": N, "sha384": "<hex>"}}}}},
       "<composite>": {"descriptor": "...", "descriptor_sha384": "...", "stages": ["<stage>", ...]}}}

A composite names its stages, each locked as a model of its own. It is built from the
descriptors alone (no download); ``ir`` comes from the IR cache or a mirror's manifest, every
file verified (``lock --ir``: ir_lock.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import fsio
from ..descriptor import Model
from ..download.obtain import source_url
from ..errors import LockError, LockMismatchError, UsageError

FORMAT = "modelzoo-lock/1"
MAX_LOCK = 64 << 20  # bytes: far more than the whole zoo's lock (about 1 MB)
_HEX = frozenset("0123456789abcdef")


def _sha384(data: bytes) -> str:
    return hashlib.sha384(data).hexdigest()


def descriptor_sha384(model: Model) -> str:
    """The SHA-384 of the descriptor's bytes: any edit (a file, an argument, a comment) is drift."""
    try:  # (read whole, as the loader just did: read_small's bound would allocate 64 MB a call)
        with open(model.config_path, "rb") as fh:
            return _sha384(fh.read())
    except OSError as exc:
        raise fsio.fs_error(model.config_path, exc, "read") from exc


def _descriptor_rel(model: Model, root: Path) -> str:
    """The descriptor's path below the zoo (its model folder and name: no resolve() per model)."""
    if model.config_path.parent.name == model.subdirectory.name:
        return f"{model.subdirectory.as_posix()}/{model.config_path.name}"
    try:
        return model.config_path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return model.config_path.as_posix()


def model_entries(model: Model, root: Path) -> dict[str, dict[str, Any]]:
    """The lock's entries for one selected model: the model and, for a composite, its stages."""
    out: dict[str, dict[str, Any]] = {}
    entry: dict[str, Any] = {"descriptor": _descriptor_rel(model, root), "descriptor_sha384": descriptor_sha384(model)}
    if model.is_composite:
        entry["stages"] = [s.name for s in model.stages]
        for stage in model.stages:
            out.update(model_entries(stage, root))
    else:
        entry["files"] = {f.name.as_posix(): {"size": f.size, "sha384": f.sha384, "urls": [source_url(f)]}
                          for f in model.files}
    out[model.name] = entry
    return out


def build(models: Iterable[Model], root: Path) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {}
    for m in models:
        entries.update(model_entries(m, root))
    return {"format": FORMAT, "models": dict(sorted(entries.items()))}


def encode(lock: dict[str, Any]) -> bytes:
    return (json.dumps(lock, indent=1, sort_keys=True) + "\n").encode()


def write(path: Path, lock: dict[str, Any]) -> None:
    """Atomically (fsio): a lock is replaced whole or not at all."""
    path = path.absolute()
    if path.is_dir():
        raise UsageError(f"{path}: a folder, not a lock file")
    fsio.write_bytes(path, encode(lock))


# ----------------------------------------------------------------------------- reading

def _no_duplicates(where: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise LockError(f"{where}: names {k!r} twice")
            out[k] = v
        return out
    return hook


def _is_sha(value: object) -> bool:
    return isinstance(value, str) and len(value) == 96 and set(value) <= _HEX


def _file_problem(name: str, f: object, urls: bool) -> str | None:
    if not isinstance(f, dict):
        return f"file {name!r}: not an object"
    if not isinstance(f.get("size"), int) or isinstance(f.get("size"), bool) or f["size"] < 0:
        return f"file {name!r}: 'size' must be a non-negative integer"
    if not _is_sha(f.get("sha384")):
        return f"file {name!r}: 'sha384' must be a SHA-384 in hex"
    if urls and not (isinstance(f.get("urls"), list) and all(isinstance(u, str) for u in f["urls"])):
        return f"file {name!r}: 'urls' must be a list of strings"
    return None


def _entry_problem(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("descriptor"), str) or not _is_sha(entry.get("descriptor_sha384")):
        return "needs 'descriptor' and 'descriptor_sha384' (a SHA-384 in hex)"
    if "stages" in entry:
        stages = entry["stages"]
        if not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
            return "'stages' must be a list of names"
        if len(set(stages)) != len(stages):
            return "names a stage twice"
        return None
    if not isinstance(entry.get("files"), dict):
        return "needs 'files' (an object) or 'stages'"
    for name, f in entry["files"].items():
        problem = _file_problem(name, f, urls=True)
        if problem:
            return problem
    for precision, ir in (entry.get("ir") or {}).items():
        if not isinstance(ir, dict) or not _is_sha(ir.get("key")) or not isinstance(ir.get("files"), dict):
            return f"ir {precision!r}: needs 'key' (a SHA-384 in hex) and 'files'"
        for name, f in ir["files"].items():
            problem = _file_problem(name, f, urls=False)
            if problem:
                return f"ir {precision!r}: {problem}"
    return None


def decode(raw: bytes, where: str) -> dict[str, Any]:
    """A lock's data, every entry checked; one LockError naming the file otherwise."""
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates(where))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LockError(f"{where}: not a modelzoo lock file ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("models"), dict):
        raise LockError(f"{where}: not a {FORMAT} lock file")
    for name, entry in data["models"].items():
        problem = _entry_problem(entry)
        if problem:
            raise LockError(f"{where}: model {name!r}: {problem}")
    return data


def read(path: Path) -> dict[str, Any]:
    try:
        raw = fsio.read_small(path, MAX_LOCK + 1)
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock file") from None
    except OSError as exc:
        raise LockError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_LOCK:
        raise LockError(f"{path}: larger than {MAX_LOCK:,} bytes; not a lock file")
    return decode(raw, str(path))


# ----------------------------------------------------------------------------- drift

def drift(locked: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a model's locked entry and the one its descriptor gives now, one
    phrase each (empty: no drift). IR is not compared (the descriptors say nothing of it)."""
    out = []
    if locked.get("descriptor_sha384") != current.get("descriptor_sha384"):
        now, then = current.get("descriptor_sha384", ""), locked.get("descriptor_sha384", "")
        out.append(f"descriptor {current.get('descriptor')} changed (SHA-384 {now[:16]}..., locked {then[:16]}...)")
    if locked.get("stages") != current.get("stages"):
        out.append(f"stages {current.get('stages')}, locked {locked.get('stages')}")
    old, new = locked.get("files") or {}, current.get("files") or {}
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None:
            out.append(f"file {name} is not in the lock")
        elif b is None:
            out.append(f"file {name} is locked but no longer in the descriptor")
        elif (a["size"], a["sha384"]) != (b["size"], b["sha384"]):
            out.append(f"file {name}: {b['size']} bytes, SHA-384 {b['sha384'][:16]}..., locked {a['size']} bytes, "
                       f"SHA-384 {a['sha384'][:16]}...")
        elif set(b.get("urls", [])) - set(a.get("urls", [])):  # (a lock may allow more URLs than the source)
            out.append(f"file {name}: source {', '.join(sorted(set(b['urls']) - set(a['urls'])))} is not a locked URL")
    return out


def check_selection(lock: dict[str, Any], models: list[Model], root: Path, where: str) -> None:
    """--locked: every selected model (and stage) is in the lock with the descriptor it has now,
    or the whole run is refused before the first request (one LockError, exit 2)."""
    entries = lock["models"]
    for model in models:
        for name, current in model_entries(model, root).items():
            locked = entries.get(name)
            if locked is None:
                raise LockError(f"--locked {where}: {name} is not in the lock (lock --update {name} adds it)")
            problems = drift(locked, current)
            if problems:
                raise LockError(f"--locked {where}: {name}: {problems[0]}")


def check_ir(lock: dict[str, Any], model: Model, folder: Path, precisions: Iterable[str],
             keys: dict[str, str] | None = None) -> list[tuple[str, Path]]:
    """IR at folder/<precision>/ is the locked IR of model (where the lock has IR for that
    precision): the same file names, sizes and SHA-384, and the locked key when it is known.
    Returns (precision, file) of the first mismatch per precision, or raises nothing: the
    caller decides. ``keys``: precision -> the key the run used."""
    entry = lock["models"].get(model.name) or {}
    bad: list[tuple[str, Path]] = []
    for precision in precisions:
        ir = (entry.get("ir") or {}).get(precision)
        if ir is None:
            continue
        pdir = folder / precision
        key = (keys or {}).get(precision)
        if key is not None and key != ir["key"]:
            bad.append((precision, pdir))
            continue
        present = {p.name for p in pdir.iterdir() if p.is_file()} if pdir.is_dir() else set()
        for name in sorted(present | set(ir["files"])):
            f, path = ir["files"].get(name), pdir / name
            if f is None or not path.is_file() or path.stat().st_size != f["size"] or _file_sha(path) != f["sha384"]:
                bad.append((precision, path))
                break
    return bad


def _file_sha(path: Path) -> str:
    h = hashlib.sha384()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def require_ir(lock: dict[str, Any], model: Model, folder: Path, precisions: Iterable[str],
               what: str, keys: dict[str, str] | None = None, remove: bool = True) -> None:
    """check_ir as an error naming the first file that is not the locked one; with ``remove``
    the precision folder that holds it goes, so no unlocked IR is left where locked IR belongs."""
    bad = check_ir(lock, model, folder, precisions, keys)
    if not bad:
        return
    precision, path = bad[0]
    if remove:
        for p, _ in bad:
            if (folder / p).is_dir():
                fsio.remove(folder / p)
    raise LockMismatchError(f"{path}: {what} is not the locked IR of {model.name} {precision}"
                            + (" (removed)" if remove else ""))


# ----------------------------------------------------------------------------- IR from mirrors

def ir_from_manifest(manifest: dict[str, Any] | None, model: Model) -> dict[str, dict[str, Any]]:
    """The IR a mirror's manifest names for one leaf model, by precision: the most recently
    verified key for each precision (a mirror may hold IR of several OpenVINO releases)."""
    by: dict[tuple[str, str], dict[str, Any]] = {}
    prefix_len = len("ir/")
    model_dir = model.subdirectory.as_posix()
    for rel, e in ((manifest or {}).get("files") or {}).items():
        if not rel.startswith("ir/") or e.get("model") != model.name:
            continue
        key = e["ir_key"]
        rest = rel[prefix_len + len(key) + 1:]
        if not rest.startswith(model_dir + "/"):
            continue
        precision, _, name = rest[len(model_dir) + 1:].partition("/")
        slot = by.setdefault((precision, key), {"key": key, "tools": e.get("tools", ""), "files": {},
                                                "verified": ""})
        slot["files"][name] = {"size": e["size"], "sha384": e["sha384"]}
        slot["verified"] = max(slot["verified"], e.get("verified", ""))
    out: dict[str, dict[str, Any]] = {}
    for (precision, _), slot in sorted(by.items(), key=lambda kv: kv[1]["verified"]):
        out[precision] = {k: v for k, v in slot.items() if k != "verified"}
    return out


# ----------------------------------------------------------------------------- HEAD requests

GONE, RESIZED, UNKNOWN = "gone", "resized", "unknown"


def _head(session: Any, url: str, size: int, timeout: float) -> tuple[str, str] | None:
    """What one HEAD request says of a locked file at url: None (the locked size, or a server
    that does not say), or (GONE / RESIZED / UNKNOWN, the reason); offline mode's refusal
    (OfflineError) is raised. Only a 404 / 410 and a plain
    Content-Length of another size are facts about the file: an HTML answer (a sign-in or
    confirmation page), a compressed one, an error status or no answer say nothing of it."""
    import requests

    try:
        r = session.head(url, timeout=timeout, allow_redirects=True, headers={"Accept-Encoding": "identity"})
    except (requests.RequestException, OSError) as exc:
        return UNKNOWN, f"{url}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
    if r.status_code in (404, 410):
        return GONE, f"{url}: gone (HTTP {r.status_code})"
    if r.status_code >= 400:
        return UNKNOWN, f"{url}: HTTP {r.status_code}"
    length = r.headers.get("Content-Length")
    plain = r.headers.get("Content-Encoding", "identity") in ("", "identity") and \
        not r.headers.get("Content-Type", "").startswith("text/html")
    if plain and length is not None and length.isdigit() and int(length) != size:
        return RESIZED, f"{url}: {int(length):,} bytes served, locked {size:,}"
    return None


def _heads(checks: list[tuple[str, int]], timeout: float, jobs: int) -> list[tuple[str, str] | None]:
    """_head of each (url, size), up to ``jobs`` at once, through the package's one session
    (fetch.make_session: offline mode refuses every request there, so none leaves the machine)."""
    if not checks:
        return []  # (a warm run: nothing imported, no session made)
    from concurrent.futures import ThreadPoolExecutor

    from ..transport.fetch import make_session

    session = make_session(1, pool_size=jobs)
    try:
        with ThreadPoolExecutor(max(1, min(jobs, len(checks)))) as pool:
            return list(pool.map(lambda c: _head(session, c[0], c[1], timeout), checks))
    finally:
        session.close()


def _http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def remote_drift(lock: dict[str, Any], names: Iterable[str], timeout: float = 30.0,
                 jobs: int = 8) -> list[str]:
    """``--check --remote``: one HEAD request per locked http(s) URL; a file that is gone (404,
    410) or whose Content-Length is not the locked size is drift, found before a download of
    gigabytes. A server that cannot be reached or answers an error is said too."""
    checks = [(name, fname, f["size"], url) for name in names
              for fname, f in sorted((lock["models"][name].get("files") or {}).items()) for url in f.get("urls", [])
              if _http(url)]
    answers = _heads([(url, size) for _, _, size, url in checks], timeout, jobs)  # (offline: OfflineError)
    return [f"{name}: {fname}: {answer[1]}" for (name, fname, _, _), answer in zip(checks, answers)
            if answer is not None]


def preflight(files: list[tuple[str, str, int, list[str]]], where: str, timeout: float = 30.0,
              jobs: int = 8) -> None:
    """``--locked``, before the first download: each file a run is about to fetch, given as
    (model, file, locked size, its sources in the order they will be tried), is asked for with a
    HEAD request at each http(s) source. A file that every source answers is gone or of another
    size, and that has no other kind of source (a file:// or s3:// mirror is not asked), refuses
    the whole run: one LockError (exit 2) naming it. Anything else (an answer without a size, a
    server that is down, offline mode refusing the request) goes on: the download verifies
    every byte anyway; this only spares a run that would fetch gigabytes to throw them away.

    Raises:
        LockError: the first file (in the order given) that upstream no longer serves as locked.
    """
    from ..errors import OfflineError

    candidates = [f for f in files if f[3] and all(_http(u) for u in f[3])]
    checks = [(url, size) for _, _, size, urls in candidates for url in urls]
    try:
        answers = iter(_heads(checks, timeout, jobs))
    except OfflineError:
        return  # the session refused: offline, nothing is fetched from the network anyway
    for model, name, size, urls in candidates:
        said = [next(answers) for _ in urls]
        if all(a is not None and a[0] in (GONE, RESIZED) for a in said):
            raise LockError(f"--locked {where}: {model}: {name}: {said[-1][1]} (refused before any download; "
                            f"modelzoo-lock --check --remote lists every such file)")
