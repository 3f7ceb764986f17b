"""From the network's output to predictions: one function per adapter type of accuracy-check.yml,
looked up in ADAPTERS (a new task's adapter is a function here and an entry there, its options
in config.ADAPTERS). Today: accuracy_check's `ssd` (DetectionOutput's [1, 1, N, 7] rows
[image_id, label, conf, x_min, y_min, x_max, y_max], boxes normalised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


Adapter = Callable[[np.ndarray], Detections]
"""adapter(the network's first output) -> the picture's predictions."""

ADAPTERS: dict[str, Adapter] = {"ssd": ssd}
