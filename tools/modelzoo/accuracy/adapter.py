"""From the network's output to predictions: one function per adapter type of accuracy-check.yml,
looked up in ADAPTERS (a new task's adapter is a function here and an entry there, its options
in config.ADAPTERS). Today: `classification` (class scores) and accuracy_check's `ssd`
(DetectionOutput's [1, 1, N, 7] rows
[image_id, label, conf, x_min, y_min, x_max, y_max], boxes normalised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass
class Detections:
    """One image's detections: labels [N], scores [N], boxes [N, 4] (x_min, y_min, x_max, y_max)."""

    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    def take(self, keep: np.ndarray) -> "Detections":
        return Detections(self.labels[keep], self.scores[keep], self.boxes[keep])


def ssd(output: np.ndarray, batch_index: int = 0) -> Detections:
    """Rows up to the first image_id -1 (the end marker), those of this batch index."""
    rows = np.asarray(output, dtype=np.float64).reshape(-1, 7)
    ends = np.flatnonzero(rows[:, 0] == -1)
    rows = rows[: ends[0] if ends.size else len(rows)]
    rows = rows[rows[:, 0] == batch_index]
    return Detections(rows[:, 1].astype(int), rows[:, 2].copy(), rows[:, 3:7].copy())


@dataclass
class Classes:
    """One picture's class scores [C] (the network's output as it is: the checker applies no
    softmax unless asked), or with argmax_output the one label the network computed."""

    scores: np.ndarray | None = None
    label: int | None = None

    def top_k(self, k: int) -> np.ndarray:
        """The k labels of highest score (in no particular order), as the checker takes them."""
        if self.scores is None:
            return np.full(k, self.label)
        k = min(k, self.scores.size)
        return np.argpartition(self.scores, -k)[-k:]


def classification(output: np.ndarray, argmax_output: bool = False, block: bool = False) -> Classes:
    """The checker's `classification`: the output flattened to one row of scores per picture;
    `argmax_output` when the network's output is the label itself; `block` (the whole batch as
    one prediction) is the same thing at batch 1, the only batch this tool runs."""
    row = np.asarray(output).reshape(-1)
    if argmax_output:
        return Classes(label=int(row[0]))
    return Classes(scores=row.astype(np.float64))


Adapter = Callable[..., Any]
"""adapter(the network's first output, **the adapter's options) -> the picture's predictions."""

ADAPTERS: dict[str, Adapter] = {"ssd": ssd, "classification": classification}
