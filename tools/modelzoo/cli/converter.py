"""converter: turn downloaded models into OpenVINO IR (OUTPUT/<model folder>/<precision>/<name>.xml)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..events import Reporter
from .common import (
    OneLineParser, add_cluster_arg, add_ir_share_args, add_offline_arg, add_selection_args, add_shard_arg,
    add_space_args, add_trust_args, apply_offline, apply_trust, cluster_executor, error_line, jobs_arg, parse_and_select, run,
    ModelRecords, run_dir_arg, shard_models, summarize, descriptor_inputs, model_file_outputs,
    refuse_outputs_over_inputs,
)

if TYPE_CHECKING:
    from ..convert.pipeline import ConvertOptions
    from ..descriptor import Model

PROG = "modelzoo-converter"


def _refuse_overwriting_inputs(args: argparse.Namespace, models: list["Model"], precisions: frozenset[str]) -> None:
    """No IR file this run writes is a downloaded file, a descriptor or --list's file (refused
    before any work): -o may well be -d, but a model file named like its own IR must not go."""
    from ..convert.pipeline import IR_PRECISIONS

    out, dl = (args.output_dir or args.download_dir).absolute(), args.download_dir.absolute()
    leaves = [leaf for m in models for leaf in m.leaf_models() if leaf.mo_args is not None]
    outputs = [("-o", out / leaf.subdirectory / p / f"{leaf.name}{ext}") for leaf in leaves
               for p in IR_PRECISIONS if p in precisions for ext in (".xml", ".bin")]
    refuse_outputs_over_inputs(outputs, [dl / p for _, p in model_file_outputs("-d", Path(), leaves)]
                               + descriptor_inputs(models, args.list))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Convert downloaded models to OpenVINO IR (with the Model Optimizer, or with "
                               "openvino.convert_model): one conversion, saved in every requested precision "
                               "(FP32, FP16).",
        epilog="Exit codes: 0 every selected model converted; 1 a conversion failed; 2 bad command line, "
               "descriptor or missing extra ('convert' or 'mo').")
    add_selection_args(parser, "convert")
    parser.add_argument("-d", "--download_dir", type=Path, metavar="DIR", default=Path.cwd(),
                        help="root of the downloaded models (the downloader's -o)")
    parser.add_argument("-o", "--output_dir", type=Path, metavar="DIR",
                        help="root for the IR (default: the download folder)")
    parser.add_argument("-p", "--python", type=Path, metavar="PYTHON", default=Path(sys.executable),
                        help="Python to run an external mo (--mo) and helper scripts with")
    parser.add_argument("--mo", type=Path, metavar="MO", help="run this Model Optimizer as a subprocess, once "
                        "per precision, instead of converting once in-process")
    parser.add_argument("--add_mo_arg", "--add-mo-arg", dest="extra_mo_args", action="append", default=[],
                        metavar="ARG", help="extra argument for the Model Optimizer (repeatable)")
    parser.add_argument("--dry_run", "--dry-run", action="store_true",
                        help="print the conversion commands and change nothing")
    parser.add_argument("--backend", choices=("auto", "mo", "ovc"), default="auto",
                        help="mo: openvino-dev 2024.6's Model Optimizer; ovc: openvino.convert_model of any "
                             "OpenVINO >= 2024.6 (no TensorFlow needed); auto (default): mo when it can be "
                             "imported or --mo is given, otherwise ovc")
    parser.add_argument("--allow_zoo_code", "--allow-zoo-code", action="store_true",
                        help="let a zoo other than the bundled one run its own code: its pre-convert.py scripts "
                             "and PyTorch model modules (imported by the export); without it such a zoo's models "
                             "are refused before anything runs. Only for a zoo you trust")
    add_ir_share_args(parser, "conversion", "converting", "converted", "--ir")
    parser.add_argument("--log", type=Path, metavar="FILE",
                        help="append what a PyTorch model's export process prints (its traceback on failure) "
                             "to FILE")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show the Model Optimizer's banners and TensorFlow's start-up lines")
    parser.add_argument("-j", "--jobs", type=jobs_arg, default=1, metavar="N",
                        help="convert up to N models at once (in separate processes); 'auto' = CPU count")
    add_offline_arg(parser)
    add_space_args(parser)
    add_trust_args(parser, signatures=True)
    add_shard_arg(parser, "selected models")
    add_cluster_arg(parser, "conversions (one model a job)")
    parser.add_argument("--run_dir", type=run_dir_arg, metavar="DIR|s3://BUCKET/PREFIX",
                        help="write this shard's record (its models' descriptors and downloaded files with their "
                             "SHA-384, the backend, the IR written with its SHA-384 and conversion keys, the tool "
                             "versions, the CPU's flags) to DIR when it ends; a shard whose record is there with "
                             "the same inputs and whose IR is still as recorded is skipped, one made with other "
                             "inputs is refused (exit 1, nothing overwritten); with --cluster (and no --shard) "
                             "one record a model, written as its job ends, so a driver started again does only "
                             "the models without one")
    return parser


def _main(argv: Sequence[str]) -> int:
    from ..convert.mo import disable_telemetry

    # Before anything imports openvino: importing it starts ovc's usage telemetry, whose sender
    # forks from a thread; a fork while this process imports TensorFlow deadlocks it.
    disable_telemetry()
    parser = build_parser()
    selected = parse_and_select(parser, argv)
    if selected is None:
        return 0
    args, precisions, catalog, models, load_failed = selected
    models, load_failed = shard_models(PROG, args.shard, models, load_failed)
    if args.backend == "ovc" and args.mo:
        parser.error("--mo runs the Model Optimizer: it cannot be used with --backend ovc")
    apply_offline(args)  # (inherited by the worker processes and scripts a conversion starts)
    policy = apply_trust(PROG, args, models, catalog.root, load_failed, args.mirror)
    _refuse_overwriting_inputs(args, models, precisions)
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow's own lines too
    from ..convert.pipeline import ConvertOptions, Converter

    allow_zoo_code = _check_zoo_code(models, catalog.root, precisions, args.allow_zoo_code, args.dry_run)
    options = ConvertOptions(download_dir=args.download_dir.absolute(),
                             output_dir=(args.output_dir or args.download_dir).absolute(),
                             models_root=catalog.root, precisions=precisions,
                             mo=args.mo.resolve() if args.mo else None, python=args.python,
                             extra_mo_args=args.extra_mo_args, dry_run=args.dry_run, backend=args.backend,
                             verbose=args.verbose,
                             cache_dir=args.cache_dir.absolute() if args.cache_dir else None,
                             mirrors=policy.mirrors, mirror_min_speed=args.mirror_min_speed,
                             allow_zoo_code=allow_zoo_code,
                             log=args.log.absolute() if args.log else None)
    # fail early, with the extra to install, before any work; and say which backend converts
    converter = Converter(options, Reporter("text", bars=False, line=error_line(PROG)))
    print(f"Backend: {converter.describe_backend()}", flush=True)
    from ..convert.pipeline import IR_PRECISIONS

    say, made = error_line(PROG), [p for p in IR_PRECISIONS if p in precisions]

    def locked(some: list["Model"]) -> list[str]:  # --locked: the IR made (FP16, FP32) is the locked IR
        return policy.check_ir(some, options.output_dir, made, "converted IR", converter.keys,
                               lambda t: print(say("error", t), file=sys.stderr))

    runs = shard = inputs = per_model = None
    executor = None if args.dry_run else cluster_executor(args)
    if args.run_dir is not None and not args.dry_run:
        from ..shards import Shard
        from .common import check_run_dir

        check_run_dir(args.run_dir)
        from ..store.runs import RunDir, still_there, tool_versions

        runs, shard = RunDir(args.run_dir, "converter"), args.shard or Shard(0, 1)
        backend = converter.describe_backend()
        if executor is not None and args.shard is None:  # a record a model, as each job ends
            per_model = ModelRecords(
                runs, [m.name for m in models] + load_failed, options.output_dir,
                lambda m: _shard_inputs([m], [], options, backend),
                lambda m: {"ir": _ir_written([m], options), "keys": _keys_of(m, converter.keys)},
                tool_versions("openvino", "openvino-dev", "tensorflow"), lambda m: not locked([m]))
            models = per_model.todo(models)
        else:
            inputs = _shard_inputs(models, load_failed, options, backend)
            record = runs.done(shard, inputs)
            if record is not None and still_there(record["outputs"]["ir"], options.output_dir):
                print(f"shard {shard}: done already ({runs.path(shard)}); skipped", flush=True)
                return summarize(PROG, load_failed)
    if not args.no_space_check:
        _check_space(models, options)
    failed = converter.run(models, args.jobs, executor, per_model.keep if per_model is not None else None)
    if per_model is not None:  # (each model checked against the lock before its record)
        failed += per_model.refused
        return summarize(PROG, load_failed + failed)
    if not args.dry_run:  # --locked: the IR it makes (FP16, FP32) is the locked IR, wherever it came from
        failed += locked([m for m in models if m.name not in failed])
    if runs is not None and not failed and not load_failed:
        from ..store.runs import tool_versions

        outputs = {"ir": _ir_written(models, options), "keys": dict(sorted(converter.keys.items()))}
        path = runs.write(shard, inputs, outputs, versions=tool_versions("openvino", "openvino-dev", "tensorflow"))
        print(f"shard {shard}: record {path}", flush=True)
    return summarize(PROG, load_failed + failed)


def _keys_of(model: "Model", keys: dict[str, str]) -> dict[str, str]:
    """The conversion keys of a model's stages (itself, or a composite's parts)."""
    return {leaf.name: keys[leaf.name] for leaf in model.leaf_models() if leaf.name in keys}


def _ir_folders() -> tuple[str, ...]:
    from ..convert.pipeline import IR_PRECISIONS
    from ..convert.quantize import INT8_PRECISIONS

    return (*IR_PRECISIONS, *INT8_PRECISIONS)


def _shard_inputs(models: list["Model"], failed: list[str], options: "ConvertOptions", backend: str) -> dict:
    """What a converter shard's record must match to be skipped: each model's descriptor and
    every file of its download folder (IR folders and temporaries left out) with its SHA-384, the
    backend, the precisions and the extra arguments."""
    from ..store.runs import sha384_of

    skip = set(_ir_folders())
    per_model = {}
    for top in models:
        for leaf in top.leaf_models():
            folder = options.download_dir / leaf.subdirectory
            found = {}
            for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
                rel = path.relative_to(folder)
                if rel.parts[0] in skip or any(part.startswith(".") for part in rel.parts) or not path.is_file():
                    continue
                found[rel.as_posix()] = sha384_of(path)
            per_model[leaf.name] = {"descriptor": sha384_of(leaf.config_path), "files": found}
    return {"models": per_model, "failed_to_load": sorted(failed), "backend": backend,
            "precisions": sorted(options.precisions), "extra_mo_args": list(options.extra_mo_args)}


def _ir_written(models: list["Model"], options: "ConvertOptions") -> dict[str, str]:
    """Every IR file of the shard's models (relative to the output folder) with its SHA-384."""
    from ..store.runs import sha384_of

    written = {}
    for top in models:
        for leaf in top.leaf_models():
            for precision in _ir_folders():
                if precision not in options.precisions:
                    continue
                xml = options.output_dir / leaf.subdirectory / precision / f"{leaf.name}.xml"
                for path in (xml, xml.with_suffix(".bin")):
                    if path.is_file():
                        written[path.relative_to(options.output_dir).as_posix()] = sha384_of(path)
    return written



def _check_zoo_code(models: list["Model"], root: Path, precisions: frozenset[str], allowed: bool,
                    dry_run: bool) -> bool:
    """Whether the zoo's own code may run (docs/descriptors.md: the trust model): always for the
    bundled zoo, for another only with --allow_zoo_code; otherwise, when a selected model would
    run some, a ZooCodeError naming every script and module, before anything runs. A dry run
    lists them first."""
    from ..convert.pipeline import IR_PRECISIONS, zoo_code
    from ..errors import ZooCodeError
    from ..resources import default_models_dir

    bundled = root.resolve() == default_models_dir().resolve()
    code = [c for top in models for leaf in top.leaf_models()
            if leaf.precisions & precisions & set(IR_PRECISIONS) for c in zoo_code(leaf, root)]
    if dry_run:
        for c in code:
            print(f"(dry run) zoo code that would run: {c}", flush=True)
    if code and not bundled and not allowed:
        raise ZooCodeError(f"the zoo {root} would run its own code: {'; '.join(code)}; refused: allow it with "
                           "--allow_zoo_code (only for a zoo you trust)")
    return bundled or allowed


def _check_space(models: list["Model"], options: "ConvertOptions") -> None:
    """The IR's estimated size per file system (space.conversion_writes): printed by a dry run,
    refused before any conversion when it does not fit."""
    from ..convert.pipeline import IR_PRECISIONS
    from ..download.space import check_space, conversion_writes, space_needed

    precisions = [p for p in IR_PRECISIONS if p in options.precisions]
    needs = space_needed(conversion_writes(models, precisions, options.download_dir, options.output_dir))
    if options.dry_run:
        for need in needs:
            print(f"(dry run) space: {need} (an estimate of the IR){'' if need.fits else ': does not fit'}")
    else:
        check_space(needs)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
