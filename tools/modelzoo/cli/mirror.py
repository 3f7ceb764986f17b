"""mirror: sync a verified mirror of a zoo to a folder or S3 (`sync`), audit and repair it (`verify`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..events import Reporter
from ..sync.pipeline import Auditor, MirrorOptions, Syncer
from ..mirror.stores import MANIFEST, FolderStore, open_store
from .common import (
    OneLineParser, add_cluster_arg, add_offline_arg, add_selection_args, add_shard_arg, add_space_args, add_trust_args,
    apply_offline, apply_trust, check_download_mirrors, cluster_executor, enforce_cache_budget, error_line, parallel_int,
    parse_precisions, positive_float, positive_int, run, select_models, shard_models, summarize, descriptor_inputs, model_file_outputs,
    refuse_outputs_over_inputs,
)

if TYPE_CHECKING:
    from ..descriptor import Model
    from ..mirror.manifest import Store
    from ..trust.policy import Policy

PROG = "modelzoo-mirror"
EPILOG = ("Exit codes: 0 every selected model mirrored (verify: the mirror is clean); 1 a model failed "
          "(verify: a problem was found); 2 bad command line or descriptor (--strict); 130 interrupted.")


def _common(p: argparse.ArgumentParser, verb: str) -> None:
    add_selection_args(p, verb)
    p.add_argument("--cache_dir", type=Path, metavar="DIR", help="content-addressed cache shared with the downloader")
    p.add_argument("-j", "--jobs", type=parallel_int, metavar="N", default=8, help="up to N downloads (and N uploads to S3) at once (default 8)")
    p.add_argument("--num_attempts", type=positive_int, metavar="N", default=3,
                   help="try each download up to N times (default 3)")
    p.add_argument("--connections", type=parallel_int, metavar="N", default=8,
                   help="fetch a file of 16 MB or more over up to N connections when the server allows "
                        "(default 8; 1: one connection a file), as the downloader does")
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS", default=60.0,
                   help="connect and read timeout for sources (default 60)")
    p.add_argument("--mirror", action="append", default=[], metavar="URL",
                   help="an upstream mirror to read from before the descriptors' sources (repeatable)")
    p.add_argument("--progress_format", choices=("text", "json"), default="text",
                   help="text for people, json for scripts (one event a line)")
    p.add_argument("--s3_endpoint", metavar="URL",
                   help="S3 endpoint for s3:// destinations (default: AWS_ENDPOINT_URL, else AWS)")
    data = p.add_argument_group("calibration data (INT8 IR: --ir FP16-INT8, verify --repair)")
    data.add_argument("--dataset", type=Path, metavar="DIR",
                      help="a COCO-format folder (DIR/val2017/, DIR/annotations/instances_val2017.json), as the "
                           "quantizer's")
    data.add_argument("--images", type=Path, metavar="DIR", help="an image folder (as the quantizer's)")
    data.add_argument("--annotations", type=Path, metavar="FILE", help="COCO annotations for --images")
    add_offline_arg(p)
    add_space_args(p, budget=True)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, epilog=EPILOG,
        description="Keep a verified mirror of a zoo in a folder or an S3 bucket, in the layout "
                    "`downloader.py --mirror` reads.")
    sub = parser.add_subparsers(dest="command", metavar="{sync,verify}")
    sub.required = True
    s = sub.add_parser("sync", epilog=EPILOG, help="write every file of the selected models to DEST",
                       description="Write every file of the selected models to DEST/<model folder>/<file>, each "
                                   "verified before it is published, then the manifest DEST/" + MANIFEST + ".")
    _common(s, "mirror")
    s.add_argument("--to", dest="dest", required=True, metavar="DEST",
                   help="a folder, file:///path or s3://bucket/prefix")
    s.add_argument("--verify", choices=("quick", "full"), default="quick",
                   help="full: re-hash what DEST holds before trusting it (default quick: manifest, sizes, metadata)")
    s.add_argument("--delete", action="store_true",
                   help="remove files the manifest owns that no selected descriptor names (nothing else)")
    s.add_argument("--dry_run", action="store_true", help="print the plan and change nothing")
    s.add_argument("--ir", metavar="PRECISIONS", type=_ir_precisions,
                   help="also convert the selected models (through --cache_dir's IR cache) to these precisions "
                        "(FP16,FP32; FP16-INT8,FP32-INT8 quantized as quantizer.py does, with --dataset) and publish "
                        "the IR at DEST/ir/<key>/<model folder>/<precision>/")
    s.add_argument("--backend", choices=("auto", "mo", "ovc"), default="auto",
                   help="the converter's backend for --ir (as converter.py --backend)")
    s.add_argument("--changes", type=Path, metavar="FILE",
                   help="write the paths added or replaced (relative to DEST), one a line")
    add_trust_args(s)
    s.add_argument("--sign_key", type=Path, metavar="KEY.pem",
                   help="sign the manifest (and the SBOM, and each IR folder) with this elliptic-curve private key, "
                        "last, with OpenSSF model signing in key mode (the 'sign' extra)")
    s.add_argument("--sbom", action="store_true",
                   help="write DEST/modelzoo-sbom.cdx.json, a CycloneDX 1.6 ML-BOM of what the mirror holds")
    s.add_argument("--accuracy_json", type=Path, action="append", default=[], metavar="FILE",
                   help="the accuracy tool's --json records, for the SBOM's measured accuracy (repeatable)")
    add_shard_arg(s, "selected models (their files and, with --ir, their IR); shards may run at once into one DEST: "
                     "the manifest is merged")
    add_cluster_arg(s, "--ir conversions (one model a job; the cache folder must be shared by the nodes)")
    v = sub.add_parser("verify", epilog=EPILOG, help="audit DEST against the descriptors",
                       description="Audit a mirror against the descriptors: missing files, wrong size, wrong SHA-384, "
                                   "files the manifest does not know.")
    _common(v, "verify")
    v.add_argument("--at", dest="dest", required=True, metavar="DEST", help="a folder, file:///path or s3://bucket/prefix")
    v.add_argument("--quick", action="store_true",
                   help="check sizes and stored checksums (S3 metadata, the manifest) instead of re-hashing")
    v.add_argument("--repair", action="store_true",
                   help="re-fetch what is broken through the verified path and fix the manifest")
    add_trust_args(v, signatures=True)
    return parser


def _ir_precisions(text: str) -> frozenset[str]:
    from ..convert.pipeline import IR_PRECISIONS
    from ..convert.quantize import INT8_PRECISIONS

    known = (*IR_PRECISIONS, *INT8_PRECISIONS)
    chosen = frozenset(p.strip() for p in text.split(",") if p.strip())
    if not chosen or not chosen <= set(known):
        raise argparse.ArgumentTypeError(f"{text!r}: expected some of {', '.join(known)}, comma-separated")
    return chosen


def _calibration(parser: argparse.ArgumentParser, args: argparse.Namespace) -> object:
    """The data set INT8 IR is quantized on (sync --ir ...-INT8, verify --repair), checked before
    any work; None when none is given (then INT8 in --ir is a command-line error)."""
    wants_int8 = any(p.endswith("-INT8") for p in (getattr(args, "ir", None) or ()))
    if args.dataset is None and args.images is None and args.annotations is None:
        if wants_int8:
            parser.error("--ir FP16-INT8/FP32-INT8 quantizes: give --dataset DIR (or --images DIR)")
        return None
    if wants_int8:
        from .quantizer import _require_extra

        _require_extra()  # NNCF and the rest of the 'quantize' extra: one line before any work
    from ..accuracy.dataset import check_pictures, resolve

    dataset = resolve(args.dataset, args.images, args.annotations, need_annotations=False)
    if wants_int8:  # the pictures the quantizer calibrates on, as it checks them: before the download
        from ..convert.quantize import Options

        check_pictures(dataset.subset(Options.subset))
    return dataset


def _terminate(signum, frame):  # SIGTERM cleans up like Ctrl-C
    raise KeyboardInterrupt


def _options(args: argparse.Namespace, precisions: frozenset[str], models_root: Path,
             protected: list[str]) -> MirrorOptions:
    sync = args.command == "sync"
    return MirrorOptions(cache_dir=args.cache_dir.absolute() if args.cache_dir else None, jobs=args.jobs,
                         num_attempts=args.num_attempts, timeout=args.timeout, upstream=args.mirror,
                         connections=args.connections, precisions=precisions, models_root=models_root,
                         protected=protected, full=args.verify == "full" if sync else not args.quick,
                         delete=sync and args.delete, dry_run=sync and args.dry_run,
                         changes=args.changes if sync else None, repair=not sync and args.repair,
                         space_check=not args.no_space_check)


def _append_changes(path: Path, rels: list[str]) -> None:
    """Add the IR published to the --changes list the file sync wrote."""
    from .. import fsio

    try:
        old = path.absolute().read_bytes()
    except FileNotFoundError:
        old = b""
    fsio.write_bytes(path.absolute(), old + "".join(r + "\n" for r in rels).encode("utf-8", "surrogateescape"))


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    precisions = parse_precisions(args.precisions)
    if getattr(args, "ir", None) and args.cache_dir is None:
        parser.error("--ir converts through the cache: give --cache_dir")
    calibration = _calibration(parser, args)
    selected = select_models(parser, args)
    if selected is None:
        return 0
    catalog, models, failed_to_load = selected
    if getattr(args, "shard", None) is not None:
        if args.delete:  # a shard knows only its own models: it would delete the others'
            parser.error("--delete cannot be used with --shard (a shard would remove the other shards' files); "
                         "run one sync --delete over the whole selection after the shards")
        if args.sign_key is not None or args.sbom:  # a shard's manifest is not the mirror's last one
            parser.error("--sign_key and --sbom cannot be used with --shard (the other shards change the manifest "
                         "afterwards); sign and write the SBOM with one sync over the whole selection after the shards")
        models, failed_to_load = shard_models(PROG, args.shard, models, failed_to_load)
    if args.cache_max_size is not None and args.cache_dir is None:
        parser.error("--cache_max_size needs --cache_dir")
    apply_offline(args)
    check_download_mirrors(parser, args.mirror)
    policy = apply_trust(PROG, args, models, catalog.root, failed_to_load)  # --locked: refused before any work
    reporter = Reporter(args.progress_format, bars=False, line=error_line(PROG))
    store = open_store(args.dest, s3_endpoint=args.s3_endpoint, jobs=args.jobs, num_attempts=args.num_attempts,
                       timeout=args.timeout)
    if args.command == "sync":  # a mirror folder (or --changes) over a descriptor or --list: refused first
        outputs = [("--changes", args.changes)] if args.changes is not None else []
        if isinstance(store, FolderStore):
            outputs += model_file_outputs("--to", store.root, models)
        refuse_outputs_over_inputs(outputs, descriptor_inputs(models, args.list))
    trust = _trust_before(args, store)
    signed = _verify_signature(args, reporter)  # verify --trust_key: before any entry is read
    options = _options(args, precisions, catalog.root, [catalog.folder(n) for n in failed_to_load])
    options.calibration = calibration
    if args.command == "sync" and not args.dry_run:
        _locked_preflight(policy, store, options, models)
    if options.repair:  # verify --repair --locked: the same HEAD preflight, on what it re-fetches
        options.before_fetch = policy.before_fetch(options.timeout, max(options.jobs, 8))
    if getattr(args, "ir", None) and not args.dry_run:
        options.executor = cluster_executor(args)
    if not (args.command == "sync" and args.dry_run):
        signal.signal(signal.SIGTERM, _terminate)
    pipeline = (Syncer if args.command == "sync" else Auditor)(store, options, reporter)
    ir = getattr(args, "ir", None)
    try:
        failed = pipeline.run(models, args.jobs)
        if ir and not args.dry_run:
            from ..sync.ir import sync_ir

            ir_failed, published = sync_ir(pipeline, models, ir, args.backend, delete=args.delete,
                                          signs=getattr(args, "sign_key", None) is not None)
            failed += [m for m in ir_failed if m not in failed]
            if args.changes is not None and published:
                _append_changes(args.changes, published)
        if trust is not None and not args.dry_run:  # the SBOM, then the signatures, the manifest's last
            from ..trust.publish import after_sync

            after_sync(store, models, catalog.root, trust[0], args.sbom, published if ir else [], trust[1],
                       reporter.say, reporter.emit)
        if pipeline.manifest_changed and (trust is None or trust[0] is None):
            from ..mirror.manifest import SIGNATURE
            from ..sync.ir import delete_signatures

            if store.stat(SIGNATURE) is not None:  # it signs the manifest as it was: it no longer verifies
                delete_signatures(store, [SIGNATURE], reporter)
                reporter.warning(f"{store.url}: the manifest changed without --sign_key, so its signature "
                                 f"({SIGNATURE}) was deleted; sync again with --sign_key to sign the mirror")
    finally:
        pipeline.close()
    if args.cache_max_size is not None and not (args.command == "sync" and args.dry_run):
        enforce_cache_budget(options.cache_dir, args.cache_max_size, models, reporter)
    if args.command == "sync":
        return summarize(PROG, failed_to_load + [m for m in failed if m not in failed_to_load])
    summarize(PROG, failed_to_load + list(pipeline.failed_repairs))
    return 0 if not failed and not failed_to_load and signed else 1


def _locked_preflight(policy: Policy, store: Store, options: MirrorOptions, models: list[Model]) -> None:
    """sync --locked: the files the plan would fetch (not in DEST as the manifest says, not in the
    cache) are asked for with HEAD requests before any work (trust/lock.py: preflight).

    Raises:
        LockError: a file upstream no longer serves as locked (exit 2, nothing written).
    """
    check = policy.before_fetch(options.timeout, max(options.jobs, 8))
    if check is None:
        return
    from ..sync.pipeline import fetch_sources
    from ..sync.plan import FETCH, Wanted, make_plan, wanted_files

    plan = make_plan(wanted_files(models, options.precisions, options.models_root),
                     store.read_manifest()[0], store.list())
    check(fetch_sources([w for w in plan.of(FETCH) if isinstance(w, Wanted)], options))


def _trust_before(args: argparse.Namespace, store: object) -> tuple[object, list] | None:
    """sync --sign_key / --sbom / --accuracy_json, checked before any work: (the key, the records)."""
    if args.command != "sync" or not (args.sign_key or args.sbom):
        return None
    from ..trust.publish import check_sbom_target, read_records
    from ..trust.signing import load_private_key

    if args.sbom:
        check_sbom_target(store)
    return (load_private_key(args.sign_key) if args.sign_key else None), read_records(args.accuracy_json)


def _verify_signature(args: argparse.Namespace, reporter: Reporter) -> bool:
    """verify --trust_key: which key the manifest's signature verified with, or why it did not."""
    from ..trust.policy import trusted_key_paths

    keys = trusted_key_paths(getattr(args, "trust_key", None) or [])
    if args.command != "verify" or not keys:
        return True
    from ..trust.publish import verify_signature

    ok, text = verify_signature(args.dest, keys, args.timeout)
    if ok:
        reporter.say(text)
    else:
        print(error_line(PROG)("error", text), file=sys.stderr)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
