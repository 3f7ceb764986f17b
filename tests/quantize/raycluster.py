"""A real Ray cluster on this machine for the --cluster tests: a head (no cores: it only
schedules) and two nodes of one core each (ray.cluster_utils.Cluster starts real raylets), inside
a network namespace of its own so that nothing leaves loopback (Ray advertises the host's own
address whatever it is told; see /work/shared/real-parts.md).

The head also listens for Ray Client (``ray://``) on CLIENT_PORT: the server behind it needs
grpcio (``ray[client]``, which the ``[ray]`` extra pulls), and its port must lie outside the
range Ray keeps for worker processes (10002-19999 by default; Ray refuses to start otherwise).
A fresh network namespace has every port free, so the port is fixed.

``run_steps(steps)`` starts ``unshare -n`` with this file as the script: it brings loopback up,
starts the cluster once and runs each step's command in turn with RAY_ADDRESS set (so
``--cluster auto`` finds it). A step may remove one worker node without a graceful shutdown (its
processes are SIGKILLed: ``kill_node_after``) as soon as the command prints a line containing that
text, or SIGKILL the command itself (the driver: ``kill_driver_after``) at the ``kill_driver_at``-th
such line (default the first). Each step's
exit code, stdout and stderr come back as a list of dicts; the cluster is shut down at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

NOT_UP = 75  # main's exit code when the cluster did not come up: no step ran
CLIENT_PORT = 24001
CLIENT = f"ray://127.0.0.1:{CLIENT_PORT}"  # --cluster's Ray Client address of the head, inside the namespace


def run_steps(steps: list[dict], tmp: Path, s3_bucket: str | None = None, timeout: float = 300) -> list[dict]:
    """Run ``steps`` ({"cmd": [...], "env": {...}, "kill_node_after": TEXT, "kill_driver_after":
    TEXT, "s3": bool}) on a fresh cluster in a network namespace of its own; their results, in
    order. With ``s3_bucket``, a SeaweedFS is started there too, with that bucket: a step with
    "s3" runs with its writer's credentials and endpoint, and its result has the bucket's objects
    ({key: SHA-384}) and the mirror manifest under its first folder ("manifest"), read afterwards."""
    plan, out = tmp / "raycluster-steps.json", tmp / "raycluster-results.json"
    plan.write_text(json.dumps({"bucket": s3_bucket,
                                "steps": [{**s, "cmd": [str(a) for a in s["cmd"]]} for s in steps]}))
    env = dict(os.environ, HOME=str(tmp / "home"))  # Ray's token (~/.ray/auth_token) stays in the test's folder
    (tmp / "home").mkdir(exist_ok=True)
    shell = f"ip link set lo up && exec {sys.executable} {Path(__file__).resolve()} {plan} {out}"
    for attempt in range(2):  # once more if the cluster did not come up (before any step ran)
        done = subprocess.run(["unshare", "-n", "sh", "-c", shell], capture_output=True, text=True, env=env,
                              timeout=timeout)
        if done.returncode != NOT_UP:
            break
    assert done.returncode == 0 and out.is_file(), done.stderr[-3000:]
    return json.loads(out.read_text())


def _step(cluster, nodes: list, step: dict, weed) -> dict:
    started = time.monotonic()
    env = dict(os.environ, RAY_ADDRESS=cluster.address, **step.get("env", {}))
    if step.get("s3"):
        env.update(weed.env())
    child = subprocess.Popen(step["cmd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(child.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    lines, done, seen = [], set(), 0
    def hung() -> None:  # (a hang fails its own step, and the cluster is still shut down)
        done.add("timed out")
        child.kill()

    timer = threading.Timer(step.get("timeout", 150), hung)
    timer.start()
    for line in child.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if step.get("kill_node_after") and "node" not in done and step["kill_node_after"] in line:
            cluster.remove_node(nodes.pop(0), allow_graceful=False)
            done.add("node")
        if step.get("kill_driver_after") and "driver" not in done and step["kill_driver_after"] in line:
            seen += 1
            if seen == step.get("kill_driver_at", 1):
                child.send_signal(signal.SIGKILL)
                done.add("driver")
    code = child.wait()
    timer.cancel()
    reader.join()
    result = {"code": code, "stdout": "".join(lines), "stderr": "".join(err), "killed": sorted(done),
              "seconds": round(time.monotonic() - started, 1)}
    if step.get("s3"):
        result.update(_bucket(weed, step))
    return result


def _bucket(weed, step: dict) -> dict:
    import hashlib

    client, bucket = weed.client(), step["bucket"]
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[item["Key"]] = hashlib.sha384(body).hexdigest()
    prefix = next((k.split("/", 1)[0] for k in objects if "/" in k), "")
    manifest = client.get_object(Bucket=bucket, Key=f"{prefix}/modelzoo-mirror.json")["Body"].read().decode()
    return {"objects": objects, "manifest": manifest}


def main(plan: str, out: str) -> int:
    import contextlib

    from ray.cluster_utils import Cluster

    from modelzoo.devtools.servers import SeaweedS3

    todo = json.loads(Path(plan).read_text())
    with contextlib.ExitStack() as stack:
        weed = None
        if todo["bucket"]:
            weed = stack.enter_context(SeaweedS3())
            weed.client().create_bucket(Bucket=todo["bucket"])
        started = time.monotonic()
        try:
            # (Ray's raylet gives its agents about 15 s to start, which a machine loaded by other jobs
            # may not give them: "The current node timed out during startup"; run_steps tries again)
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                                        "ray_client_server_port": CLIENT_PORT})
            stack.callback(cluster.shutdown)
            nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
            cluster.wait_for_nodes()
        except Exception as exc:  # noqa: BLE001 - Ray's own, whatever its type
            print(f"raycluster: the cluster did not come up: {exc}", file=sys.stderr)
            return NOT_UP
        up = time.monotonic() - started
        results = [_step(cluster, nodes, {**step, "bucket": todo["bucket"]}, weed) for step in todo["steps"]]
        results[0]["cluster_up_seconds"] = round(up, 1)
        Path(out).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
