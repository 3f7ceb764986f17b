"""Open Model Zoo's own `accuracy_check` (openvino-dev 2023.3.0, in a virtual environment of its
own) on a model's accuracy-check.yml, one IR and a COCO-format or ImageNet-style folder: the peer our accuracy
tool is compared with in tests and benchmarks.

    python -m modelzoo.devtools.peer_accuracy --accuracy_check VENV/bin/accuracy_check \
        --config ZOO/public/retinanet-tf/accuracy-check.yml --model retinanet-tf \
        --xml IR/FP32/retinanet-tf.xml --dataset COCO_DIR
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

# The dataset definitions Open Model Zoo's configurations name: how accuracy_check converts a
# COCO annotation file for them.
CONVERSIONS = {
    "ms_coco_detection_80_class_without_background": {"converter": "mscoco_detection", "has_background": False,
                                                      "sort_annotations": True, "use_full_label_map": False},
    "ms_coco_detection_80_class_with_background": {"converter": "mscoco_detection", "has_background": True,
                                                   "sort_annotations": True, "use_full_label_map": False},
    "ms_coco_detection_91_classes": {"converter": "mscoco_detection", "has_background": True,
                                     "sort_annotations": True, "use_full_label_map": True},
    "ms_coco_detection_90_class_without_background": {"converter": "mscoco_detection", "has_background": False,
                                                      "sort_annotations": True, "use_full_label_map": True},
    "imagenet_1000_classes": {"converter": "imagenet", "has_background": False},
    "imagenet_1001_classes": {"converter": "imagenet", "has_background": True},
    "VOC2012": {"converter": "voc_detection", "has_background": True},
    "VOC2012_without_background": {"converter": "voc_detection", "has_background": False},
    "VOC2012_Segmentation": {"converter": "voc_segmentation"},
    "wider": {"converter": "wider"},
    "wider_without_bkgr": {"converter": "wider", "label_start": 0},
    # image-to-image (the definitions' converters; data_dir: the folder, given per run)
    "super_resolution_x3": {"converter": "super_resolution", "lr_suffix": "lr_x3", "upsample_suffix": "upsample_x3",
                            "hr_suffix": "hr", "two_streams": True},
    "super_resolution_x4": {"converter": "super_resolution", "lr_suffix": "lr_x4", "upsample_suffix": "upsample_x4",
                            "hr_suffix": "hr", "two_streams": True},
    "text_super_resolution_x3": {"converter": "super_resolution", "lr_suffix": "lr_x3", "hr_suffix": "hr_gray"},
    "LIVE_1": {"converter": "image_processing", "input_suffix": ".bmp", "target_suffix": ".bmp"},
    "imagenet_colorization": {"converter": "image_processing", "input_suffix": ".JPEG", "target_suffix": ".JPEG",
                              "annotation_loader": "opencv"},
    "ms_coco_style_transfer": {"converter": "style_transfer"},
    "inpainting_rect_masks": {"converter": "inpainting"},
}


def peer_config(config: Path, model: str, xml: Path, images: Path, annotations: Path, workdir: Path) -> Path:
    """A complete accuracy_check configuration: the model's entry with the IR, the data and f32."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    entry = next(m for m in doc["models"] if m["name"] == model)
    launcher = dict(entry["launchers"][0])
    launcher.update({"framework": "openvino", "device": "CPU", "model": str(xml),
                     "weights": str(xml.with_suffix(".bin")), "device_config": {"INFERENCE_PRECISION_HINT": "f32"}})
    dataset = dict(entry["datasets"][0])
    dataset.update({"data_source": str(images),
                    "annotation_conversion": dict(CONVERSIONS[dataset["name"]], annotation_file=str(annotations))})
    out = workdir / "accuracy_check.yml"
    out.write_text(yaml.safe_dump({"models": [{"name": model, "launchers": [launcher], "datasets": [dataset]}]}))
    return out


def voc_conversion(voc: Path) -> dict:
    """accuracy_check's voc_detection conversion of a VOC year folder (VOCdevkit/VOC2012)."""
    return {"annotations_dir": str(voc / "Annotations"), "images_dir": str(voc / "JPEGImages"),
            "imageset_file": str(voc / "ImageSets/Main/val.txt")}


def voc_segmentation_conversion(voc: Path) -> dict:
    """accuracy_check's voc_segmentation conversion of a VOC year folder, and where its masks are."""
    return {"imageset_file": str(voc / "ImageSets/Segmentation/val.txt"), "images_dir": str(voc / "JPEGImages"),
            "mask_dir": str(voc / "SegmentationClass")}


def wider_conversion(root: Path) -> dict:
    """accuracy_check's wider conversion of a WIDER FACE folder (WIDER_val/, wider_face_split/)."""
    return {"annotation_file": str(root / "wider_face_split/wider_face_val_bbx_gt.txt")}


def peer_entry(config: Path, model: str, xml: Path, images: Path, conversion: dict, name: str,
               **dataset_fields: str) -> dict:
    """One model of a batched accuracy_check configuration (named ``name``): the yml's entry with
    the IR, the data (``conversion``: the converter's file options) and f32."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    entry = next(m for m in doc["models"] if m["name"] == model and any(
        x.get("framework") in ("openvino", "dlsdk") for x in m["launchers"]))
    launcher = dict(next(x for x in entry["launchers"] if x.get("framework") in ("openvino", "dlsdk")))
    launcher.update({"framework": "openvino", "device": "CPU", "model": str(xml),
                     "weights": str(xml.with_suffix(".bin")), "device_config": {"INFERENCE_PRECISION_HINT": "f32"}})
    dataset = dict(entry["datasets"][0])
    dataset.update({"data_source": str(images),
                    "annotation_conversion": dict(CONVERSIONS[dataset["name"]], **conversion)}, **dataset_fields)
    return {"name": name, "launchers": [launcher], "datasets": [dataset]}


def run_peer_many(accuracy_check: Path, entries: list[dict], timeout: float = 1800
                  ) -> tuple[dict[str, dict[str, float]], float, str]:
    """One accuracy_check run over several models (its start-up, seconds, is paid once):
    ({entry name: {metric: value in 0..1}}, seconds, stdout), read from its --csv_result."""
    import csv

    with tempfile.TemporaryDirectory(prefix="modelzoo-peer-ac-") as tmp:
        cfg = Path(tmp) / "accuracy_check.yml"
        cfg.write_text(yaml.safe_dump({"models": entries}))
        started = time.monotonic()
        proc = subprocess.run([str(accuracy_check), "-c", str(cfg), "--csv_result", str(Path(tmp) / "r.csv")],
                              capture_output=True, text=True, timeout=timeout, cwd=tmp, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"accuracy_check failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        values: dict[str, dict[str, float]] = {}
        with open(Path(tmp) / "r.csv", newline="") as f:
            for row in csv.DictReader(f):
                values.setdefault(row["model"], {})[row["metric_name"]] = float(row["metric_value"])
    if set(values) != {e["name"] for e in entries}:
        raise RuntimeError(f"accuracy_check measured {sorted(values)}, not every entry:\n{proc.stdout[-3000:]}")
    return values, seconds, proc.stdout


def run_peer(accuracy_check: Path, config: Path, model: str, xml: Path, images: Path, annotations: Path,
             timeout: float = 1800) -> tuple[dict[str, float], float, str]:
    """({metric: value in 0..1}, seconds, stdout) of one accuracy_check run."""
    with tempfile.TemporaryDirectory(prefix="modelzoo-peer-ac-") as tmp:
        cfg = peer_config(config, model, xml, images, annotations, Path(tmp))
        started = time.monotonic()
        proc = subprocess.run([str(accuracy_check), "-c", str(cfg), "--csv_result", str(Path(tmp) / "r.csv")],
                              capture_output=True, text=True, timeout=timeout, cwd=tmp, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"accuracy_check failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    values = {m.group(1): float(m.group(2)) / 100
              for m in re.finditer(r"^\s*([\w@.-]+): (-?[0-9.]+)%", proc.stdout, re.M)}
    if not values:
        raise RuntimeError(f"accuracy_check printed no metric:\n{proc.stdout[-3000:]}")
    return values, seconds, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.devtools.peer_accuracy",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--accuracy_check", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--xml", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    args = parser.parse_args(argv)
    values, seconds, _ = run_peer(args.accuracy_check, args.config, args.model, args.xml.absolute(),
                                  (args.dataset / "val2017").absolute(),
                                  (args.dataset / "annotations/instances_val2017.json").absolute())
    for name, value in values.items():
        print(f"{name}: {100 * value:.4f} % ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
