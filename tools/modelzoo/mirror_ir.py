"""Converted IR in mirrors: published by `mirror.py sync --ir`, read by `converter.py --mirror`.

Layout below DEST: ``ir/<key>/<model folder>/<precision>/<file>``, where key is the conversion
key (ir_cache.py): IR made by another OpenVINO, backend or descriptor lives under another key,
so a mirror carries IR for several OpenVINO releases side by side. Each IR file has a manifest
entry like a model file's (size, SHA-384, stamp, verified, model) plus ``ir_key`` (the key,
which must be the path's) and ``tools`` (the backend and its version); stores.decode_manifest
checks both.

A reader trusts nothing a mirror says: every file it fetches is verified against the manifest's
size and SHA-384 while it streams in (fetch.py), and the files are placed only when all of them
verified; anything else (no manifest, no entry for the key, a wrong byte, a mirror that is down)
is a reason to convert locally, said in one line.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import fsio
from .errors import ModelzooError
from .ir_cache import IrFile

IR_PREFIX = "ir/"
MANIFEST_TIMEOUT = 30.0


def ir_rel(key: str, model_dir: str, path: str) -> str:
    return f"{IR_PREFIX}{key}/{model_dir}/{path}"


def ir_entries(manifest: dict[str, Any] | None, key: str, model_dir: str) -> list[IrFile]:
    """The IR files a manifest names for one model under one key."""
    prefix = ir_rel(key, model_dir, "")
    out = []
    for rel, entry in ((manifest or {}).get("files") or {}).items():
        if rel.startswith(prefix) and entry.get("ir_key") == key:
            out.append(IrFile(rel[len(prefix):], entry["size"], entry["sha384"]))
    return sorted(out, key=lambda f: f.path)


def read_manifest(url: str, timeout: float = MANIFEST_TIMEOUT) -> dict[str, Any] | None:
    """A mirror's manifest, decoded and checked (stores.decode_manifest), from a folder, a
    file:// URL, s3://bucket/prefix or http(s)://; None when it has none."""
    from .stores import MANIFEST, MAX_MANIFEST, decode_manifest, open_store

    if url.startswith(("http://", "https://")):
        import requests

        from .errors import MirrorAccessError

        where = url.rstrip("/") + "/" + MANIFEST
        try:
            with requests.get(where, timeout=timeout, stream=True, headers={"Accept-Encoding": "identity"}) as r:
                if r.status_code == 404:
                    return None
                r.raise_for_status()
                raw = r.raw.read(MAX_MANIFEST + 1, decode_content=False)
        except (requests.RequestException, OSError) as exc:
            raise MirrorAccessError(f"{where}: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}") \
                from exc
        return decode_manifest(raw, where)
    return open_store(url, timeout=timeout).read_manifest()[0]


def fetch_ir(url: str, key: str, model_dir: str, files: list[IrFile], staging: Path, timeout: float) -> None:
    """Every file into staging/<precision>/<file>, each verified as it streams in (fetch.py).
    The files come side by side, one per core, the biggest first, so that hashing them (in the
    thread that receives each) uses every core; the first failure stops the others and is
    raised. The workers are the downloader's (download.Pool: daemon threads), so Ctrl-C ends
    the run within its grace even when a mirror has gone silent mid-file."""
    import os

    from .download import Pool
    from .errors import Interrupted
    from .obtain import Transport

    stop = threading.Event()
    jobs = max(1, min(len(files), os.cpu_count() or 1))
    transport = Transport(jobs=jobs, connections=1, num_attempts=2, timeout=timeout, cancel=stop)
    base = url if "://" in url else Path(url).absolute().as_uri()
    errors: list[Exception] = []

    def one(f: IrFile) -> bool:
        dest = staging / f.path
        try:
            fsio.makedirs(dest.parent)
            source = base.rstrip("/") + "/" + quote(ir_rel(key, model_dir, f.path))
            transport.fetch([source], dest, f.size, f.sha384, f"{model_dir}/{f.path} (mirror IR)")
            return True
        except Interrupted:
            raise  # stopped by another file's failure, or by Ctrl-C: the pool ends this worker
        except Exception as exc:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(exc)
            stop.set()  # the others stop at their next chunk
            return False

    try:
        Pool(jobs, stop).run(sorted(files, key=lambda f: -f.size), one, lambda: "interrupted")
    except Interrupted:
        raise KeyboardInterrupt from None  # Ctrl-C: the caller's own handling, as for any other step
    finally:
        transport.close()
    if errors:
        raise errors[0]


def from_mirrors(mirrors: list[str], key: str, model_dir: str, precisions: list[str], staging: Path, say: Any,
                 timeout: float = 60.0, fallback: str = "converting locally") -> tuple[str, list[IrFile]] | None:
    """Fill staging from the first mirror that has this key's IR for every precision, all
    verified; returns that mirror and the files, or None (each mirror's reason said in one line,
    ending with ``fallback``: what the caller does instead)."""
    for url in mirrors:
        try:
            files = ir_entries(read_manifest(url, timeout=min(timeout, MANIFEST_TIMEOUT)), key, model_dir)
            have = {f.path.split("/", 1)[0] for f in files}
            if not files or not set(precisions) <= have:
                say(f"mirror {url}: no IR for key {key[:16]}... ({', '.join(precisions)}); {fallback}")
                continue
            chosen = [f for f in files if f.path.split("/", 1)[0] in precisions]
            fetch_ir(url, key, model_dir, chosen, staging, timeout)
            return url, chosen
        except (ModelzooError, OSError, ValueError, json.JSONDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            say(f"mirror {url}: {reason}; {fallback}")
        except Exception as exc:  # noqa: BLE001 - requests' errors: the mirror is down or broken
            say(f"mirror {url}: {type(exc).__name__}: {str(exc)[:200]}; {fallback}")
        for p in list(staging.iterdir()):
            fsio.remove(p)
    return None


def int8_tools(conversion_tools: str) -> str:
    """What made INT8 IR, as its manifest entries say it: NNCF and the OpenVINO that ran it, and
    the tools that made the FP32 IR it was quantized from (read back by repair_ir)."""
    from .convert import openvino_version
    from .quantize import nncf_version

    return f"nncf {nncf_version()} openvino {openvino_version()} from {conversion_tools}"


def sync_ir(mirror: Any, models: list[Any], precisions: frozenset[str], backend: str,
            delete: bool = False) -> tuple[list[str], list[str]]:
    """`mirror.py sync --ir`: convert the selected models through the cache (the converter's
    own path: a warm cache converts nothing), quantize them for FP16-INT8 / FP32-INT8 through the
    cache (the quantizer's own path, on ``mirror.options.calibration``), and publish each IR file,
    verified, at ir/<key>/<model folder>/<precision>/<file> with its manifest entry. With
    ``delete``, the IR that no selected model needs goes: that of models not selected, and that of
    selected models made by these same tools under another key (an older descriptor or model file).
    Returns (models that failed, paths published)."""
    from .convert import IR_PRECISIONS, ConvertOptions, Converter, zoo_code
    from .download import DownloadOptions, Downloader
    from .errors import UsageError
    from .ir_cache import scan_ir
    from .mirror import now
    from .quantize import INT8_PRECISIONS
    from .verify import verify_file

    o, store, reporter = mirror.options, mirror.store, mirror.reporter
    if o.cache_dir is None:
        raise UsageError("--ir converts through the cache: give --cache_dir (the downloader's cache folder)")
    int8 = [p for p in INT8_PRECISIONS if p in precisions]
    if int8 and o.calibration is None:
        raise UsageError("--ir FP16-INT8/FP32-INT8 quantizes: give --dataset DIR (or --images DIR)")
    plain = frozenset(p for p in IR_PRECISIONS if p in precisions)
    converted = plain | ({"FP32"} if int8 else set())  # INT8 is quantized from FP32 IR
    failed: list[str] = []
    wanted: dict[str, tuple[Any, Any, str, str, Path]] = {}
    leaves = [(top, leaf) for top in models for leaf in top.leaf_models() if leaf.mo_args is not None]
    fsio.makedirs(o.cache_dir)
    with fsio.staged_dir(Path(o.cache_dir), ".ir-sync-") as work:
        dl = work / "dl"
        downloader = Downloader(DownloadOptions(dl, cache_dir=o.cache_dir, num_attempts=o.num_attempts,
                                                timeout=o.timeout, connections=o.connections, mirrors=o.upstream,
                                                precisions=o.precisions), reporter)
        failed += downloader.run([leaf for _, leaf in leaves], jobs=o.jobs)
        converter = Converter(ConvertOptions(download_dir=dl, output_dir=work / "ir", models_root=o.models_root,
                                             precisions=converted, backend=backend, cache_dir=o.cache_dir),
                              reporter)
        tools = f"{converter.engine.name} {converter.engine.version}"
        quantizer, q_tools = None, None
        if int8:
            from .quantize import Options, Quantizer

            quantizer = Quantizer(Options(ir_dir=work / "ir", output_dir=work / "int8", precisions=int8,
                                          cache_dir=o.cache_dir),
                                  say=reporter.say, warn=reporter.warning)
            q_tools = int8_tools(tools)
        for top, leaf in leaves:
            if leaf.name in failed:
                continue
            try:
                code = zoo_code(leaf, o.models_root)
                if code:  # decided before any script runs: its IR would have no key anyway
                    stage = "" if leaf is top else leaf.name + ": "
                    raise UsageError(f"{stage}it runs the zoo's own code ({'; '.join(code)}), so its IR has no "
                                     "conversion key; not converted, not mirrored")
                converter.convert(leaf)
                key = converter.keys.get(leaf.name)
                if key is None:
                    raise UsageError(f"{leaf.name}: its IR has no conversion key (an external --mo, a pre-convert "
                                     "script or a conversion to ONNX first); not mirrored")
                q_key = None
                if quantizer is not None:
                    quantizer.run(leaf, o.models_root, o.calibration)
                    q_key = quantizer.keys[leaf.name]
            except ModelzooError as exc:
                reporter.failure(top.name, exc)
                failed.append(top.name)
                continue
            model_dir = leaf.subdirectory.as_posix()
            if plain:
                folder = work / "ir" / leaf.subdirectory
                for f in scan_ir(folder):
                    wanted[ir_rel(key, model_dir, f.path)] = (leaf, f, key, tools, folder / f.path)
            if q_key is not None and q_tools is not None:
                folder = work / "int8" / leaf.subdirectory
                for f in scan_ir(folder):
                    wanted[ir_rel(q_key, model_dir, f.path)] = (leaf, f, q_key, q_tools, folder / f.path)
        manifest, _ = store.read_manifest()
        recorded_before = (manifest or {}).get("files", {})
        listing = store.list()
        recorded: dict[str, dict[str, Any]] = {}
        published: list[str] = []
        stamp_time = now()
        for rel, (leaf, f, key, tools_, src) in wanted.items():
            old, there = recorded_before.get(rel), listing.get(rel)
            if old and there and old.get("sha384") == f.sha384 and old.get("size") == f.size \
                    and old.get("stamp") == there.stamp:
                continue  # present and vouched for
            with store.incoming(rel) as tmp:
                fsio.copy_file(src, tmp)
                verify_file(tmp, f.size, f.sha384, rel)
                present = store.publish(rel, tmp, f.size, f.sha384, mirror.cancel)
            recorded[rel] = {"model": leaf.name, "size": f.size, "sha384": f.sha384, "stamp": present.stamp,
                             "verified": stamp_time, "ir_key": key, "tools": tools_}
            published.append(rel)
            reporter.say(f"{'published':>10}  {rel}  {f.size} bytes, SHA-384 verified")
            reporter.emit("mirror_ir_published", model=leaf.name, path=rel, size=f.size, key=key, tools=tools_)
    doomed: set[str] = set()
    if delete:
        names = {leaf.name for _, leaf in leaves}
        ours = {tools, q_tools}  # IR these same tools made for a selected model under another key is stale
        doomed = {rel for rel, e in recorded_before.items() if rel.startswith(IR_PREFIX) and rel not in wanted
                  and (e.get("model") not in names or e.get("tools") in ours)}
    mirror.write_manifest(recorded, doomed)
    for rel in sorted(doomed):
        try:
            store.delete(rel, recorded_before[rel]["stamp"])
            reporter.say(f"{'deleted':>10}  {rel}")
        except ModelzooError as exc:
            reporter.warning(f"not deleting {rel}: {exc}")
    all_tools = tools if q_tools is None else f"{tools}; {q_tools}"
    reporter.emit("mirror_ir_end", files=len(wanted), published=len(published), deleted=len(doomed), failed=failed,
                  tools=all_tools)
    reporter.say(f"IR in {store.url}: {len(wanted)} files for {len(leaves) - len(failed)} models ({all_tools}); "
                 f"{len(published)} published, {len(doomed)} deleted")
    order = [top.name for top in models]
    return [n for n in order if n in failed], published


def audit_ir(auditor: Any, recorded: dict[str, Any], listing: dict[str, Any], model_names: set[str],
             quick: bool) -> list[Any]:
    """`mirror verify` for the IR of the selected models: each recorded IR file must be there,
    of its size, with its SHA-384 (quick: the stamp the manifest recorded vouches for it)."""
    from .mirror import MISSING, OK, WRONG_SHA, WRONG_SIZE, Finding

    out = []
    for rel in sorted(r for r, e in recorded.items() if r.startswith(IR_PREFIX) and e.get("model") in model_names):
        entry, there = recorded[rel], listing.get(rel)
        if there is None:
            out.append(Finding(rel, MISSING, f"IR of {entry['model']} ({entry.get('tools')}); expected "
                                             f"{entry['size']} bytes"))
            continue
        if there.size != entry["size"]:
            out.append(Finding(rel, WRONG_SIZE, f"{there.size} bytes, expected {entry['size']}", None, there))
            continue
        sha = entry["sha384"] if quick and there.stamp == entry.get("stamp") else None
        if sha is None:
            sha = auditor.store.stored_sha384(rel) if quick else None
        if sha is None:
            sha = auditor.store.hash(rel, auditor.cancel)[1]
        if sha != entry["sha384"]:
            out.append(Finding(rel, WRONG_SHA, f"got {sha[:16]}..., expected {entry['sha384'][:16]}...", None, there))
        else:
            out.append(Finding(rel, OK, "", None, there))
    return out


def repair_ir(auditor: Any, findings: list[Any], models: list[Any]) -> list[str]:
    """`verify --repair` for IR: convert the models whose IR is broken again (through the cache,
    with the backend their entries name) and publish it; an entry made by other tools than
    these (another OpenVINO) cannot be made again here and stays reported."""
    from .mirror import MISSING, REPAIRED, WRONG_SHA, WRONG_SIZE

    manifest, _ = auditor.store.read_manifest()
    recorded = (manifest or {}).get("files", {})
    broken = [f for f in findings if f.wanted is None and f.rel.startswith(IR_PREFIX)
              and f.status in (MISSING, WRONG_SIZE, WRONG_SHA) and f.rel in recorded]
    if not broken:
        return []
    if auditor.options.cache_dir is None:
        auditor.reporter.warning("IR is repaired by converting it again, through the cache: give --cache_dir")
        return sorted({recorded[f.rel]["model"] for f in broken})
    names = {recorded[f.rel]["model"] for f in broken}
    # the backend that made the IR (for INT8: the one that made the FP32 IR it was quantized
    # from, "nncf ... from <backend> ...") and the precisions to make again with it
    jobs: dict[str, set[str]] = {}
    for f in broken:
        tools = recorded[f.rel].get("tools", "")
        backend = (tools.split(" from ", 1)[1] if tools.startswith("nncf ") and " from " in tools else tools)
        jobs.setdefault(backend.split(" ", 1)[0], set()).add(f.rel.split("/")[-2])
    chosen = [m for m in models if any(leaf.name in names for leaf in m.leaf_models())]
    failed: list[str] = []
    for backend in sorted(b for b in jobs if b in ("mo", "ovc")):
        precisions = frozenset(jobs[backend])
        if any(p.endswith("-INT8") for p in precisions) and auditor.options.calibration is None:
            auditor.reporter.warning("INT8 IR is repaired by quantizing it again: give --dataset DIR (or --images)")
            precisions = frozenset(p for p in precisions if not p.endswith("-INT8"))
            if not precisions:
                continue
        failed += sync_ir(auditor, chosen, precisions, backend)[0]
    listing = auditor.store.list()
    manifest, _ = auditor.store.read_manifest()
    after = (manifest or {}).get("files", {})
    for f in broken:
        there, entry = listing.get(f.rel), after.get(f.rel)
        if there is not None and entry is not None and entry.get("stamp") == there.stamp \
                and entry.get("sha384") == recorded[f.rel]["sha384"]:
            f.status, f.detail = REPAIRED, f"was {f.status}; converted again"
    left = {recorded[f.rel]["model"] for f in broken if f.status != REPAIRED}
    return sorted(set(failed) | left)


def ir_table(manifest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What IR a mirror holds: one row per model and key, with the tools that made it (the
    OpenVINO release) and its precisions, sorted by model then tools."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rel, entry in ((manifest or {}).get("files") or {}).items():
        if not rel.startswith(IR_PREFIX):
            continue
        key = entry["ir_key"]
        parts = rel.split("/")
        row = rows.setdefault((entry["model"], key), {
            "model": entry["model"], "subdirectory": "/".join(parts[2:-2]), "tools": entry.get("tools", ""),
            "key": key, "precisions": [], "files": 0, "bytes": 0})
        if parts[-2] not in row["precisions"]:
            row["precisions"].append(parts[-2])
        row["files"] += 1
        row["bytes"] += entry["size"]
    for row in rows.values():
        row["precisions"].sort()
    return sorted(rows.values(), key=lambda r: (r["model"], r["tools"], r["key"]))
