"""accuracy_check: measure converted IR as each model's card does (its accuracy-check.yml), on a
COCO-format dataset, with Open Model Zoo's accuracy checker's semantics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import MissingExtraError, SelectionError
from .common import (OneLineParser, add_cluster_arg, add_selection_args, add_shard_arg, add_trust_args, apply_trust,
                     check_output_path, cluster_executor, error_line, jobs_arg, parse_and_select, positive_int,
                     refuse_outputs_over_inputs, run, run_dir_arg, check_run_dir, summarize)

PROG = "accuracy_check"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_selection_args(parser, "measure")
    parser.add_argument("--ir_dir", type=Path, default=Path.cwd(), metavar="DIR",
                        help="where the IR is: the converter's or quantizer's -o "
                             "(DIR/<model folder>/<precision>/<name>.xml; default: the current folder)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", type=Path, metavar="DIR",
                      help="a COCO-format folder (DIR/val2017/ and DIR/annotations/instances_val2017.json), an "
                           "ImageNet-style one (val.txt), a Pascal VOC one, or a folder with one CVAT XML and "
                           "its pictures (docs/accuracy.md)")
    data.add_argument("--images", type=Path, metavar="DIR", help="the image folder (with --annotations)")
    data.add_argument("--annotations", type=Path, metavar="FILE",
                      help="a COCO annotation file (JSON), a val.txt, a VOC image set, or a CVAT XML (.xml; its "
                           "pictures beside it unless --images says)")
    data.add_argument("--labels", type=Path, metavar="FILE",
                      help="a CVAT set's labels file ({\"labels\": {name: id}}) for every model; by default the "
                           "file the model's dataset definition names, beside the XML")
    data.add_argument("--subset", type=positive_int, metavar="N", help="only the first N images (by image id)")
    parser.add_argument("--device", default="CPU", help="OpenVINO device (default CPU; all its cores are used)")
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="FILE",
                     help="write the results as JSON: [{model, precision, metric, value, reference, images, seconds}]")
    out.add_argument("--detections_out", type=Path, metavar="FILE",
                     help="write the detections as COCO results JSON (boxes in the pictures' pixels); "
                          "one model and one precision")
    out.add_argument("--draw", type=int, default=0, metavar="N",
                     help="draw the first N images with ground truth (white) and detections into --draw_dir")
    out.add_argument("--draw_dir", type=Path, default=Path("accuracy-drawings"), metavar="DIR")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a value misses the yml's reference as accuracy_check judges it "
                             "(any difference beyond the metric's abs_threshold / rel_threshold, 0 if not given); "
                             "by default the difference is only reported")
    parser.add_argument("--list_supported", action="store_true",
                        help="print NAME: yes, or NAME: no: <the first entry not implemented>, for each selected "
                             "model from its accuracy-check.yml alone (no IR, no data set), and exit")
    scale = parser.add_argument_group("shards (docs/scale.md)")
    add_shard_arg(scale, "pictures (by image id, after --subset)")
    scale.add_argument("--run_dir", type=run_dir_arg, metavar="DIR|s3://BUCKET/PREFIX",
                       help="write this shard's record (its inputs with their SHA-384, its detections, the tool "
                            "versions, the CPU's flags) to DIR when it ends; a shard whose record is there with the "
                            "same inputs is skipped, one made with other inputs is refused (exit 1)")
    scale.add_argument("--merge", type=run_dir_arg, metavar="RUN_DIR",
                       help="measure nothing: gather every shard's detections from RUN_DIR and compute each metric "
                            "once over all of them (the same table, --json and --check as a single run)")
    scale.add_argument("-j", "--jobs", type=jobs_arg, default=1, metavar="N",
                       help="measure the pictures in N shards at once, each in its own process (default 1: "
                            "this process, every core); 'auto' = CPU count")
    add_cluster_arg(scale, "picture shards (a pool of workers that each compile the IR once)")
    scale.add_argument("--picture_shards", type=positive_int, metavar="N",
                       help="with -j or --cluster: split the pictures into N shards (default: -j's N, or four "
                            "per worker of the cluster); with --run_dir each shard's record is written as it "
                            "ends, and a rerun measures only the shards without one")
    add_trust_args(parser)
    return parser


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("openvino", "cv2", "pycocotools") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"needs {', '.join(missing)}: pip install 'modelzoo[convert,quantize]'")


def _coco_results(run: Any, dataset: Any, config: Any) -> list[dict]:
    category_of = {label: category for category, label in
                   dataset.label_of_category(config.label_offset, config.full_label_map).items()}
    out = []
    for image_id, dets in run.detections.items():
        for label, score, box in zip(dets.labels, dets.scores, dets.boxes):
            if int(label) in category_of:
                out.append({"image_id": image_id, "category_id": category_of[int(label)],
                            "bbox": [round(float(box[0]), 3), round(float(box[1]), 3),
                                     round(float(box[2] - box[0]), 3), round(float(box[3] - box[1]), 3)],
                            "score": round(float(score), 5)})
    return out


def _write_json(path: Path, data: Any) -> None:
    from .. import fsio

    fsio.makedirs(path.parent if str(path.parent) else Path("."))
    fsio.write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def _refuse_overwriting_inputs(args: argparse.Namespace, dataset: Any, plan: list) -> None:
    """No output of this run (--json, --detections_out, the drawings) is one of its inputs."""
    outputs = [(flag, path) for flag, path in (("--json", args.json), ("--detections_out", args.detections_out))
               if path is not None]
    inputs = [s.path for s in dataset.samples] + ([dataset.annotations_path] if dataset.annotations_path else [])
    inputs += list(dataset.annotation_parts)  # (a VOC set's XML, a CVAT set's labels files)
    inputs += [args.list] if args.list is not None else []
    for model, config, precision, xml, _ in plan:
        inputs += [xml, xml.with_suffix(".bin"), config.path, model.config_path]
        outputs += [("--draw_dir", args.draw_dir / f"{model.name}-{precision}-{s.path.stem}.png")
                    for s in dataset.samples[:args.draw]]
    refuse_outputs_over_inputs(outputs, inputs)


def _draw(run: Any, dataset: Any, config: Any, folder: Path, count: int, tag: str) -> None:
    from PIL import Image, ImageDraw

    from .. import fsio
    from ..accuracy.dataset import read_image

    name_of = {c["id"]: c["name"] for c in dataset.categories()}
    names = {label: name_of[category] for category, label in
             dataset.label_of_category(config.label_offset, config.full_label_map).items()}
    fsio.makedirs(folder)
    for sample in dataset.samples[:count]:
        image = Image.fromarray(read_image(sample.path)[:, :, ::-1].copy())
        pen = ImageDraw.Draw(image)
        gt = run.ground_truth[sample.image_id]
        for box in gt.boxes:
            pen.rectangle([float(v) for v in box], outline=(255, 255, 255), width=2)
        dets = run.detections[sample.image_id]
        for i in list(reversed(dets.scores.argsort()))[:20]:
            box = [float(v) for v in dets.boxes[i]]
            pen.rectangle(box, outline=(230, 25, 75), width=2)
            pen.text((box[0] + 2, box[1] + 2), f"{names.get(int(dets.labels[i]), dets.labels[i])} {dets.scores[i]:.2f}",
                     fill=(230, 25, 75))
        with fsio.temporary_beside(folder / f"{tag}-{sample.path.stem}.png", ".tmp.png") as tmp:
            image.save(tmp)
            fsio.place(tmp, folder / f"{tag}-{sample.path.stem}.png")


def body(argv: Sequence[str]) -> int:
    from ..convert.mo import disable_telemetry

    disable_telemetry()  # before openvino or nncf is imported: no usage telemetry from either
    parser = build_parser()
    selected = parse_and_select(parser, argv)
    if selected is None:
        return 0
    args, precisions, catalog, models, failed = selected
    if args.list_supported:
        from ..accuracy.support import verdict_line

        for model in models:
            print(verdict_line(model.name, catalog.root / model.subdirectory / "accuracy-check.yml"))
        return summarize(PROG, failed)
    if args.draw < 0:
        parser.error("--draw must be 0 or more")
    for flag, path in (("--json", args.json), ("--detections_out", args.detections_out)):
        if path is not None:  # before any picture is measured, not after all of them
            check_output_path(flag, path)
    if args.draw:
        check_output_path("--draw_dir", args.draw_dir, folder=True)
    if args.run_dir is not None and args.merge is None:
        check_run_dir(args.run_dir)
    bad = apply_trust(PROG, args, models, catalog.root, failed).check_ir(  # --locked: only the locked IR is measured
        models, args.ir_dir.absolute(), precisions, "the IR to measure", remove=False,
        line=lambda t: print(error_line(PROG)("error", t), file=sys.stderr))
    if bad:
        return summarize(PROG, failed + bad)
    if (args.cluster is not None or args.jobs > 1) and (args.shard is not None or args.merge is not None):
        parser.error("--shard and --merge are for shards run by another scheduler: not with -j or --cluster")
    _require_extra()
    executor = cluster_executor(args, actors=True)  # a bad address or no Ray: one line before any work
    from ..accuracy.dataset import check_masks, check_pictures, resolve
    from ..accuracy.config import TASK_OF_ADAPTER, configured_kind, configured_subsample
    from ..accuracy.pipeline import Evaluator
    from ..events import Reporter

    err = error_line(PROG)
    ymls = [(catalog.root / m.subdirectory / "accuracy-check.yml", m.name) for m in models]
    kind, subsample = configured_kind(ymls), configured_subsample(ymls)
    dataset = resolve(args.dataset, args.images, args.annotations, need_annotations=True, kind=kind)
    if subsample is not None and (args.subset is None or subsample < args.subset):
        dataset = dataset.subset(subsample)  # (the yml's subsample_size: its first N pictures)
    if args.labels is not None:
        if dataset.kind != "cvat":
            raise SelectionError(f"--labels {args.labels}: a labels file is for CVAT annotations (an .xml), not a "
                                 f"{dataset.kind} set")
        if not args.labels.is_file():
            raise SelectionError(f"--labels {args.labels}: no such file")
        dataset = dataclasses.replace(dataset, labels_file=args.labels,
                                      annotation_parts=dataset.annotation_parts + (args.labels,))
    if args.subset is not None and args.subset > len(dataset.samples):
        print(err("warning", f"--subset {args.subset}: the dataset has only {len(dataset.samples)} images; "
                             "using all of them"), file=sys.stderr)
    dataset = dataset.subset(args.subset)
    if args.merge is not None:
        return _merge(args, models, failed, catalog.root, dataset, precisions, err)
    whole = dataset
    if args.shard is not None:
        dataset = _picture_shard(args.shard, dataset, err)
    check_pictures(dataset)  # a file that is not a picture is refused before any inference
    check_masks(dataset)  # (and a mask with a label the set does not have)
    measured: list[tuple[Any, Any]] = []

    def after(task: Any, result: Any) -> None:  # what this command writes of each measurement
        if args.run_dir is not None:
            measured.append((task, result))
        if args.detections_out is not None:
            _write_json(args.detections_out, _coco_results(result, dataset.for_config(task.config), task.config))
        if args.draw:
            _draw(result, dataset.for_config(task.config), task.config, args.draw_dir, args.draw,
                  f"{task.model.name}-{task.precision}")

    evaluator = Evaluator(args.ir_dir, catalog.root, dataset, precisions, args.device,
                          Reporter("text", bars=False, line=err), after)
    plan = evaluator.plan(models)  # every yml and IR checked before any inference
    if len(models) == 1 and evaluator.errors:
        return evaluator.errors[models[0].name].exit_code  # (its one line is said)
    if args.detections_out is not None and len(plan) != 1:
        raise SelectionError(f"--detections_out writes one model's detections at one precision; "
                             f"this run measures {len(plan)}")
    boxless = [t.model.name for t in plan if TASK_OF_ADAPTER[t.config.adapter] != "detection"]
    if boxless and (args.detections_out is not None or args.draw):
        raise SelectionError(f"--detections_out and --draw write boxes; {boxless[0]}'s adapter predicts none")
    whole_set = [t.model.name for t in plan if TASK_OF_ADAPTER[t.config.adapter] == "reid"]
    if whole_set and (args.shard is not None or args.run_dir is not None):
        raise SelectionError(f"--shard and --run_dir keep each shard's boxes; {whole_set[0]} compares the pictures "
                             "of the whole set with one another: measure it in one run (-j N splits it and scores "
                             "it once)")
    masked = [t.model.name for t in plan if TASK_OF_ADAPTER[t.config.adapter] == "segmentation"]
    if masked and args.run_dir is not None:  # (a shard's record holds its predictions: masks are not kept so)
        raise SelectionError(f"--run_dir records boxes and labels; {masked[0]}'s adapter predicts masks (measure it "
                             "without --run_dir, or with -j)")
    _refuse_overwriting_inputs(args, dataset, plan)
    if executor is not None or args.jobs > 1:
        from ..accuracy.pipeline import Shards
        from ..store.runs import RunDir

        count = args.picture_shards or (4 * executor.width() if executor is not None else args.jobs)
        shards = RecordShards(count, RunDir(args.run_dir, "accuracy"), args, whole, plan) \
            if args.run_dir is not None else Shards(count)
        if dataset.samples:
            failed += evaluator.run(models, args.jobs, executor, shards)
        if len(models) == 1 and failed:
            return evaluator.errors[models[0].name].exit_code
        return _report(args, evaluator, failed)
    runs = shard = inputs = None
    if args.run_dir is not None:
        from ..shards import Shard
        from ..store.runs import RunDir

        runs, shard = RunDir(args.run_dir, "accuracy"), args.shard or Shard(0, 1)
        inputs = _shard_inputs(args, whole, dataset, plan)
        if runs.done(shard, inputs) is not None:
            print(f"shard {shard}: done already ({runs.path(shard)}); skipped", flush=True)
            return summarize(PROG, failed)
    if dataset.samples:
        failed += evaluator.run(models)
    if runs is not None and not failed:
        from ..store.runs import tool_versions

        path = runs.write(shard, inputs, _shard_outputs(measured, dataset),
                          versions=tool_versions("openvino", "numpy", "pycocotools", "opencv-python"))
        print(f"shard {shard}: record {path}", flush=True)
    if len(models) == 1 and failed:
        return evaluator.errors[models[0].name].exit_code
    return _report(args, evaluator, failed)


def _report(args: argparse.Namespace, evaluator: Any, failed: list[str]) -> int:
    """The table, --json, the failures and --check: a single run's and a merge's."""
    header = ("model", "precision", "images", "metric", "value", "reference", "difference", "", "images/s")
    rows = evaluator.rows
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if args.json is not None:
        _write_json(args.json, evaluator.records)
    if summarize(PROG, failed):
        return 1
    if args.check and evaluator.missed:
        print(f"{PROG}: below the reference: {', '.join(evaluator.missed)}", file=sys.stderr)
        return 1
    return 0


def _picture_shard(shard: Any, dataset: Any, err: Any) -> Any:
    """This shard's pictures, by image id (shards.Shard.take); a warning when there are fewer
    pictures than shards."""
    from ..shards import too_many

    warning = too_many(shard, len(dataset.samples), "pictures")
    if warning:
        print(err("warning", warning), file=sys.stderr)
    return dataset.with_samples(shard.take(dataset.samples, key=lambda s: s.image_id))


def _shard_inputs(args: argparse.Namespace, whole: Any, dataset: Any, plan: list) -> dict[str, Any]:
    """What a shard's record must match to be skipped: the IR, the ymls, the annotations and
    this shard's pictures (each with its SHA-384), the picture count of the whole run and the device."""
    from ..store.runs import sha384_of

    return {
        "annotations": dataset.annotations_sha384(),
        "pictures_in_run": len(whole.samples),
        "pictures": {str(s.image_id): sha384_of(s.path) for s in dataset.samples},
        "device": args.device,
        "measurements": sorted([[task.model.name, task.precision, sha384_of(task.xml),
                                 sha384_of(task.xml.with_suffix(".bin")), sha384_of(task.config.path)]
                                for task in plan]),
    }


def _arrays(value: Any) -> dict[str, Any]:
    """A prediction or ground truth (a dataclass of numpy arrays; an instance's masks, a list of
    COCO RLE dicts) as JSON, exactly."""
    import dataclasses

    def field(v: Any) -> dict[str, Any]:
        if isinstance(v, list):
            return {"items": v}
        return {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.ravel().tolist()}

    return {f.name: field(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _unarrays(kind: Any, doc: dict[str, Any]) -> Any:
    """_arrays' JSON back; a prediction with masks is the mask_rcnn adapter's Instances."""
    import numpy as np

    from ..accuracy.adapter import Instances

    if "masks" in doc:
        kind = Instances
    return kind(**{name: a["items"] if "items" in a else np.array(a["data"], dtype=a["dtype"]).reshape(a["shape"])
                   for name, a in doc.items()})


def _shard_outputs(measured: list, dataset: Any) -> dict[str, Any]:
    """A shard's detections and post-processed ground truth, per measurement, for --merge."""
    return {"measurements": [
        {"model": task.model.name, "precision": task.precision, "images": result.images,
         "seconds": round(result.seconds, 3),
         "detections": {str(i): _arrays(d) for i, d in result.detections.items()},
         "ground_truth": {str(i): _arrays(g) for i, g in result.ground_truth.items()}}
        for task, result in measured]}


def _merge(args: argparse.Namespace, models: list, failed: list[str], models_root: Path, dataset: Any,
           precisions: frozenset[str], err: Any) -> int:
    """--merge RUN_DIR: every shard's detections put together, each metric computed once."""
    from ..accuracy.adapter import Detections
    from ..accuracy.dataset import GroundTruth
    from ..accuracy.pipeline import PRECISION_ORDER, Evaluator
    from ..errors import RunIncompleteError
    from ..events import Reporter
    from ..store.runs import RunDir, sha384_of

    if args.shard is not None or args.run_dir is not None or args.detections_out is not None or args.draw:
        raise SelectionError("--merge measures nothing: it takes neither --shard, --run_dir, --detections_out "
                             "nor --draw")
    if args.json is not None:
        check_output_path("--json", args.json)
    count, records = RunDir(args.merge, "accuracy").gather()
    annotations = dataset.annotations_sha384()
    for k, record in enumerate(records):
        inputs = record["inputs"]
        if inputs.get("measurements") != records[0]["inputs"].get("measurements"):
            raise RunIncompleteError(f"--merge {args.merge}: shard {k}/{count} measured other IR or ymls than "
                                     f"shard 0/{count}")
        if inputs.get("annotations") != annotations or inputs.get("pictures_in_run") != len(dataset.samples):
            raise RunIncompleteError(f"--merge {args.merge}: shard {k}/{count} measured other data "
                                     "(annotations or pictures differ from this command's)")
    evaluator = Evaluator(args.ir_dir, models_root, dataset, precisions, args.device, Reporter("text", bars=False,
                                                                                               line=err))
    wanted = {s.image_id for s in dataset.samples}
    for model in models:
        for precision in PRECISION_ORDER:
            if precision not in precisions:
                continue
            parts = [m for r in records for m in r["outputs"]["measurements"]
                     if m["model"] == model.name and m["precision"] == precision]
            if not parts:
                continue
            detections = {int(i): _unarrays(Detections, d) for m in parts for i, d in m["detections"].items()}
            truth = {int(i): _unarrays(GroundTruth, g) for m in parts for i, g in m["ground_truth"].items()}
            shards_with = {k for k, r in enumerate(records)
                           if any(m["model"] == model.name and m["precision"] == precision
                                  for m in r["outputs"]["measurements"])}
            absent = [f"{k}/{count}" for k, r in enumerate(records)
                      if k not in shards_with and r["inputs"]["pictures"]]
            if absent or set(detections) != wanted:
                raise RunIncompleteError(f"--merge {args.merge}: {model.name} {precision}: shards missing: "
                                         f"{', '.join(absent) or 'pictures not measured'}")
            evaluator.merge(model, precision, detections, truth, sum(m["images"] for m in parts),
                            max(sum(m["seconds"] for m in parts), 1e-3))
        if not any(r[0] == model.name for r in evaluator.rows) and model.name not in evaluator.errors:
            evaluator.errors[model.name] = RunIncompleteError(f"{model.name}: no shard of {args.merge} measured it")
            print(err("error", str(evaluator.errors[model.name])), file=sys.stderr)
    failed += [m.name for m in models if m.name in evaluator.errors and m.name not in failed]
    return _report(args, evaluator, failed)


class RecordShards:
    """A sharded run's records in --run_dir (the format of --shard K/N's, so --merge reads them
    too; what accuracy.pipeline.Shards says): a shard whose record is there with the same inputs is
    not measured again; each shard's record is written once, by this process, when every IR of it
    is measured."""

    def __init__(self, count: int, runs: Any, args: argparse.Namespace, whole: Any, plan: list) -> None:
        self.count = count
        self.runs, self.args, self.whole, self.plan = runs, args, whole, plan

    def _inputs(self, samples: list) -> dict[str, Any]:
        from ..accuracy.dataset import Dataset

        return _shard_inputs(self.args, self.whole, self.whole.with_samples(samples), self.plan)

    def done(self, index: int, samples: list) -> dict | None:
        from ..accuracy.adapter import Detections
        from ..accuracy.dataset import GroundTruth
        from ..accuracy.pipeline import Part
        from ..shards import Shard

        record = self.runs.done(Shard(index, self.count), self._inputs(samples))
        if record is None:
            return None
        print(f"shard {index}/{self.count}: done already ({self.runs.path(Shard(index, self.count))}); skipped",
              flush=True)
        return {(m["model"], m["precision"]): Part(
            {int(i): _unarrays(Detections, d) for i, d in m["detections"].items()},
            {int(i): _unarrays(GroundTruth, g) for i, g in m["ground_truth"].items()}, m["images"], m["seconds"])
            for m in record["outputs"]["measurements"]}

    def keep(self, index: int, samples: list, parts: dict) -> None:
        from ..shards import Shard
        from ..store.runs import tool_versions

        outputs = {"measurements": [
            {"model": model, "precision": precision, "images": p.images, "seconds": round(p.seconds, 3),
             "detections": {str(i): _arrays(d) for i, d in p.detections.items()},
             "ground_truth": {str(i): _arrays(g) for i, g in p.truth.items()}}
            for (model, precision), p in sorted(parts.items())]}
        path = self.runs.write(Shard(index, self.count), self._inputs(samples), outputs,
                               versions=tool_versions("openvino", "numpy", "pycocotools", "opencv-python"))
        print(f"shard {index}/{self.count}: record {path}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, body, argv)


if __name__ == "__main__":
    sys.exit(main())
