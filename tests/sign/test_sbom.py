"""mirror.py sync --sbom (issue 28): DEST/modelzoo-sbom.cdx.json, a CycloneDX 1.6 ML-BOM, validated
against the schema cyclonedx-python-lib bundles (a test dependency only); its hashes are the
manifest's; each IR is a component whose pedigree names its model; signed with --sign_key.

Needs cyclonedx-python-lib[json-validation] and OpenVINO (CI's second environment runs it by name)."""

from __future__ import annotations

import json

import pytest

import cyclonedx.validation.json  # noqa: E402,F401 (installed in CI's second environment; a missing one is an error, never a skip)
import openvino  # noqa: E402,F401

from conftest import one_error_line, run_tool, sha384, write_model  # noqa: E402
from test_mirror_ir import sync_ir, tiny_model  # noqa: E402

from modelzoo.mirror.stores import MANIFEST  # noqa: E402

SBOM = "modelzoo-sbom.cdx.json"
ALPHA = b"alpha" * 1000
CARD = """models:
  - name: tiny-a
    launchers:
      - framework: openvino
        adapter: ssd
    datasets:
      - name: ms_coco_detection_80_class_without_background
        metrics:
          - type: coco_precision
            reference: 0.3315
"""


def validate(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


@pytest.fixture
def mirror(tmp_path, zoo, server):
    tiny_model(zoo, server, "tiny-a")
    (zoo / "public/tiny-a/accuracy-check.yml").write_text(CARD)
    write_model(zoo, "alpha", [  # IR already: nothing to convert
        {"name": "FP32/alpha.xml", "data": b"<net/>", "url": server.add("alpha/alpha.xml", b"<net/>")},
        {"name": "FP32/alpha.bin", "data": ALPHA, "url": server.add("alpha/alpha.bin", ALPHA)}])
    records = tmp_path / "accuracy.json"
    records.write_text(json.dumps([{"model": "tiny-a", "precision": "FP32", "metric": "coco_precision",
                                    "value": 0.25, "reference": 0.3315, "images": 5}]))
    dest = tmp_path / "mirror"
    result = sync_ir(zoo, str(dest), tmp_path / "cache", tmp_path / "sync.log", "--all", "--sbom",
                     "--accuracy_json", records)
    assert result.returncode == 0, result.stderr
    return dest


def test_the_sbom_validates_against_cyclonedx_1_6_and_its_hashes_are_the_manifests(mirror):
    text = (mirror / SBOM).read_text()
    validate(text)
    bom = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    manifest = json.loads((mirror / MANIFEST).read_text())["files"]
    hashes = {}
    for c in bom["components"]:
        assert c["type"] == "machine-learning-model"
        for f in c["components"]:
            path = {p["name"]: p["value"] for p in f["properties"]}["modelzoo:mirror_path"]
            [h] = f["hashes"]
            assert h["alg"] == "SHA-384"
            hashes[path] = h["content"]
    assert hashes == {rel: e["sha384"] for rel, e in manifest.items()}  # every file, each with the manifest's hash
    models = {c["name"]: c for c in bom["components"] if c["bom-ref"].startswith("model:")}
    alpha = models["alpha"]
    assert alpha["licenses"] == [{"license": {"name": "LICENSE", "url": "https://example.com/LICENSE"}}]
    assert alpha["modelCard"]["modelParameters"]["task"] == "detection"
    [f] = [f for f in alpha["components"] if f["name"].endswith(".bin")]
    assert f["name"] == "FP32/alpha.bin" and f["hashes"][0]["content"] == sha384(ALPHA)
    assert f["externalReferences"] == [{"type": "distribution",
                                        "url": manifest["public/alpha/FP32/alpha.bin"]["source"]}]
    tiny = models["tiny-a"]["modelCard"]
    assert tiny["modelParameters"]["inputs"] == [{"format": "x [1,8,8,3] NHWC"}]
    assert tiny["modelParameters"]["outputs"] == [{"format": "y"}]
    metrics = tiny["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "coco_precision", "value": "0.3315"} in [{k: m[k] for k in ("type", "value")} for m in metrics]
    assert any(m["value"] == "0.25" and m["slice"].startswith("measured FP32") for m in metrics)


def test_each_ir_is_a_component_whose_pedigree_names_its_model(mirror):
    bom = json.loads((mirror / SBOM).read_text())
    [key] = [p.name for p in (mirror / "ir").iterdir()]
    irs = {c["name"]: c for c in bom["components"] if c["bom-ref"].startswith("ir:")}
    assert sorted(irs) == ["tiny-a FP16 IR", "tiny-a FP32 IR"]
    for c in irs.values():
        assert c["pedigree"]["ancestors"] == [{"type": "machine-learning-model", "name": "tiny-a"}]
        props = {p["name"]: p["value"] for p in c["properties"]}
        assert props["modelzoo:ir_key"] == key and props["modelzoo:tools"].startswith("ovc ")
        assert sorted(f["name"] for f in c["components"]) == ["tiny-a.bin", "tiny-a.xml"]


def test_verify_does_not_count_the_sbom_as_an_unknown_file(mirror, zoo):
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", mirror, "--quick")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sbom_is_signed_with_the_manifest(tmp_path, zoo, server):
    import model_signing  # noqa: F401
    from test_signing import _pem_pair

    from modelzoo.trust.signing import load_public_keys, verify_bytes

    key, public = _pem_pair(tmp_path, "k")
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": server.add("alpha/alpha.pb", ALPHA)}])
    dest = tmp_path / "m"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--sbom", "--sign_key", key,
                      "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    events = {e["$type"]: e for e in map(json.loads, result.stdout.splitlines())}  # every line an event
    assert events["mirror_sbom"]["path"] == SBOM and events["mirror_sbom"]["spec"] == "1.6"
    assert events["mirror_signed"]["signatures"] == [SBOM + ".sig", MANIFEST + ".sig"]
    keys = load_public_keys([public])
    verify_bytes((dest / SBOM).read_bytes(), SBOM, (dest / (SBOM + ".sig")).read_bytes(), keys, "sbom")
    verify_bytes((dest / MANIFEST).read_bytes(), MANIFEST, (dest / (MANIFEST + ".sig")).read_bytes(), keys, "m")


def test_an_sbom_path_that_is_a_folder_is_one_line_and_nothing_written(tmp_path, zoo, server):
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": server.add("alpha/alpha.pb", ALPHA)}])
    dest = tmp_path / "m"
    (dest / SBOM).mkdir(parents=True)
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--sbom")
    assert result.returncode == 2
    assert one_error_line(result) == f"modelzoo-mirror: error: --sbom: {dest / SBOM} is a folder"
    assert sorted(p.name for p in dest.iterdir()) == [SBOM] and server.count() == 0


def test_accuracy_records_that_are_not_json_are_one_line(tmp_path, zoo, server):
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": server.add("alpha/alpha.pb", ALPHA)}])
    bad = tmp_path / "acc.json"
    bad.write_text("{")
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "m", "--sbom",
                      "--accuracy_json", bad)
    assert result.returncode == 2 and f"--accuracy_json {bad}: cannot be read as JSON" in one_error_line(result)
    assert not (tmp_path / "m").exists() and server.count() == 0
