"""modelzoo-lock and --locked (issue 28): a lock built from the descriptors, --check (descriptor
drift, and with --remote HEAD requests to a real nginx), --update, and --locked runs of the
downloader, the mirror, the converter, the quantizer and the accuracy tool refused before the
first request. Real parts: the loopback HTTP server, nginx, the real command lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import one_error_line, run_tool, sha384, write_model

from modelzoo.devtools.servers import Nginx

DEAD = "http://127.0.0.1:9"
ALPHA = b"alpha" * 1000
BETA = os.urandom(3000)


@pytest.fixture
def two(zoo, server):
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": server.add("alpha/alpha.pb", ALPHA)}])
    write_model(zoo, "beta", [{"name": "beta.onnx", "data": BETA, "url": server.add("beta/beta.onnx", BETA)}])
    return zoo


def lock(zoo: Path, *args, **kw):
    return run_tool("lock", "--models_dir", zoo, *args, **kw)


def test_lock_writes_the_descriptors_files_and_urls_and_checks_clean(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    result = lock(two, "--all", "-o", path)
    assert result.returncode == 0, result.stderr
    assert server.count() == 0  # built from the descriptors: nothing downloaded
    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=1, sort_keys=True) + "\n"  # sorted, indented
    assert data["format"] == "modelzoo-lock/1" and sorted(data["models"]) == ["alpha", "beta"]
    alpha = data["models"]["alpha"]
    assert alpha["descriptor"] == "public/alpha/model.yml"
    assert alpha["descriptor_sha384"] == sha384((two / "public/alpha/model.yml").read_bytes())
    assert alpha["files"] == {"alpha.pb": {"size": len(ALPHA), "sha384": sha384(ALPHA),
                                           "urls": [server.url("alpha/alpha.pb")]}}
    result = lock(two, "--check", "-o", path)
    assert result.returncode == 0, result.stderr
    assert "2 models as locked" in result.stdout


def test_check_finds_an_edited_descriptor_and_update_refreshes_only_that_model(two, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--all", "-o", path).returncode == 0
    before = json.loads(path.read_text())
    yml = two / "public/alpha/model.yml"
    yml.write_text(yml.read_text().replace("test model alpha", "test model alpha, edited"))
    result = lock(two, "--check", "-o", path)
    assert result.returncode == 1
    assert "drift: alpha: descriptor public/alpha/model.yml changed" in result.stdout
    assert one_error_line(result) == "modelzoo-lock: failed: alpha"
    result = lock(two, "--update", "alpha", "-o", path)
    assert result.returncode == 0, result.stderr
    after = json.loads(path.read_text())
    assert after["models"]["beta"] == before["models"]["beta"]
    assert after["models"]["alpha"]["descriptor_sha384"] == sha384(yml.read_bytes())
    assert lock(two, "--check", "-o", path).returncode == 0


def test_a_url_added_to_the_lock_is_allowed_a_source_the_lock_does_not_name_is_drift(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--all", "-o", path).returncode == 0
    data = json.loads(path.read_text())
    data["models"]["alpha"]["files"]["alpha.pb"]["urls"].append("https://mirror.example.com/alpha.pb")
    path.write_text(json.dumps(data))
    result = lock(two, "--check", "-o", path)
    assert result.returncode == 0, result.stdout + result.stderr  # more URLs allowed than the descriptor's
    assert _download(two, tmp_path / "out", "--all", "--locked", path).returncode == 0
    data = json.loads(path.read_text())
    data["models"]["beta"]["files"]["beta.onnx"]["urls"] = ["https://elsewhere.example.com/beta.onnx"]
    path.write_text(json.dumps(data))
    result = lock(two, "--check", "-o", path)
    assert result.returncode == 1
    assert f"drift: beta: file beta.onnx: source {server.url('beta/beta.onnx')} is not a locked URL" in result.stdout


def _download(zoo, out, *args, **kw):
    return run_tool("downloader", "--models_dir", zoo, "-o", out, *args, **kw)


def test_locked_download_refuses_an_edited_descriptor_before_the_first_request(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--all", "-o", path).returncode == 0
    yml = two / "public/beta/model.yml"
    yml.write_text(yml.read_text() + "# a comment is an edit too\n")
    out = tmp_path / "out"
    result = _download(two, out, "--all", "--locked", path)
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith("modelzoo-downloader: error: --locked ") and "beta: descriptor public/beta/model.yml" \
        " changed" in line
    assert server.count() == 0 and not out.exists()
    # after lock --update the same run passes, and fetches the locked bytes
    assert lock(two, "--update", "beta", "-o", path).returncode == 0
    result = _download(two, out, "--all", "--locked", path)
    assert result.returncode == 0, result.stderr
    assert (out / "public/beta/beta.onnx").read_bytes() == BETA


def test_locked_download_refuses_a_model_not_in_the_lock(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--name", "alpha", "-o", path).returncode == 0
    result = _download(two, tmp_path / "out", "--name", "alpha,beta", "--locked", path)
    assert result.returncode == 2
    assert "beta is not in the lock" in one_error_line(result)
    assert server.count() == 0 and not (tmp_path / "out").exists()


def test_locked_download_from_a_mirror_serving_a_flipped_byte_is_not_accepted(zoo, server, tmp_path):
    write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": f"{DEAD}/alpha.pb"}])
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    flipped = bytearray(ALPHA)
    flipped[100] ^= 1
    server.add("m/public/alpha/alpha.pb", bytes(flipped))
    out = tmp_path / "out"
    result = _download(zoo, out, "--all", "--locked", path, "--mirror", server.url("m"))
    assert result.returncode == 1
    # the mirror was asked (a HEAD: the locked size, so the run goes on; then the GET); its bytes were not the locked ones
    assert [r.method for r in server.requests] == ["HEAD", "GET"]
    assert not (out / "public/alpha/alpha.pb").exists()
    server.add("m/public/alpha/alpha.pb", ALPHA)
    result = _download(zoo, out, "--all", "--locked", path, "--mirror", server.url("m"))
    assert result.returncode == 0, result.stderr  # a mirror is allowed: its bytes are checked
    assert (out / "public/alpha/alpha.pb").read_bytes() == ALPHA


@pytest.mark.parametrize("content, says", [
    ("not json", "not a modelzoo lock file"),
    ('{"format": "pip-lock/1", "models": {}}', "not a modelzoo-lock/1 lock file"),
    ('{"format": "modelzoo-lock/1", "models": {"alpha": {}, "alpha": {}}}', "names 'alpha' twice"),
    ('{"format": "modelzoo-lock/1", "models": {"alpha": {"descriptor": "x", "descriptor_sha384": "' + "a" * 96
     + '", "files": {"a": {"size": 1, "sha384": "b", "urls": []}}}}}', "'sha384' must be a SHA-384"),
])
def test_a_bad_lock_file_is_one_line_and_nothing_written(two, server, tmp_path, content, says):
    path = tmp_path / "bad.lock"
    path.write_text(content)
    out = tmp_path / "out"
    result = _download(two, out, "--all", "--locked", path)
    assert result.returncode == 2
    assert says in one_error_line(result)
    assert server.count() == 0 and not out.exists()
    result = lock(two, "--check", "-o", path)
    assert result.returncode == 2 and says in one_error_line(result)


def test_lock_to_a_folder_is_one_line(two, tmp_path):
    (tmp_path / "dir").mkdir()
    result = lock(two, "--all", "-o", tmp_path / "dir")
    assert result.returncode == 2 and "a folder, not a lock file" in one_error_line(result)


def test_locked_mirror_sync_refuses_before_any_request(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--name", "alpha", "-o", path).returncode == 0
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", two, "--all", "--to", dest, "--locked", path)
    assert result.returncode == 2 and "beta is not in the lock" in one_error_line(result)
    assert server.count() == 0 and not dest.exists()
    result = run_tool("mirror", "sync", "--models_dir", two, "--name", "alpha", "--to", dest, "--locked", path)
    assert result.returncode == 0, result.stderr


def test_locked_converter_quantizer_and_accuracy_refuse_an_unlocked_model_first(two, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--name", "alpha", "-o", path).returncode == 0
    for tool, extra in [("converter", ["-d", tmp_path / "dl"]), ("quantizer", ["--ir_dir", tmp_path / "ir"]),
                        ("accuracy_check", ["--ir_dir", tmp_path / "ir"])]:
        result = run_tool(tool, "--models_dir", two, "--name", "beta", "--locked", path, *extra)
        assert result.returncode == 2, (tool, result.stderr)
        assert "--locked" in one_error_line(result) and "beta is not in the lock" in result.stderr, tool


@pytest.fixture
def nginx_zoo(zoo, tmp_path):
    www = tmp_path / "www"
    (www / "f").mkdir(parents=True)
    (www / "f/alpha.pb").write_bytes(ALPHA)
    (www / "f/beta.onnx").write_bytes(BETA)
    with Nginx(www) as nginx:
        write_model(zoo, "alpha", [{"name": "alpha.pb", "data": ALPHA, "url": f"{nginx.url}/f/alpha.pb"}])
        write_model(zoo, "beta", [{"name": "beta.onnx", "data": BETA, "url": f"{nginx.url}/f/beta.onnx"}])
        yield zoo, www, nginx


def test_check_remote_catches_a_changed_size_and_a_missing_file_with_head_requests(nginx_zoo, tmp_path):
    zoo, www, nginx = nginx_zoo
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    result = lock(zoo, "--check", "--remote", "-o", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "each URL as locked" in result.stdout
    (www / "f/alpha.pb").write_bytes(ALPHA + b"upstream changed it")
    (www / "f/beta.onnx").unlink()
    result = lock(zoo, "--check", "--remote", "-o", path)
    assert result.returncode == 1
    assert f"alpha: alpha.pb: {nginx.url}/f/alpha.pb: {len(ALPHA) + 19:,} bytes served, locked {len(ALPHA):,}" \
        in result.stdout
    assert f"beta: beta.onnx: {nginx.url}/f/beta.onnx: gone (HTTP 404)" in result.stdout
    requests = [line for line in nginx.access_log.read_text().splitlines() if "/f/" in line]
    assert requests and all('"HEAD ' in line for line in requests)  # nothing was downloaded


def _requests(nginx) -> list[str]:
    return [line for line in nginx.access_log.read_text().splitlines() if "/f/" in line] \
        if nginx.access_log.exists() else []


def test_locked_download_refuses_a_changed_size_upstream_before_the_download_starts(nginx_zoo, tmp_path):
    zoo, www, nginx = nginx_zoo
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    (www / "f/alpha.pb").write_bytes(ALPHA + b"upstream changed it")
    out = tmp_path / "out"
    result = _download(zoo, out, "--all", "--locked", path, "-j", "2")
    assert result.returncode == 2
    assert one_error_line(result) == (
        f"modelzoo-downloader: error: --locked {path}: alpha: alpha.pb: {nginx.url}/f/alpha.pb: "
        f"{len(ALPHA) + 19:,} bytes served, locked {len(ALPHA):,} (refused before any download; "
        "modelzoo-lock --check --remote lists every such file)")
    assert not out.exists()
    assert _requests(nginx) and all('"HEAD ' in line for line in _requests(nginx))  # no GET: nothing downloaded


def test_locked_download_refuses_a_file_gone_upstream_and_sync_does_too(nginx_zoo, tmp_path):
    zoo, www, nginx = nginx_zoo
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    (www / "f/beta.onnx").unlink()
    out = tmp_path / "out"
    result = _download(zoo, out, "--all", "--locked", path)
    assert result.returncode == 2
    assert f"beta: beta.onnx: {nginx.url}/f/beta.onnx: gone (HTTP 404)" in one_error_line(result)
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--locked", path)
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"modelzoo-mirror: error: --locked {path}: beta: beta.onnx: ")
    assert not out.exists() and not dest.exists()
    assert all('"HEAD ' in line for line in _requests(nginx))


def test_locked_heads_only_what_it_will_fetch_and_offline_asks_nothing(nginx_zoo, tmp_path):
    """A file already at its target (or in the cache) is not asked for: a warm locked run makes
    no request; offline, the session refuses the HEAD requests and the run goes on as offline."""
    zoo, www, nginx = nginx_zoo
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = _download(zoo, out, "--all", "--locked", path, "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    heads = [line for line in _requests(nginx) if '"HEAD ' in line]
    assert len(heads) == 2 and len(_requests(nginx)) == 4  # one HEAD, then one GET a file
    (www / "f/alpha.pb").write_bytes(ALPHA + b"upstream changed it")
    nginx.access_log.write_text("")
    assert _download(zoo, out, "--all", "--locked", path).returncode == 0  # at their targets
    assert _download(zoo, tmp_path / "out2", "--all", "--locked", path, "--cache_dir", cache).returncode == 0
    assert _requests(nginx) == []
    result = _download(zoo, tmp_path / "out3", "--all", "--locked", path, "--offline")
    assert result.returncode == 1 and "not fetched: offline" in result.stderr and "--locked" not in result.stderr
    assert _requests(nginx) == []


def test_check_remote_is_refused_offline_without_a_connection(two, server, tmp_path):
    path = tmp_path / "modelzoo.lock"
    assert lock(two, "--all", "-o", path).returncode == 0
    result = lock(two, "--check", "--remote", "--offline", "-o", path)
    assert result.returncode == 1 and "not fetched: offline" in one_error_line(result)
    assert server.count() == 0


# ----------------------------------------------------------------------------- IR (the ovc backend)

@pytest.fixture
def ir_mirror(tmp_path, zoo, server):
    """A folder mirror with tiny-a's files and FP16/FP32 IR, and a lock of it with --ir."""
    import openvino  # noqa: F401
    from test_mirror_ir import files, sync_ir, tiny_model

    data = tiny_model(zoo, server, "tiny-a")
    dest = tmp_path / "mirror"
    result = sync_ir(zoo, str(dest), tmp_path / "cache", tmp_path / "sync.log", "--name", "tiny-a")
    assert result.returncode == 0, result.stderr
    [key] = [p.name for p in (dest / "ir").iterdir()]
    path = tmp_path / "ir.lock"
    result = lock(zoo, "--name", "tiny-a", "--ir", "--mirror", dest, "-o", path)
    assert result.returncode == 0, result.stderr
    return {"zoo": zoo, "dest": dest, "key": key, "lock": path, "data": data,
            "ir": files(dest / "ir" / key / "public/tiny-a")}


def test_lock_ir_records_the_mirrors_key_and_files(ir_mirror):
    entry = json.loads(ir_mirror["lock"].read_text())["models"]["tiny-a"]
    assert sorted(entry["ir"]) == ["FP16", "FP32"]
    for precision, ir in entry["ir"].items():
        assert ir["key"] == ir_mirror["key"] and ir["tools"].startswith("ovc ")
        assert ir["files"] == {rel.split("/")[1]: {"size": len(d), "sha384": sha384(d)}
                               for rel, d in ir_mirror["ir"].items() if rel.startswith(precision + "/")}


def test_locked_converter_takes_the_locked_ir_and_refuses_a_conversion_that_is_not_it(ir_mirror, tmp_path):
    from test_mirror_ir import convert_from, downloaded, files

    zoo, path = ir_mirror["zoo"], ir_mirror["lock"]
    dl, out = downloaded(tmp_path, "tiny-a", ir_mirror["data"]), tmp_path / "out"
    result = convert_from(zoo, "tiny-a", dl, out, tmp_path / "c.log", str(ir_mirror["dest"]),
                          extra=("--locked", str(path)))
    assert result.returncode == 0, result.stderr
    assert files(out / "public/tiny-a") == ir_mirror["ir"]
    # a lock whose FP32 .bin is other bytes than this conversion makes: a reproducibility failure
    data = json.loads(path.read_text())
    data["models"]["tiny-a"]["ir"]["FP32"]["files"]["tiny-a.bin"]["sha384"] = "0" * 96
    path.write_text(json.dumps(data))
    out2 = tmp_path / "out2"
    result = convert_from(zoo, "tiny-a", dl, out2, tmp_path / "c2.log", extra=("--locked", str(path)))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{out2}/public/tiny-a/FP32/tiny-a.bin: converted IR is not the locked IR of tiny-a FP32 (removed)" \
        in lines[0]
    assert lines[-1] == "modelzoo-converter: failed: tiny-a"
    assert not (out2 / "public/tiny-a/FP32").exists()  # nothing unlocked left where locked IR belongs
    assert files(out2 / "public/tiny-a/FP16") == {k.split("/")[1]: v for k, v in ir_mirror["ir"].items()
                                                  if k.startswith("FP16/")}


def test_the_locked_converter_leaves_int8_ir_alone(ir_mirror, tmp_path):
    """The converter holds to the lock only the IR it makes (FP16, FP32): INT8 IR in its output
    folder is the quantizer's to check, never removed by a conversion."""
    from test_mirror_ir import convert_from, downloaded

    data = json.loads(ir_mirror["lock"].read_text())
    data["models"]["tiny-a"]["ir"]["FP16-INT8"] = {"key": "1" * 96, "tools": "nncf",
                                                   "files": {"tiny-a.xml": {"size": 1, "sha384": "2" * 96}}}
    ir_mirror["lock"].write_text(json.dumps(data))
    out = tmp_path / "out"
    int8 = out / "public/tiny-a/FP16-INT8/tiny-a.xml"
    int8.parent.mkdir(parents=True)
    int8.write_bytes(b"<net/>")
    dl = downloaded(tmp_path, "tiny-a", ir_mirror["data"])
    result = convert_from(ir_mirror["zoo"], "tiny-a", dl, out, tmp_path / "c.log", str(ir_mirror["dest"]),
                          extra=("--locked", str(ir_mirror["lock"])))
    assert result.returncode == 0, result.stderr
    assert int8.read_bytes() == b"<net/>"


def test_locked_accuracy_refuses_ir_that_is_not_the_locked_ir(ir_mirror, tmp_path):
    ir_dir = tmp_path / "ir"
    for rel, data in ir_mirror["ir"].items():
        (ir_dir / "public/tiny-a" / rel).parent.mkdir(parents=True, exist_ok=True)
        (ir_dir / "public/tiny-a" / rel).write_bytes(data)
    target = ir_dir / "public/tiny-a/FP16/tiny-a.xml"
    target.write_bytes(target.read_bytes().replace(b"<net", b"<net ", 1))
    result = run_tool("accuracy_check", "--models_dir", ir_mirror["zoo"], "--name", "tiny-a", "--ir_dir", ir_dir,
                      "--locked", ir_mirror["lock"], "--images", tmp_path)
    assert result.returncode == 1
    assert f"{target}: the IR to measure is not the locked IR of tiny-a FP16" in result.stderr
    assert target.exists()  # the accuracy tool removes nothing


def test_locked_converter_checks_the_key_under_any_jobs_and_without_a_cache(ir_mirror, server, tmp_path):
    """-j 2 converts each model in a process of its own, and without --cache_dir or --mirror the
    key is not needed to find IR: the locked key is compared all the same (the IR's bytes alone
    would pass here: a lock with another key is refused)."""
    from test_mirror_ir import convert_from, downloaded, tiny_model

    zoo, path = ir_mirror["zoo"], ir_mirror["lock"]
    beta = tiny_model(zoo, server, "tiny-b", seed=1)
    assert lock(zoo, "--update", "tiny-b", "-o", path).returncode == 0
    dl = downloaded(tmp_path, "tiny-a", ir_mirror["data"])
    downloaded(tmp_path, "tiny-b", beta)
    both = ("--name", "tiny-a,tiny-b", "-j", "2", "--locked", str(path))
    result = convert_from(zoo, "tiny-a,tiny-b", dl, tmp_path / "out", tmp_path / "c.log", extra=both)
    assert result.returncode == 0, result.stderr  # the key each job worked out is the locked one
    data = json.loads(path.read_text())
    for ir in data["models"]["tiny-a"]["ir"].values():
        ir["key"] = "f" * 96  # the same bytes, another key
    path.write_text(json.dumps(data))
    out = tmp_path / "out2"
    result = convert_from(zoo, "tiny-a,tiny-b", dl, out, tmp_path / "c2.log", extra=both)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"modelzoo-converter: error: {out}/public/tiny-a/FP32: converted IR is not the locked IR of tiny-a FP32 "
        "(removed)", "modelzoo-converter: failed: tiny-a"]
    assert not (out / "public/tiny-a/FP16").exists() and not (out / "public/tiny-a/FP32").exists()
    assert (out / "public/tiny-b/FP16/tiny-b.xml").is_file()  # not locked with IR: left alone


def _blob(cache: Path, data: bytes) -> Path:
    digest = sha384(data)
    return cache / "ir/sha384" / digest[:2] / digest[2:]


def test_lock_ir_from_the_ir_cache_is_the_mirrors_ir_and_check_update_hold_to_it(ir_mirror, tmp_path):
    """The IR cache the sync converted through and the mirror it published to give the same lock
    entries (key, tools, files); --check --ir finds another key; --update refreshes the IR too."""
    zoo, cache = ir_mirror["zoo"], ir_mirror["dest"].parent / "cache"
    path = tmp_path / "cache.lock"
    result = lock(zoo, "--name", "tiny-a", "--ir", "--cache_dir", cache, "-o", path)
    assert result.returncode == 0, result.stderr
    assert "1 models, 1 files, 2 IR precisions" in result.stdout and result.stderr == ""
    from_cache = json.loads(path.read_text())["models"]["tiny-a"]["ir"]
    assert from_cache == json.loads(ir_mirror["lock"].read_text())["models"]["tiny-a"]["ir"]
    result = lock(zoo, "--check", "--ir", "--cache_dir", cache, "-o", path)
    assert result.returncode == 0 and "their IR as locked" in result.stdout, result.stdout + result.stderr
    data = json.loads(path.read_text())
    data["models"]["tiny-a"]["ir"]["FP16"]["key"] = "f" * 96
    path.write_text(json.dumps(data))
    result = lock(zoo, "--check", "--ir", "--mirror", ir_mirror["dest"], "-o", path)
    assert result.returncode == 1
    assert f"drift: tiny-a: IR FP16: key {ir_mirror['key'][:16]}... (ovc " in result.stdout
    assert f"locked {'f' * 16}..." in result.stdout
    result = lock(zoo, "--update", "tiny-a", "-o", path)  # would drop the IR pin: refused, nothing written
    assert result.returncode == 2 and "its IR is locked; give --ir" in one_error_line(result)
    assert json.loads(path.read_text()) == data
    result = lock(zoo, "--update", "tiny-a", "--ir", "--cache_dir", cache, "-o", path)
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text())["models"]["tiny-a"]["ir"] == from_cache
    result = lock(zoo, "--name", "tiny-a", "--ir", "--cache_dir", tmp_path / "none", "-o", tmp_path / "x.lock")
    assert result.returncode == 2 and "no IR cache there" in one_error_line(result)
    assert not (tmp_path / "none").exists() and not (tmp_path / "x.lock").exists()


def test_lock_ir_never_pins_bytes_that_do_not_verify(ir_mirror, tmp_path):
    """A corrupt IR cache blob, and a mirror serving a flipped byte its manifest does not name,
    are each refused with one warning; the model is locked without IR."""
    zoo, cache, dest, key = ir_mirror["zoo"], ir_mirror["dest"].parent / "cache", ir_mirror["dest"], ir_mirror["key"]
    blob = _blob(cache, ir_mirror["ir"]["FP16/tiny-a.bin"])
    blob.chmod(0o644)
    raw = bytearray(blob.read_bytes())
    raw[0] ^= 1
    blob.write_bytes(bytes(raw))
    served = dest / "ir" / key / "public/tiny-a/FP16/tiny-a.bin"
    served.write_bytes(bytes(raw))
    path = tmp_path / "bad.lock"
    result = lock(zoo, "--name", "tiny-a", "--ir", "--cache_dir", cache, "--mirror", dest, "-o", path)
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert warnings[0] == f"modelzoo-lock: warning: tiny-a: the IR cache's entry {key[:16]}... is corrupt " \
                          "(discarded); FP16, FP32 not locked from it"
    assert warnings[1].startswith(f"modelzoo-lock: warning: tiny-a: mirror {dest}: ") and "its IR is not locked" \
        in warnings[1]
    assert warnings[2] == "modelzoo-lock: warning: tiny-a: no IR in --cache_dir or any --mirror; locked without IR"
    assert "ir" not in json.loads(path.read_text())["models"]["tiny-a"]
    assert not [p for p in cache.iterdir() if p.name.startswith(".lock-ir-")]  # nothing left behind


def test_a_lock_mixing_keys_holds_a_run_of_both_precisions_to_the_bytes(ir_mirror, tmp_path):
    """An FP16-only conversion after the sync's: the IR cache's newest FP16 entry is another key
    than its FP32 one, and lock --ir --cache_dir locks each. A --locked run converting both
    precisions has a third key by right: it is held to the locked bytes, not refused for its key."""
    from test_mirror_ir import convert_from, downloaded, files

    zoo, cache = ir_mirror["zoo"], ir_mirror["dest"].parent / "cache"
    dl = downloaded(tmp_path, "tiny-a", ir_mirror["data"])
    result = convert_from(zoo, "tiny-a", dl, tmp_path / "fp16", tmp_path / "c.log",
                          extra=("--precisions", "FP16", "--cache_dir", str(cache)))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "mixed.lock"
    assert lock(zoo, "--name", "tiny-a", "--ir", "--cache_dir", cache, "-o", path).returncode == 0
    ir = json.loads(path.read_text())["models"]["tiny-a"]["ir"]
    assert ir["FP32"]["key"] == ir_mirror["key"] != ir["FP16"]["key"]
    out = tmp_path / "out"
    result = convert_from(zoo, "tiny-a", dl, out, tmp_path / "c2.log", extra=("--locked", str(path)))
    assert result.returncode == 0, result.stderr
    assert files(out / "public/tiny-a") == ir_mirror["ir"]


def test_locked_verify_repair_refuses_a_changed_size_upstream_before_it_fetches(nginx_zoo, tmp_path):
    """verify --repair --locked re-fetches through the same HEAD preflight as sync: a file to
    repair that upstream now serves at another size refuses the repair before any GET, and the
    mirror is left as the audit found it."""
    zoo, www, nginx = nginx_zoo
    path = tmp_path / "modelzoo.lock"
    assert lock(zoo, "--all", "-o", path).returncode == 0
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--locked", path)
    assert result.returncode == 0, result.stderr
    mirrored = next(dest.rglob("alpha.pb"))
    mirrored.unlink()
    before = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    (www / "f/alpha.pb").write_bytes(ALPHA + b"upstream changed it")
    nginx.access_log.write_text("")
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, "--repair", "--locked", path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert one_error_line(result) == (
        f"modelzoo-mirror: error: --locked {path}: alpha: alpha.pb: {nginx.url}/f/alpha.pb: "
        f"{len(ALPHA) + 19:,} bytes served, locked {len(ALPHA):,} (refused before any download; "
        "modelzoo-lock --check --remote lists every such file)")
    assert _requests(nginx) and all('"HEAD ' in line for line in _requests(nginx))  # no GET
    assert {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    (www / "f/alpha.pb").write_bytes(ALPHA)  # served as locked again: the same command repairs
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, "--repair", "--locked", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert mirrored.read_bytes() == ALPHA
