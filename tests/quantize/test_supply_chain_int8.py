"""Issue 28 for INT8 IR: the quantizer's --trust_key (IR only from a mirror whose signed manifest
verifies, NNCF here otherwise) and --locked (INT8 IR that is not the locked IR is an error naming
the file), and the SBOM's INT8 component with quantization.json's options. Real NNCF, OpenVINO, a
real folder mirror made by `mirror.py sync --ir FP16-INT8` (test_quantizer_cache's, copied)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_tool
from qtools import MODEL, rebuilt, rebuilt_ir  # noqa: F401 (fixtures)
from test_quantizer_cache import INT8, cold, files, images, int8_mirror, ir_dir_copy, quantize, runs

import model_signing  # noqa: E402,F401 (installed in CI's second environment; a missing one is an error, never a skip)


def _keys(folder: Path) -> dict[str, tuple[Path, Path]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = {}
    for name in ("signer", "other"):
        key = ec.generate_private_key(ec.SECP256R1())
        private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        out[name] = (private, public)
    return out


@pytest.fixture
def signed(rebuilt, tmp_path):
    """A copy of the INT8 mirror, synced again (warm: nothing converted or quantized) with --sbom
    and --sign_key."""
    c, m = cold(), int8_mirror()
    dest = tmp_path / "mirror"
    shutil.copytree(m["dest"], dest)
    keys = _keys(tmp_path)
    log = tmp_path / "sync.log"
    result = run_tool("mirror", "sync", "--models_dir", rebuilt_ir()["zoo"], "--name", "retinanet-tf", "--to", dest,
                      "--cache_dir", c["cache"], "--ir", f"FP16,FP32,{INT8}", "--backend", "ovc",
                      "--images", images(), "--mirror", rebuilt_ir()["dl"].as_uri(), "--sbom",
                      "--sign_key", keys["signer"][0], timeout=900, env={"MODELZOO_QUANTIZATION_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert runs(log) == 0
    return {"dest": dest, "keys": keys, "key": c["key"], "files": c["files"]}


def test_the_sbom_names_the_int8_irs_model_tools_and_quantization_options(signed):
    bom = json.loads((signed["dest"] / "modelzoo-sbom.cdx.json").read_text())
    [c] = [c for c in bom["components"] if c["name"] == f"retinanet-tf {INT8} IR"]
    assert c["pedigree"]["ancestors"] == [{"type": "machine-learning-model", "name": "retinanet-tf"}]
    props = {p["name"]: p["value"] for p in c["properties"]}
    assert props["modelzoo:ir_key"] == signed["key"] and props["modelzoo:tools"].startswith("nncf ")
    options = json.loads((signed["dest"] / "ir" / signed["key"] / MODEL / INT8 / "quantization.json").read_text())
    assert options["options"]  # (what the quantizer records)
    assert {k: v for k, v in props.items() if k.startswith("modelzoo:quantization:")} == \
        {f"modelzoo:quantization:{k}": json.dumps(v, sort_keys=True) for k, v in options["options"].items()}


def test_the_quantizer_takes_int8_ir_only_from_a_mirror_signed_by_a_trusted_key(signed, tmp_path):
    log, out = tmp_path / "nncf.log", tmp_path / "out"
    result = quantize(ir_dir_copy(tmp_path / "a"), out, log, "--mirror", signed["dest"], "--trust_key",
                      signed["keys"]["signer"][1])
    assert result.returncode == 0, result.stderr
    assert runs(log) == 0 and result.stderr == ""
    assert files(out / MODEL) == signed["files"]
    log2 = tmp_path / "nncf2.log"
    result = quantize(ir_dir_copy(tmp_path / "b"), tmp_path / "out2", log2, "--mirror", signed["dest"],
                      "--trust_key", signed["keys"]["other"][1])
    assert result.returncode == 0, result.stderr
    assert runs(log2) == 1  # quantized here
    [line] = result.stderr.splitlines()
    assert line.startswith(f"modelzoo-quantizer: warning: mirror {signed['dest']}: signed with key ")
    assert line.endswith("; this mirror is not used")


def test_the_locked_quantizer_refuses_int8_ir_that_is_not_the_locked_ir(signed, tmp_path):
    lock = tmp_path / "int8.lock"
    result = run_tool("lock", "--models_dir", rebuilt_ir()["zoo"], "--name", "retinanet-tf", "--ir", "--mirror",
                      signed["dest"], "-o", lock)
    assert result.returncode == 0, result.stderr
    data = json.loads(lock.read_text())
    assert data["models"]["retinanet-tf"]["ir"][INT8]["key"] == signed["key"]
    log, out = tmp_path / "nncf.log", tmp_path / "out"
    result = quantize(ir_dir_copy(tmp_path / "a"), out, log, "--mirror", signed["dest"], "--locked", lock)
    assert result.returncode == 0, result.stderr
    assert runs(log) == 0
    data["models"]["retinanet-tf"]["ir"][INT8]["files"]["retinanet-tf.bin"]["size"] += 1
    lock.write_text(json.dumps(data))
    out2 = tmp_path / "out2"
    result = quantize(ir_dir_copy(tmp_path / "b"), out2, tmp_path / "n2.log", "--mirror", signed["dest"],
                      "--locked", lock)
    assert result.returncode == 1
    assert f"{out2 / MODEL / INT8 / 'retinanet-tf.bin'}: quantized IR is not the locked IR of retinanet-tf " \
           f"{INT8} (removed)" in result.stderr
    assert not (out2 / MODEL / INT8).exists()


def test_lock_ir_from_the_ir_cache_takes_int8_quantized_from_the_locked_fp32_ir(rebuilt, tmp_path):
    """`lock --ir --cache_dir`: the cache's entries name no model; the INT8 IR locked is a
    quantization of this model whose input is the very FP32 IR locked beside it, every file
    verified through the cache; --check --ir agrees with the cache."""
    from modelzoo.store.ir_cache import files_digest

    int8_mirror()  # (the session's sync --ir: the FP16/FP32 conversion and the quantization in the cache)
    cache, lock = cold()["cache"], tmp_path / "cache.lock"
    args = ["--models_dir", rebuilt_ir()["zoo"], "--ir", "--cache_dir", cache, "-o", lock]
    result = run_tool("lock", "--name", "retinanet-tf", *args)
    assert result.returncode == 0, result.stderr
    ir = json.loads(lock.read_text())["models"]["retinanet-tf"]["ir"]
    assert sorted(ir) == ["FP16", "FP16-INT8", "FP32"]
    int8, fp32 = ir[INT8], ir["FP32"]
    record = json.loads((cache / "ir/keys" / int8["key"][:2] / f"{int8['key'][2:]}.json").read_text())["record"]
    root = Path("/ir")
    rels = ["FP32/retinanet-tf.xml", "FP32/retinanet-tf.bin"]
    assert record["model"] == "retinanet-tf" and record["input_ir"] == files_digest(
        [root / r for r in rels], root, {str(root / r): fp32["files"][r[5:]]["sha384"] for r in rels})
    assert int8["tools"].startswith(f"nncf {record['quantization']['nncf']} openvino ") and \
        int8["tools"].endswith(f" from {fp32['tools']}")
    assert run_tool("lock", "--check", *args).returncode == 0
