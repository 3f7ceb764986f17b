"""Ray as one more Executor (``--cluster ray://HOST:PORT | auto``): a pipeline's jobs as Ray tasks,
or, for jobs that are better served by a process that stays (the accuracy tool's picture shards,
which should compile their IR once per worker), by a pool of Ray actors.

What moves through Ray is small: a job's function (by name) and its arguments (options, paths,
a shard's picture paths and ground truth) and what it returns (names that failed, detections).
IR, pictures and caches move through the mirror, S3 or a shared folder and are verified where
they are read, as everywhere else.

Failures are told apart as Ray tells them: a node or worker that is lost (``WorkerCrashedError``,
``ActorDiedError``, ``NodeDiedError``, ``OwnerDiedError``) has its job run again elsewhere, up to
``retries`` times; an application error (``RayTaskError``: the job's own exception) is not retried,
but reported with the job's name. Ray does not survive the loss of its driver: resuming is the
run records' business (store/runs.py).

``import ray`` happens only here, and only when a cluster is asked for; without the extra, one
line names it. May import: nothing of modelzoo but errors and executors (it is ground).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from .errors import ClusterUnreachableError, MissingExtraError, UsageError
from .executors import Job

EXTRA = "pip install 'modelzoo[ray]'"
CONNECT_TIMEOUT = 10.0  # seconds: the address must answer within this (one line otherwise)
RETRIES = 3  # a job whose node is lost runs again up to this many times
# Ray Client: a head that answers but fails to start the session's server (its proxy starts one
# per client; under load, or while a lost driver's job is being cleaned up, that can fail once) is
# asked again this many times, this many seconds apart
SESSION_ATTEMPTS, SESSION_PAUSE = 3, 3.0
_ADDRESS = re.compile(r"ray://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")


def parse_cluster(text: str) -> str:
    """--cluster's value: ``ray://HOST:PORT`` (Ray Client, the head's client port, 10001 by
    default) or ``auto`` (the cluster of ``RAY_ADDRESS``, or the one running on this machine).

    Raises:
        UsageError: anything else.
    """
    text = text.strip()
    match = _ADDRESS.fullmatch(text)
    if text != "auto" and (match is None or not 0 < int(match.group(2)) < 65536):
        raise UsageError(f"expected ray://HOST:PORT or auto (got {text!r})")
    return text


def check_answers(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A ``ray://`` address accepts a TCP connection within ``timeout`` (Ray's own client waits
    minutes before it gives up, and says so in many lines).

    Raises:
        ClusterUnreachableError: no answer in time, or the host has no address.
    """
    match = _ADDRESS.fullmatch(address)
    if match is None:
        return
    host, port = match.group(1).strip("[]"), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        why = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ClusterUnreachableError(f"--cluster {address}: {why} within {timeout:g} s") from None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"--cluster needs Ray: {EXTRA}") from None
    return ray


def _worker_env() -> dict[str, str]:
    """What the workers need of this process's environment: modelzoo importable from the same
    place (a checkout or an installed package; on other machines the path may not exist, which
    is harmless) and modelzoo's own switches (MODELZOO_OFFLINE above all)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k.startswith("MODELZOO_")}
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _call(fn: Any, args: tuple) -> Any:
    return fn(*args)


def _ready() -> bool:
    return True


class _Runner:
    """An actor: a worker process that stays, so what a job keeps per process (a compiled IR)
    serves every job it takes."""

    def call(self, fn: Any, args: tuple) -> Any:
        return fn(*args)


class RayCluster:
    """Runs jobs on a Ray cluster, each asking for ``cpus`` cores; with ``actors``, on a pool of
    actors (one per ``cpus`` cores of the cluster, at most one per job) instead of one task each."""

    def __init__(self, address: str, cpus: int = 1, actors: bool = False, retries: int = RETRIES,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.address, self.cpus, self.actors, self.retries = address, max(1, cpus), actors, retries
        self.connect_timeout = connect_timeout
        self._ray: Any = None

    def connect(self) -> None:
        """Connect once (before the first job, so a bad address is said before any work).

        Raises:
            MissingExtraError: Ray is not installed.
            ClusterUnreachableError: the address does not answer, or Ray refuses to connect.
        """
        if self._ray is not None:
            return
        ray = _import_ray()
        check_answers(self.address, self.connect_timeout)
        try:
            for attempt in range(1, SESSION_ATTEMPTS + 1):
                try:
                    ray.init(address=self.address, runtime_env={"env_vars": _worker_env()}, logging_level="error",
                             log_to_driver=False, ignore_reinit_error=True)
                    break
                except ConnectionAbortedError as exc:  # (Ray Client: the head's server for this session failed)
                    ray.shutdown()
                    if attempt == SESSION_ATTEMPTS:
                        said = [line.strip() for line in str(exc).splitlines() if line.strip()]
                        why = said[0] + (f" ... {said[-1]}" if len(said) > 1 else "")
                        raise ClusterUnreachableError(f"--cluster {self.address}: {why} ({attempt} attempts)") from None
                    time.sleep(SESSION_PAUSE)
        except ValueError as exc:  # Ray's way of saying that Ray Client (ray:// addresses) is not installed
            if "ray[client]" in str(exc):
                raise MissingExtraError(f"--cluster {self.address}: ray:// needs Ray Client: "
                                        "pip install 'ray[client]'") from None
            raise ClusterUnreachableError(f"--cluster {self.address}: {str(exc).strip().splitlines()[0]}") from None
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ClusterUnreachableError(f"--cluster {self.address}: {first}") from None
        self._ray = ray

    def width(self) -> int:
        """How many jobs the cluster runs at once (its cores over ``cpus``)."""
        self.connect()
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)) // self.cpus)

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        self.connect()
        if not jobs:
            return
        yield from (self._on_actors(jobs) if self.actors else self._as_tasks(jobs))

    def _why(self, exc: BaseException) -> tuple[bool, str]:
        """(lost, the line): a lost node or worker is retried, the job's own error is not."""
        exceptions = self._ray.exceptions
        if isinstance(exc, exceptions.RayTaskError):
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            text = str(cause).strip().splitlines()
            return False, f"failed: {type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")
        return True, f"lost ({type(exc).__name__})"

    def _as_tasks(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        ray = self._ray
        # max_calls=1: a fresh worker process per job, as LocalProcesses gives (a conversion's
        # automatic node names count every node the process made before: a reused worker would
        # write other names, so other IR bytes, than a run of that model alone)
        remote = ray.remote(num_cpus=self.cpus, max_retries=self.retries, retry_exceptions=False, max_calls=1)(_call)
        running = {remote.remote(job.fn, job.args): job for job in jobs}
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ref)
            try:
                yield job, ray.get(ref), None
            except ray.exceptions.RayError as exc:
                yield job, None, self._why(exc)[1]

    def _on_actors(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        """Each idle actor takes the next job; an actor becomes idle only once it has started
        (the cluster's count of cores may still include a node just lost, and a job given to an
        actor that cannot be placed would wait for ever). A job whose actor died (its node lost)
        goes back to the queue for a surviving actor (Ray would retry it on the same actor,
        restarted, which may find no room on the nodes left); a new actor is started only when
        none is left."""
        ray = self._ray
        runner = ray.remote(_Runner).options(num_cpus=self.cpus, max_restarts=0)
        starting: dict[Any, Any] = {}  # its first call -> the actor

        def start() -> None:
            actor = runner.remote()
            starting[actor.call.remote(_ready, ())] = actor

        for _ in range(max(1, min(self.width(), len(jobs)))):
            start()
        idle: list[Any] = []
        pending = deque((job, 0) for job in jobs)
        running: dict[Any, tuple[Job, int, Any]] = {}
        while pending or running:
            while idle and pending:
                job, tries = pending.popleft()
                actor = idle.pop()
                running[actor.call.remote(job.fn, job.args)] = (job, tries, actor)
            (ref,), _ = ray.wait(list(running) + list(starting), num_returns=1)
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayError:  # it died before it started: its node was lost
                    if not starting and not running and not idle:
                        start()
                continue
            job, tries, actor = running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                lost, why = self._why(exc)
                if not lost:
                    idle.append(actor)
                    yield job, None, why
                    continue
                if not starting and not running and not idle:
                    start()
                if tries < self.retries:
                    pending.appendleft((job, tries + 1))
                else:
                    yield job, None, f"{why}, {tries + 1} times"
                continue
            idle.append(actor)
            yield job, result, None
