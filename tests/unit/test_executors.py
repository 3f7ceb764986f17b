"""executors.py: the seam where a pipeline's jobs run (this process, local processes, threads)."""

from __future__ import annotations

import operator
import os

from modelzoo.executors import InThisProcess, Job, LocalProcesses, death


def test_in_this_process_runs_each_job_here_in_order():
    jobs = [Job("a", operator.add, (1, 2)), Job("b", os.getpid)]
    assert list(InThisProcess().run(jobs)) == [(jobs[0], 3, None), (jobs[1], os.getpid(), None)]


def test_local_processes_run_each_job_in_a_process_of_its_own():
    jobs = [Job(str(i), os.getpid) for i in range(3)]
    results = {job.name: (pid, lost) for job, pid, lost in LocalProcesses(2).run(jobs)}
    assert sorted(results) == ["0", "1", "2"]
    pids = {pid for pid, lost in results.values()}
    assert len(pids) == 3 and os.getpid() not in pids and all(lost is None for _, lost in results.values())


def test_a_job_whose_process_dies_is_lost_alone():
    jobs = [Job("ok", operator.mul, (6, 7)), Job("crash", os.abort), Job("also ok", operator.neg, (5,))]
    results = {job.name: (value, lost) for job, value, lost in LocalProcesses(2).run(jobs)}
    assert results["ok"] == (42, None) and results["also ok"] == (-5, None)
    assert results["crash"] == (None, "worker process died (killed by SIGABRT)")


def test_a_result_larger_than_a_pipe_comes_back():
    """A job's result is read while its process sends it (a send larger than the pipe's buffer
    blocks until then): 4 MB each from two processes at a time."""
    jobs = [Job(str(i), bytes, (4 << 20,)) for i in range(3)] + [Job("crash", os.abort)]
    results = {job.name: (value, lost) for job, value, lost in LocalProcesses(2).run(jobs)}
    assert all(results[str(i)] == (bytes(4 << 20), None) for i in range(3))
    assert results["crash"] == (None, "worker process died (killed by SIGABRT)")


def test_death_in_words():
    assert death(-9) == "killed by SIGKILL" and death(1) == "exit code 1" and death(-99) == "killed by signal 99"


def test_a_result_larger_than_a_pipe_holds_comes_back():
    """A segmentation shard's masks are megabytes: the driver reads them while the worker sends
    (it waited for the worker to end first, which waited in send(): -j hung)."""
    jobs = [Job(str(i), bytes, (3 << 20,)) for i in range(3)] + [Job("crash", os.abort)]
    results = {job.name: (value, lost) for job, value, lost in LocalProcesses(2).run(jobs)}
    assert all(results[str(i)] == (bytes(3 << 20), None) for i in range(3))
    assert results["crash"] == (None, "worker process died (killed by SIGABRT)")
