"""mirror: sync a verified mirror of a zoo to a folder or S3 (`sync`), audit and repair it (`verify`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

from ..errors import FileSystemError, UsageError
from ..events import Reporter, human_size
from ..mirror import (
    CHECK, FETCH, OK, REPAIRED, STATUSES, UNKNOWN, Auditor, MirrorOptions, Syncer, check_proxies, make_plan,
    wanted_files,
)
from ..stores import MANIFEST, open_store
from .common import (
    add_selection_args, error_line, parallel_int, parse_precisions, positive_float, positive_int, run, select_models,
)

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    s.add_argument("--changes", type=Path, metavar="FILE",
                   help="write the paths added or replaced (relative to DEST), one a line")
    v = sub.add_parser("verify", epilog=EPILOG, help="audit DEST against the descriptors",
                       description="Audit a mirror against the descriptors: missing files, wrong size, wrong SHA-384, "
                                   "files the manifest does not know.")
    _common(v, "verify")
    v.add_argument("--at", dest="dest", required=True, metavar="DEST", help="a folder, file:///path or s3://bucket/prefix")
    v.add_argument("--quick", action="store_true",
                   help="check sizes and stored checksums (S3 metadata, the manifest) instead of re-hashing")
    v.add_argument("--repair", action="store_true",
                   help="re-fetch what is broken through the verified path and fix the manifest")
    return parser


def _terminate(signum, frame):  # SIGTERM cleans up like Ctrl-C
    raise KeyboardInterrupt


def _options(args: argparse.Namespace) -> MirrorOptions:
    return MirrorOptions(cache_dir=args.cache_dir.absolute() if args.cache_dir else None, jobs=args.jobs,
                         num_attempts=args.num_attempts, timeout=args.timeout, upstream=args.mirror,
                         connections=args.connections)


def _check_upstream(parser: argparse.ArgumentParser, urls: list[str]) -> None:
    for m in urls:
        if not m.startswith(("http://", "https://", "file://", "s3://")):
            parser.error(f"--mirror {m!r}: expected an http://, https://, file:// or s3:// URL")
        if m.startswith("s3://"):
            from ..fetch import opener_for

            opener_for("s3")  # boto3 (the [s3] extra) now: a missing extra is one line before any work


def _sync(args, parser, reporter, store, wanted, failed_to_load, catalog) -> int:
    manifest, _ = store.read_manifest()
    listing = store.list()
    protected = [catalog.folder(n) for n in failed_to_load]
    plan = make_plan(wanted, manifest, listing, full=args.verify == "full", delete=args.delete, protected=protected)
    fetch, check = plan.of(FETCH), plan.of(CHECK)
    fetch_bytes = sum(w.size for w in fetch)
    if args.dry_run:
        for w in fetch:
            reporter.say(f"     fetch  {w.rel}  {human_size(w.size)}")
        for w in check:
            reporter.say(f"     check  {w.rel}  {human_size(w.size)} (there, not vouched for by the manifest)")
        for rel in plan.delete:
            reporter.say(f"    delete  {rel}")
        reporter.emit("mirror_plan", fetch=len(fetch), fetch_bytes=fetch_bytes, check=len(check),
                      present=len(wanted) - len(fetch) - len(check), delete=len(plan.delete),
                      files=[w.rel for w in fetch], deletes=plan.delete)
        reporter.say(f"plan for {store.url}: {len(wanted)} files selected; {len(fetch)} to fetch "
                     f"({human_size(fetch_bytes)}, {fetch_bytes:,} bytes), {len(check)} to check, "
                     f"{len(wanted) - len(fetch) - len(check)} present, {len(plan.delete)} to delete; "
                     "nothing changed (dry run)")
        return _summary(failed_to_load)
    check_proxies(fetch, args.mirror, args.timeout)
    if args.changes:
        _check_writable(args.changes)  # before the first byte: a rerun would have nothing to list
    for rel in store.remove_dead():
        reporter.say(f"{'removed':>10}  {rel} (a temporary left by a run that was killed)")
    signal.signal(signal.SIGTERM, _terminate)
    syncer = Syncer(store, _options(args), reporter)
    try:
        result = syncer.sync(plan, manifest, full=args.verify == "full")
    finally:
        syncer.close()
    if args.changes:
        _write_changes(args.changes, result.changes())
    reporter.emit("mirror_sync_end", fetched=result.count("fetched", "cached"),
                  fetched_bytes=result.bytes("fetched", "cached"), adopted=result.count("adopted", "verified"),
                  present=result.count("present"), deleted=len(result.deleted), failed=result.failed,
                  manifest_written=result.manifest_written, upstream_requests=syncer.upstream_requests)
    reporter.say(f"synced {store.url}: {len(wanted)} files; {result.count('fetched', 'cached')} published "
                 f"({human_size(result.bytes('fetched', 'cached'))}), {result.count('adopted', 'verified')} "
                 f"checked in place, {result.count('present')} unchanged, {len(result.deleted)} deleted"
                 + ("; manifest updated" if result.manifest_written else "; manifest unchanged"))
    return _summary(failed_to_load + [m for m in result.failed if m not in failed_to_load])


def _check_writable(path: Path) -> None:
    """--changes can be written there (a temporary beside it is made and removed)."""
    from .. import fsio

    path = path.absolute()
    try:
        if path.is_dir():
            raise UsageError(f"--changes {path}: a folder, not a file")
        with fsio.temporary_beside(path) as tmp:
            fsio.Writer(tmp, "wb").close()
    except FileSystemError as exc:
        raise UsageError(f"--changes {path} cannot be written ({exc})") from exc


def _write_changes(path: Path, paths: list[str]) -> None:
    from .. import fsio

    fsio.write_bytes(path.absolute(), "".join(p + "\n" for p in paths).encode("utf-8", "surrogateescape"))


def _verify(args, parser, reporter, store, wanted, failed_to_load) -> int:
    manifest, _ = store.read_manifest()
    listing = store.list()
    signal.signal(signal.SIGTERM, _terminate)
    auditor = Auditor(store, _options(args), reporter)
    try:
        findings = auditor.audit(wanted, manifest, listing, quick=args.quick)
        failed_repairs: list[str] = []
        if args.repair:
            failed_repairs = auditor.repair(findings)
    finally:
        auditor.close()
    problems = [f for f in findings if f.status != OK]
    if problems and args.progress_format == "text":
        width = max(len(f.status) for f in problems)
        print(f"{'STATUS':<{width}}  PATH  DETAIL")
        for f in problems:
            print(f"{f.status:<{width}}  {f.rel}  {f.detail}")
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    remaining = [f for f in findings if f.status not in (OK, REPAIRED)]
    clean = not remaining and not failed_to_load
    checked = [f for f in findings if f.wanted is not None]
    text = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
    mode = "sizes and stored checksums" if args.quick else "full SHA-384"
    reporter.emit("mirror_verify_end", clean=clean, counts=counts, files=len(checked))
    reporter.say(f"verify {store.url} ({mode}): {len(checked)} files ({human_size(sum(f.wanted.size for f in checked))}): "
                 f"{text or 'nothing selected'}; " + ("clean" if clean else "NOT clean"))
    if [f for f in remaining if f.status == UNKNOWN] and args.repair:
        reporter.say("unknown files are not touched: the manifest does not say the mirror owns them")
    failed = failed_to_load + failed_repairs
    if failed:
        print(f"{PROG}: failed: {', '.join(failed)}", file=sys.stderr)
    return 0 if clean else 1


def _summary(failed: list[str]) -> int:
    if failed:
        print(f"{PROG}: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    precisions = parse_precisions(args.precisions)
    selected = select_models(parser, args)
    if selected is None:
        return 0
    catalog, models, failed_to_load = selected
    _check_upstream(parser, args.mirror)
    reporter = Reporter(args.progress_format, bars=False, line=error_line(PROG))
    store = open_store(args.dest, s3_endpoint=args.s3_endpoint, jobs=args.jobs, num_attempts=args.num_attempts,
                       timeout=args.timeout)
    wanted = wanted_files(models, precisions, catalog.root)
    if args.command == "sync":
        return _sync(args, parser, reporter, store, wanted, failed_to_load, catalog)
    return _verify(args, parser, reporter, store, wanted, failed_to_load)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
