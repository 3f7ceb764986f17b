"""Re-identification and face verification (issue 26): the `reid` adapter, `cmc`, `reid_map`
and `pairwise_accuracy_subsets`, `point_alignment`, the market1501 / reid_dataset (Market-1501's
folder), veri776 (VeRi-776's), image_retrieval and lfw (pairs.txt, landmarks) data sets, through the real command
line, against Open Model Zoo's own accuracy_check (openvino-dev 2023.3.0) on the same IR,
pictures and yml (one peer run for every case); the metrics against a computation of their own
on synthetic embeddings."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line, run_tool, write_model
from qtools import _workdir, peer_accuracy_check  # noqa: F401 (fixture)

from modelzoo.devtools import reidset
from modelzoo.devtools.peer_accuracy import peer_entry, run_peer_many

# as person-reidentification-retail-0277: Pillow's bilinear resize to 128x256, rank@1 and mAP
MARKET_YML = """models:
  - name: {name}
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: {dataset}
        preprocessing:
          - type: resize
            dst_width: 128
            dst_height: 256
            use_pillow: True
            interpolation: BILINEAR
        metrics:
          - name: rank@1
            type: cmc
            top_k: 1
          - name: rank@5
            type: cmc
            top_k: 5
          - type: reid_map
"""
# the options the zoo's configurations leave at their defaults, set the other way
VERI_YML = """models:
  - name: tiny-reid-veri
    launchers:
      - framework: openvino
        adapter:
          type: reid
          grn_workaround: false
    datasets:
      - name: veri776
        preprocessing:
          - type: resize
            dst_width: 128
            dst_height: 256
        metrics:
          - name: rank@1
            type: cmc
            top_k: 1
          - name: rank@3-all-matches
            type: cmc
            top_k: 3
            first_match_break: false
          - name: rank@1-other-cameras
            type: cmc
            top_k: 1
            separate_camera_set: true
          - name: reid_map
            type: reid_map
          - name: reid_map_steps
            type: reid_map
            interpolated_auc: false
"""
# as image-retrieval-0001: no preprocessing of its own (its data set's definition resizes to 224)
RETRIEVAL_YML = """models:
  - name: tiny-retrieval
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: image_retrieval
        metrics:
          - name: rank@1
            type: cmc
            top_k: 1
          - type: reid_map
"""
# Open Model Zoo's dataset_definitions.yml entry for image_retrieval, its preprocessing (what the
# peer merges into an entry that has none)
DEFINITIONS = """datasets:
  - name: image_retrieval
    preprocessing:
      - type: resize
        size: 224
"""
# as face-reidentification-retail-0095: the landmarks aligned in a 400x400 picture, resized to 128
LFW_YML = """models:
  - name: tiny-face-aligned
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: lfw
        preprocessing:
          - type: point_alignment
            size: 400
          - type: resize
            size: 128
        metrics:
          - type: pairwise_accuracy_subsets
"""
# the options facenet's yml sets (its flip is not implemented), and a threshold given
LFW_OPTIONS_YML = """models:
  - name: tiny-face-options
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: lfw
        preprocessing:
          - type: resize
            size: 128
        metrics:
          - name: best-threshold
            type: pairwise_accuracy_subsets
            min_score: best_train_threshold
            distance_method: 'cosine_distance'
            subtract_mean: True
          - name: three-folds-median
            type: pairwise_accuracy_subsets
            subset_number: 3
            subtract_mean: true
          - name: given-threshold
            type: pairwise_accuracy_subsets
            subset_number: 2
            min_score: 0.05
"""
# as facenet-20180408-102900: the network's size, the picture and its mirror inferred, their
# embeddings joined end to end
FACENET_YML = """models:
  - name: tiny-facenet
    launchers:
      - framework: openvino
        adapter:
          type: reid
          joining_method: concatenation
    datasets:
      - name: lfw_mtcnn_align
        preprocessing:
          - type: auto_resize
          - type: flip
            mode: vertical
            merge_with_original: True
        metrics:
          - type: pairwise_accuracy_subsets
            min_score: best_train_threshold
            distance_method: 'cosine_distance'
            subtract_mean: True
"""
# as face-recognition-resnet100-arcface-onnx: insightface's lfw.bin, the network's size, the defaults
ARCFACE_YML = """models:
  - name: tiny-arcface
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: lfw_bin
        preprocessing:
          - type: auto_resize
        metrics:
          - type: pairwise_accuracy_subsets
"""
# as netvlad-tf: Pillow's RGB made BGR, resized to 300x200, localization_recall; and at top 3
NETVLAD_YML = """models:
  - name: tiny-netvlad
    launchers:
      - framework: openvino
        adapter: reid
    datasets:
      - name: pitts30k_val
        reader: pillow_imread
        preprocessing:
          - type: rgb_to_bgr
          - type: resize
            dst_height: 200
            dst_width: 300
        metrics:
          - type: localization_recall
          - name: recall@3
            type: localization_recall
            top_k: 3
            distance_threshold: 20
"""
CASES = {"tiny-reid-market": ("market1501", MARKET_YML), "tiny-reid-dataset": ("market1501", MARKET_YML),
         "tiny-reid-veri": ("veri776", VERI_YML), "tiny-retrieval": ("image_retrieval", RETRIEVAL_YML),
         "tiny-face-aligned": ("lfw", LFW_YML), "tiny-face-options": ("lfw", LFW_OPTIONS_YML),
         "tiny-facenet": ("lfw_mtcnn", FACENET_YML), "tiny-arcface": ("lfw_bin", ARCFACE_YML),
         "tiny-netvlad": ("pitts30k_val", NETVLAD_YML)}
SIDES = {"market1501": (256, 128), "veri776": (256, 128), "image_retrieval": (224, 224), "lfw": (128, 128),
         "lfw_mtcnn": (160, 160), "lfw_bin": (112, 112), "pitts30k_val": (200, 300)}


@functools.cache
def reid_zoo() -> dict:
    root = _workdir() / "reid"
    zoo, ir = root / "zoo", root / "ir"
    xmls, ymls = {}, {}
    for name, (kind, yml) in CASES.items():
        folder = write_model(zoo, name, [{"name": f"FP32/{name}.{ext}", "data": b"x", "url": f"http://x/{ext}"}
                                         for ext in ("xml", "bin")], task_type="object_attributes").parent
        dataset = {"tiny-reid-market": "market1501", "tiny-reid-dataset": "reid_dataset"}.get(name, "veri776")
        (folder / "accuracy-check.yml").write_text(yml.format(name=name, dataset=dataset))
        ymls[name] = folder / "accuracy-check.yml"
        xmls[name] = reidset.embedding_ir(ir / "public" / name / "FP32" / f"{name}.xml", *SIDES[kind], seed=3)
    data = {"market1501": reidset.write_reid_folder(root / "Market-1501-v15.09.15", "market1501", seed=2),
            "veri776": reidset.write_reid_folder(root / "VeRi-776", "veri776", seed=5),
            "image_retrieval": reidset.write_retrieval_folder(root / "textile_crops", seed=7),
            "lfw": reidset.write_lfw_folder(root / "LFW", seed=4),
            "lfw_mtcnn": reidset.write_lfw_folder(root / "lfw_mtcnnpy_160", seed=6, mtcnn=True),
            "lfw_bin": reidset.write_lfw_bin(root / "lfw_bin", seed=9).parent,
            "pitts30k_val": reidset.write_pitts_folder(root / "pitts250k", seed=10)}
    return {"zoo": zoo, "ir": ir, "xml": xmls, "yml": ymls, "data": data}


def measure(case: dict, name: str, json_out: Path, *args) -> dict:
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", name, "--ir_dir", case["ir"],
                      "--precisions", "FP32", "--dataset", case["data"][CASES[name][0]], "--json", json_out, *args)
    assert result.returncode == 0, result.stderr
    return {r["metric"]: r["value"] for r in json.loads(json_out.read_text())}


def test_cmc_and_reid_map_equal_accuracy_check(peer_accuracy_check, tmp_path):
    case = reid_zoo()
    ours = {name: measure(case, name, tmp_path / f"{name}.json") for name in CASES}
    conversions = {kind: {"data_dir": str(folder)} for kind, folder in case["data"].items()}
    conversions["image_retrieval"].update(
        gallery_annotation_file=str(case["data"]["image_retrieval"] / "gallery/gallery.txt"),
        queries_annotation_file=str(case["data"]["image_retrieval"] / "queries/quieries.txt"))
    conversions["lfw"] = {"pairs_file": str(case["data"]["lfw"] / "annotation/pairs.txt"),
                          "landmarks_file": str(case["data"]["lfw"] / "annotation/lfw_landmark.txt")}
    conversions["lfw_mtcnn"] = {"pairs_file": str(case["data"]["lfw_mtcnn"] / "annotation/pairs.txt")}
    converted = tmp_path / "lfw_bin_images"  # (where the peer writes the pictures it decodes)
    converted.mkdir()
    conversions["lfw_bin"] = {"bin_file": str(case["data"]["lfw_bin"] / "lfw.bin"), "images_dir": str(converted)}
    conversions["pitts30k_val"] = {"split_file": str(case["data"]["pitts30k_val"] / "datasets/pitts30k_val.mat")}
    pictures = dict(case["data"], lfw=case["data"]["lfw"] / "lfw", lfw_mtcnn=case["data"]["lfw_mtcnn"] / "lfw",
                    lfw_bin=converted)
    entries = [peer_entry(case["yml"][name], name, case["xml"][name], pictures[kind], conversions[kind], name)
               for name, (kind, _) in CASES.items()]
    (tmp_path / "definitions.yml").write_text(DEFINITIONS)
    theirs, _, out = run_peer_many(peer_accuracy_check, entries, definitions=tmp_path / "definitions.yml")
    for name in CASES:
        assert set(ours[name]) == set(theirs[name]), (ours[name], theirs[name])
        for metric, value in ours[name].items():
            top = 3 if metric == "recall@3" else 1  # (the checker counts every near one of the top 3)
            assert 0.05 < value < top - 0.05, (name, metric, value)  # a number that can move
            assert abs(100 * value - 100 * theirs[name][metric]) <= 0.1, (name, metric, value, theirs[name], out)
    assert ours["tiny-reid-market"] == ours["tiny-reid-dataset"]  # (one data set under two names)
    assert ours["tiny-reid-market"]["rank@5"] > ours["tiny-reid-market"]["rank@1"]


def test_jobs_split_the_pictures_and_score_them_once(tmp_path):
    """-j 2: each process embeds half the pictures; the gallery and the queries are put together
    before any metric, so the numbers are the single run's."""
    case = reid_zoo()
    assert measure(case, "tiny-reid-market", tmp_path / "j.json", "-j", "2") == \
        measure(case, "tiny-reid-market", tmp_path / "one.json")


def test_a_shard_of_a_reid_set_is_refused_in_one_line(tmp_path):
    case = reid_zoo()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-reid-market", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", case["data"]["market1501"], "--shard", "0/2")
    assert result.returncode != 0 and "Measuring" not in result.stdout
    assert "tiny-reid-market compares the pictures of the whole set with one another" in one_error_line(result)


@pytest.mark.parametrize("folder,bad", [("query", "0003_x1s1_000001_00.jpg"), ("bounding_box_test", "photo.jpg")])
def test_a_file_name_without_the_ids_is_one_line_naming_it(folder, bad, tmp_path):
    case = reid_zoo()
    data = tmp_path / "Market-1501-v15.09.15"
    shutil.copytree(case["data"]["market1501"], data)
    shutil.copy(next((data / folder).iterdir()), data / folder / bad)
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-reid-market", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", tmp_path, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{data / folder / bad}: the file name does not say the identity and camera" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def _by_hand(query, gallery, qids, gids, qcams, gcams, top_k, first_match_break, separate, interpolated):
    """cmc and mAP written out query by query, gallery picture by gallery picture."""
    ranks, aps = [], []
    for q in range(len(query)):
        rows = []
        for g in range(len(gallery)):
            if gids[g] == qids[q] and gcams[g] == qcams[q]:
                continue
            rows.append((1.0 - float(np.dot(query[q].astype(np.float64), gallery[g].astype(np.float64))), g))
        rows.sort()  # nearest first; the same distance: the gallery's order
        same = [gids[g] == qids[q] for _, g in rows]
        if not any(same):
            continue
        kept = [s for (d, g), s in zip(rows, same) if not (separate and gcams[g] == qcams[q])]
        if any(kept):
            if first_match_break:
                ranks.append(1.0 if kept.index(True) < top_k else 0.0)
            else:
                before, hits = 0, []
                for s in kept:
                    if s:
                        hits.append(before < top_k)
                    else:
                        before += 1
                ranks.append(sum(hits) / len(hits))
        # AP: one point per distinct distance, trapezoids (or steps) from recall 0 at precision 1
        total, found, seen, points = sum(same), 0, 0, [(0.0, 1.0)]
        for i, ((d, _), s) in enumerate(zip(rows, same)):
            found, seen = found + s, seen + 1
            if i + 1 == len(rows) or rows[i + 1][0] != d:
                points.append((found / total, found / seen))
        area = 0.0
        for (r0, p0), (r1, p1) in zip(points, points[1:]):
            area += (r1 - r0) * ((p0 + p1) / 2 if interpolated else p1)
        aps.append(area)
    return sum(ranks) / len(ranks), sum(aps) / len(aps)


@pytest.mark.parametrize("top_k,first_match_break,separate,interpolated",
                         [(1, True, False, True), (5, True, True, False), (3, False, False, True)])
def test_cmc_and_reid_map_equal_a_computation_of_their_own(top_k, first_match_break, separate, interpolated):
    from modelzoo.accuracy.metric import cmc_score, reid_map, reid_rankings

    rng = np.random.default_rng(11)
    gallery = rng.normal(0, 1, (300, 8))
    gallery[100:110] = gallery[90:100]  # same distances: taken together by mAP
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    gids, gcams = rng.integers(0, 40, 300), rng.integers(0, 6, 300)
    qids, qcams = rng.integers(0, 45, 60), rng.integers(0, 6, 60)  # (some identities not in the gallery)
    query = gallery[rng.integers(0, 300, 60)] + rng.normal(0, 0.4, (60, 8))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    for q in range(0, 60, 4):  # some queries have their identity near
        qids[q] = gids[int(np.argmax(gallery @ query[q]))]
    args = (query, gallery, qids, gids, qcams, gcams)
    expected_cmc, expected_map = _by_hand(*args, top_k, first_match_break, separate, interpolated)
    assert 0.05 < expected_cmc < 0.95 and 0.05 < expected_map < 0.95
    assert abs(cmc_score(reid_rankings(*args, separate), top_k, first_match_break) - expected_cmc) <= 1e-9
    assert abs(reid_map(reid_rankings(*args), interpolated) - expected_map) <= 1e-9


def test_the_adapter_divides_by_the_norm_along_the_channels():
    from modelzoo.accuracy.adapter import Outputs, reid

    rng = np.random.default_rng(2)
    raw = rng.normal(0, 3, (1, 32, 1, 1)).astype(np.float32)
    out = reid(Outputs({"e": raw}, ["e"], (256, 128)))
    expected = raw.reshape(-1).astype(np.float64) / np.sqrt(np.sum(raw.astype(np.float64) ** 2) + 1e-6)
    assert out.vector.shape == (32,) and np.max(np.abs(out.vector - expected)) < 1e-6
    assert np.array_equal(reid(Outputs({"e": raw}, ["e"], (256, 128)), grn_workaround=False).vector, raw.reshape(-1))


def test_a_retrieval_list_naming_a_missing_picture_is_one_line_naming_it(tmp_path):
    case = reid_zoo()
    data = tmp_path / "textile_crops"
    shutil.copytree(case["data"]["image_retrieval"], data)
    (data / "queries" / "q005_0.png").unlink()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-retrieval", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{data / 'queries' / 'quieries.txt'}: line 5: names picture 'q005_0.png'" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("problem,needle", [
    ("picture", "annotation/pairs.txt: names picture 'Person_C/Person_C_0002.jpg', which is not in"),
    ("landmarks", "annotation/lfw_landmark.txt: no landmarks for 'Person_C/Person_C_0002.jpg'")])
def test_a_bad_lfw_folder_is_one_line_naming_the_file(problem, needle, tmp_path):
    case = reid_zoo()
    data = tmp_path / "LFW"
    shutil.copytree(case["data"]["lfw"], data)
    if problem == "picture":
        (data / "lfw/Person_C/Person_C_0002.jpg").unlink()
    else:
        marks = data / "annotation/lfw_landmark.txt"
        marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True)
                                 if not line.startswith("Person_C/Person_C_0002.jpg")))
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-face-aligned", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(data) in line and needle in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()


def _verification_by_hand(vectors, truth, folds, min_score, method, subtract_mean):
    """pairwise_accuracy_subsets written out pair by pair."""
    import math

    starts = [i for i in truth if truth[i][0] or truth[i][1]]

    def pairs(ids):
        return [(i, j, same) for i in ids for same, partners in ((True, truth[i][0]), (False, truth[i][1]))
                for j in partners]

    def distance(a, b, mean):
        a, b = [x - m for x, m in zip(a, mean)], [x - m for x, m in zip(b, mean)]
        dot = sum(x * y for x, y in zip(a, b))
        if method == "euclidian_distance":
            return 0.5 * (1 - dot)
        return math.acos(dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(x * x for x in b)))) / math.pi

    results = []
    for k in range(folds):
        low, high = k * len(starts) // folds, (k + 1) * len(starts) // folds
        test, train = pairs(starts[low:high]), pairs(starts[:low] + starts[high:])
        mean = [0.0] * len(vectors[starts[0]])
        if min_score in ("train_median", "best_train_threshold"):
            if subtract_mean:
                used = [vectors[p[0]] for p in train] + [vectors[p[1]] for p in train]
                mean = [sum(v[d] for v in used) / len(used) for d in range(len(mean))]
            d = sorted(distance(vectors[a], vectors[b], mean) for a, b, _ in train)
            if min_score == "train_median":
                threshold = d[len(d) // 2] if len(d) % 2 else (d[len(d) // 2 - 1] + d[len(d) // 2]) / 2
            else:
                right = [sum((distance(vectors[a], vectors[b], mean) < t / 100) == same for a, b, same in train)
                         for t in range(400)]
                threshold = right.index(max(right)) / 100
        else:
            threshold = min_score
        if test:
            results.append(sum((distance(vectors[a], vectors[b], mean) < threshold) == same
                               for a, b, same in test) / len(test))
    return sum(results) / len(results)


@pytest.mark.parametrize("folds,min_score,method,subtract_mean", [
    (10, "train_median", "euclidian_distance", False), (4, "best_train_threshold", "cosine_distance", True),
    (3, 0.45, "euclidian_distance", False), (5, "train_median", "cosine_distance", True)])
def test_pairwise_accuracy_subsets_equals_a_computation_of_its_own(folds, min_score, method, subtract_mean):
    from modelzoo.accuracy.dataset import PairTruth
    from modelzoo.accuracy.metric import pairwise_accuracy_subsets

    rng = np.random.default_rng(8)
    people = rng.normal(0, 1, (30, 12))
    owner = rng.integers(0, 30, 90)
    vectors = people[owner] + rng.normal(0, 0.8, (90, 12))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    truth = {}
    for i in range(90):
        same = [j for j in range(i + 1, 90) if owner[j] == owner[i]][:2]
        other = [int(j) for j in rng.integers(0, 90, 2) if owner[j] != owner[i]] if i % 3 else []
        truth[i + 1] = (tuple(j + 1 for j in same), tuple(j + 1 for j in other))
    embeddings = {i + 1: vectors[i] for i in range(90)}
    expected = _verification_by_hand({i: list(v) for i, v in embeddings.items()}, truth, folds, min_score, method,
                                     subtract_mean)
    assert 0.05 < expected < 0.95
    got = pairwise_accuracy_subsets(embeddings, {i: PairTruth(*t) for i, t in truth.items()}, folds, min_score,
                                    method, subtract_mean)
    assert abs(got - expected) <= 1e-9


def test_an_lfw_bin_that_names_a_function_is_refused_unrun(tmp_path):
    """lfw.bin is a pickle: one that would call anything (here os.system) is one line naming the
    file, and nothing of it runs."""
    import os
    import pickle

    case = reid_zoo()
    marker = tmp_path / "ran"

    class Call:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    data = tmp_path / "lfw_bin"
    data.mkdir()
    (data / "lfw.bin").write_bytes(pickle.dumps(([b"x", b"y"], [Call()]), protocol=2))
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-arcface", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{data / 'lfw.bin'}: not an lfw.bin of plain values: it names posix.system" in line, line
    assert not marker.exists() and not (tmp_path / "r.json").exists()


def test_localization_recall_equals_a_computation_of_its_own():
    from modelzoo.accuracy.metric import localization_recall

    rng = np.random.default_rng(3)
    database, query = rng.normal(0, 1, (200, 6)), rng.normal(0, 1, (40, 6))
    query[::2] = database[rng.integers(0, 200, 20)] + rng.normal(0, 0.3, (20, 6))
    database_positions = rng.uniform(0, 300, (200, 2))
    query_positions = rng.uniform(0, 300, (40, 2))
    for q in range(0, 40, 2):  # some queries are where their nearest picture was taken
        nearest = min(range(200), key=lambda g: float(np.sum((query[q] - database[g]) ** 2)))
        query_positions[q] = database_positions[nearest] + rng.uniform(-10, 10, 2)
    for top_k, threshold in ((1, 25), (3, 40)):
        hits = 0
        for q in range(40):
            ranked = sorted(range(200), key=lambda g: float(np.sum((query[q] - database[g]) ** 2)))[:top_k]
            hits += sum(float(np.hypot(*(database_positions[g] - query_positions[q]))) < threshold for g in ranked)
        expected = hits / 40
        assert 0.05 < expected < top_k
        assert abs(localization_recall(query, database, query_positions, database_positions, top_k, threshold)
                   - expected) <= 1e-9


def test_a_split_naming_a_missing_picture_is_one_line_naming_it(tmp_path):
    case = reid_zoo()
    data = tmp_path / "pitts250k"
    shutil.copytree(case["data"]["pitts30k_val"], data)
    (data / "000/000003_db1.jpg").unlink()
    result = run_tool("accuracy_check", "--models_dir", case["zoo"], "--name", "tiny-netvlad", "--ir_dir",
                      case["ir"], "--precisions", "FP32", "--dataset", data, "--json", tmp_path / "r.json")
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{data / 'datasets/pitts30k_val.mat'}: names picture '000/000003_db1.jpg', which is not in" in line, line
    assert "Measuring" not in result.stdout and not (tmp_path / "r.json").exists()
