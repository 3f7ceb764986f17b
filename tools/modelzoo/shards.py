"""Static shards: shard K of N takes a deterministic part of a run's work, so that any scheduler
that hands each process an index (a Kubernetes Indexed Job, a Slurm array, a CI matrix) can
spread a zoo's conversion, quantization, sync or accuracy check over machines with no
coordinator: every process computes the same split from the same sorted list.

Shard K of N takes items K, K+N, K+2N, ... of the sorted items (round robin: neighbours in name
order, often of one size, land in different shards)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, TypeVar

from .errors import UsageError

T = TypeVar("T")

MAX_SHARDS = 1_000_000

# What --shard auto reads, in this order (the first that is set wins):
#   MODELZOO_SHARD=K/N                              (any scheduler: set it yourself)
#   JOB_COMPLETION_INDEX=K  with auto/N             (Kubernetes Indexed Job: the count is not given)
#   SLURM_ARRAY_TASK_ID=K, SLURM_ARRAY_TASK_COUNT=N (a Slurm array; SLURM_ARRAY_TASK_MIN is subtracted)
ENVIRONMENT = ("MODELZOO_SHARD", "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")

_PAIR = re.compile(r"([0-9]{1,7})/([0-9]{1,7})")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: Iterable[T], key=None) -> list[T]:
        """This shard's part of ``items``, sorted (by ``key``) first so that every shard sees the
        same order whatever order it was given."""
        ordered = sorted(items, key=key) if key is not None else sorted(items)  # type: ignore[type-var]
        return ordered[self.index::self.count]


def _pair(text: str, where: str = "") -> Shard:
    match = _PAIR.fullmatch(text.strip())
    problem = f"expected K/N with 0 <= K < N (got {text!r})"
    if match is None or not 0 <= int(match.group(1)) < int(match.group(2)) <= MAX_SHARDS:
        raise UsageError(f"{where}: {problem}" if where else problem)
    return Shard(int(match.group(1)), int(match.group(2)))


def _count(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,7}", text.strip()) or not 0 < int(text) <= MAX_SHARDS:
        raise UsageError(f"auto/N: expected a positive shard count (got {text!r})")
    return int(text)


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> Shard:
    """``K/N``, ``auto`` or ``auto/N`` (read from ENVIRONMENT; ``auto/N`` gives the count a
    Kubernetes Indexed Job does not). Bad input is a UsageError naming what was wrong.

    Raises:
        UsageError: not K/N with 0 <= K < N, or auto with no variable (or count) to read.
    """
    env = os.environ if environ is None else environ
    text = text.strip()
    if not (text == "auto" or text.startswith("auto/")):
        return _pair(text)
    count = _count(text[len("auto/"):]) if text != "auto" else None
    if env.get("MODELZOO_SHARD"):
        shard = _pair(env["MODELZOO_SHARD"], "MODELZOO_SHARD")
        if count is not None and count != shard.count:
            raise UsageError(f"{text}: MODELZOO_SHARD={env['MODELZOO_SHARD']} says {shard.count} shards")
        return shard
    if env.get("JOB_COMPLETION_INDEX"):
        if count is None:
            raise UsageError("auto: JOB_COMPLETION_INDEX gives no shard count; "
                             "give it as --shard auto/N (N: the Job's completions)")
        return _pair(f"{env['JOB_COMPLETION_INDEX']}/{count}", "JOB_COMPLETION_INDEX")
    if env.get("SLURM_ARRAY_TASK_ID"):
        first = env.get("SLURM_ARRAY_TASK_MIN", "0")
        total = env.get("SLURM_ARRAY_TASK_COUNT") or (str(count) if count is not None else "")
        if not total:
            raise UsageError("auto: SLURM_ARRAY_TASK_COUNT is not set; give --shard auto/N")
        try:
            index = int(env["SLURM_ARRAY_TASK_ID"]) - int(first)
        except ValueError:
            raise UsageError(f"auto: SLURM_ARRAY_TASK_ID={env['SLURM_ARRAY_TASK_ID']!r} "
                             f"(SLURM_ARRAY_TASK_MIN={first!r}) is not a number") from None
        shard = _pair(f"{index}/{total}", "SLURM_ARRAY_TASK_ID")
        if count is not None and count != shard.count:
            raise UsageError(f"{text}: SLURM_ARRAY_TASK_COUNT={total} says {shard.count} shards")
        return shard
    raise UsageError(f"{text}: none of {', '.join(ENVIRONMENT)} is set")


def too_many(shard: Shard, total: int, what: str) -> str | None:
    """The warning when there are fewer items than shards (some shards then get nothing: allowed,
    so that a fixed array of N processes runs on a smaller zoo), else None."""
    if shard.count > total:
        return (f"--shard {shard}: {shard.count} shards for {total} {what}; "
                f"{'this shard gets' if shard.index >= total else 'some shards get'} nothing")
    return None


def split(items: Sequence[T], count: int, key=None) -> list[list[T]]:
    """Every shard's part, as ``Shard(k, count).take`` gives it (the merge's and the tests' view)."""
    return [Shard(k, count).take(items, key) for k in range(count)]
