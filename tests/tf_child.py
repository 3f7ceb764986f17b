"""Keras work for tests/test_tf_proof*.py in a process of its own.

TensorFlow's eager mode cannot be turned back on once off, and the retinanet reference graph
(modelzoo/reference/retinanet.py, built in-process by the converter tests) turns it off for the
whole process with TF1 control flow. Keras 3 needs eager mode, so the stand-in proofs make their
Keras models in a child process: `call(function, **kwargs)` runs one function of this module
there and returns what it returned (JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def call(function: str, timeout: float = 1800, **kwargs: object) -> object:
    """Run `function(**kwargs)` of this module in a fresh interpreter; its JSON result."""
    code = ("import json, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import tf_child; "
            "result = getattr(tf_child, sys.argv[3])(**json.loads(sys.argv[4])); "
            "print('\\n' + json.dumps(result))")
    args = [sys.executable, "-c", code, str(HERE), str(HERE.parent / "tools"), function,
            json.dumps(kwargs, default=str)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{function} failed in its child process:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def prove_many(names: list[str], models_dir: str, work: str, kept: str) -> dict[str, float]:
    """tf_standins.prove_many with the frozen-graph stand-ins stored in `kept`; model -> error."""
    from modelzoo.devtools import tf_standins

    def keep(s: tf_standins.StandIn) -> None:
        if tf_standins.RECIPES[s.name].kind == "frozen_pb":
            tf_standins.store(s, Path(kept))

    found = tf_standins.prove_many(list(names), Path(models_dir), Path(work), keep=keep)
    return {p.model: p.error for p in found}


def store_stand_ins(names: list[str], models_dir: str, work: str, folder: str) -> None:
    """The frozen-graph stand-ins made and stored for the newest-OpenVINO run."""
    from modelzoo.devtools import tf_standins

    for name in names:
        tf_standins.store(tf_standins.make_stand_in(name, Path(models_dir), Path(work)), Path(folder))


def wnet_stand_in(module: str, weights: str, x: str, expected: str) -> None:
    """hybrid-cs-model-mri's stand-in W-net (the module as the download rewrites it): random
    weights saved as the descriptor's HDF5, and Keras's output on the picture `x` (.npy)."""
    import importlib.util

    import numpy as np

    from modelzoo.devtools import tf_standins

    spec = importlib.util.spec_from_file_location("stand_in_frequency_spatial_network", module)
    network = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(network)
    model = network.wnet(0.1, 2.0, 0.3, 4.0, kshape=(5, 5), kshape2=(3, 3))
    tf_standins.stand_in_weights(model, Path(weights))
    again = network.wnet(0.1, 2.0, 0.3, 4.0, kshape=(5, 5), kshape2=(3, 3))
    again.load_weights(weights)
    np.save(expected, np.asarray(again(np.load(x))))
