"""cache: list, verify, prune and remove what a download cache holds (`modelzoo-cache`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from ..store.cache import Cache, default_cache_dir, open_cache
from ..errors import CacheError, SelectionError
from ..events import human_size
from .common import positive_int, run, size_arg

TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of modelzoo-cache verify's start)
if TYPE_CHECKING:  # verify, on a zoo's cache as long as a few interpreter starts, imports what it needs
    from typing import Any, NoReturn, Sequence  # (cache_verify): the catalog, cache_admin and json are

    from ..store import cache_admin as admin  # imported by the commands that use them
    from ..catalog import Catalog

PROG = "modelzoo-cache"
EPILOG = ("Exit codes: 0 done (verify: the cache is clean); 1 verify found a problem, or the cache cannot be "
          "pruned (read-only, another prune running); 2 bad command line or cache folder; 130 interrupted.")
DAY = 86400.0


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size() says it ($COLUMNS, else the terminal of
    stdout, else 80), without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """argparse's own, but its width found without shutil: argparse makes a formatter for every
    argument added, and its import of shutil (with zlib, bz2 and lzma) was 2-4 ms of verify's
    start, for help that is almost never printed."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """Bad input is one line on stderr (argparse would print its usage first)."""

    def __init__(self, *args: Any, formatter_class: type = _Formatter, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1e6:  # (also refuses nan and inf)
        raise argparse.ArgumentTypeError(f"must be a number of days from 0 to 1000000 (got {text!r})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, epilog=EPILOG,
                     description="List, verify and prune the content-addressed download cache.")

    def common(p: argparse.ArgumentParser, zoo: bool = True) -> argparse.ArgumentParser:
        # (added to each subcommand, not through parents=: two parsers fewer to build on every start)
        p.add_argument("--cache_dir", type=Path, metavar="DIR", default=None,
                       help=f"the cache (default: {default_cache_dir()})")
        p.add_argument("--json", action="store_true", help="print one JSON document for scripts (sizes in bytes)")
        if zoo:
            p.add_argument("--models_dir", type=Path, metavar="DIR", default=None,
                           help="the zoo whose descriptors say which model a file belongs to (default: the one "
                                "shipped with modelzoo)")
        return p

    sub = parser.add_subparsers(dest="command", metavar="{ls,verify,prune,rm}")
    sub.required = True
    ls = common(sub.add_parser("ls", epilog=EPILOG, help="what the cache holds, per model",
                        description="Per model: files cached, bytes, bytes shared with other models, last use; "
                                    "then blobs no descriptor names, partial downloads, the IR cache's conversions "
                                    "(if there is one) and totals."))
    ls.add_argument("--name", metavar="PAT[,PAT...]", help="only models matching these shell-style patterns")
    ls.add_argument("--list", type=Path, metavar="FILE.LST", help="only models named in FILE")
    v = common(sub.add_parser("verify", epilog=EPILOG, help="re-hash every blob",
                              description="Re-hash every blob against the SHA-384 that is its name, on every core; "
                                          "list corrupt blobs and files the cache did not make; exit 1 unless clean."),
               zoo=False)
    v.add_argument("--repair", action="store_true",
                   help="remove corrupt blobs and stray files (a blob that changed while read is left)")
    v.add_argument("-j", "--jobs", type=positive_int, metavar="N", default=None,
                   help="hash in N worker processes (default: one per core)")
    p = common(sub.add_parser("prune", epilog=EPILOG, help="remove entries by size, age or use",
                              description="Remove cache entries: partial downloads, blobs no descriptor names, "
                                          "entries unused for DAYS, then least recently used first down to a size. "
                                          "Entries another process is using are left alone."))
    p.add_argument("--max_size", type=size_arg, metavar="SIZE",
                   help="remove least recently used entries until the cache holds at most SIZE (bytes, or "
                        "with K, M, G, T = powers of 1000, KiB, MiB, GiB, TiB = powers of 1024: 500M, 20G, 1.5GiB)")
    p.add_argument("--older_than", type=_days, metavar="DAYS", help="remove entries not used for DAYS days")
    p.add_argument("--unreferenced", action="store_true", help="remove blobs no descriptor of the zoo names")
    p.add_argument("--partials", action="store_true", help="remove partial downloads (kept for resuming)")
    p.add_argument("--keep", metavar="PAT[,PAT...]", help="never remove the files of models matching these patterns")
    p.add_argument("--dry_run", action="store_true", help="print what would be removed and freed; remove nothing")
    r = common(sub.add_parser("rm", epilog=EPILOG, help="remove the files of some models",
                              description="Remove the cached files (and partial downloads) of the models matching "
                                          "PATTERN."))
    r.add_argument("--name", metavar="PAT[,PAT...]", required=True, help="shell-style patterns of model names")
    r.add_argument("--dry_run", action="store_true", help="print what would be removed; remove nothing")
    return parser


# -- formatting


def shown(path: Path | str) -> str:
    """A path as one printable line whatever its bytes (a cache holds what anyone put there):
    bytes that are not UTF-8 as \\xff, control characters (a newline) escaped. JSON gives the name itself."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _entry_json(e: admin.Entry) -> dict[str, Any]:
    return {"sha384": e.sha384, "kind": e.kind, "path": str(e.path), "bytes": e.size, "last_used": iso(e.last_used),
            "links": e.links}


def _table(rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())


# -- conversions


def _conversion_json(c: admin.Conversion) -> dict[str, Any]:
    return {"key": c.key, "path": str(c.path), "model": c.model, "precisions": c.precisions, "backend": c.backend,
            "backend_version": c.backend_version, "tools": c.tools, "bytes": c.bytes,
            "last_used": iso(c.last_used), "broken": c.problem}


def _conversion_table(conv: list[admin.Conversion]) -> None:
    """The IR cache's entries (a broken one is one line saying why); keys shortened to 12 digits."""
    rows = [["CONVERSION", "PRECISIONS", "BACKEND", "KEY", "SIZE", "LAST USED"]]
    for c in sorted(conv, key=lambda c: (c.problem is not None, c.model or "", c.key)):
        if c.problem is not None:
            rows.append(["(broken)", "-", "-", c.key[:12], "-", f"{when(c.last_used)}  {c.problem}"])
            continue
        versions = " ".join([f"{c.backend or '?'} {c.backend_version or '?'}"]
                            + [f"{tool} {version}" for tool, version in sorted(c.tools.items())])
        rows.append([shown(c.model or "?"), ",".join(c.precisions), shown(versions), c.key[:12],
                     human_size(c.bytes), when(c.last_used)])
    _table(rows, {4})


# -- models


def _catalog(args: argparse.Namespace, cache: Cache) -> Catalog:
    from ..catalog import Catalog
    from ..descriptor_memo import DescriptorMemo
    from ..resources import default_models_dir

    return Catalog(args.models_dir or default_models_dir(), memo=DescriptorMemo(cache.root))


def _load(catalog: Catalog, names: list[str], needed: set[str] = frozenset(), why: str = "") -> list:
    """The models that load; an invalid descriptor is a warning (its files then look unreferenced),
    and for a model in ``needed`` an error, ``why`` naming the flag (prune --unreferenced needs
    them all, --keep those it keeps): its files must not go for a typo in it."""
    loaded = catalog.load_each(names)
    broken = {id(e): e for e in loaded.failed.values()}.values()
    refused = sorted(n for n in loaded.failed if n in needed)
    if refused:
        raise CacheError(f"{why}: cannot tell which files {', '.join(refused)} name ({loaded.failed[refused[0]]}); "
                         "nothing removed")
    for exc in broken:
        print(f"{PROG}: warning: {exc} (its files count as unreferenced)", file=sys.stderr)
    if catalog.memo is not None:
        catalog.memo.save()
    return loaded.models


def _selected(args: argparse.Namespace, catalog: Catalog) -> list[str]:
    from ..catalog import read_list_file, split_names

    if args.name is not None and getattr(args, "list", None) is not None:
        raise SelectionError("give --name or --list, not both")
    if args.name is not None:
        return catalog.select_names(split_names(args.name))
    if getattr(args, "list", None) is not None:
        return catalog.select_names(read_list_file(args.list))
    return catalog.names()


# -- commands


def _ls(args: argparse.Namespace, cache: Cache) -> int:
    import json

    from ..store import cache_admin as admin

    catalog = _catalog(args, cache)
    found = admin.scan(cache)
    models = _load(catalog, _selected(args, catalog))
    rows, unreferenced = admin.usage(models, found)
    if args.name is None and args.list is None:
        rows = [r for r in rows if r.cached]  # every model of a zoo would bury the few that are cached
    partials = found.partials()
    blobs = found.blobs()
    total = sum(e.size for e in found.entries)
    converted = admin.conversions(cache.root)  # (None: no IR cache)
    conv = converted or []
    conv_bytes = sum(c.bytes for c in conv)
    if args.json:
        json.dump({"cache_dir": str(cache.root), "writable": cache.writable,
                   "models": [{"name": r.name, "files": r.files, "cached_files": r.cached, "bytes": r.bytes,
                               "shared_bytes": r.shared, "last_used": iso(r.last_used)} for r in rows],
                   "unreferenced": [_entry_json(e) for e in sorted(unreferenced, key=lambda e: e.path)],
                   "partials": [_entry_json(e) for e in partials], "strays": [str(p) for p in found.strays],
                   "conversions": None if converted is None else [_conversion_json(c) for c in conv],
                   "totals": {"blobs": len(blobs), "blob_bytes": sum(e.size for e in blobs),
                              "partials": len(partials), "partial_bytes": sum(e.size for e in partials),
                              "bytes": total, "conversions": len(conv), "conversion_bytes": conv_bytes,
                              "broken_conversions": sum(c.problem is not None for c in conv)}},
                  sys.stdout, indent=1)
        print()
        return 0
    table = [["MODEL", "FILES", "SIZE", "SHARED", "LAST USED"]]
    table += [[r.name, f"{r.cached}/{r.files}", human_size(r.bytes), human_size(r.shared), when(r.last_used)]
              for r in rows]
    if len(table) > 1:
        _table(table, {1, 2, 3})
        print()
    if conv:
        _conversion_table(conv)
        print()
    summary = [["models", f"{len(rows)} with files in the cache"]]
    summary.append(["unreferenced", f"{len(unreferenced)} blobs, {human_size(sum(e.size for e in unreferenced))} "
                                    "(no selected descriptor names them)"])
    summary.append(["partial", f"{len(partials)} downloads, {human_size(sum(e.size for e in partials))} (resumable)"])
    if converted is not None:
        broken = sum(c.problem is not None for c in conv)
        summary.append(["conversions", f"{len(conv)} IR cache entries, {human_size(conv_bytes)}"
                                       + (f" ({broken} broken)" if broken else "")])
    if found.strays:
        summary.append(["unaccounted", f"{len(found.strays)} files the cache did not make (see verify)"])
    summary.append(["total", f"{len(blobs)} blobs and {len(partials)} partials, {human_size(total)} in {shown(cache.root)}"
                             + ("" if cache.writable else " (read-only)")])
    _table(summary, set())
    return 0


def _verify(args: argparse.Namespace, cache: Cache) -> int:
    from ..store import cache_verify

    if args.repair:
        from ..store import cache_admin as admin

        admin.require_writable(cache, "repaired")  # (said before the hashing, not after it)
    ir_root = cache.root / "ir"
    ir = ir_store_ok = None
    ir_folders: list[cache_verify.Finding] = []
    if os.path.isdir(ir_root):  # the IR cache: its blobs re-hashed too, its own folders checked
        ir_store_ok, ir_folders = cache_verify.check_ir(ir_root)
        ir = Cache(ir_root, create=False)
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        from ..store import cache_admin as admin

        found = admin.scan(cache, last_used=False)  # (for the bar's total only)
        total = sum(e.size for e in found.blobs())
        if ir is not None and ir_store_ok:
            total += sum(e.size for e in admin.scan(ir, last_used=False).blobs())
        tqdm.monitor_interval = 0  # no monitor thread: verify forks its workers after this
        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1000,
                   desc="verify", file=sys.stderr, leave=False, dynamic_ncols=True)
    started = time.monotonic()
    try:
        result = cache_verify.verify(cache, jobs=args.jobs, progress=bar.update if bar is not None else None)
        ir_result = cache_verify.verify(ir, jobs=args.jobs, progress=bar.update if bar is not None else None) \
            if ir is not None and ir_store_ok else cache_verify.Verified(0, 0, [])
    finally:
        if bar is not None:
            bar.close()
    seconds = time.monotonic() - started
    removed: list[cache_verify.Finding] = []
    left = result.findings
    if args.repair and left:
        removed, left = admin.repair(cache, left)
    if ir_result.findings or ir_folders:
        ir_left = ir_result.findings
        if args.repair and ir_left:
            ir_removed, ir_left = admin.repair(ir, ir_left)
            removed += ir_removed
        folders_left = ir_folders
        if args.repair and folders_left:
            folders_removed, folders_left = admin.repair_ir_folders(ir_root, folders_left)
            removed += folders_removed
        left = sorted(left + ir_left + folders_left, key=lambda f: f.path)
    result = cache_verify.Verified(result.blobs + ir_result.blobs, result.bytes + ir_result.bytes, left)
    clean = not left
    if args.json:
        import json

        json.dump({"cache_dir": str(cache.root), "clean": clean, "blobs": result.blobs, "bytes": result.bytes,
                   "seconds": round(seconds, 3),
                   "findings": [{"path": str(f.path), "status": f.status, "detail": f.detail} for f in left],
                   "removed": [{"path": str(f.path), "status": f.status, "detail": f.detail} for f in removed]},
                  sys.stdout, indent=1)
        print()
    else:
        for f in removed:
            print(f"removed  {f.status}  {shown(f.path)}  {f.detail}")
        for f in left:
            print(f"{f.status}  {shown(f.path)}  {f.detail}")
        print(f"verify {shown(cache.root)}: {result.blobs} blobs ({human_size(result.bytes)}) in {seconds:.2f} s; "
              + (f"{len(removed)} removed; " if removed else "") + ("clean" if clean else f"{len(left)} NOT clean"))
    return 0 if clean else 1


def _report_removal(args: argparse.Namespace, cache: Cache, chosen: list[admin.Entry],
                    owners: dict[str, set[str]]) -> int:
    import json

    from ..store import cache_admin as admin

    if args.dry_run:
        freed = sum(e.size for e in chosen if e.links == 1)
        result = admin.PruneResult(chosen, [], freed, sum(e.size for e in chosen) - freed)
    else:
        result = admin.remove(cache, chosen)
    verb = "would remove" if args.dry_run else "removed"
    if args.json:
        json.dump({"cache_dir": str(cache.root), "dry_run": args.dry_run,
                   "removed": [{**_entry_json(e), "models": sorted(owners.get(e.sha384, ()))} for e in result.removed],
                   "busy": [_entry_json(e) for e in result.busy],
                   "freed_bytes": result.freed, "linked_bytes": result.unlinked}, sys.stdout, indent=1)
        print()
        return 0
    for e in result.removed:
        names = ", ".join(sorted(owners.get(e.sha384, ()))) or "no model"
        print(f"{verb}  {e.kind:7}  {e.sha384[:16]}  {human_size(e.size):>9}  last used {when(e.last_used)}  ({names})")
    for e in result.busy:
        print(f"in use   {e.kind:7}  {e.sha384[:16]}  {human_size(e.size):>9}  another process holds it: left")
    linked = f" ({human_size(result.unlinked)} more stay in output folders that link to them)" if result.unlinked else ""
    print(f"{verb} {len(result.removed)} entries, {'would free' if args.dry_run else 'freed'} "
          f"{human_size(result.freed)}{linked}" + (f"; {len(result.busy)} in use, left" if result.busy else ""))
    return 0


def _prune(args: argparse.Namespace, cache: Cache) -> int:
    if args.max_size is None and args.older_than is None and not args.unreferenced and not args.partials:
        raise SelectionError("give at least one of --max_size, --older_than, --unreferenced, --partials")
    from ..store import cache_admin as admin

    if not args.dry_run:
        admin.require_writable(cache, "pruned")
    keep: set[str] = set()
    found = admin.scan(cache)
    catalog = _catalog(args, cache)
    kept: set[str] = set()
    if args.keep is not None:
        from ..catalog import split_names

        kept = set(catalog.select_names(split_names(args.keep, "--keep")))
    names = catalog.names()
    needed, why = (set(names), "--unreferenced") if args.unreferenced else (kept, "--keep")
    owners = admin.named_by(_load(catalog, names, needed, why))  # also to say whose files go
    keep = {sha for sha, models in owners.items() if models & kept}
    chosen = admin.choose(found, max_bytes=args.max_size,
                          older_than=args.older_than * DAY if args.older_than is not None else None,
                          referenced=set(owners) if args.unreferenced else None, partials=args.partials, keep=keep)
    code = _report_removal(args, cache, chosen, owners)
    if not args.dry_run and not args.json:  # and what killed runs left (another host's: once a day old)
        for path in admin.remove_leftovers(cache, found.strays):
            print(f"removed  {path}  (a temporary a run that was killed left)")
    return code


def _rm(args: argparse.Namespace, cache: Cache) -> int:
    from ..store import cache_admin as admin

    if not args.dry_run:
        admin.require_writable(cache, "pruned")
    from ..catalog import split_names

    catalog = _catalog(args, cache)
    names = catalog.select_names(split_names(args.name))
    models = _load(catalog, names)
    owners = admin.named_by(models)
    chosen = [e for e in admin.scan(cache).entries if e.sha384 in owners]
    return _report_removal(args, cache, chosen, owners)


_verified = False  # a verify ran to its end and printed its result


def _main(argv: Sequence[str]) -> int:
    global _verified
    if hasattr(sys.stdout, "reconfigure"):  # (a model name an ASCII terminal cannot show is escaped, not a traceback)
        sys.stdout.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    cache = open_cache(args.cache_dir if args.cache_dir is not None else default_cache_dir())
    code = {"ls": _ls, "verify": _verify, "prune": _prune, "rm": _rm}[args.command](args, cache)
    _verified = args.command == "verify"
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The program (the console script and tools/downloader/cache.py call it without ``argv``).
    There, once verify has printed its result, the process leaves at once (os._exit, its output
    flushed): the interpreter's own teardown, freeing every module and OpenSSL's state, was 4-6 ms
    of CPU in a verify of a zoo's cache that takes 100 ms in all. With ``argv`` (a caller in
    Python) it returns as usual."""
    code = run(PROG, _main, argv)
    if argv is None and _verified:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            return code  # (a stream that cannot take it: Python's exit reports it as it always does)
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
