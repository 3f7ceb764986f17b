"""`mirror.py sync --ir` and `mirror.py verify` of IR: converted IR published into a mirror below
``ir/<key>/<model folder>/<precision>/<file>`` through the converter's and the quantizer's own
cached paths, audited and repaired as model files are (the layout and the read side are
mirror's ir_share.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import fsio
from ..convert.pipeline import IR_PRECISIONS, ConvertOptions, Converter, openvino_version, zoo_code
from ..download.pipeline import DownloadOptions, Downloader
from ..errors import ModelzooError, UsageError
from ..store.ir_cache import scan_ir
from ..mirror.ir_share import IR_PREFIX, ir_rel
from .plan import MISSING, REPAIRED, WRONG_SHA, WRONG_SIZE, now
from ..convert.quantize import INT8_PRECISIONS, nncf_version
from ..verify import verify_file


def int8_tools(conversion_tools: str) -> str:
    """What made INT8 IR, as its manifest entries say it: NNCF and the OpenVINO that ran it, and
    the tools that made the FP32 IR it was quantized from (read back by repair_ir)."""
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
            from ..convert.quantize import Options, Quantizer

            quantizer = Quantizer(Options(ir_dir=work / "ir", output_dir=work / "int8", precisions=int8,
                                          cache_dir=o.cache_dir), reporter)
            q_tools = int8_tools(tools)
        ready = []  # decided before any conversion or script runs
        for top, leaf in leaves:
            if leaf.name in failed:
                continue
            code = zoo_code(leaf, o.models_root)
            if code:  # its IR would have no key anyway
                stage = "" if leaf is top else leaf.name + ": "
                reporter.failure(top.name, UsageError(f"{stage}it runs the zoo's own code ({'; '.join(code)}), so its "
                                                      "IR has no conversion key; not converted, not mirrored"))
                failed.append(top.name)
            else:
                ready.append((top, leaf))
        # every conversion as a job of the run's executor (this process by default; processes or a
        # cluster engine through o.executor), like the converter's own command line
        not_converted = set(converter.run([leaf for _, leaf in ready], executor=o.executor))
        for top, leaf in ready:
            if leaf.name in not_converted:
                failed.append(top.name)
                continue
            try:
                # (converted here, the key is known already; in another process, worked out again here)
                key = converter.keys.get(leaf.name) or converter.key_for(leaf)
                if key is None:
                    raise UsageError(f"{leaf.name}: its IR has no conversion key (an external --mo, a pre-convert "
                                     "script or a PyTorch export); not mirrored")
                q_key = None
                if quantizer is not None:
                    quantizer.quantize(leaf, o.models_root, o.calibration)
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
            reporter.status("published", rel, f"{f.size} bytes, SHA-384 verified")
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
            reporter.status("deleted", rel)
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

    out = []
    for rel in sorted(r for r, e in recorded.items() if r.startswith(IR_PREFIX) and e.get("model") in model_names):
        entry = recorded[rel]
        out.append(auditor.audit_file(rel, entry["size"], entry["sha384"], entry, listing.get(rel), quick,
                                      missing=f"IR of {entry['model']} ({entry.get('tools')}); expected "
                                              f"{entry['size']} bytes"))
    return out


def repair_ir(auditor: Any, findings: list[Any], models: list[Any]) -> list[str]:
    """`verify --repair` for IR: convert the models whose IR is broken again (through the cache,
    with the backend their entries name) and publish it; an entry made by other tools than
    these (another OpenVINO) cannot be made again here and stays reported."""

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


