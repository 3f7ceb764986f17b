"""accuracy_check: measure converted IR as each model's card does (its accuracy-check.yml), on a
COCO-format dataset, with Open Model Zoo's accuracy checker's semantics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import MissingExtraError, SelectionError
from .common import (OneLineParser, add_selection_args, add_trust_args, apply_trust, check_output_path, error_line,
                     parse_and_select, positive_int, refuse_outputs_over_inputs, run, summarize)

PROG = "accuracy_check"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_selection_args(parser, "measure")
    parser.add_argument("--ir_dir", type=Path, default=Path.cwd(), metavar="DIR",
                        help="where the IR is: the converter's or quantizer's -o "
                             "(DIR/<model folder>/<precision>/<name>.xml; default: the current folder)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", type=Path, metavar="DIR",
                      help="a COCO-format folder: DIR/val2017/ and DIR/annotations/instances_val2017.json")
    data.add_argument("--images", type=Path, metavar="DIR", help="the image folder (with --annotations)")
    data.add_argument("--annotations", type=Path, metavar="FILE", help="a COCO annotation file (instances JSON)")
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
    add_trust_args(parser)
    return parser


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("openvino", "cv2", "pycocotools") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"needs {', '.join(missing)}: pip install 'modelzoo[convert,quantize]'")


def _coco_results(run: Any, dataset: Any, config: Any) -> list[dict]:
    categories = dataset.categories()
    out = []
    for image_id, dets in run.detections.items():
        for label, score, box in zip(dets.labels, dets.scores, dets.boxes):
            index = int(label) - config.label_offset
            if 0 <= index < len(categories):
                out.append({"image_id": image_id, "category_id": categories[index]["id"],
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

    names = {i + config.label_offset: c["name"] for i, c in enumerate(dataset.categories())}
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
    bad = apply_trust(PROG, args, models, catalog.root, failed).check_ir(  # --locked: only the locked IR is measured
        models, args.ir_dir.absolute(), precisions, "the IR to measure", remove=False,
        line=lambda t: print(error_line(PROG)("error", t), file=sys.stderr))
    if bad:
        return summarize(PROG, failed + bad)
    _require_extra()
    from ..accuracy.dataset import check_pictures, resolve
    from ..accuracy.pipeline import Evaluator
    from ..events import Reporter

    err = error_line(PROG)
    dataset = resolve(args.dataset, args.images, args.annotations, need_annotations=True)
    if args.subset is not None and args.subset > len(dataset.samples):
        print(err("warning", f"--subset {args.subset}: the dataset has only {len(dataset.samples)} images; "
                             "using all of them"), file=sys.stderr)
    dataset = dataset.subset(args.subset)
    check_pictures(dataset)  # a file that is not a picture is refused before any inference

    def after(task: Any, measured: Any) -> None:  # what this command writes of each measurement
        if args.detections_out is not None:
            _write_json(args.detections_out, _coco_results(measured, dataset, task.config))
        if args.draw:
            _draw(measured, dataset, task.config, args.draw_dir, args.draw, f"{task.model.name}-{task.precision}")

    evaluator = Evaluator(args.ir_dir, catalog.root, dataset, precisions, args.device,
                          Reporter("text", bars=False, line=err), after)
    plan = evaluator.plan(models)  # every yml and IR checked before any inference
    if len(models) == 1 and evaluator.errors:
        return evaluator.errors[models[0].name].exit_code  # (its one line is said)
    if args.detections_out is not None and len(plan) != 1:
        raise SelectionError(f"--detections_out writes one model's detections at one precision; "
                             f"this run measures {len(plan)}")
    _refuse_overwriting_inputs(args, dataset, plan)
    failed += evaluator.run(models)
    if len(models) == 1 and failed:
        return evaluator.errors[models[0].name].exit_code
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


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, body, argv)


if __name__ == "__main__":
    sys.exit(main())
