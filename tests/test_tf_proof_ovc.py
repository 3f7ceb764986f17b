"""The TensorFlow stand-ins that need no pre-convert.py (the TF-Slim releases' frozen graphs, built
from Keras applications by devtools/tf_standins.py), downloaded and converted through the real
command lines by whatever OpenVINO this environment has: CI runs it again in the second
environment (the newest OpenVINO, no TensorFlow) on the stand-ins and Keras's outputs that the
first environment's tests/test_tf_proof.py kept in $MODELZOO_OVC_REFERENCE (ovc_reference.py)."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import tf_child
from ovc_reference import _require, can_prepare, reference_dir

from modelzoo.devtools import tf_standins

STORED = "tf-standins"
OVC_MODELS = tuple(n for n in tf_standins.TF_MODELS if tf_standins.RECIPES[n].kind == "frozen_pb")


def stored() -> Path:
    """The kept stand-ins; made here when this environment can and test_tf_proof.py has not."""
    folder = reference_dir() / STORED
    missing = [n for n in OVC_MODELS if not (folder / n / "expected.npz").exists()]
    if missing and can_prepare():
        spec = importlib.util.find_spec("omz_tools")
        models = Path(list(spec.submodule_search_locations)[0]) / "models"
        work = Path(tempfile.mkdtemp(prefix="tf-standins-"))
        try:
            tf_child.call("store_stand_ins", names=missing, models_dir=models, work=work, folder=folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for name in OVC_MODELS:
        _require(folder / name / "expected.npz")
    return folder


def test_this_openvino_converts_the_slim_stand_ins_as_tensorflow_computes_them(tmp_path):
    folder = stored()
    stand_ins = [tf_standins.load(folder, name) for name in OVC_MODELS]
    proofs = tf_standins.prove_stand_ins(stand_ins, folder, tmp_path)
    assert [p.model for p in proofs] == list(OVC_MODELS)
    for proof in proofs:
        assert proof.error <= 1e-4, f"{proof.model}: relative error {proof.error:.2e}"
