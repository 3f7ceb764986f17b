"""lock: pin a selection of models (descriptors, files, optionally IR) in a lock file that
``--locked`` runs of the other tools hold to; check a lock for drift; refresh one model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .common import (
    OneLineParser, add_offline_arg, add_selection_args, apply_offline, descriptor_inputs, mirror_url, parallel_int,
    positive_float, refuse_outputs_over_inputs, run, select_models, summarize,
)

PROG = "modelzoo-lock"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Write a lock file (modelzoo-lock/1) pinning the selected models: each descriptor's "
                               "SHA-384, each file's size, SHA-384 and allowed URLs, and with --ir the IR an IR "
                               "cache or a mirror holds (every IR file verified). Built from the descriptors: no "
                               "model file is downloaded.",
        epilog="Exit codes: 0 written (--check: no drift); 1 drift found; 2 bad command line, lock file or "
               "descriptor.")
    add_selection_args(parser, "lock")
    parser.add_argument("-o", "--lock", type=Path, default=Path("modelzoo.lock"), metavar="FILE",
                        help="the lock file to write, check or update (default modelzoo.lock)")
    parser.add_argument("--check", action="store_true",
                        help="compare the lock with the descriptors (the selected models, default every locked "
                             "one) and exit 1 on any drift")
    parser.add_argument("--remote", action="store_true",
                        help="with --check: also a HEAD request per locked URL, so a file that is gone or has "
                             "another size upstream is drift before any download")
    parser.add_argument("--update", metavar="NAME[,NAME...]",
                        help="refresh these models' entries in the lock (adding them if missing), keep the rest")
    parser.add_argument("--ir", action="store_true",
                        help="also lock the models' IR (per precision its key and files, every file verified) "
                             "from --cache_dir's IR cache or a --mirror's manifest; with --check, compare the "
                             "locked IR with theirs")
    parser.add_argument("--cache_dir", type=Path, metavar="DIR",
                        help="for --ir: the IR cache of the converter's and quantizer's --cache_dir (read first)")
    parser.add_argument("--mirror", action="append", default=[], type=mirror_url, metavar="URL",
                        help="for --ir: a mirror with IR (mirror.py sync --ir), after --cache_dir (repeatable; "
                             "the first that has a model's IR wins)")
    parser.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                        help="timeout of each --remote request and manifest read (default 30)")
    parser.add_argument("-j", "--jobs", type=parallel_int, default=8, metavar="N",
                        help="--remote: up to N HEAD requests at once (default 8)")
    add_offline_arg(parser)
    return parser


def _ir_sources(args: argparse.Namespace, path: Path) -> Any:
    """--cache_dir and --mirror of --ir, read once (a cache is also where files are verified)."""
    from ..trust.ir_lock import IrSources
    from .common import CommandLine

    line = CommandLine(PROG)
    cache = args.cache_dir.absolute() if args.cache_dir is not None else None
    return IrSources(cache, args.mirror, cache or path.absolute().parent,
                     lambda text: print(line("warning", text), file=sys.stderr), timeout=args.timeout)


def _add_ir(entries: dict[str, Any], models: list[Any], sources: Any) -> None:
    """Each leaf's verified IR into its entry (a leaf that is converted and has none: one warning)."""
    for model in models:
        for leaf in model.leaf_models():
            ir = sources.ir_of(leaf)
            if ir:
                entries[leaf.name]["ir"] = ir
            elif leaf.mo_args is not None:
                sources.warn(f"{leaf.name}: no IR in --cache_dir or any --mirror; locked without IR")


def _ir_drift(locked: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a model's locked IR and the IR its sources hold now, one phrase each."""
    out = []
    for p in sorted(set(locked) | set(current)):
        a, b = locked.get(p), current.get(p)
        if b is None:
            out.append(f"IR {p} is locked but no --cache_dir or --mirror holds it")
        elif a is None:
            out.append(f"IR {p} (key {b['key'][:16]}...) is not in the lock")
        elif a["key"] != b["key"]:
            out.append(f"IR {p}: key {b['key'][:16]}... ({b.get('tools', '')}), locked {a['key'][:16]}...")
        elif a["files"] != b["files"]:
            names = sorted(n for n in set(a["files"]) | set(b["files"]) if a["files"].get(n) != b["files"].get(n))
            out.append(f"IR {p}: key as locked, but {', '.join(names)} other bytes than locked")
    return out


def _load(catalog: Any, names: list[str]) -> tuple[list[Any], list[str]]:
    """The models of these names that the zoo still has, and the names it does not."""
    from ..errors import DescriptorError, SelectionError

    models, missing = [], []
    for name in names:  # (stages by name too)
        try:
            models.append(catalog.load(name))
        except (SelectionError, DescriptorError):
            missing.append(name)
    return models, missing


def _main(argv: Sequence[str]) -> int:
    from ..trust import lock as lockfile

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.remote and not args.check:
        parser.error("--remote is a part of --check")
    if args.ir and not args.mirror and args.cache_dir is None:
        parser.error("--ir reads the IR from an IR cache or mirrors: give --cache_dir DIR or --mirror URL")
    if (args.mirror or args.cache_dir is not None) and not args.ir:
        parser.error("--cache_dir and --mirror are where --ir reads IR: give --ir")
    if args.check and args.update:
        parser.error("--check changes nothing: not with --update")
    if args.cache_dir is not None and not (args.cache_dir / "ir").is_dir():  # (before the descriptor memo makes it)
        from ..errors import UsageError

        raise UsageError(f"--cache_dir {args.cache_dir.absolute()}: no IR cache there (no ir/ folder)")
    apply_offline(args)
    path = args.lock
    selecting = args.all or args.name is not None or args.list is not None or args.print_all
    if args.update is not None or args.check:
        from ..catalog import Catalog, split_names
        from ..resources import default_models_dir

        lock = lockfile.read(path)
        catalog = Catalog(args.models_dir or default_models_dir(), strict=args.strict)
        if args.update is not None:
            models, missing = _load(catalog, split_names(args.update, "--update"))
            if missing:
                parser.error(f"--update {missing[0]}: no such model in {catalog.root}")
            entries = {}
            for m in models:
                entries.update(lockfile.model_entries(m, catalog.root))
            if args.ir:
                _add_ir(entries, models, _ir_sources(args, path))
            else:  # a new descriptor usually means a new key: the old IR pin would refuse every run
                pinned = [n for n in entries if (lock["models"].get(n) or {}).get("ir")]
                if pinned:
                    parser.error(f"--update {pinned[0]}: its IR is locked; give --ir with --cache_dir or --mirror to "
                                 "lock its IR again")
            lock["models"] = dict(sorted({**lock["models"], **entries}.items()))
            lockfile.write(path, lock)
            print(f"{path}: {', '.join(sorted(entries))} updated")
            return 0
        if selecting:
            selected = select_models(parser, args)
            if selected is None:
                return 0
            names = [leaf.name for m in selected[1] for leaf in [m, *m.stages]] + selected[2]
        else:
            names = list(lock["models"])
        problems: list[str] = []
        drifted: list[str] = []
        models, missing = _load(catalog, [n for n in names if n in lock["models"]])
        for name in [n for n in names if n not in lock["models"]]:
            problems.append(f"{name}: not in the lock")
            drifted.append(name)
        for name in missing:
            problems.append(f"{name}: locked, but no longer in the zoo (or its descriptor is invalid)")
            drifted.append(name)
        for m in models:
            current = lockfile.model_entries(m, catalog.root)[m.name]
            for text in lockfile.drift(lock["models"][m.name], current):
                problems.append(f"{m.name}: {text}")
                if m.name not in drifted:
                    drifted.append(m.name)
        if args.ir:
            sources = _ir_sources(args, path)
            for m in models:  # (a composite's stages are among them, each a model of its own)
                locked_ir = (lock["models"].get(m.name) or {}).get("ir")
                if m.is_composite or not locked_ir:
                    continue
                for text in _ir_drift(locked_ir, sources.ir_of(m)):
                    problems.append(f"{m.name}: {text}")
                    if m.name not in drifted:
                        drifted.append(m.name)
        if args.remote:
            for text in lockfile.remote_drift(lock, [m.name for m in models], args.timeout, args.jobs):
                problems.append(text)
                name = text.split(":", 1)[0]
                if name not in drifted:
                    drifted.append(name)
        for text in problems:
            print(f"drift: {text}")
        if not problems:
            print(f"{path}: {len(models)} models as locked" + (", each URL as locked" if args.remote else "")
                  + (", their IR as locked" if args.ir else ""))
        return summarize(PROG, drifted)
    selected = select_models(parser, args)
    if selected is None:
        return 0
    catalog, models, failed = selected
    if failed:  # (each already said in one line) a lock with a hole in it is no lock
        return summarize(PROG, failed)
    refuse_outputs_over_inputs([("-o", path)], descriptor_inputs(models, args.list))  # never over a descriptor
    lock = lockfile.build(models, catalog.root)
    if args.ir:
        _add_ir(lock["models"], models, _ir_sources(args, path))
    lockfile.write(path, lock)
    files = sum(len(e.get("files", {})) for e in lock["models"].values())
    ir = sum(len(e.get("ir", {})) for e in lock["models"].values())
    print(f"{path}: {len(lock['models'])} models, {files} files" + (f", {ir} IR precisions" if args.ir else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
