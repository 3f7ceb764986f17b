"""`mirror.py sync --ir --delete` and the per-IR signatures (issue 28): the signature of an IR folder
whose IR a --delete removed goes with it, so that the mirror holds no signature vouching for IR it
no longer has; the signatures of the IR kept, and files the mirror does not own, stay. A sync without
--sign_key that publishes other bytes into a signed IR folder removes that folder's signature too. Real parts:
the real command line, a folder mirror, the ovc backend on a one-convolution graph, model signing
in key mode.

Needs the 'sign' extra and OpenVINO (CI's second environment runs tests/sign)."""

from __future__ import annotations

import json
import subprocess
import sys

import model_signing  # noqa: F401 (installed in CI's second environment; a missing one is an error, never a skip)
import pytest

from test_mirror_ir import count, sync_ir, tiny_model
from test_signing import _pem_pair

from modelzoo.mirror.stores import MANIFEST


@pytest.fixture
def key(tmp_path):
    return _pem_pair(tmp_path, "signer")


def _ir_folders(dest, model: str) -> list:
    return sorted(p for p in (dest / "ir").glob(f"*/public/{model}/*") if p.is_dir())


def test_sync_ir_delete_removes_the_signatures_of_the_ir_it_deletes(tmp_path, zoo, server, key):
    tiny_model(zoo, server, "tiny-a")
    tiny_model(zoo, server, "tiny-b", seed=1)
    dest, cache, log = tmp_path / "mirror", tmp_path / "cache", tmp_path / "sync.log"
    first = sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a,tiny-b", "--sign_key", key[0])
    assert first.returncode == 0, first.stderr
    b_folders = _ir_folders(dest, "tiny-b")
    b_sigs = [f.with_name(f.name + ".sig") for f in b_folders]
    a_sigs = [f.with_name(f.name + ".sig") for f in _ir_folders(dest, "tiny-a")]
    assert len(b_sigs) == len(a_sigs) == 2 and all(s.is_file() for s in a_sigs + b_sigs)
    # what the mirror does not own stays: a user's file beside tiny-b's IR, and a signature-like
    # file of a folder that no manifest entry ever named
    notes = b_folders[0].parent / "notes.txt"
    notes.write_text("ours, not the mirror's\n")
    foreign = dest / "ir" / ("f" * 96) / "public/tiny-x/FP16.sig"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not made by this mirror")

    result = sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a", "--delete", "--sign_key", key[0])
    assert result.returncode == 0, result.stderr
    assert count(log) == 2  # (both conversions were the first run's; this one took tiny-a's from the cache)
    assert "IR in " in result.stdout and "0 published, 4 deleted" in result.stdout
    entries = json.loads((dest / MANIFEST).read_text())["files"]
    assert {e["model"] for rel, e in entries.items() if rel.startswith("ir/")} == {"tiny-a"}
    assert not [f for f in b_folders if f.exists()]
    assert not [s for s in b_sigs if s.exists()], "a signature of deleted IR stayed behind"
    for sig in b_sigs:
        assert f"deleted  {sig.relative_to(dest).as_posix()}" in result.stdout
    assert notes.read_text() == "ours, not the mirror's\n" and foreign.read_bytes() == b"not made by this mirror"
    # the kept IR's signatures are still the stock model signing's, and still verify
    for sig in a_sigs:
        ok = subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(sig.with_suffix("")),
                             "--signature", str(sig), "--public_key", str(key[1])],
                            capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stdout + ok.stderr


def test_the_same_on_an_s3_mirror(tmp_path, zoo, server, key):
    import uuid

    from modelzoo.devtools.servers import SeaweedS3

    tiny_model(zoo, server, "tiny-a")
    tiny_model(zoo, server, "tiny-b", seed=1)
    cache, log = tmp_path / "cache", tmp_path / "sync.log"
    with SeaweedS3() as weed:
        bucket = f"sig-{uuid.uuid4().hex[:10]}"
        client = weed.client()
        client.create_bucket(Bucket=bucket)
        dest = f"s3://{bucket}/m"

        def names() -> set[str]:
            return {o["Key"][2:] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}

        first = sync_ir(zoo, dest, cache, log, "--name", "tiny-a,tiny-b", "--sign_key", key[0], env=weed.env())
        assert first.returncode == 0, first.stderr
        sigs = {n for n in names() if n.endswith(".sig") and n.startswith("ir/")}
        b_sigs = {n for n in sigs if "/public/tiny-b/" in n}
        assert len(sigs) == 4 and len(b_sigs) == 2
        notes = next(iter(b_sigs)).rpartition("/")[0] + "/notes.txt"
        client.put_object(Bucket=bucket, Key=f"m/{notes}", Body=b"ours")
        result = sync_ir(zoo, dest, cache, log, "--name", "tiny-a", "--delete", "--sign_key", key[0], env=weed.env())
        assert result.returncode == 0, result.stderr
        left = names()
    assert not b_sigs & left, "a signature of deleted IR stayed behind"
    assert sigs - b_sigs <= left and notes in left
    assert not [n for n in left if "/public/tiny-b/" in n and n != notes]


def _verifies(folder, sig, public) -> bool:
    import model_signing

    try:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(folder, sig)
    except ValueError:
        return False
    return True


def test_an_unsigned_sync_that_changes_signed_ir_removes_its_signature(tmp_path, zoo, server, key):
    """A sync without --sign_key that publishes other bytes into a signed IR folder deletes that
    folder's signature (it would no longer verify); one that only puts back the bytes a signature
    covers keeps it, and it verifies again."""
    import hashlib

    import model_signing

    tiny_model(zoo, server, "tiny-a")
    dest, cache, log = tmp_path / "mirror", tmp_path / "cache", tmp_path / "sync.log"
    first = sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a", "--sign_key", key[0])
    assert first.returncode == 0, first.stderr
    fp16, fp32 = (next(f for f in _ir_folders(dest, "tiny-a") if f.name == p) for p in ("FP16", "FP32"))
    sig16, sig32 = fp16.with_name("FP16.sig"), fp32.with_name("FP32.sig")
    # another machine's signed run published FP16 IR with other bytes under the same key (a
    # conversion that is not byte for byte reproducible): its manifest entry and signature say so
    xml = next(fp16.glob("*.xml"))
    xml.write_bytes(xml.read_bytes() + b"<!-- made elsewhere -->\n")
    manifest = json.loads((dest / MANIFEST).read_text())
    entry = manifest["files"][xml.relative_to(dest).as_posix()]
    entry.update(size=xml.stat().st_size, sha384=hashlib.sha384(xml.read_bytes()).hexdigest())
    (dest / MANIFEST).write_text(json.dumps(manifest))
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key[0]).sign(fp16, sig16)
    assert _verifies(fp16, sig16, key[1])
    # and FP32's weights lost a byte's worth of bits on the mirror's disk (its signature covers the right bytes)
    weights = next(fp32.glob("*.bin"))
    damaged = bytearray(weights.read_bytes())
    damaged[0] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    assert not _verifies(fp32, sig32, key[1])

    result = sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a")
    assert result.returncode == 0, result.stderr
    assert "2 published" in result.stdout
    assert not sig16.exists(), "a signature over bytes this run replaced stayed behind"
    assert f"deleted  {sig16.relative_to(dest).as_posix()}" in result.stdout
    assert sig32.is_file() and _verifies(fp32, sig32, key[1])
    assert not _verifies(fp16, sig32, key[1])  # (the check above can fail)
