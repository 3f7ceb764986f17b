"""Segmentation sets beyond VOC (issue 26): CamVid, Cityscapes, ADE20K and the road set of
common_semantic_segmentation, each made here in its real layout (devtools/segset.py), with the
steps their Open Model Zoo configurations use (resize_segmentation_mask on the annotation,
auto_resize, shift, encode_segmentation_mask on colour masks, mean_accuracy, a per-class
reference, the dataset definition's own steps), measured through the real command line and by
Open Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on the same IR, pictures and yml:
every case in one peer run."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import segset, vocset
from modelzoo.devtools.cocoset import pictures
from modelzoo.devtools.peer_accuracy import peer_definitions_by_name, peer_entry, run_peer_many, segmentation_conversion

HEADER = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: {adapter}
    datasets:
      - name: {dataset}
"""
# icnet-camvid-ava-0001's steps: the annotation brought to the network's size, class 11 ignored
# (the first metric's: the second one reads the same matrix)
CAMVID_LABELS = """        preprocessing:
          - type: resize
            dst_width: 96
            dst_height: 72
            interpolation: LINEAR
        postprocessing:
          - type: resize_segmentation_mask
            apply_to: annotation
            dst_width: 96
            dst_height: 72
        metrics:
          - type: mean_iou
            use_argmax: false
            ignore_label: 11
            presenter: print_scalar
          - name: pixel_accuracy
            type: segmentation_accuracy
            use_argmax: false
"""
# unet-camvid-onnx-0001's: Pillow reads and resizes, a reference per class (its mean)
CAMVID_SCORES = """        reader: pillow_imread
        preprocessing:
          - type: resize
            dst_height: 64
            dst_width: 80
            use_pillow: True
            interpolation: BILINEAR
          - type: rgb_to_bgr
        postprocessing:
          - type: resize_segmentation_mask
            apply_to: annotation
            dst_height: 64
            dst_width: 80
        metrics:
          - type: mean_iou
            use_argmax: True
            ignore_label: 11
            presenter: print_vector
            reference:
              mean: 0.5
"""
# drn-d-38's: the picture as it is, train ids with 255 borders, "background" (19) ignored
CITYSCAPES_DRN = """        metrics:
          - type: mean_iou
            use_argmax: false
            presenter: print_vector
            ignore_label: 19
          - type: mean_accuracy
            use_argmax: false
"""
# fastseg's: the network's own input size, colour masks encoded, the prediction resized back
CITYSCAPES_FASTSEG = """        preprocessing:
          - type: auto_resize
        postprocessing:
          - type: encode_segmentation_mask
            apply_to: annotation
          - type: resize_segmentation_mask
            apply_to: prediction
        metrics:
          - type: mean_iou
            use_argmax: false
            presenter: print_scalar
"""
# hrnet-v2-c1-segmentation's: ADE20K's labels one lower (0, the background, becomes -1: not counted)
ADE_HRNET = """        preprocessing:
          - type: resize
            size: 64
            use_pillow: True
            interpolation: BILINEAR
        postprocessing:
          - type: resize_segmentation_mask
            apply_to: prediction
          - type: shift
            apply_to: annotation
            shift_value: -1
        metrics:
          - name: pix_accuracy
            type: segmentation_accuracy
            use_argmax: True
          - name: mean_IoU
            type: mean_iou
            use_argmax: True
"""
# road-segmentation-adas-0001's: only metrics; the resize to 896x512 and the steps on the colour
# masks come from the dataset definition
ROAD = """        metrics:
          - type: mean_iou
            presenter: print_vector
            reference:
              BG: 0.9
              road: 0.9
              curbs: 0.7
              marks: 0.7
              mean: 0.8
          - type: mean_accuracy
            presenter: print_vector
"""
# erfnet's: the lanes' labels, the prediction resized to the (fixed) size of the masks
ERFNET = """        preprocessing:
          - type: resize
            dst_width: 96
            dst_height: 32
        postprocessing:
          - type: resize_segmentation_mask
            dst_width: 120
            dst_height: 60
            apply_to: prediction
        metrics:
          - type: segmentation_accuracy
            use_argmax: false
            presenter:  print_scalar
          - type: mean_iou
            use_argmax: false
            presenter:  print_scalar
"""
# semantic-segmentation-adas-0001's: only the metric (labels out); the resize to 2048x1024 and the
# colour masks' steps from the dataset definition
ADAS = """        metrics:
          - type: mean_iou
            use_argmax: False
            presenter: print_vector
            reference:
              Road: 0.9
              mean: 0.69
"""
ROAD_CLASSES = ["BG", "road", "curbs", "marks"]
ROAD_COLORS = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
ADAS_CLASSES = ["Road", "Sidewalk", "Building", "Car", "Person", "Sky"]
ADAS_COLORS = [(128, 64, 128), (244, 35, 232), (70, 70, 70), (0, 0, 142), (220, 20, 60), (70, 130, 180)]
# name -> (dataset definition, yml body, adapter, IR: labels out, classes, height, width)
CASES = {
    "tiny-camvid-labels": ("CamVid", CAMVID_LABELS, "segmentation", (True, 12, 72, 96)),
    "tiny-camvid-scores": ("CamVid", CAMVID_SCORES, "segmentation", (False, 12, 64, 80)),
    "tiny-cityscapes-drn": ("cityscapes", CITYSCAPES_DRN, "{type: segmentation, make_argmax: true}",
                            (False, 19, 64, 128)),
    "tiny-cityscapes-fastseg": ("cityscapes", CITYSCAPES_FASTSEG, "{type: segmentation, make_argmax: true}",
                                (False, 19, 64, 96)),
    "tiny-ade20k": ("ADEChallengeData2016", ADE_HRNET, "segmentation", (False, 150, 64, 64)),
    "tiny-road": ("road_segmentation", ROAD, "segmentation", (False, 4, 512, 896)),
    "tiny-adas": ("semantic_segmentation_adas", ADAS, "segmentation", (True, 6, 1024, 2048)),
    # (its yml's entry is named in capitals, as erfnet's "ERFNet")
    "tiny-erfnet": ("erfnet_data", ERFNET, "{type: segmentation, make_argmax: true}", (False, 5, 32, 96)),
}
PICTURES = 6
SIZES = [(90, 120), (64, 100), (120, 90), (75, 75)]


def entry(name: str) -> str:
    """The name of the model's entry in its yml."""
    return name.upper() if name.endswith("erfnet") else name


@functools.cache
def zoo() -> dict:
    """The models (yml and IR) and one data set per model (each written from that model's labels)."""
    root = _workdir() / "segmentation-sets"
    zoo_dir, ir = root / "zoo", root / "ir"
    xmls, ymls, sets = {}, {}, {}
    for name, (dataset, body, adapter, (labels_out, classes, height, width)) in CASES.items():
        folder = write_model(zoo_dir, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                             for ext in ("xml", "bin")], task_type="semantic_segmentation").parent
        (folder / "accuracy-check.yml").write_text(HEADER.format(name=entry(name), adapter=adapter, dataset=dataset)
                                                   + body)
        ymls[name] = folder / "accuracy-check.yml"
        xml = ir / "public" / name / "FP32" / f"{name}.xml"
        xmls[name] = segset.large_labels_ir(xml, classes, height, width, seed=len(name)) if height > 1000 else \
            vocset.segmentation_ir(xml, labels_out, seed=len(name), classes=classes, height=height, width=width,
                                   spread=0.004 if classes > 100 else 0.2)
        label = vocset.segmenter(xmls[name], ymls[name], entry(name))
        data = root / "data" / name
        if dataset == "CamVid":
            sets[name] = segset.write_camvid(data, pictures(PICTURES, 5, SIZES), label, seed=5)
        elif name == "tiny-cityscapes-drn":  # (the download's folders; the picture is the network's input)
            sets[name] = segset.write_cityscapes(data, pictures(PICTURES, 6, [(64, 128)]), label, seed=6)
        elif dataset == "cityscapes":  # (the checker's folders, colour masks)
            sets[name] = segset.write_cityscapes(data, pictures(PICTURES, 7, SIZES), label, seed=7,
                                                 images="imgsFine/leftImg8bit/val", colour=True)
        elif dataset == "ADEChallengeData2016":
            sets[name] = segset.write_ade20k(data, pictures(PICTURES, 8, SIZES), label, seed=8)
        elif dataset == "erfnet_data":  # (the pictures of the masks' size)
            sets[name] = segset.write_erfnet(data, pictures(PICTURES, 10, [(60, 120)]), label, seed=10)
        elif dataset == "semantic_segmentation_adas":  # (three pictures: the masks are resized to 2048x1024)
            sets[name] = segset.write_common(data, pictures(3, 11, SIZES), label, "mask_segmentation_adas",
                                             ADAS_CLASSES, ADAS_COLORS, seed=11)
        else:
            sets[name] = segset.write_common(data, pictures(PICTURES, 9, SIZES), label, "mask_road_segmentation",
                                             ROAD_CLASSES, ROAD_COLORS, seed=9)
    return {"zoo": zoo_dir, "ir": ir, "xml": xmls, "yml": ymls, "sets": sets}


def measure(name: str, json_out: Path, *data) -> dict:
    case = zoo()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *data)
    assert result.returncode == 0, result.stderr
    return {r["metric"]: r["value"] for r in json.loads(json_out.read_text())}


@functools.cache
def theirs(accuracy_check: Path) -> dict:
    """Every case measured by accuracy_check in one run; a print_vector metric's value is its mean."""
    case = zoo()
    definitions = peer_definitions_by_name(accuracy_check)
    entries = []
    for name, (dataset, *_rest) in CASES.items():
        source, conversion, fields = segmentation_conversion(dataset, case["sets"][name])
        entries.append(peer_entry(case["yml"][name], entry(name), case["xml"][name], source, conversion, name,
                                  definition=definitions[dataset], **fields))
    values, _, _ = run_peer_many(accuracy_check, entries)
    return {model: {metric.removesuffix("@mean"): value for metric, value in metrics.items()
                    if "@" not in metric or metric.endswith("@mean")} for model, metrics in values.items()}


def equal_to_the_peer(peer: Path, name: str, ours: dict, metrics: set[str]) -> None:
    peer_values = theirs(peer)[name]
    assert set(ours) == set(peer_values) == metrics, (ours, peer_values)
    for metric, value in ours.items():
        assert 0.02 < value < 0.98, (name, metric, value)  # a number that can move
        assert abs(100 * value - 100 * peer_values[metric]) <= 0.1, (name, metric, value, peer_values)


def test_camvid_equals_accuracy_check(peer_accuracy_check, tmp_path):
    case = zoo()
    camvid = case["sets"]["tiny-camvid-labels"]
    labels = measure("tiny-camvid-labels", tmp_path / "a.json", "--dataset", camvid.parent)  # (CamVid/ found below)
    assert labels == measure("tiny-camvid-labels", tmp_path / "b.json", "--images", camvid,
                             "--annotations", camvid / "val.txt")
    equal_to_the_peer(peer_accuracy_check, "tiny-camvid-labels", labels, {"mean_iou", "pixel_accuracy"})
    scores = measure("tiny-camvid-scores", tmp_path / "c.json", "--dataset", case["sets"]["tiny-camvid-scores"])
    equal_to_the_peer(peer_accuracy_check, "tiny-camvid-scores", scores, {"mean_iou"})


def test_cityscapes_equals_accuracy_check(peer_accuracy_check, tmp_path):
    case = zoo()
    drn = case["sets"]["tiny-cityscapes-drn"]
    ours = measure("tiny-cityscapes-drn", tmp_path / "a.json", "--dataset", drn)
    assert ours == measure("tiny-cityscapes-drn", tmp_path / "b.json", "--images", drn / "leftImg8bit/val",
                           "--annotations", drn / "gtFine/val")
    equal_to_the_peer(peer_accuracy_check, "tiny-cityscapes-drn", ours, {"mean_iou", "mean_accuracy"})
    fastseg = measure("tiny-cityscapes-fastseg", tmp_path / "c.json", "--dataset",
                      case["sets"]["tiny-cityscapes-fastseg"])
    equal_to_the_peer(peer_accuracy_check, "tiny-cityscapes-fastseg", fastseg, {"mean_iou"})


def test_ade20k_equals_accuracy_check(peer_accuracy_check, tmp_path):
    case = zoo()
    ade = case["sets"]["tiny-ade20k"]
    ours = measure("tiny-ade20k", tmp_path / "a.json", "--dataset", ade.parent)
    assert ours == measure("tiny-ade20k", tmp_path / "b.json", "--images", ade / "images/validation",
                           "--annotations", ade / "annotations/validation")
    equal_to_the_peer(peer_accuracy_check, "tiny-ade20k", ours, {"pix_accuracy", "mean_IoU"})


def test_road_and_adas_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """The dataset definitions' own steps (the ymls name metrics only)."""
    case = zoo()
    road = case["sets"]["tiny-road"]
    ours = measure("tiny-road", tmp_path / "c.json", "--dataset", road.parent)
    assert ours == measure("tiny-road", tmp_path / "d.json", "--images", road / "images",
                           "--annotations", road / "mask_road_segmentation")
    equal_to_the_peer(peer_accuracy_check, "tiny-road", ours, {"mean_iou", "mean_accuracy"})
    adas = case["sets"]["tiny-adas"]  # (the same images/ folder layout, its own masks' folder)
    ours = measure("tiny-adas", tmp_path / "e.json", "--dataset", adas)
    equal_to_the_peer(peer_accuracy_check, "tiny-adas", ours, {"mean_iou"})


def test_erfnet_data_equals_accuracy_check(peer_accuracy_check, tmp_path):
    """erfnet's set (VOC's folders with `FOLDER/ID` ids and a meta file), and a yml whose entry is
    named otherwise than the model (as erfnet's "ERFNet")."""
    lanes = zoo()["sets"]["tiny-erfnet"]
    ours = measure("tiny-erfnet", tmp_path / "a.json", "--dataset", lanes.parent)
    assert ours == measure("tiny-erfnet", tmp_path / "b.json", "--images", lanes / "JPEGImages",
                           "--annotations", lanes / "val.txt")
    equal_to_the_peer(peer_accuracy_check, "tiny-erfnet", ours, {"segmentation_accuracy", "mean_iou"})


def _refused(tmp_path: Path, name: str, *data) -> str:
    case = zoo()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", tmp_path / "r.json", *data)
    assert result.returncode == 2, result.stderr
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()
    return one_error_line(result)


def test_a_pair_naming_a_missing_file_is_one_line(tmp_path):
    camvid = tmp_path / "CamVid"
    shutil.copytree(zoo()["sets"]["tiny-camvid-labels"], camvid)
    (camvid / "valannot" / "0016E5_00003.png").unlink()
    line = _refused(tmp_path, "tiny-camvid-labels", "--dataset", camvid)
    assert f"{camvid / 'val.txt'}: line 3: no mask {camvid / 'valannot' / '0016E5_00003.png'}" in line, line


def test_a_mask_of_another_size_is_one_line(tmp_path):
    from PIL import Image

    city = tmp_path / "cityscapes"
    shutil.copytree(zoo()["sets"]["tiny-cityscapes-drn"], city)
    mask = city / "gtFine/val/lindau/lindau_000000_000002_gtFine_labelTrainIds.png"
    with Image.open(mask) as picture:
        picture.crop((0, 0, 100, 64)).save(mask)
    line = _refused(tmp_path, "tiny-cityscapes-drn", "--dataset", city)
    assert f"{mask}: the mask is 100x64, its picture lindau_000000_000002_leftImg8bit.png 128x64" in line, line


def test_a_label_out_of_range_is_one_line(tmp_path):
    from PIL import Image

    ade = tmp_path / "ADEChallengeData2016"
    shutil.copytree(zoo()["sets"]["tiny-ade20k"], ade)
    mask = ade / "annotations/validation/ADE_val_00000004.png"
    with Image.open(mask) as picture:
        labels = np.array(picture)
    labels[3, 5] = 200
    Image.fromarray(labels, "L").save(mask)
    line = _refused(tmp_path, "tiny-ade20k", "--dataset", ade)
    assert f"{mask}: label 200 is out of range (the set has 151 classes, 0..150" in line, line


def test_the_road_set_without_its_meta_file_is_one_line(tmp_path):
    road = tmp_path / "segmentation"
    shutil.copytree(zoo()["sets"]["tiny-road"], road)
    meta = road / "mask_road_segmentation/dataset_meta.json"
    meta.write_text('{"segmentation_colors": [[0, 0, 0]]}')
    line = _refused(tmp_path, "tiny-road", "--dataset", road)
    assert f"{meta}: no label_map (or labels): the metrics need the classes" in line, line
    meta.unlink()
    assert f"{meta}: cannot read the annotations" in _refused(tmp_path, "tiny-road", "--dataset", road)


def test_each_layout_is_found_by_its_folder():
    """--dataset without a model's kind (the quantizer's calibration, a mixed selection) is read by
    its layout; the ADAS set shares the road set's images/ and is told by its masks' folder."""
    from modelzoo.accuracy.dataset import kind_of, resolve

    sets = zoo()["sets"]
    for name, kind in (("tiny-camvid-labels", "camvid"), ("tiny-cityscapes-drn", "cityscapes"),
                       ("tiny-cityscapes-fastseg", "cityscapes"), ("tiny-ade20k", "ade20k"),
                       ("tiny-road", "road_segmentation"), ("tiny-erfnet", "erfnet_data")):
        assert kind_of(sets[name], None) == kind, name
        dataset = resolve(sets[name], None, None, need_annotations=True)
        assert dataset.kind == kind and len(dataset.samples) == PICTURES and len(dataset.masks) == PICTURES
    assert kind_of(None, sets["tiny-camvid-labels"] / "val.txt") == "camvid"
    assert kind_of(None, sets["tiny-road"] / "mask_segmentation_adas") == "semantic_segmentation_adas"


@pytest.mark.parametrize("ignore", [None, 3])
def test_mean_accuracy_and_the_shared_matrix_equal_numpy(ignore):
    from modelzoo.accuracy.metric import confusion, mean_accuracy, mean_iou, pixel_accuracy, shared_matrix

    rng = np.random.default_rng(11)
    truth = rng.integers(0, 8, (5, 40, 30))
    truth[:, ::9] = 255
    predicted = np.where(rng.random(truth.shape) < 0.5, truth, rng.integers(0, 9, truth.shape))
    matrix = shared_matrix(sum(confusion(t, p, 8) for t, p in zip(truth, predicted)), ignore)
    counted = (truth < 8) & (predicted < 8)
    if ignore is not None:  # the first metric's ignore_label: its pixels counted nowhere
        counted &= (truth != ignore) & (predicted != ignore)
    t, p = truth[counted], predicted[counted]
    shares = [np.mean(p[t == c] == c) for c in range(8) if np.any(t == c)]
    ious = [np.sum((t == c) & (p == c)) / np.sum((t == c) | (p == c)) for c in range(8)
            if c != ignore and np.any((t == c) | (p == c))]
    assert abs(mean_accuracy(matrix) - np.mean(shares)) <= 1e-9
    assert abs(mean_iou(matrix, ignore) - np.mean(ious)) <= 1e-9
    assert abs(pixel_accuracy(matrix) - np.mean(t == p)) <= 1e-9


@pytest.mark.parametrize("kind, looks", [
    ("camvid", "not a CamVid folder (val.txt, val/, valannot/)"),
    ("cityscapes", "not a Cityscapes folder (leftImg8bit/val/ or imgsFine/leftImg8bit/val/, gtFine/val/)"),
    ("ade20k", "not an ADEChallengeData2016 folder (images/validation/, annotations/validation/, objectInfo150.txt)"),
    ("semantic_segmentation_adas", "not a segmentation folder (images/, mask_segmentation_adas/dataset_meta.json)"),
    ("erfnet_data", "not an erfnet_data folder (JPEGImages/, Annotations/, val.txt, erfnet_meta_zxw.json)")])
def test_a_folder_of_another_layout_is_one_line_naming_it(tmp_path, kind, looks):
    from modelzoo.accuracy.dataset import resolve
    from modelzoo.errors import DatasetError

    (tmp_path / "pictures").mkdir()
    with pytest.raises(DatasetError) as caught:
        resolve(tmp_path, None, None, need_annotations=True, kind=kind)
    assert str(caught.value) == f"{tmp_path}: {looks}"
    with pytest.raises(DatasetError, match="give --dataset DIR or --images DIR with --annotations FILE, not both"):
        resolve(tmp_path, tmp_path / "pictures", None, need_annotations=True, kind=kind)


def test_cityscapes_with_label_ids_only_says_how_to_make_train_ids(tmp_path):
    from modelzoo.accuracy.dataset import resolve
    from modelzoo.errors import DatasetError

    city = tmp_path / "cityscapes"
    shutil.copytree(zoo()["sets"]["tiny-cityscapes-drn"], city)
    train_ids = city / "gtFine/val/frankfurt/frankfurt_000000_000001_gtFine_labelTrainIds.png"
    train_ids.rename(train_ids.with_name("frankfurt_000000_000001_gtFine_labelIds.png"))
    with pytest.raises(DatasetError) as caught:
        resolve(city, None, None, need_annotations=True, kind="cityscapes")
    assert str(caught.value) == (f"{city / 'leftImg8bit/val/frankfurt/frankfurt_000000_000001_leftImg8bit.png'}: no "
                                 f"train-id mask {train_ids} (only its labelIds: make the train ids with "
                                 "cityscapesScripts' createTrainIdLabelImgs)")


def test_jobs_carry_masks_back_and_run_dir_is_refused(tmp_path):
    """-j 2: each job sends its shard's masks back (more than a pipe holds: the worker waited in
    send() while the driver waited for it to end); the number is the one-process number.
    --run_dir's shard records hold boxes and labels, not masks: refused in one line."""
    case = zoo()
    name, data = "tiny-cityscapes-drn", ["--dataset", case["sets"]["tiny-cityscapes-drn"]]
    one = measure(name, tmp_path / "one.json", *data)
    assert measure(name, tmp_path / "two.json", *data, "-j", "2") == one
    line = _refused(tmp_path, name, *data, "--run_dir", tmp_path / "runs")
    assert f"--run_dir records boxes and labels; {name}'s adapter predicts masks" in line, line
