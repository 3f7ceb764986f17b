"""Segmentation (issue 26 item 3): the `segmentation` adapter, `crop_padded_prediction`,
`resize_segmentation_mask`, `encode_segmentation_mask`, `mean_iou` and `segmentation_accuracy`
on VOC2012 segmentation masks (palette PNG files), through the real command line, against Open
Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on the same IR, pictures and yml (one
peer run for both cases)."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from pathlib import Path

import numpy as np
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import vocset
from modelzoo.devtools.peer_accuracy import peer_entry, run_peer_many, voc_segmentation_conversion

# as pspnet-pytorch: the picture fitted and padded, the network's labels unpadded and resized back
LABELS_YML = """models:
  - name: tiny-segmentation-labels
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
            pad_value: '123.675, 116.28, 103.53'
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
            presenter: print_scalar
          - name: mean_iou_without_background
            type: mean_iou
            use_argmax: false
            ignore_label: 0
          - name: pixel_accuracy
            type: segmentation_accuracy
            use_argmax: false
          - name: pixel_accuracy_without_background
            type: segmentation_accuracy
            use_argmax: false
            ignore_label: 0
"""
# class scores, each class's map resized as an 8-bit picture, the best class taken by the metric
SCORES_YML = """models:
  - name: tiny-segmentation-scores
    launchers:
      - framework: openvino
        adapter:
          type: segmentation
    datasets:
      - name: VOC2012_Segmentation
        preprocessing:
          - type: resize
            size: 256
        postprocessing:
          - type: resize_segmentation_mask
            apply_to: prediction
          - type: encode_segmentation_mask
            apply_to: annotation
        metrics:
          - name: mean_iou
            type: mean_iou
          - name: mean_iou_without_background
            type: mean_iou
            ignore_label: 0
          - name: pixel_accuracy
            type: segmentation_accuracy
"""
# as deeplabv3: Pillow's ANTIALIAS (LANCZOS) fitting, a centred padding; the annotation brought to
# the fitted picture's size (to_dst_image_size), then cropped or padded to the network's
ANTIALIAS_YML = """models:
  - name: tiny-segmentation-antialias
    launchers:
      - framework: openvino
        adapter: segmentation
    datasets:
      - name: VOC2012_Segmentation
        preprocessing:
          - type: resize
            aspect_ratio_scale: fit_to_window
            size: 256
            interpolation: ANTIALIAS
            use_pillow: True
          - type: padding
            pad_value: '127.5,127.5,127.5'
            size: 256
        postprocessing:
          - type: resize_segmentation_mask
            to_dst_image_size: True
            apply_to: annotation
          - type: crop_or_pad
            size: 256
          - type: encode_segmentation_mask
            apply_to: annotation
        metrics:
          - type: mean_iou
            use_argmax: false
            presenter: print_scalar
          - name: pixel_accuracy
            type: segmentation_accuracy
            use_argmax: false
"""
CASES = {"tiny-segmentation-labels": (LABELS_YML, True), "tiny-segmentation-scores": (SCORES_YML, False),
         "tiny-segmentation-antialias": (ANTIALIAS_YML, True)}
METRICS = {"tiny-segmentation-labels": {"mean_iou", "mean_iou_without_background", "pixel_accuracy",
                                        "pixel_accuracy_without_background"},
           "tiny-segmentation-scores": {"mean_iou", "mean_iou_without_background", "pixel_accuracy"},
           "tiny-segmentation-antialias": {"mean_iou", "pixel_accuracy"}}
PICTURES = 10


@functools.cache
def segmentation_zoo() -> dict:
    root = _workdir() / "segmentation"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (yml, labels_out) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="semantic_segmentation").parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        # (one network's weights for every case: each picture's mask is near every case's labels)
        xmls[name] = vocset.segmentation_ir(ir / "public" / name / "FP32" / f"{name}.xml", labels_out, seed=24)
    # (the antialias case's masks are made from its labels unpadded and at the picture's size)
    (root / "label.yml").write_text(ANTIALIAS_YML.split("        postprocessing:")[0] + """        postprocessing:
          - type: crop_padded_prediction
          - type: resize_segmentation_mask
            apply_to: prediction
        metrics:
          - type: mean_iou
""")
    segmenters = [vocset.segmenter(xmls[name], root / "label.yml" if name.endswith("antialias") else ymls[name],
                                   name) for name in CASES]
    voc = vocset.write_voc_segmentation(root / "voc", vocset.pictures(PICTURES, seed=3), segmenters, seed=3)
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "voc": voc}


def measure(case: dict, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--all", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    records: dict = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record["value"]
    return records


def test_mean_iou_and_pixel_accuracy_equal_accuracy_check(peer_accuracy_check, tmp_path):
    case = segmentation_zoo()
    ours = measure(case, tmp_path / "r.json", "--dataset", case["voc"])
    assert ours == measure(case, tmp_path / "r2.json", "--images", case["voc"] / "JPEGImages", "--annotations",
                           case["voc"] / "ImageSets/Segmentation/val.txt")
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], case["voc"] / "JPEGImages",
                          voc_segmentation_conversion(case["voc"]), name,
                          segmentation_masks_source=str(case["voc"] / "SegmentationClass")) for name in CASES]
    theirs, _, _ = run_peer_many(peer_accuracy_check, entries)
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]) == METRICS[name]
        for metric, value in ours[name].items():
            assert 0.02 < value < 0.98, (name, metric, value)  # a number that can move
            assert abs(100 * value - 100 * theirs[name][metric]) <= 0.1, (name, metric, value, theirs[name])


def test_metrics_equal_numpy_on_synthetic_masks():
    from modelzoo.accuracy.metric import confusion, mean_iou, pixel_accuracy

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 21, (6, 50, 70))
    truth[:, ::7] = 255  # borders, never counted
    predicted = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, 23, truth.shape))
    matrix = sum(confusion(t, p, 21) for t, p in zip(truth, predicted))
    counted = (truth < 21) & (predicted < 21)
    t, p = truth[counted], predicted[counted]
    for ignore in (None, 0, 5):  # (the ignored class's IoU left out of the mean, as accuracy_check does)
        ious = []
        for c in (c for c in range(21) if c != ignore):
            union = np.sum((t == c) | (p == c))
            if union:
                ious.append(np.sum((t == c) & (p == c)) / union)
        assert abs(mean_iou(matrix, ignore) - np.mean(ious)) <= 1e-9
        assert abs(pixel_accuracy(matrix, ignore) - np.mean(t == p)) <= 1e-9


def test_a_mask_of_another_size_is_one_line_naming_it(tmp_path):
    from PIL import Image

    case = segmentation_zoo()
    voc = tmp_path / "VOC2012"
    shutil.copytree(case["voc"], voc)
    mask_path = voc / "SegmentationClass" / "2012_000004.png"
    with Image.open(mask_path) as mask:
        smaller = mask.resize((mask.width // 2, mask.height), Image.Resampling.NEAREST)
    smaller.save(mask_path)
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--all", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", voc, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{mask_path}: the mask is" in line and "its picture 2012_000004.png" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_boxes_are_not_written_for_a_segmentation_model(tmp_path):
    """--detections_out and --draw write boxes: for a model that predicts masks they are one line
    before any inference, not a traceback after it."""
    case = segmentation_zoo()
    for flags in (["--detections_out", tmp_path / "d.json"], ["--draw", "2", "--draw_dir", tmp_path / "drawn"]):
        result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-segmentation-labels",
                          "--ir_dir", case["ir"], "--precisions", "FP32", "--dataset", case["voc"], *flags)
        assert result.returncode != 0 and "Measuring" not in result.stdout
        assert "--detections_out and --draw write boxes; tiny-segmentation-labels's adapter predicts none" in \
            one_error_line(result)
        assert not (tmp_path / "d.json").exists() and not any(tmp_path.glob("drawn/*"))


PEER_RESIZE = """
import json, sys
import numpy as np
from openvino.tools.accuracy_checker.data_readers import DataRepresentation
from openvino.tools.accuracy_checker.preprocessor import Preprocessor
step = json.loads(sys.argv[1])
for name in sys.argv[2:]:  # (IN.npy -> IN.out.npy)
    out = Preprocessor.provide(step["type"], step, "resize").process(DataRepresentation(np.load(name), identifier="x"))
    np.save(name[:-4] + ".out.npy", out.data)
"""


def test_antialias_resizes_as_the_checker_does(peer_accuracy_check, tmp_path):
    """deeplabv3's `interpolation: ANTIALIAS` with use_pillow: the checker's own resize step (run in
    its environment) and ours give the same bytes (Pillow's LANCZOS; its BILINEAR would not)."""
    import subprocess

    import yaml
    from PIL import Image

    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.accuracy.preprocessing import preprocess
    from modelzoo.devtools.cocoset import pictures

    yml = tmp_path / "accuracy-check.yml"
    yml.write_text(ANTIALIAS_YML)
    config = load_accuracy_config(yml, "tiny-segmentation-antialias")
    step = yaml.safe_load(ANTIALIAS_YML)["models"][0]["datasets"][0]["preprocessing"][0]
    resize_only = dataclasses.replace(config, preprocessing=config.preprocessing[:1])
    samples = pictures(2, 12, [(300, 180), (90, 200)])
    for i, picture in enumerate(samples):
        np.save(tmp_path / f"{i}.npy", picture)
    subprocess.run([str(Path(peer_accuracy_check).parent / "python"), "-c", PEER_RESIZE, json.dumps(step),
                    *(str(tmp_path / f"{i}.npy") for i in range(len(samples)))],
                   check=True, capture_output=True, timeout=300)
    for i, picture in enumerate(samples):
        theirs = np.load(tmp_path / f"{i}.out.npy")
        ours, _ = preprocess(picture, resize_only)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs.astype(np.float32)), i
        bilinear = np.asarray(Image.fromarray(picture).resize(theirs.shape[1::-1], Image.Resampling.BILINEAR))
        assert not np.array_equal(bilinear, theirs)
