"""Where a pipeline's jobs run: the one seam between the pipelines and the machines.

A pipeline describes its work as jobs (a module-level function and its arguments, so that the
job can be sent to another process, or another machine, by name) and hands them to an Executor,
which says what each job returned or why it returned nothing (its process died, its node was
lost). Today's executors are threads for I/O (``Pool``: downloads, mirror syncs, IR fetches),
this process (``InThisProcess``) and local processes (``LocalProcesses``: conversions, whose
native code may crash or be killed by the kernel, and must take only its own model with it); a
cluster engine is one more Executor.

May import: nothing of modelzoo but errors (it is ground: every pipeline imports it).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator, NamedTuple, Protocol

from .errors import Interrupted

CANCEL_GRACE = 0.8  # seconds the workers get to notice Ctrl-C before we clean up without them


class Job(NamedTuple):
    """One unit of a pipeline's work: ``fn(*args)``, named for the line that says it was lost."""

    name: str
    fn: Callable[..., Any]  # module-level, so that another process imports it by name
    args: tuple = ()


class Executor(Protocol):
    """Runs independent jobs, as many at a time as it has room for."""

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        """Yields (job, what fn returned, None) as jobs end, or (job, None, why) for a job that
        gave no result ('worker process died (killed by SIGKILL)', a node lost): the pipeline
        reports it as a failure of that job's models and goes on with the others."""
        ...


class InThisProcess:
    """Each job in turn, here: for one job at a time, and for tests."""

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        for job in jobs:
            yield job, job.fn(*job.args), None


class JobBar:
    """One bar for a run's jobs, done / total (on a terminal, on stderr; nothing in a log), and the
    line that ends it: how many jobs ended and, by name, those that failed. The converter's, the
    quantizer's and sync --ir's executor runs share it, so a run on a cluster reads as one run.
    ``say`` takes the last line (text), ``emit`` the events (``job_end`` for each job, ``jobs_end``
    at the end: a script's view, through --progress_format json where the command has it)."""

    def __init__(self, total: int, what: str, say: Callable[[str], None],
                 emit: Callable[..., None] | None = None) -> None:
        from tqdm import tqdm

        self.total, self.what, self.say, self.emit = total, what, say, emit
        self.done, self.failed = 0, []  # type: int, list[str]
        self._bar = tqdm(total=total, desc=what, unit="job", disable=None, file=sys.stderr, leave=False)

    def update(self, name: str, ok: bool) -> None:
        self.done += 1
        if not ok:
            self.failed.append(name)
        self._bar.update(1)
        if self.emit is not None:
            self.emit("job_end", job=name, successful=ok, done=self.done, total=self.total)

    def __enter__(self) -> "JobBar":
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        self._bar.close()
        if kind is not None:  # (Ctrl-C, a bug: the run's own line says what happened)
            return
        failed = f"{len(self.failed)} failed: {', '.join(self.failed)}" if self.failed else "none failed"
        self.say(f"{self.what}: {self.done} of {self.total} jobs ended, {failed}")
        if self.emit is not None:
            self.emit("jobs_end", done=self.done, total=self.total, failed=list(self.failed))


def _child(fn: Callable[..., Any], args: tuple, conn: Any) -> None:
    conn.send(fn(*args))
    conn.close()


def death(exitcode: int | None) -> str:
    """How a worker process ended, in words: 'killed by SIGKILL', 'exit code 1'."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class LocalProcesses:
    """One fresh process per job (``spawn``: nothing inherited but the arguments), up to ``jobs``
    at a time. A process that dies (killed, crashed in native code) loses only its job."""

    def __init__(self, jobs: int, start_method: str = "spawn") -> None:
        self.jobs = max(1, jobs)
        self.start_method = start_method

    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Any, str | None]]:
        import multiprocessing
        from multiprocessing.connection import wait

        ctx = multiprocessing.get_context(self.start_method)
        pending, running = list(jobs), []
        # what each running job's process sent, read as soon as it comes: a child's send blocks
        # until the pipe is read (a result larger than the pipe's buffer, 64 KiB on Linux), so
        # waiting for the process to end first would wait for ever
        received: dict[int, tuple[bool, Any]] = {}
        while pending or running:
            while pending and len(running) < self.jobs:
                job = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_child, args=(job.fn, job.args, send), daemon=True, name=job.name)
                process.start()
                send.close()
                running.append((process, receive, job))
            wait([p.sentinel for p, _, _ in running] + [r for _, r, _ in running if id(r) not in received])
            for process, receive, job in running:
                if id(receive) not in received and receive.poll():
                    try:
                        received[id(receive)] = (True, receive.recv())
                    except (EOFError, OSError):  # (it ended without sending: died)
                        received[id(receive)] = (False, None)
            for item in [r for r in running if not r[0].is_alive()]:
                process, receive, job = item
                running.remove(item)
                got, result = received.pop(id(receive), (False, None))
                if not got:
                    try:
                        got, result = (True, receive.recv()) if receive.poll() else (False, None)
                    except (EOFError, OSError):
                        got, result = False, None
                receive.close()
                process.join()
                yield (job, result, None) if got else (job, None, f"worker process died ({death(process.exitcode)})")


class Pool:
    """Runs ``work`` on each item in worker threads; ``run`` returns the items whose work
    returned False, in input order.

    It starts as many workers as there are CPUs (at most ``jobs``) and another one, up to
    ``jobs``, each time a worker is about to wait on the network (``grow``): a warm run is
    CPU-bound, where more threads than cores only fight over the GIL (8 threads took 0.14 s
    for 200 cached files, 2 threads 0.03 s), while downloads overlap as ``-j`` asks. With
    ``eager`` all ``jobs`` start at once (the mirror's work waits on the network from the start).

    The workers are daemon threads, each saying when it is done through an Event: the
    interpreter joins a ThreadPoolExecutor's threads at exit, so a worker blocked on a silent
    server would keep the process alive after Ctrl-C until its read timed out. Ctrl-C sets
    ``cancel``, gives the workers ``grace`` seconds to stop, calls ``on_cancel`` (which cleans
    up and says how) and raises Interrupted; a second Ctrl-C or a SIGTERM during that cleanup
    does not cut it short.
    """

    def __init__(self, jobs: int, cancel: threading.Event, grace: float = CANCEL_GRACE, eager: bool = False) -> None:
        self.jobs = jobs
        self.cancel = cancel
        self.grace = grace
        self.eager = eager
        self._lock = threading.Lock()
        self._pending: queue.Queue = queue.Queue()
        self._dones: list[threading.Event] = []
        self._failed: list = []
        self._work: Callable[[object], bool] = lambda item: True

    def grow(self) -> None:
        """A worker is about to wait on the network: let another one use the CPU meanwhile."""
        with self._lock:
            if len(self._dones) < self.jobs and not self._pending.empty():
                self._start()

    def _start(self) -> None:
        # Each worker says when it is done through an Event: an interrupted Thread.join (Python
        # 3.11) marks a running thread as finished, which would cut the grace period short.
        done = threading.Event()
        self._dones.append(done)
        threading.Thread(target=self._worker, args=(done,), daemon=True, name=f"job-{len(self._dones)}").start()

    def _worker(self, done: threading.Event) -> None:
        try:
            while not self.cancel.is_set():
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    ok = self._work(item)
                except Interrupted:
                    return
                except Exception:  # noqa: BLE001 - a bug must not lose this item or the rest of the queue
                    ok = False
                if not ok:
                    with self._lock:
                        self._failed.append(item)
        finally:
            done.set()

    def run(self, items: list, work: Callable[[object], bool], on_cancel: Callable[[], str]) -> list:
        self._work = work
        for item in items:
            self._pending.put(item)
        with self._lock:
            for _ in range(max(1, min(self.jobs, len(items), self.jobs if self.eager else os.cpu_count() or 1))):
                self._start()
        try:
            while True:
                with self._lock:
                    waiting = [d for d in self._dones if not d.is_set()]
                if not waiting:
                    break
                waiting[0].wait(0.1)
        except KeyboardInterrupt:
            self.cancel.set()
            with _signals_ignored():
                deadline = time.monotonic() + self.grace
                with self._lock:
                    dones = list(self._dones)
                for done in dones:
                    done.wait(max(0.0, deadline - time.monotonic()))
                message = on_cancel()
            raise Interrupted(message) from None
        order = {id(item): i for i, item in enumerate(items)}
        return sorted(self._failed, key=lambda item: order[id(item)])


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while we clean up (only the main thread can set handlers)."""
    saved = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect from
        pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
