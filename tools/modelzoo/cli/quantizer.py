"""quantizer: INT8 IR from FP32 IR with NNCF's post-training quantization
(OUTPUT/<model folder>/FP16-INT8/<name>.xml, as omz_quantizer wrote)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import MissingExtraError, UnknownPrecisionError
from .common import (OneLineParser, add_cluster_arg, add_ir_share_args, add_offline_arg, add_selection_args,
                     add_shard_arg, add_trust_args, apply_offline, apply_trust, check_output_path, check_run_dir,
                     cluster_executor, error_line, jobs_arg, positive_int, refuse_outputs_over_inputs, run, run_dir_arg,
                     select_models, shard_models, summarize, ModelRecords)

PROG = "modelzoo-quantizer"


def drop_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:  # (also refuses nan)
        raise argparse.ArgumentTypeError(f"must be an absolute drop between 0 and 1, e.g. 0.01 (got {text!r})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="Exit codes: 0 quantized; 1 a model failed (its IR, NNCF, or a --max_drop that cannot be met: "
               "nothing written); 2 bad command line, data or missing extra ('quantize'); 130 interrupted.")
    add_selection_args(parser, "quantize")
    parser.set_defaults(precisions="FP16-INT8")
    parser.add_argument("--ir_dir", type=Path, default=Path.cwd(), metavar="DIR",
                        help="where the FP32 IR is: the converter's -o (default: the current folder)")
    parser.add_argument("-o", "--output_dir", type=Path, metavar="DIR",
                        help="root for the INT8 IR (default: --ir_dir)")
    data = parser.add_argument_group("calibration data")
    data.add_argument("--dataset", type=Path, metavar="DIR",
                      help="a COCO-format folder: DIR/val2017/ and DIR/annotations/instances_val2017.json")
    data.add_argument("--images", type=Path, metavar="DIR", help="an image folder")
    data.add_argument("--annotations", type=Path, metavar="FILE",
                      help="COCO annotations for --images (then FP32 and INT8 accuracy are measured)")
    data.add_argument("--subset", type=positive_int, metavar="N",
                      help="calibrate on the first N images (default 300, NNCF's)")
    parser.add_argument("--max_drop", type=drop_arg, metavar="X",
                        help="the largest absolute accuracy drop accepted (0..1, e.g. 0.01 = one point), with "
                             "annotations: NNCF's quantize_with_accuracy_control, validated by the accuracy tool; "
                             "a budget that cannot be met writes nothing and exits 1")
    parser.add_argument("--max_iterations", type=int, default=20, metavar="N",
                        help="with --max_drop: at most N groups of operations go back to float, one at a time "
                             "(NNCF's max_num_iterations; default 20; 0: none, only check the budget)")
    parser.add_argument("--preset", choices=("performance", "mixed"), default="performance",
                        help="NNCF's preset: performance (symmetric; default) or mixed (asymmetric activations)")
    parser.add_argument("--ignored_scope", action="append", default=[], metavar="NAME",
                        help="keep this node in floating point too (repeatable; the detector's output stage "
                             "always is)")
    parser.add_argument("--device", default="CPU", help="OpenVINO device for measuring accuracy (default CPU)")
    parser.add_argument("-j", "--jobs", type=jobs_arg, default=1, metavar="N",
                        help="quantize up to N models at once, each in a process of its own (NNCF and OpenVINO "
                             "already use every core for one); 'auto' = CPU count")
    add_ir_share_args(parser, "quantization", "quantizing", "quantized", "--ir FP16-INT8")
    parser.add_argument("--dry_run", "--dry-run", action="store_true",
                        help="print the key and the plan, and change nothing")
    add_offline_arg(parser)
    add_trust_args(parser, signatures=True)
    add_shard_arg(parser, "selected models")
    add_cluster_arg(parser, "quantizations (one model a job)")
    parser.add_argument("--run_dir", type=run_dir_arg, metavar="DIR|s3://BUCKET/PREFIX",
                        help="write this shard's record (each model's quantization key, which hashes the FP32 IR, "
                             "the yml, the calibration pictures and the options; the INT8 IR with its SHA-384; "
                             "the tool versions; the CPU's flags) to DIR when it ends; a shard whose record is "
                             "there with the same keys and whose IR is still as recorded is skipped, one made "
                             "with other inputs is refused (exit 1, nothing overwritten); with --cluster (and no "
                             "--shard) one record a model, written as its job ends, so a driver started again does only "
                             "the models without one")
    return parser


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("openvino", "nncf", "cv2", "pycocotools") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"needs {', '.join(missing)}: pip install 'modelzoo[convert,quantize]'")


def _refuse_overwriting_inputs(args: argparse.Namespace, models_root: Path, models: list, dataset: object,
                               output_dir: Path, precisions: list[str]) -> None:
    """The precision folders the quantizer swaps in whole hold none of its inputs (pictures,
    annotations, the FP32 IR, the yml, the descriptor, --list)."""
    inputs = [s.path for s in dataset.samples]  # type: ignore[attr-defined]
    inputs += [p for p in (dataset.annotations_path, args.list) if p is not None]  # type: ignore[attr-defined]
    folders = []
    for model in models:
        xml = args.ir_dir / model.subdirectory / "FP32" / f"{model.name}.xml"
        inputs += [xml, xml.with_suffix(".bin"), models_root / model.subdirectory / "accuracy-check.yml",
                   model.config_path]
        folders += [("-o" if args.output_dir else "--ir_dir", output_dir / model.subdirectory / p) for p in precisions]
    refuse_outputs_over_inputs([], inputs, folders)


def body(argv: Sequence[str]) -> int:
    from ..convert.mo import disable_telemetry

    disable_telemetry()  # before openvino or nncf is imported: no usage telemetry from either
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_iterations < 0:
        parser.error("--max_iterations must be 0 or more")
    apply_offline(args)  # before NNCF or openvino run: nothing they or a process they start do reaches the network
    wanted = [p.strip() for p in args.precisions.split(",")]
    from ..convert.quantize import INT8_PRECISIONS

    bad = [p for p in wanted if p not in INT8_PRECISIONS]
    if bad:
        raise UnknownPrecisionError(f"--precisions {bad[0]}: the quantizer writes {', '.join(INT8_PRECISIONS)}")
    selected = select_models(parser, args)
    if selected is None:
        return 0
    catalog, models, failed = selected
    models, failed = shard_models(PROG, args.shard, models, failed)
    output_dir = (args.output_dir or args.ir_dir).absolute()
    if not args.dry_run:  # before NNCF's minutes, not after them
        check_output_path("-o" if args.output_dir else "--ir_dir", output_dir, folder=True)
    policy = apply_trust(PROG, args, models, catalog.root, failed, args.mirror)
    _require_extra()
    from ..accuracy.config import configured_kind
    from ..accuracy.dataset import resolve
    from ..convert.quantize import Options, Quantizer
    from ..events import Reporter

    err = error_line(PROG)
    kind = configured_kind([(catalog.root / m.subdirectory / "accuracy-check.yml", m.name) for m in models])
    dataset = resolve(args.dataset, args.images, args.annotations, need_annotations=args.max_drop is not None,
                      kind=kind)
    if args.subset is not None and args.subset > len(dataset.samples):
        print(err("warning", f"--subset {args.subset}: there are only {len(dataset.samples)} images; "
                             "calibrating on all of them"), file=sys.stderr)
    precisions = [p for p in ("FP16-INT8", "FP32-INT8") if p in wanted]
    _refuse_overwriting_inputs(args, catalog.root, models, dataset, output_dir, precisions)
    options = Options(ir_dir=args.ir_dir.absolute(), output_dir=output_dir,
                      precisions=precisions, subset=args.subset or 300,
                      max_drop=args.max_drop, preset=args.preset, ignored_scope=args.ignored_scope,
                      device=args.device, max_iterations=args.max_iterations, dry_run=args.dry_run,
                      cache_dir=args.cache_dir.absolute() if args.cache_dir else None, mirrors=policy.mirrors,
                      mirror_min_speed=args.mirror_min_speed)
    quantizer = Quantizer(options, Reporter("text", bars=False, line=err), dataset=dataset, models_root=catalog.root)

    def locked(some: list) -> list[str]:  # --locked: the INT8 IR is the locked IR, wherever it came from
        return policy.check_ir(some, options.output_dir, options.precisions, "quantized IR", quantizer.keys,
                               lambda t: print(err("error", t), file=sys.stderr))

    runs = shard = inputs = per_model = None
    executor = None if args.dry_run else cluster_executor(args)
    if args.run_dir is not None and not args.dry_run:
        from ..shards import Shard
        from ..store.runs import RunDir, still_there, tool_versions

        check_run_dir(args.run_dir)
        runs, shard = RunDir(args.run_dir, "quantizer"), args.shard or Shard(0, 1)
        if executor is not None and args.shard is None:  # a record a model, as each job ends
            per_model = ModelRecords(
                runs, [m.name for m in models] + failed, output_dir,
                lambda m: _shard_inputs(quantizer, [m], [], catalog.root, dataset),
                lambda m: {"ir": _ir_written([m], output_dir, precisions),
                           "keys": {m.name: quantizer.keys[m.name]} if m.name in quantizer.keys else {}},
                tool_versions("openvino", "nncf"), lambda m: not locked([m]))
            models = per_model.todo(models)
        else:
            inputs = _shard_inputs(quantizer, models, failed, catalog.root, dataset)
            record = runs.done(shard, inputs)
            if record is not None and still_there(record["outputs"]["ir"], output_dir):
                print(f"shard {shard}: done already ({runs.path(shard)}); skipped", flush=True)
                return summarize(PROG, failed)
    quantized_failed = quantizer.run(models, args.jobs, executor, per_model.keep if per_model is not None else None)
    if len(models) == 1 and quantized_failed:
        return quantizer.errors[models[0].name].exit_code  # (its one line is said; no summary line)
    failed += quantized_failed
    if per_model is not None:  # (each model checked against the lock before its record)
        return summarize(PROG, failed + per_model.refused)
    if not args.dry_run:
        failed += locked([m for m in models if m.name not in failed])
    if runs is not None and not failed:  # (a shard with a failure leaves no record: it is done again)
        from ..store.runs import tool_versions

        outputs = {"ir": _ir_written(models, output_dir, precisions), "keys": dict(sorted(quantizer.keys.items()))}
        path = runs.write(shard, inputs, outputs, versions=tool_versions("openvino", "nncf"))
        print(f"shard {shard}: record {path}", flush=True)
    return summarize(PROG, failed)


def _shard_inputs(quantizer: object, models: list, failed: list[str], models_root: Path, dataset: object) -> dict:
    """What a quantizer shard's record must match: each model's quantization key (the SHA-384 of
    everything that decides its INT8 IR), or "no FP32 IR" (the run will fail and write no record)."""
    from ..store.ir_cache import key_of

    keys = {}
    for model in models:
        yml, xml = quantizer.paths(model, models_root)  # type: ignore[attr-defined]
        if not (xml.is_file() and xml.with_suffix(".bin").is_file()):
            keys[model.name] = "no FP32 IR"
            continue
        calibration = dataset.subset(quantizer.options.subset)  # type: ignore[attr-defined]
        keys[model.name] = key_of(quantizer.key_record(model, yml, xml, dataset, calibration))  # type: ignore
    return {"keys": keys, "failed_to_load": sorted(failed)}


def _ir_written(models: list, output_dir: Path, precisions: list[str]) -> dict[str, str]:
    from ..store.runs import sha384_of

    written = {}
    for model in models:
        for precision in precisions:
            xml = output_dir / model.subdirectory / precision / f"{model.name}.xml"
            for path in (xml, xml.with_suffix(".bin")):
                if path.is_file():
                    written[path.relative_to(output_dir).as_posix()] = sha384_of(path)
    return written



def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, body, argv)


if __name__ == "__main__":
    sys.exit(main())
