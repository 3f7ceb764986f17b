"""`mirror.py sync --ir` and `verify --repair` of IR: IR made through the converter's and the
quantizer's own cached paths, then published below ``ir/<key>/<model folder>/<precision>/<file>``
by the mirror's own per-file routine, plan and manifest merge (pipeline.Syncer.sync, as a model's
files are), and audited by the same ``Auditor.audit_file`` (the layout and the read side are
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
from .plan import (MISSING, REPAIRED, WRONG_SHA, WRONG_SIZE, WantedIr, freed_signatures, ir_owned, make_plan,
                   outdated_signatures)
from ..convert.quantize import INT8_PRECISIONS, nncf_version
from .voice import IrVoice


def int8_tools(conversion_tools: str) -> str:
    """What made INT8 IR, as its manifest entries say it: NNCF and the OpenVINO that ran it, and
    the tools that made the FP32 IR it was quantized from (read back by repair_ir)."""
    return f"nncf {nncf_version()} openvino {openvino_version()} from {conversion_tools}"


def sync_ir(mirror: Any, models: list[Any], precisions: frozenset[str], backend: str,
            delete: bool = False, signs: bool = False) -> tuple[list[str], list[str]]:
    """`mirror.py sync --ir`: convert the selected models through the cache (the converter's
    own path: a warm cache converts nothing), quantize them for FP16-INT8 / FP32-INT8 through the
    cache (the quantizer's own path, on ``mirror.options.calibration``), and publish each IR file,
    verified, at ir/<key>/<model folder>/<precision>/<file> with its manifest entry, through the
    mirror's own plan and per-file routine (``mirror.sync``: present files are left alone). With
    ``delete``, the IR that no selected model needs goes: that of models not selected, and that of
    selected models made by these same tools under another key (an older descriptor or model file),
    and with it the signature of each IR folder left without files (``<precision>.sig``). A run
    that does not sign (``signs`` False) deletes the signature of each folder it published other
    bytes into (plan.outdated_signatures); one that signs re-signs them afterwards (trust/publish.py).
    Returns (models that failed, paths published).

    Raises:
        UsageError: no cache, or INT8 without a data set.
        MirrorAccessError, DiskFullError, OutputNotWritableError: no file could be published.
        Interrupted: on Ctrl-C.
    """

    o, store, reporter = mirror.options, mirror.store, mirror.reporter
    if o.cache_dir is None:
        raise UsageError("--ir converts through the cache: give --cache_dir (the downloader's cache folder)")
    int8 = [p for p in INT8_PRECISIONS if p in precisions]
    if int8 and o.calibration is None:
        raise UsageError("--ir FP16-INT8/FP32-INT8 quantizes: give --dataset DIR (or --images DIR)")
    plain = frozenset(p for p in IR_PRECISIONS if p in precisions)
    converted = plain | ({"FP32"} if int8 else set())  # INT8 is quantized from FP32 IR
    failed: list[str] = []
    wanted: dict[str, WantedIr] = {}
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
            made = [(work / "ir", key, tools)] if plain else []
            if q_key is not None and q_tools is not None:
                made.append((work / "int8", q_key, q_tools))
            for root, key_, tools_ in made:
                folder = root / leaf.subdirectory
                for f in scan_ir(folder):
                    rel = ir_rel(key_, leaf.subdirectory.as_posix(), f.path)
                    wanted[rel] = WantedIr(rel, f.size, f.sha384, leaf.name, key_, tools_, top.name, folder / f.path)
        manifest, _ = store.read_manifest()
        # IR these same tools made for a selected model under another key is stale, as is IR of
        # models not selected: --delete's to remove
        owned = ir_owned({leaf.name for _, leaf in leaves}, {tools, q_tools} - {None})
        # (o.full: sync --verify full, or verify --repair without --quick, re-hashes IR there too)
        plan = make_plan(list(wanted.values()), manifest, store.list(), full=o.full, delete=delete, owned=owned)
        result = mirror.sync(plan, manifest, full=o.full, voice=IrVoice(reporter))
    failed += [m for m in result.failed if m not in failed]
    copied = [x.wanted for x in result.outcomes if x.error is None and x.how == "copied"]
    published = [w.rel for w in copied]
    if plan.delete:
        delete_freed_signatures(store, plan.delete, reporter)
    if not signs and copied:
        before = (manifest or {}).get("files", {})
        delete_signatures(store, outdated_signatures([w for w in copied if isinstance(w, WantedIr)], before),
                          reporter)
    all_tools = tools if q_tools is None else f"{tools}; {q_tools}"
    reporter.emit("mirror_ir_end", files=len(wanted), published=len(published), deleted=len(result.deleted),
                  failed=failed, tools=all_tools)
    reporter.say(f"IR in {store.url}: {len(wanted)} files for {len(leaves) - len(failed)} models ({all_tools}); "
                 f"{len(published)} published, {len(result.deleted)} deleted")
    order = [top.name for top in models]
    return [n for n in order if n in failed], published


def delete_freed_signatures(store: Any, dropped: list[str], reporter: Any) -> None:
    """After --delete dropped IR from the manifest: the per-IR signatures (trust/signing.py) of
    the folders the manifest now names no file in go too; a signature left behind would vouch
    for IR the mirror no longer holds. Decided on the manifest as written (a concurrent run's
    entries count), and only the mirror's own signature names are touched."""
    manifest, _ = store.read_manifest()
    delete_signatures(store, freed_signatures(dropped, (manifest or {}).get("files", {})), reporter)


def delete_signatures(store: Any, sigs: list[str], reporter: Any) -> None:
    """Delete these per-IR signatures where they are (a failure is a warning: the IR is published)."""
    for sig in sigs:
        there = store.stat(sig)
        if there is None:
            continue
        try:
            store.delete(sig, there.stamp)
            reporter.status("deleted", sig)
        except ModelzooError as exc:
            reporter.warning(f"not deleting {sig}: {exc}")




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


