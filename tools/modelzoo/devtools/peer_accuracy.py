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
    # COCO with its instances' masks
    "ms_coco_mask_rcnn": {"converter": "mscoco_mask_rcnn", "has_background": True, "sort_annotations": True},
    "ms_coco_mask_rcnn_short_80_classes": {"converter": "mscoco_mask_rcnn", "has_background": True,
                                           "sort_annotations": True},
    "ms_coco_mask_rcnn_short_80_classes_without_background": {"converter": "mscoco_mask_rcnn",
                                                              "has_background": False, "sort_annotations": True},
    "ms_coco_mask_rcnn_short_91_classes": {"converter": "mscoco_mask_rcnn", "has_background": True,
                                           "sort_annotations": True, "use_full_label_map": True},
    "COCO2017_mask_rcnn_person": {"converter": "mscoco_mask_rcnn", "has_background": False,
                                  "sort_annotations": True},
    **{name: {"converter": "mscoco_detection", "has_background": False, "sort_annotations": True,
              "use_full_label_map": False}
       for name in ("crossroad_extra_untagged", "crossroad_extra_untagged_person", "crossroad_extra_untagged_vehicle")},
    "person_detection": {"converter": "mscoco_detection", "has_background": True, "sort_annotations": True,
                         "use_full_label_map": True},
    # CVAT XML (annotation_file) with, where the definition names one, its labels_file: give both
    # in the conversion (cvat_conversion)
    **{name: {"converter": "cvat_object_detection", "has_background": True}
       for name in ("vehicle_license_plate_detection", "pedestrian_and_vehicle_dataset", "pedestrian_detection_dataset",
                    "crossroad_dataset_0078", "crossroad_dataset_1016", "vehicle_detection_dataset",
                    "barrier_vehicle_detection_dataset_index_class_2")},
    "market1501": {"converter": "market1501_reid"},
    "reid_dataset": {"converter": "market1501_reid"},
    "veri776": {"converter": "veri776_reid"},
    "image_retrieval": {"converter": "image_retrieval"},
    "lfw": {"converter": "lfw"},
    "lfw_mtcnn_align": {"converter": "lfw", "extension": "png"},
    "lfw_bin": {"converter": "face_recognition_bin", "convert_images": True},
    "pitts30k_val": {"converter": "place_recognition"},
    "CamVid": {"converter": "camvid"},
    "cityscapes": {"converter": "cityscapes"},
    "ADEChallengeData2016": {"converter": "ade20k"},
    "road_segmentation": {"converter": "common_semantic_segmentation", "image_postfix": ".JPEG",
                          "mask_postfix": ".png"},
    "semantic_segmentation_adas": {"converter": "common_semantic_segmentation", "image_postfix": ".JPEG",
                                   "mask_postfix": ".png"},
    "erfnet_data": {"converter": "voc_segmentation"},
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


def peer_definitions_by_name(accuracy_check: Path) -> dict:
    """The peer's own dataset definitions (peer_definitions' file), by name: what it adds to a
    model's dataset entry when run with them."""
    path = peer_definitions(accuracy_check)
    return {d["name"]: d for d in yaml.safe_load(path.read_text(encoding="utf-8"))["datasets"]}


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


def cvat_conversion(xml: Path, labels: Path | None = None) -> dict:
    """accuracy_check's cvat_object_detection conversion of a CVAT XML (and a labels file)."""
    return {"annotation_file": str(xml), **({"labels_file": str(labels)} if labels is not None else {})}


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


def segmentation_conversion(name: str, folder: Path) -> tuple[Path, dict, dict]:
    """(data_source, the converter's file options, the dataset's other fields) of a segmentation
    set made by devtools/segset.py, for the dataset definition ``name``."""
    if name == "CamVid":
        return folder, {"annotation_file": str(folder / "val.txt")}, {}
    if name == "cityscapes":  # (the pictures' folder as it is: the checker's default or the download's)
        images = next(sub for sub in ("imgsFine/leftImg8bit/val", "leftImg8bit/val") if (folder / sub).is_dir())
        return folder, {"dataset_root_dir": str(folder), "images_subfolder": images}, {}
    if name == "ADEChallengeData2016":
        return (folder / "images/validation",
                {"images_dir": str(folder / "images/validation"),
                 "annotations_dir": str(folder / "annotations/validation"),
                 "object_categories_file": str(folder / "objectInfo150.txt")},
                {"segmentation_masks_source": str(folder / "annotations/validation")})
    if name == "erfnet_data":
        return (folder / "JPEGImages",
                {"imageset_file": str(folder / "val.txt"), "images_dir": str(folder / "JPEGImages"),
                 "mask_dir": str(folder / "Annotations"), "dataset_meta_file": str(folder / "erfnet_meta_zxw.json")},
                {"segmentation_masks_source": str(folder / "Annotations")})
    masks = folder / {"road_segmentation": "mask_road_segmentation",
                      "semantic_segmentation_adas": "mask_segmentation_adas"}[name]
    return (folder / "images", {"images_dir": str(folder / "images"), "masks_dir": str(masks),
                                "dataset_meta_file": str(masks / "dataset_meta.json")},
            {"segmentation_masks_source": str(masks)})


def peer_entry(config: Path, model: str, xml: Path, images: Path, conversion: dict, name: str,
               definition: dict | None = None, **dataset_fields: str) -> dict:
    """One model of a batched accuracy_check configuration (named ``name``): the yml's entry with
    the IR, the data (``conversion``: the converter's file options) and f32; ``definition``: the
    peer's dataset definition, whose preprocessing, postprocessing and metrics the yml's entry gets
    where it has none (the checker's own merge)."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    entry = next(m for m in doc["models"] if m["name"] == model and any(
        x.get("framework") in ("openvino", "dlsdk") for x in m["launchers"]))
    launcher = dict(next(x for x in entry["launchers"] if x.get("framework") in ("openvino", "dlsdk")))
    launcher.update({"framework": "openvino", "device": "CPU", "model": str(xml),
                     "weights": str(xml.with_suffix(".bin")), "device_config": {"INFERENCE_PRECISION_HINT": "f32"}})
    dataset = {key: value for key, value in (definition or {}).items()
               if key in ("preprocessing", "postprocessing", "metrics")}
    dataset.update(entry["datasets"][0])
    dataset.update({"data_source": str(images),
                    "annotation_conversion": dict(CONVERSIONS[dataset["name"]], **conversion)}, **dataset_fields)
    return {"name": name, "launchers": [launcher], "datasets": [dataset]}


# NumPy 2.4 removed `trapz` (renamed `trapezoid` in 2.0, the same function), which accuracy_check
# 2023.3's reid_map calls: the peer's environment installs the newest NumPy, so its process gets
# the old name back (a sitecustomize on its PYTHONPATH), and computes what it always did.
NUMPY_SHIM = """import numpy
if not hasattr(numpy, "trapz"):
    numpy.trapz = numpy.trapezoid
"""


def peer_env(tmp: Path) -> dict[str, str]:
    """The environment accuracy_check runs in: this one, with NUMPY_SHIM's folder on PYTHONPATH."""
    import os

    shim = tmp / "numpy-shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(NUMPY_SHIM)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def peer_definitions(accuracy_check: Path) -> Path:
    """The dataset_definitions.yml that came with the peer (openvino-dev's model_zoo/data)."""
    found = sorted(Path(accuracy_check).absolute().parent.parent.glob(
        "lib/python3*/site-packages/openvino/model_zoo/data/dataset_definitions.yml"))
    if not found:
        raise FileNotFoundError(f"no dataset_definitions.yml in the environment of {accuracy_check}")
    return found[0]


# what a data set's definition may give a model's entry that has none (the peer merges them)
DEFINITION_KEYS = ("preprocessing", "postprocessing", "metrics")


def run_peer_many(accuracy_check: Path, entries: list[dict], timeout: float = 1800,
                  definitions: Path | None = None) -> tuple[dict[str, dict[str, float]], float, str]:
    """One accuracy_check run over several models (its start-up, seconds, is paid once):
    ({entry name: {metric: value in 0..1}}, seconds, stdout), read from its --csv_result.
    With ``definitions`` (Open Model Zoo's dataset_definitions.yml), the peer merges each data
    set's preprocessing, postprocessing and metrics from there into an entry without them (the
    files and conversions are the entries' own)."""
    import csv

    with tempfile.TemporaryDirectory(prefix="modelzoo-peer-ac-") as tmp:
        cfg = Path(tmp) / "accuracy_check.yml"
        cfg.write_text(yaml.safe_dump({"models": entries}))
        command = [str(accuracy_check), "-c", str(cfg), "--csv_result", str(Path(tmp) / "r.csv")]
        if definitions is not None:
            doc = yaml.safe_load(Path(definitions).read_text(encoding="utf-8"))
            kept = [{"name": d["name"], **{k: d[k] for k in DEFINITION_KEYS if k in d}} for d in doc["datasets"]]
            (Path(tmp) / "definitions.yml").write_text(yaml.safe_dump({"datasets": kept}))
            command += ["-d", str(Path(tmp) / "definitions.yml")]
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp,
                              stdin=subprocess.DEVNULL, env=peer_env(Path(tmp)))
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
                              capture_output=True, text=True, timeout=timeout, cwd=tmp, stdin=subprocess.DEVNULL,
                              env=peer_env(Path(tmp)))
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
