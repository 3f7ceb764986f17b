#!/usr/bin/env python3
"""modelzoo-accuracy against Open Model Zoo's accuracy_check, per task, on the same IR, pictures
and yml (run it with the Python of an environment with '.[convert,quantize]'):

- classification: the small 1001-class classifier (devtools/imagenetset.py), an ImageNet-style
  folder with val.txt;
- detection: the tiny YOLO v2 IR (devtools/vocset.py), a VOC folder with XML annotations;
- segmentation: the tiny labels-out segmentation IR, VOC palette masks.

For each: both tools' wall time for the whole command, the pictures per second of the
measurement itself (ours: the run's own count and seconds from --json; the peer's: its "N
objects processed in S seconds" line), the values of every metric side by side; then the count
of openvino-dev's configurations modelzoo-accuracy can run (bench/accuracy_table.py).

    python bench/accuracy.py --accuracy_check .venv-ac/bin/accuracy_check --images 100 [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

from common import dump_json, report  # noqa: E402

from modelzoo.devtools import imagenetset, vocset  # noqa: E402
from modelzoo.devtools.peer_accuracy import (  # noqa: E402
    peer_entry, voc_conversion, voc_segmentation_conversion)

CLASSIFIER_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: classification
    datasets:
      - name: imagenet_1001_classes
        preprocessing:
          - type: resize
            size: 256
            aspect_ratio_scale: greater
          - type: crop
            size: 224
          - type: bgr_to_rgb
          - type: normalization
            mean: 127.5
            std: 127.5
        metrics:
          - name: accuracy@top1
            type: accuracy
            top_k: 1
          - name: accuracy@top5
            type: accuracy
            top_k: 5
"""
YOLO_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v2
          anchors: tiny_yolo_v2
    datasets:
      - name: VOC2012_without_background
        preprocessing:
          - type: resize
            size: 416
        postprocessing:
          - type: filter
            apply_to: prediction
            min_confidence: 0.01
            remove_filtered: True
          - type: nms
            overlap: 0.5
            include_boundaries: False
          - type: resize_prediction_boxes
          - type: clip_boxes
            apply_to: prediction
        metrics:
          - name: map
            type: map
            integral: 11point
            ignore_difficult: true
"""
SEGMENTATION_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: segmentation
    datasets:
      - name: VOC2012_Segmentation
        preprocessing:
          - type: resize
            aspect_ratio_scale: fit_to_window
            size: 256
          - type: padding
            size: 256
            pad_type: right_bottom
        postprocessing:
          - type: crop_padded_prediction
          - type: resize_segmentation_mask
            apply_to: prediction
          - type: encode_segmentation_mask
            apply_to: annotation
        metrics:
          - name: mean_iou
            type: mean_iou
            use_argmax: false
"""


def _zoo(root: Path, name: str, yml: str) -> Path:
    folder = root / "zoo" / "public" / name
    folder.mkdir(parents=True)
    files = "".join(f"  - name: FP32/{name}.{ext}\n    size: 1\n    checksum: \"{'0' * 96}\"\n"
                    f"    source: http://x/{ext}\n" for ext in ("xml", "bin"))
    (folder / "model.yml").write_text(f"description: {name}\ntask_type: detection\nframework: dldt\n"
                                      f"license: https://example.com/LICENSE\nfiles:\n{files}")
    (folder / "accuracy-check.yml").write_text(yml.format(name=name))
    return folder / "accuracy-check.yml"


def make_tasks(root: Path, count: int) -> list[dict]:
    """Each task's zoo, IR and data (the pictures: imagenetset's sizes and aspect ratios)."""
    tasks = []
    name = "bench-classifier"
    yml = _zoo(root / name, name, CLASSIFIER_YML)
    xml = imagenetset.classifier_ir(root / name / "ir/public" / name / "FP32" / f"{name}.xml", 1001, seed=1)
    data = imagenetset.write_imagenet_folder(root / name / "imagenet", imagenetset.pictures(count, seed=1),
                                             imagenetset.ir_scorer(xml), offset=1, seed=1)
    tasks.append({"task": "classification", "name": name, "yml": yml, "xml": xml, "dataset": data,
                  "peer": (data, {"annotation_file": str(data / "val.txt")}, {})})
    name = "bench-yolo-v2"
    yml = _zoo(root / name, name, YOLO_YML)
    xml = vocset.yolo_v2_ir(root / name / "ir/public" / name / "FP32" / f"{name}.xml")
    voc = vocset.write_voc_folder(root / name / "voc", vocset.pictures(count, seed=2),
                                  [vocset.detector(xml, yml, name)])
    tasks.append({"task": "detection (YOLO v2, VOC map)", "name": name, "yml": yml, "xml": xml, "dataset": voc,
                  "peer": (voc / "JPEGImages", voc_conversion(voc), {})})
    name = "bench-segmentation"
    yml = _zoo(root / name, name, SEGMENTATION_YML)
    xml = vocset.segmentation_ir(root / name / "ir/public" / name / "FP32" / f"{name}.xml", True)
    voc = vocset.write_voc_segmentation(root / name / "voc", vocset.pictures(count, seed=3),
                                        [vocset.segmenter(xml, yml, name)])
    tasks.append({"task": "segmentation (VOC mean_iou)", "name": name, "yml": yml, "xml": xml, "dataset": voc,
                  "peer": (voc / "JPEGImages", voc_segmentation_conversion(voc),
                           {"segmentation_masks_source": str(voc / "SegmentationClass")})})
    return tasks


def run_ours(task: dict, tmp: Path) -> dict:
    out = tmp / f"{task['name']}.json"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "tools/downloader/accuracy_check.py"), "--models_dir",
                           str(task["yml"].parents[2]), "--name", task["name"], "--ir_dir",
                           str(task["xml"].parents[3]), "--precisions", "FP32", "--dataset", str(task["dataset"]),
                           "--json", str(out)], capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"modelzoo-accuracy failed on {task['name']}:\n{proc.stderr[-2000:]}")
    records = json.loads(out.read_text())
    return {"wall": wall, "images": records[0]["images"], "seconds": records[0]["seconds"],
            "values": {r["metric"]: r["value"] for r in records}}


def run_peer(task: dict, accuracy_check: Path, tmp: Path) -> dict:
    import yaml

    images, conversion, fields = task["peer"]
    entry = peer_entry(task["yml"], task["name"], task["xml"], images, conversion, task["name"], **fields)
    cfg = tmp / f"{task['name']}-peer.yml"
    cfg.write_text(yaml.safe_dump({"models": [entry]}))
    started = time.monotonic()
    proc = subprocess.run([str(accuracy_check), "-c", str(cfg), "--csv_result", str(tmp / "peer.csv")],
                          capture_output=True, text=True, cwd=tmp, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"accuracy_check failed on {task['name']}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    done = re.search(r"(\d+) objects processed in ([0-9.]+) seconds", proc.stdout)
    with open(tmp / "peer.csv", newline="") as f:
        values = {row["metric_name"]: float(row["metric_value"]) for row in csv.DictReader(f)}
    return {"wall": wall, "images": int(done.group(1)) if done else None,
            "seconds": float(done.group(2)) if done else None, "values": values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accuracy_check", type=Path, required=True)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models_root", type=Path, help="Open Model Zoo's models folder, for the count (default: "
                        "omz_tools/models of this environment's openvino-dev)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="modelzoo-bench-accuracy-") as tmp_name:
        tmp = Path(tmp_name)
        for task in make_tasks(tmp, args.images):
            ours, theirs = run_ours(task, tmp), run_peer(task, args.accuracy_check.absolute(), tmp)
            results[task["task"]] = {"ours": ours, "accuracy_check": theirs}
            rows = [("pictures", str(ours["images"])),
                    ("modelzoo-accuracy", f"{ours['images'] / ours['seconds']:.1f} pictures/s measuring, "
                                          f"{ours['wall']:.1f} s for the command"),
                    ("accuracy_check", (f"{theirs['images'] / theirs['seconds']:.1f} pictures/s measuring, "
                                        if theirs["seconds"] else "") + f"{theirs['wall']:.1f} s for the command")]
            for metric, value in ours["values"].items():
                peer_value = 100 * theirs["values"].get(metric, float("nan"))
                rows.append((metric, f"{100 * value:.3f} % (accuracy_check {peer_value:.3f} %)"))
            report(task["task"], rows)
    from accuracy_table import default_root, entry_name

    from modelzoo.accuracy.support import unsupported

    files = sorted((args.models_root or default_root()).rglob("accuracy-check.yml"))
    runnable = sum(1 for yml in files if unsupported(yml, entry_name(yml)) is None)
    report("configurations", [("openvino-dev's accuracy-check.yml runnable", f"{runnable} of {len(files)}")])
    results["configurations"] = {"runnable": runnable, "total": len(files)}
    dump_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
