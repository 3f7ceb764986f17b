"""Open Model Zoo's other detection data set definitions (issue 26): the COCO-format ones the
checker's `mscoco_detection` converts (crossroad_extra_untagged*: positions from 0;
person_detection: COCO's ids, the background at 0) and the CVAT XML ones its
`cvat_object_detection` converts (the labels the XML declares from 1, or the ids of the labels
file the definition names), through the real command line, against Open Model Zoo's own
accuracy_check (openvino-dev 2023.3.0) on the same SSD-shaped IR, pictures and yml: one peer run
for every case."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.accuracy.config import CVAT_LABELS_FILES
from modelzoo.devtools import detset, vocset
from modelzoo.devtools.peer_accuracy import cvat_conversion, peer_entry, run_peer_many

YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: ssd
    datasets:
      - name: {dataset}
        preprocessing:
          - type: resize
            dst_width: 256
            dst_height: 256
        postprocessing:
          - type: resize_prediction_boxes
          - type: cast_to_int
          - type: clip_boxes
            apply_to: prediction
        metrics:
{metrics}"""
COCO_METRICS = """          - type: coco_orig_precision
            include_boundaries: false
          - name: ap_iou_0.5
            type: coco_precision
            max_detections: 100
            threshold: 0.5
          - type: map
            ignore_difficult: true
"""
CVAT_METRICS = """          - name: map_occluded_ignored
            type: map
            presenter: print_vector
            ignore_difficult: True
            include_boundaries: True
            allow_multiple_matches_per_ignored: True
          - name: map_11point_all
            type: map
            integral: 11point
            ignore_difficult: false
          - name: ap_iou_0.5
            type: coco_precision
            max_detections: 100
            threshold: 0.5
"""
# model -> (dataset definition, its classes, background at 0, metrics)
MODELS = {
    "crossroad-all": ("crossroad_extra_untagged", 3, False, COCO_METRICS),
    "crossroad-person": ("crossroad_extra_untagged_person", 1, False, COCO_METRICS),
    "person-det": ("person_detection", 3, True, COCO_METRICS),
    "plates": ("vehicle_license_plate_detection", 2, True, CVAT_METRICS),
    "crossroad-0078": ("crossroad_dataset_0078", 3, True, CVAT_METRICS),
    "pedestrians": ("pedestrian_detection_dataset", 1, True, CVAT_METRICS),
}
# two of the zoo's own configurations as they are (their ymls, only the model's name: the two
# that now run on these definitions, with nothing changed)
REAL = {
    "person-detection-0200": ("crossroad_extra_untagged_person", """models:
  - name: person-detection-0200

    launchers:
      - framework: openvino
        adapter: ssd

    datasets:
      - name: crossroad_extra_untagged_person
        preprocessing:
          - type: resize
            dst_width: 256
            dst_height: 256
        postprocessing:
          - type: resize_prediction_boxes
          - type: clip_boxes
            apply_to: prediction
        metrics:
          - type: coco_orig_precision
            include_boundaries: false
            reference: 0.2398
"""),
    "yolo-v2-tiny-vehicle-detection-0001": ("barrier_vehicle_detection_dataset_index_class_2", """models:
  - name: yolo-v2-tiny-vehicle-detection-0001
    launchers:
      - framework: openvino
        adapter:
          type: yolo_v2
          anchors: "0.57273, 0.677385, 1.87446, 2.06253, 3.33843, 5.47434, 7.88282, 3.52778, 9.77052, 9.16828"
          num: 5
          coords: 4
          classes: 80

    datasets:
      - name: barrier_vehicle_detection_dataset_index_class_2

        preprocessing:
          - type: resize
            size: 416
        postprocessing:
          - type: resize_prediction_boxes
          - type: filter
            apply_to: prediction
            min_confidence: 0.001
            remove_filtered: true
          - type: nms
            overlap: 0.5
          - type: clip_boxes
            apply_to: prediction
        metrics:
          - type: map
            integral: 11point
            ignore_difficult: false
            presenter: print_scalar
            reference: 0.8864
          - type: coco_precision
            max_detections: 100
            threshold: 0.5
            reference: 0.9497
"""),
}
BARRIER_ANCHORS = (0.57273, 0.677385, 1.87446, 2.06253, 3.33843, 5.47434, 7.88282, 3.52778, 9.77052, 9.16828)
PICTURES = 8
# the crossroad files' categories: ids that are not their positions
CROSSROAD = [(2, "vehicle"), (5, "person"), (9, "non-vehicle")]
CROSSROAD_LABELS = ["person", "car", "bicycle", "bus", "dontcare"]
LABEL_FILES = {"person-vehicle-bike-detection-crossroad-0078-labels.json":
               {"labels": {"person": 1, "car": 2, "bus": 2, "bicycle": 3}},
               "pedestrian-detection-labels.json": {"labels": {"person": 1}}}
# the barrier set's vehicles are the COCO-trained network's class 2 (car), its plates not in the set
BARRIER_LABELS = {"labels": {"vehicle": 2}}


def _shifted(detector, shift: int):
    """A detector whose labels count from the first class (the background's 0 taken off)."""
    def detect(picture):
        labels, scores, boxes = detector(picture)
        return labels - shift, scores, boxes
    return detect


@functools.cache
def det_zoo() -> dict:
    """zoo (every model), ir/public/NAME/FP32, and the data: crossroad COCO files, COCO's person
    file, a CVAT folder with two labels files, and a CVAT XML of plates."""
    root = _workdir() / "detsets"
    zoo, ir, data = root / "zoo", root / "ir", root / "data"
    xmls, ymls, detectors = {}, {}, {}
    for seed, (name, (dataset, classes, background, metrics)) in enumerate(MODELS.items()):
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="detection").parent
        (folder / "accuracy-check.yml").write_text(YML.format(name=name, dataset=dataset, metrics=metrics))
        ymls[name] = folder / "accuracy-check.yml"
        xmls[name] = detset.ssd_ir(ir / "public" / name / "FP32" / f"{name}.xml", classes, background, seed + 5)
        detectors[name] = _shifted(vocset.detector(xmls[name], ymls[name], name), int(background))
    for name, (dataset, yml) in REAL.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], group="intel", task_type="detection").parent
        (folder / "accuracy-check.yml").write_text(yml)
        ymls[name] = folder / "accuracy-check.yml"
        out = ir / "intel" / name / "FP32" / f"{name}.xml"
        xmls[name] = detset.ssd_ir(out, 1, False, 11) if "person" in name else \
            detset.yolo_v2_ir(out, 80, BARRIER_ANCHORS, favoured=2, seed=12)
        detectors[name] = vocset.detector(xmls[name], ymls[name], name)
    pictures = detset.pictures(PICTURES, seed=27)
    crossroad = data / "crossroad_extra_untagged"
    files = {
        "crossroad-all": detset.write_coco(crossroad / "val_data", crossroad / "val_coco_no_bg.json", pictures,
                                           detectors["crossroad-all"], CROSSROAD, seed=1),
        "crossroad-person": detset.write_coco(crossroad / "val_data", crossroad / "val_coco_no_bg_person.json",
                                              pictures, detectors["crossroad-person"], [(7, "person")], seed=2),
        # COCO's person file: the background at 0, then the ids themselves (3 is not a position)
        "person-det": detset.write_coco(data / "coco" / "val2017",
                                        data / "coco" / "annotations" / "person_keypoints_val2017.json", pictures,
                                        detectors["person-det"], [(1, "person"), (3, "car")], seed=3),
    }
    cvat = data / "cvat"
    files["crossroad-0078"] = files["pedestrians"] = detset.write_cvat(
        cvat, "3637_OMZ_task12_person_vehicle_bike_detection_crossroad_0078.xml", pictures,
        [detectors["crossroad-0078"], detectors["pedestrians"]], CROSSROAD_LABELS, seed=4)
    for name, doc in LABEL_FILES.items():
        (cvat / name).write_text(json.dumps(doc))
    files["plates"] = detset.write_cvat(data / "plates", "plates.xml", pictures, [detectors["plates"]],
                                        ["vehicle", "plate"], seed=5)
    files["person-detection-0200"] = detset.write_coco(
        crossroad / "val_data", crossroad / "val_coco_no_bg_person_0200.json", pictures,
        detectors["person-detection-0200"], [(1, "person")], seed=6)
    barrier = data / "barrier"
    vehicles = detectors["yolo-v2-tiny-vehicle-detection-0001"]
    files["yolo-v2-tiny-vehicle-detection-0001"] = detset.write_cvat(
        barrier, "3638_OMZ_task13_vehicle_license_plate_detection_barrier_0106.xml", pictures,
        [lambda p: (lambda l, s, b: ((l != 2).astype(int), s, b))(*vehicles(p))], ["vehicle", "plate"], seed=7)
    (barrier / "vehicle-detection-labels.json").write_text(json.dumps(BARRIER_LABELS))
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "files": files, "cvat": cvat}


def measure(case: dict, json_out: Path, names: str, *data) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", names, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--json", json_out, *data)
    assert result.returncode == 0, result.stderr
    records = {}
    for record in json.loads(json_out.read_text()):
        records.setdefault(record["model"], {})[record["metric"]] = record
    return records


def test_detection_definitions_equal_accuracy_check(peer_accuracy_check, tmp_path):
    """Every definition, every metric, equal to the peer within 0.1 points: the COCO files given
    as --images/--annotations, the CVAT set as --dataset DIR (each model's labels file found by the
    name its definition gives it) and as --annotations FILE.xml (the pictures beside it)."""
    case = det_zoo()
    files = case["files"]
    ours = {}
    for names, data in (
            ("crossroad-all", ("--images", files["crossroad-all"].parent / "val_data",
                               "--annotations", files["crossroad-all"])),
            ("crossroad-person", ("--images", files["crossroad-person"].parent / "val_data",
                                  "--annotations", files["crossroad-person"])),
            ("person-det", ("--images", files["person-det"].parents[1] / "val2017", "--annotations",
                            files["person-det"])),
            ("crossroad-0078,pedestrians", ("--dataset", case["cvat"])),
            ("plates", ("--annotations", files["plates"])),
            ("person-detection-0200", ("--images", files["crossroad-all"].parent / "val_data",
                                       "--annotations", files["person-detection-0200"])),
            ("yolo-v2-tiny-vehicle-detection-0001", ("--dataset", files["yolo-v2-tiny-vehicle-detection-0001"].parent))):
        ours.update(measure(case, tmp_path / "r.json", names, *data))
    entries = []
    for name, dataset in [(n, v[0]) for n, v in MODELS.items()] + [(n, v[0]) for n, v in REAL.items()]:
        path = files[name]
        if path.suffix == ".xml":
            labels = CVAT_LABELS_FILES.get(dataset)
            conversion = cvat_conversion(path, path.parent / labels if labels else None)
            images = path.parent
        else:
            images = path.parent / "val_data" if "crossroad" in path.parent.name else path.parents[1] / "val2017"
            conversion = {"annotation_file": str(path)}
        entries.append(peer_entry(case["yml"][name], name, case["xml"][name], images, conversion, name))
    theirs, _, out = run_peer_many(peer_accuracy_check, entries)
    assert set(ours) == set(MODELS) | set(REAL)
    for name in ours:
        # print_vector: each class's AP as NAME@class, the mean as NAME (the peer's NAME@mean; with
        # one class it prints that class's alone)
        peer = {m.removesuffix("@mean"): v for m, v in theirs[name].items()}
        for metric in ours[name]:
            single = [v for m, v in theirs[name].items() if m.startswith(f"{metric}@")]
            if metric not in peer and len(single) == 1:
                peer[metric] = single[0]
        assert set(ours[name]) == set(peer), (name, ours[name], theirs[name])
        for metric, record in ours[name].items():
            assert record["images"] == PICTURES
            if "@" not in metric:
                assert 0.05 < record["value"] < 0.95, (name, record)  # a number that can move
            assert abs(100 * record["value"] - 100 * peer[metric]) <= 0.1, (name, metric, record, theirs)
    # two names of one id (car and bus, 2): the class is named by the last, as the checker's label map
    assert {m for m in ours["crossroad-0078"] if "@" in m} == {
        "map_occluded_ignored@person", "map_occluded_ignored@bus", "map_occluded_ignored@bicycle"}


def test_a_labels_file_decides_which_boxes_count(tmp_path):
    """--labels FILE overrides the definition's file: with only 'bicycle' mapped (to the
    pedestrians network's one class), the number changes; the same file by the definition's name
    gives the same number as --labels."""
    case = det_zoo()
    xml = case["files"]["pedestrians"]
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"labels": {"bicycle": 1}}))
    default = measure(case, tmp_path / "a.json", "pedestrians", "--annotations", xml)["pedestrians"]
    other = measure(case, tmp_path / "b.json", "pedestrians", "--annotations", xml, "--labels", mine)["pedestrians"]
    same = measure(case, tmp_path / "c.json", "pedestrians", "--annotations", xml, "--labels",
                   case["cvat"] / "pedestrian-detection-labels.json")["pedestrians"]
    assert {m: r["value"] for m, r in same.items()} == {m: r["value"] for m, r in default.items()}
    assert other["map_11point_all"]["value"] != default["map_11point_all"]["value"]


def _box(x0="1", x1="20", label="car", tag="box"):
    return (f'<{tag} label="{label}" occluded="0" xtl="{x0}" ytl="1" xbr="{x1}" ybr="20"'
            + (' points="1,1;5,5"' if tag == "polygon" else "") + "></" + tag + ">")


@pytest.mark.parametrize("problem,needle", [
    ("parse", "not a CVAT annotation: XML does not parse"),
    ("outside", "not a CVAT annotation: image 1 ('frame_0000.png'): box (1, 1, 99999, 20) is outside the"),
    ("label", "not a CVAT annotation: image 1 ('frame_0000.png'): box 1: label 'unicorn' is not one its <meta> "
              "declares"),
    ("shape", "not a CVAT annotation: image 1 ('frame_0000.png'): a <polygon> (label 'car'): only <box> shapes"),
    ("number", "not a CVAT annotation: image 1 ('frame_0000.png'): xtl 'nan' is not a number"),
    ("entity", "not a CVAT annotation: declares a DOCTYPE or entities"),
    ("labels-missing", "no such file: pedestrians's data set 'pedestrian_detection_dataset' numbers its labels"),
    ("labels-json", "not a labels file: not JSON"),
    ("labels-shape", 'not a labels file: needs "labels", an object of label name -> id'),
    ("labels-none", "maps none of the labels"),
])
def test_bad_cvat_data_is_one_line_naming_the_file(problem, needle, tmp_path):
    case = det_zoo()
    cvat = tmp_path / "cvat"
    shutil.copytree(case["cvat"], cvat)
    xml = cvat / case["files"]["pedestrians"].name
    text = xml.read_text()
    first = text.index(">", text.index("<image ")) + 1
    named = xml
    if problem == "parse":
        text = text.replace("</annotations>", "</annotatons>")
    elif problem == "outside":
        text = text[:first] + _box(x1="99999") + text[first:]
    elif problem == "label":
        text = text[:first] + _box(label="unicorn") + text[first:]
    elif problem == "shape":
        text = text[:first] + _box(tag="polygon") + text[first:]
    elif problem == "number":
        text = text[:first] + _box(x0="nan") + text[first:]
    elif problem == "entity":
        text = text.replace("<annotations>", '<!DOCTYPE a [<!ENTITY e "x">]><annotations>', 1)
    else:
        named = cvat / "pedestrian-detection-labels.json"
        if problem == "labels-missing":
            named.unlink()
        else:
            named.write_text({"labels-json": "{nope", "labels-shape": '{"labels": ["person"]}',
                              "labels-none": '{"labels": {"truck": 1}}'}[problem])
    xml.write_text(text)
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "pedestrians", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", cvat, "--json", tmp_path / "r.json")
    assert result.returncode != 0
    line = one_error_line(result)
    assert str(named) in line and needle in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def test_a_picture_the_xml_names_must_be_there(tmp_path):
    case = det_zoo()
    cvat = tmp_path / "cvat"
    shutil.copytree(case["cvat"], cvat)
    (cvat / "frame_0003.png").unlink()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "pedestrians", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--annotations", cvat / case["files"]["pedestrians"].name)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "image 4 ('frame_0003.png'): the picture is not in" in line and str(cvat) in line, line


def test_labels_is_for_cvat_only(tmp_path):
    case = det_zoo()
    path = case["files"]["crossroad-all"]
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "crossroad-all", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--images", path.parent / "val_data", "--annotations",
                      path, "--labels", tmp_path / "x.json")
    assert result.returncode == 2
    assert "--labels" in one_error_line(result) and "CVAT" in one_error_line(result)


def test_a_vector_reference_is_the_mean_and_each_class(tmp_path):
    """print_vector's reference as the crossroad and barrier configurations write it: the mean is
    judged against `mean`, each class's AP against its own; anything else in it is refused."""
    from modelzoo.accuracy.config import load_accuracy_config
    from modelzoo.errors import AccuracyConfigError

    yml = tmp_path / "accuracy-check.yml"
    vector = CVAT_METRICS.replace("            allow_multiple_matches_per_ignored: True\n",
                                  "            allow_multiple_matches_per_ignored: True\n            reference:\n"
                                  "              mean: 0.6512\n              person: 0.7747\n"
                                  "              non-vehicle: 0.4414\n")
    yml.write_text(YML.format(name="m", dataset="crossroad_dataset_0078", metrics=vector))
    metric = load_accuracy_config(yml, "m").metrics[0]
    assert (metric.presenter, metric.reference, metric.class_references) == (
        "print_vector", 0.6512, {"person": 0.7747, "non-vehicle": 0.4414})
    yml.write_text(YML.format(name="m", dataset="crossroad_dataset_0078",
                              metrics=vector.replace("person: 0.7747", "person: high")))
    with pytest.raises(AccuracyConfigError, match="metrics\\[0\\] \\(map\\): reference must be a number, or class "
                       "names"):
        load_accuracy_config(yml, "m")


def test_the_labels_files_are_part_of_the_annotations(tmp_path):
    """The labels files beside the XML are what the annotations are, as much as the XML: a
    quantization's key (its annotations' digest) changes with them."""
    from modelzoo.accuracy.dataset import resolve
    from modelzoo.convert.quantize import annotations_sha384

    cvat = tmp_path / "cvat"
    shutil.copytree(det_zoo()["cvat"], cvat)
    dataset = resolve(cvat, None, None, need_annotations=True)
    assert dataset.kind == "cvat" and {p.name for p in dataset.annotation_parts} == set(LABEL_FILES)
    before = annotations_sha384(dataset)
    (cvat / "pedestrian-detection-labels.json").write_text(json.dumps({"labels": {"person": 2}}))
    assert annotations_sha384(resolve(cvat, None, None, need_annotations=True)) != before


def test_the_pictures_elsewhere_and_a_folder_of_two_xmls(tmp_path):
    """--images DIR puts the pictures where the user keeps them (the XML elsewhere), with the same
    numbers; --dataset DIR with two XML files says which to give, in one line naming the folder."""
    case = det_zoo()
    pictures, notes = tmp_path / "pictures", tmp_path / "notes"
    shutil.copytree(case["files"]["plates"].parent, pictures, ignore=shutil.ignore_patterns("*.xml"))
    notes.mkdir()
    xml = shutil.copy(case["files"]["plates"], notes / "plates.xml")
    beside = measure(case, tmp_path / "a.json", "plates", "--annotations", case["files"]["plates"])
    elsewhere = measure(case, tmp_path / "b.json", "plates", "--images", pictures, "--annotations", xml)
    assert {m: r["value"] for m, r in elsewhere["plates"].items()} == \
        {m: r["value"] for m, r in beside["plates"].items()}
    shutil.copy(xml, notes / "other.xml")
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "plates", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", notes)
    assert result.returncode == 2
    assert one_error_line(result).endswith(f"{notes}: 2 XML files (other.xml, plates.xml...); give the CVAT one "
                                           "with --annotations FILE.xml")


def test_an_output_over_a_labels_file_is_refused(tmp_path):
    """--json naming the labels file the run reads: refused before anything is measured, the
    file as it was."""
    case = det_zoo()
    cvat = tmp_path / "cvat"
    shutil.copytree(case["cvat"], cvat)
    labels = cvat / "pedestrian-detection-labels.json"
    before = labels.read_bytes()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "pedestrians", "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", cvat, "--json", labels)
    assert result.returncode == 2
    assert "--json" in one_error_line(result) and str(labels) in one_error_line(result)
    assert labels.read_bytes() == before and "Measuring" not in result.stdout
