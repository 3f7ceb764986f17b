"""`--run_dir s3://bucket/prefix` (issue 27): shard records in a real SeaweedFS through the
converter's real command line. Two shards write their records (each one PUT, the shard's last
write, with its SHA-384); a rerun skips a shard whose record is there; a record made with other
inputs is one line naming the shard, and the object is left as it was; a record whose bytes no
longer match their SHA-384 is refused, not trusted."""

from __future__ import annotations

import json
import uuid

from conftest import one_error_line, run_tool
from ovc_reference import tiny_pb
from test_shards import convert, converted, zoo  # noqa: F401 (fixture)

from modelzoo.devtools.servers import SeaweedS3


def test_shard_records_in_s3_are_skipped_when_true_and_refused_when_made_with_other_inputs(zoo, tmp_path):
    out, log = tmp_path / "out", tmp_path / "c.log"
    with SeaweedS3() as weed:
        bucket, client = f"runs-{uuid.uuid4().hex[:10]}", weed.client()
        client.create_bucket(Bucket=bucket)
        run_dir = f"s3://{bucket}/team/run-1"
        for k in range(2):
            shard = convert(zoo, out, log, "--shard", f"{k}/2", "--run_dir", run_dir, env=weed.env())
            assert shard.returncode == 0, shard.stderr
            assert f"shard {k}/2: record {run_dir}/converter.shard-{k}-of-2.json" in shard.stdout
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == [f"team/run-1/converter.shard-{k}-of-2.json" for k in range(2)]
        got = client.get_object(Bucket=bucket, Key=keys[1])
        record = json.loads(got["Body"].read())
        assert record["shard"] == "1/2" and sorted(record["inputs"]["models"]) == ["tiny-b", "tiny-d"]
        assert len(got["Metadata"]["sha384"]) == 96
        assert len(converted(log)) == 5
        again = convert(zoo, out, log, "--shard", "1/2", "--run_dir", run_dir, env=weed.env())
        assert again.returncode == 0, again.stderr
        assert "shard 1/2: done already" in again.stdout and len(converted(log)) == 5
        kept = client.get_object(Bucket=bucket, Key=keys[1])["Body"].read()
        (zoo["dl"] / "public/tiny-d/tiny.pb").write_bytes(tiny_pb(1).read_bytes())  # other weights
        other = convert(zoo, out, log, "--shard", "1/2", "--run_dir", run_dir, env=weed.env())
        assert other.returncode == 1
        assert one_error_line(other).endswith(f"shard 1/2: its record {run_dir}/converter.shard-1-of-2.json was made "
                                              "with other inputs (models differ); nothing overwritten: use another "
                                              "--run_dir or remove that record")
        assert client.get_object(Bucket=bucket, Key=keys[1])["Body"].read() == kept and len(converted(log)) == 5
        # a record whose bytes are not those written (its SHA-384 says so) is not trusted
        client.put_object(Bucket=bucket, Key=keys[0], Body=b"{}", Metadata={"sha384": "0" * 96})
        bad = convert(zoo, out, log, "--shard", "0/2", "--run_dir", run_dir, env=weed.env())
        assert bad.returncode == 1 and "not the record that was written" in one_error_line(bad)
        assert len(converted(log)) == 5
