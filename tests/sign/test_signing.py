"""Signed mirror manifests (issue 28): `mirror.py sync --sign_key` signs the manifest (and each IR
folder) with OpenSSF model signing in key mode; `--trust_key` makes the converter take a
mirror's IR only when that signature verifies, offline, before any entry is used, and convert
locally (one warning) otherwise; `--require_signature` makes it an error; `mirror.py verify`
says which key or why not. Real parts: a SeaweedFS mirror, folders, the real command lines,
model signing's own command line, `unshare -n` (no network at all).

Needs the 'sign' extra and OpenVINO (CI's second environment runs it by name)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import model_signing  # noqa: E402,F401 (installed in CI's second environment; a missing one is an error, never a skip)
import openvino  # noqa: E402,F401

from conftest import SCRIPTS, one_error_line, run_tool  # noqa: E402
from test_mirror_ir import convert_from, count, downloaded, files, sync_ir, tiny_model  # noqa: E402

from modelzoo.devtools.servers import SeaweedS3  # noqa: E402
from modelzoo.mirror.stores import MANIFEST  # noqa: E402

SIG = MANIFEST + ".sig"


def _pem_pair(folder: Path, name: str, kind: str = "ec") -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public.write_bytes(pem)
    return private, public


def key_id(public: Path) -> str:
    return hashlib.sha256(public.read_bytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return {"key": _pem_pair(folder, "signer"), "other": _pem_pair(folder, "other"),
            "rsa": _pem_pair(folder, "rsa", "rsa")}


@pytest.fixture(scope="module")
def weed():
    with SeaweedS3() as s3:
        yield s3


@pytest.fixture
def signed_s3(tmp_path, zoo, server, weed, keys):
    bucket = f"signed-{uuid.uuid4().hex[:10]}"
    weed.client().create_bucket(Bucket=bucket)
    data = tiny_model(zoo, server, "tiny-a")
    url = f"s3://{bucket}/m"
    result = sync_ir(zoo, url, tmp_path / "cache", tmp_path / "sync.log", "--name", "tiny-a",
                     "--sign_key", keys["key"][0], env=weed.env())
    assert result.returncode == 0, result.stderr
    assert "signed" in result.stdout
    return {"url": url, "bucket": bucket, "zoo": zoo, "data": data, "weed": weed}


def _convert(m, tmp_path, *extra, name="out"):
    dl = downloaded(tmp_path, "tiny-a", m["data"])
    out, log = tmp_path / name, tmp_path / f"{name}.log"
    result = convert_from(m["zoo"], "tiny-a", dl, out, log, m["url"], env=m["weed"].env(),
                          extra=tuple(map(str, extra)))
    return result, count(log), out


def test_the_converter_takes_signed_ir_only_with_the_right_trust_key(signed_s3, keys, tmp_path):
    result, converted, out = _convert(signed_s3, tmp_path, "--trust_key", keys["key"][1])
    assert result.returncode == 0, result.stderr
    assert converted == 0 and "fetched from the mirror" in result.stdout and result.stderr == ""
    result, converted, _ = _convert(signed_s3, tmp_path, "--trust_key", keys["other"][1], name="out2")
    assert result.returncode == 0, result.stderr
    assert converted == 1  # made here instead
    [line] = result.stderr.splitlines()
    assert line == (f"modelzoo-converter: warning: mirror {signed_s3['url']}: signed with key "
                    f"{key_id(keys['key'][1])}, which is not a trusted key ({key_id(keys['other'][1])}); "
                    "this mirror is not used")
    # two trusted keys (a rotation): the one that signed is found by the bundle's key id
    result, converted, _ = _convert(signed_s3, tmp_path, "--trust_key", keys["other"][1], "--trust_key",
                                    keys["key"][1], name="out3")
    assert result.returncode == 0 and converted == 0 and result.stderr == ""


def _object(m, rel: str) -> bytes:
    return m["weed"].client().get_object(Bucket=m["bucket"], Key=f"m/{rel}")["Body"].read()


def _put(m, rel: str, data: bytes) -> None:
    m["weed"].client().put_object(Bucket=m["bucket"], Key=f"m/{rel}", Body=data)


@pytest.mark.parametrize("damage", ["edited manifest", "swapped signature", "no signature"])
def test_a_tampered_or_unsigned_mirror_means_a_local_conversion_said_once(signed_s3, keys, tmp_path, damage):
    manifest = json.loads(_object(signed_s3, MANIFEST))
    if damage == "edited manifest":  # still a valid manifest: one entry says another verification time
        rel = next(r for r in manifest["files"] if r.endswith("FP32/tiny-a.bin"))
        manifest["files"][rel]["verified"] = "2000-01-01T00:00:00Z"
        _put(signed_s3, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n")
    elif damage == "swapped signature":  # a real signature by the same key, of another manifest
        from modelzoo.trust.signing import TrustedKey, sign_bytes

        _put(signed_s3, SIG, sign_bytes(b'{"format": "modelzoo-mirror/1", "files": {}}\n', MANIFEST,
                                        TrustedKey(keys["key"][0], "")))
    else:
        signed_s3["weed"].client().delete_object(Bucket=signed_s3["bucket"], Key=f"m/{SIG}")
    result, converted, out = _convert(signed_s3, tmp_path, "--trust_key", keys["key"][1])
    assert result.returncode == 0, result.stderr
    assert converted == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"modelzoo-converter: warning: mirror {signed_s3['url']}: ")
    assert line.endswith("; this mirror is not used")
    if damage == "no signature":
        assert f"{MANIFEST} is not signed" in line
    else:
        assert f"the signature does not verify with key {key_id(keys['key'][1])}" in line
    verify = run_tool("mirror", "verify", "--models_dir", signed_s3["zoo"], "--name", "tiny-a", "--at",
                      signed_s3["url"], "--quick", "--trust_key", keys["key"][1], env=signed_s3["weed"].env())
    assert verify.returncode == 1
    assert f"modelzoo-mirror: error: mirror {signed_s3['url']}: " in verify.stderr
    # --require_signature: an error before any work
    result, converted, out = _convert(signed_s3, tmp_path, "--trust_key", keys["key"][1], "--require_signature",
                                      name="strict")
    assert result.returncode == 2
    assert one_error_line(result).startswith("modelzoo-converter: error: --require_signature: mirror ")
    assert converted == 0 and not out.exists()


def test_verify_says_which_key_signed_and_the_signatures_are_not_unknown_files(signed_s3, keys):
    verify = run_tool("mirror", "verify", "--models_dir", signed_s3["zoo"], "--name", "tiny-a", "--at",
                      signed_s3["url"], "--trust_key", keys["other"][1], "--trust_key", keys["key"][1],
                      env=signed_s3["weed"].env())
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"signature: {MANIFEST} verified with key {key_id(keys['key'][1])} ({keys['key'][1]})" in verify.stdout
    assert " unknown" not in verify.stdout  # (the signatures are the mirror's own files)


@pytest.fixture
def signed_folder(tmp_path, zoo, server, keys):
    data = tiny_model(zoo, server, "tiny-a")
    dest = tmp_path / "mirror"
    result = sync_ir(zoo, str(dest), tmp_path / "cache", tmp_path / "sync.log", "--name", "tiny-a",
                     "--sign_key", keys["key"][0])
    assert result.returncode == 0, result.stderr
    [key] = [p.name for p in (dest / "ir").iterdir()]
    return {"dest": dest, "zoo": zoo, "data": data, "key": key}


def test_each_ir_folder_has_a_signature_the_stock_model_signing_cli_accepts(signed_folder, keys):
    folder = signed_folder["dest"] / "ir" / signed_folder["key"] / "public/tiny-a"
    for precision in ("FP16", "FP32"):
        cmd = [sys.executable, "-m", "model_signing", "verify", "key", str(folder / precision), "--signature",
               str(folder / f"{precision}.sig"), "--public_key", str(keys["key"][1])]
        ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    target = folder / "FP32/tiny-a.bin"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and \
        subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -n (root or user namespaces)")
def test_verification_needs_no_network(signed_folder, keys, tmp_path):
    """Inside a network namespace with no interface up: the signature verifies, the IR is taken."""
    dl = downloaded(tmp_path, "tiny-a", signed_folder["data"])
    out, log = tmp_path / "out", tmp_path / "conv.log"
    cmd = ["unshare", "-n", sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(signed_folder["zoo"]),
           "--name", "tiny-a", "-d", str(dl), "-o", str(out), "--backend", "ovc", "--mirror",
           str(signed_folder["dest"]), "--trust_key", str(keys["key"][1]), "--require_signature"]
    import os

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MODELZOO_CONVERSION_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert count(log) == 0 and "fetched from the mirror" in result.stdout
    published = files(signed_folder["dest"] / "ir" / signed_folder["key"] / "public/tiny-a")
    assert files(out / "public/tiny-a") == {rel: d for rel, d in published.items() if not rel.endswith(".sig")}
    verify = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPTS / "mirror.py"), "verify", "--models_dir",
                             str(signed_folder["zoo"]), "--name", "tiny-a", "--at", str(signed_folder["dest"]),
                             "--trust_key", str(keys["key"][1])], capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified with key" in verify.stdout


@pytest.mark.parametrize("problem", ["missing", "rsa", "not a key"])
def test_a_bad_key_is_one_line_and_nothing_written(zoo, server, tmp_path, keys, problem):
    tiny_model(zoo, server, "tiny-a")
    bad = {"missing": tmp_path / "nope.pem", "rsa": keys["rsa"][0], "not a key": tmp_path / "x.pem"}[problem]
    if problem == "not a key":
        bad.write_text("hello\n")
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--name", "tiny-a", "--to", dest, "--sign_key", bad)
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith(f"modelzoo-mirror: error: --sign_key {bad}: ")
    assert {"missing": "cannot be read", "rsa": "not an elliptic-curve key",
            "not a key": "not an unencrypted PEM private key"}[problem] in line
    assert not dest.exists() and server.count() == 0
    public = {"missing": bad, "rsa": keys["rsa"][1], "not a key": bad}[problem]
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-a", "-d", tmp_path / "dl", "-o",
                      tmp_path / "out", "--mirror", tmp_path, "--trust_key", public)
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"modelzoo-converter: error: --trust_key {public}: ")
    assert not (tmp_path / "out").exists()


def test_the_downloader_uses_only_a_mirror_whose_signature_verifies(zoo, server, tmp_path, keys):
    from conftest import write_model

    data = b"alpha" * 100
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": data, "url": server.add("alpha/alpha.pb", data)}])
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--sign_key", keys["key"][0])
    assert result.returncode == 0, result.stderr
    asked = server.count()
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", out, "--mirror", dest.as_uri(),
                      "--trust_key", keys["key"][1])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert server.count() == asked  # from the mirror
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", tmp_path / "out2", "--mirror", dest.as_uri(),
                      env={"MODELZOO_TRUSTED_KEYS": str(keys["other"][1])})
    assert result.returncode == 0, result.stderr
    assert one_error_line(result) == (f"modelzoo-downloader: warning: mirror {dest.as_uri()}: signed with key "
                                      f"{key_id(keys['key'][1])}, which is not a trusted key "
                                      f"({key_id(keys['other'][1])}); this mirror is not used")
    assert server.count() == asked + 1  # from the descriptor's source instead
    assert (tmp_path / "out2/public/alpha/alpha.pb").read_bytes() == data


def test_an_unsigned_sync_that_changes_the_manifest_deletes_its_stale_signature(zoo, server, tmp_path, keys):
    """A sync without --sign_key that writes the manifest leaves no signature over the manifest
    as it was (it would no longer verify and look like tampering): the signature goes, one
    warning says so and how to sign again, and a downloader trusting the key is told the mirror
    is not signed. A sync that changes nothing keeps the signature, and it still verifies."""
    from conftest import write_model

    for name in ("alpha", "beta"):
        data = name.encode() * 100
        write_model(zoo, name, [{"name": f"{name}.pb", "data": data, "url": server.add(f"{name}/{name}.pb", data)}])
    dest = tmp_path / "mirror"
    signed = run_tool("mirror", "sync", "--models_dir", zoo, "--name", "alpha", "--to", dest,
                      "--sign_key", keys["key"][0])
    assert signed.returncode == 0, signed.stderr
    unchanged = run_tool("mirror", "sync", "--models_dir", zoo, "--name", "alpha", "--to", dest)
    assert unchanged.returncode == 0 and unchanged.stderr == "", unchanged.stderr
    assert "manifest unchanged" in unchanged.stdout and (dest / SIG).is_file()
    trusted = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "alpha", "--at", dest,
                       "--trust_key", keys["key"][1])
    assert trusted.returncode == 0, trusted.stderr

    grown = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest)
    assert grown.returncode == 0, grown.stderr
    assert not (dest / SIG).exists(), "a signature over the manifest before this sync stayed behind"
    assert f"deleted  {SIG}" in grown.stdout
    assert one_error_line(grown) == (f"modelzoo-mirror: warning: {dest}: the manifest changed without --sign_key, so "
                                     f"its signature ({SIG}) was deleted; sync again with --sign_key to sign the "
                                     f"mirror")
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", tmp_path / "out", "--mirror", dest.as_uri(),
                      "--trust_key", keys["key"][1])
    assert result.returncode == 0, result.stderr
    assert "is not signed" in one_error_line(result)
    resigned = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--sign_key", keys["key"][0])
    assert resigned.returncode == 0 and (dest / SIG).is_file(), resigned.stderr


def test_an_http_mirror_is_verified_through_the_one_session(signed_folder, keys, tmp_path):
    from modelzoo.devtools.loopback import LoopbackServer

    dl = downloaded(tmp_path, "tiny-a", signed_folder["data"])
    with LoopbackServer(root=signed_folder["dest"]) as web:
        url = web.base_url
        result = convert_from(signed_folder["zoo"], "tiny-a", dl, tmp_path / "out", tmp_path / "c.log", url,
                              extra=("--trust_key", str(keys["key"][1]), "--require_signature"))
        assert result.returncode == 0, result.stderr
        assert count(tmp_path / "c.log") == 0 and result.stderr == ""
        assert web.count(SIG) == 1  # the signature read once, before the run
        (signed_folder["dest"] / SIG).unlink()
        result = convert_from(signed_folder["zoo"], "tiny-a", dl, tmp_path / "out2", tmp_path / "c2.log",
                              url, extra=("--trust_key", str(keys["key"][1]), "--require_signature"))
    assert result.returncode == 2
    assert one_error_line(result) == (f"modelzoo-converter: error: --require_signature: mirror {url}: "
                                      f"{MANIFEST} is not signed (no {SIG})")
    assert count(tmp_path / "c2.log") == 0
