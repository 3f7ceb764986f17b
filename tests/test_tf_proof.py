"""Open Model Zoo's TensorFlow models converted end to end against stand-ins (devtools/tf_standins.py):
Keras applications and TF-Slim frozen graphs built here with random weights, served from the
loopback server under the descriptors' own file names, downloaded and converted (`--backend ovc`,
the pre-convert scripts included) through the real command lines, the IR compared with Keras.
Runs in the first environment (TensorFlow 2.17.1 with Keras 3, OpenVINO 2024.6)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml
from conftest import REPO

import tf_child
from ovc_reference import reference_dir

from modelzoo.devtools import tf_standins

STORED = "tf-standins"  # in $MODELZOO_OVC_REFERENCE

KERAS3_PRE_CONVERTS = ("mobilenet-v3-large-1.0-224-tf", "mobilenet-v3-small-1.0-224-tf", "hybrid-cs-model-mri")
OUR_COPIES = (*KERAS3_PRE_CONVERTS, "googlenet-v1-tf", "googlenet-v2-tf", "googlenet-v4-tf")
SLOW = ("densenet-121-tf",)  # ~50 s here (its pre-convert works as published); CI's 3 minutes go to the others
CI_MODELS = tuple(n for n in tf_standins.TF_MODELS if n not in SLOW)


def omz_models() -> Path:
    spec = importlib.util.find_spec("omz_tools")
    assert spec is not None, "needs openvino-dev's omz_tools (the [mo] extra): its descriptors are the zoo proven"
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@pytest.fixture(scope="module")
def proofs(tmp_path_factory):
    """Every CI_MODELS model proven once: one loopback server, one download, a conversion each
    (Keras in a child process: tests/tf_child.py)."""
    work = tmp_path_factory.mktemp("tf-proof")
    kept = reference_dir() / STORED  # the frozen graphs and Keras's outputs, for test_tf_proof_ovc.py
    errors = tf_child.call("prove_many", names=list(CI_MODELS), models_dir=omz_models(), work=work, kept=kept)
    return work, errors


@pytest.mark.parametrize("name", CI_MODELS)
def test_the_ir_of_a_stand_in_matches_the_framework(proofs, name):
    _, errors = proofs
    assert errors[name] <= 1e-4, f"{name}: relative error {errors[name]:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_the_ir_of_a_slow_stand_in_matches_keras(tmp_path, name):
    proof = tf_standins.prove_tf(name, omz_models(), tmp_path)
    assert proof.error <= 1e-4, f"{name}: relative error {proof.error:.2e}"


def test_the_pre_converts_that_ran_were_the_bundled_copies(proofs):
    """mobilenet-v3-*-tf's SavedModels and googlenet-v1-tf's frozen graph (which only a
    pre-convert.py writes) came from our copies: Open Model Zoo's fail on TensorFlow 2.17."""
    work, found = proofs
    for name in (*KERAS3_PRE_CONVERTS[:2], "googlenet-v1-tf"):
        assert name in found
        used = (work / "zoo" / "public" / name / "pre-convert.py").read_bytes()
        assert used == (REPO / "models" / "public" / name / "pre-convert.py").read_bytes()


@pytest.mark.parametrize("name", OUR_COPIES)
def test_our_copies_download_the_zoos_files_and_convert_them_the_same_way(name):
    """Only pre-convert.py differs: the files (names, sizes, SHA-384, sources) and the Model
    Optimizer arguments are Open Model Zoo's."""
    ours = yaml.safe_load((REPO / "models" / "public" / name / "model.yml").read_text())
    theirs = yaml.safe_load((omz_models() / "public" / name / "model.yml").read_text())
    assert ours == theirs
    assert (REPO / "models" / "public" / name / "pre-convert.py").read_bytes() != \
        (omz_models() / "public" / name / "pre-convert.py").read_bytes()


def test_a_model_without_a_recipe_is_refused_by_name(tmp_path):
    with pytest.raises(tf_standins.StandInError, match="resnet-50-tf: no stand-in recipe"):
        tf_standins.make_stand_in("resnet-50-tf", omz_models(), tmp_path)
    assert not os.listdir(tmp_path)


# hybrid-cs-model-mri's network comes as upstream code (frequency_spatial_network.py), which is
# not here: a W-net of our own in its interface (`wnet(mu1, sigma1, mu2, sigma2, ..., kshape,
# kshape2)`, an unnamed 256x256x2 input, Keras 2 imports and `K.tf.ifft2d` for the descriptor's
# regex_replace steps to rewrite) proves the pre-convert script and the steps, not the network.
STAND_IN_WNET = '''\
import numpy as np
import keras
from keras import backend as K
from keras.models import Model
from keras.layers import Input, Conv2D, Lambda, Add


def ifft_layer(kspace):
    spectrum = K.tf.complex(kspace[:, :, :, 0], kspace[:, :, :, 1])
    return K.tf.expand_dims(K.tf.abs(K.tf.ifft2d(spectrum)), -1)


def wnet(mu1, sigma1, mu2, sigma2, H=256, W=256, channels=2, kshape=(3, 3), kshape2=(3, 3)):
    inputs = Input(shape=(H, W, channels))
    x = Lambda(lambda t: (t - mu1) / sigma1)(inputs)
    k = Conv2D(8, kshape, padding="same", activation="relu")(x)
    k = Add()([Conv2D(2, kshape, padding="same")(k), inputs])
    y = Lambda(lambda t: (t - mu2) / sigma2)(Lambda(ifft_layer)(k))
    y = Conv2D(8, kshape2, padding="same", activation="relu")(y)
    return Model(inputs=inputs, outputs=Conv2D(1, kshape2, padding="same")(y))
'''


def _rewrite(text: str, descriptor: dict, file: str) -> str:
    """The descriptor's own regex_replace steps for `file`, applied to `text`."""
    import re

    for step in descriptor.get("postprocessing", []):
        if step["$type"] == "regex_replace" and step["file"] == file:
            text = re.sub(step["pattern"], step["replacement"], text, count=step.get("count", 0))
    return text


def test_hybrid_cs_model_mri_pre_converts_on_keras3(tmp_path):
    """Our pre-convert.py on Keras 3, after the descriptor's own regex_replace steps, writes the
    SavedModel whose input is `input_1`; the IR matches Keras."""
    import numpy as np
    from conftest import LoopbackServer, run_tool, sha384

    name = "hybrid-cs-model-mri"
    serve = tmp_path / "serve"
    serve.mkdir()
    (serve / "frequency_spatial_network.py").write_text(STAND_IN_WNET)
    np.save(serve / "stats_fs_unet_norm_20.npy", np.array([0.1, 2.0, 0.3, 4.0]))
    np.save(serve / "sampling_mask_20perc.npy", np.ones((256, 256), dtype=bool))
    descriptor = yaml.safe_load((REPO / "models" / "public" / name / "model.yml").read_text())
    rewritten = tmp_path / "rewritten" / "frequency_spatial_network.py"  # the module as the download will be
    rewritten.parent.mkdir()
    rewritten.write_text(_rewrite(STAND_IN_WNET, descriptor, "frequency_spatial_network.py"))
    x = np.random.default_rng(0).normal(size=(1, 256, 256, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    tf_child.call("wnet_stand_in", module=rewritten, weights=serve / "wnet_20.hdf5", x=tmp_path / "x.npy",
                  expected=tmp_path / "expected.npy")
    zoo = tmp_path / "zoo" / "public" / name
    zoo.mkdir(parents=True)
    (zoo / "pre-convert.py").write_bytes((REPO / "models" / "public" / name / "pre-convert.py").read_bytes())
    with LoopbackServer() as server:
        for entry in descriptor["files"]:
            data = (serve / entry["name"]).read_bytes()
            entry.update(size=len(data), checksum=sha384(data), source=server.add(f"/{entry['name']}", data))
        (zoo / "model.yml").write_text(yaml.safe_dump(descriptor, sort_keys=False))
        result = run_tool("downloader", "--models_dir", tmp_path / "zoo", "--name", name, "-o", tmp_path / "dl")
        assert result.returncode == 0, result.stderr
    result = run_tool("converter", "--models_dir", tmp_path / "zoo", "--name", name, "-d", tmp_path / "dl",
                      "-o", tmp_path / "ir", "--backend", "ovc", "--precisions", "FP32", "--allow_zoo_code",
                      timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dl" / "public" / name / "frequency_spatial_network.py").read_text() == rewritten.read_text()
    tf_standins.disable_telemetry()
    import openvino as ov

    compiled = ov.Core().compile_model(str(tmp_path / "ir" / "public" / name / "FP32" / f"{name}.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    assert compiled.input(0).get_names() >= {"input_1"}
    expected = np.load(tmp_path / "expected.npy")
    assert np.abs(compiled(x)[0] - expected).max() / np.abs(expected).max() <= 1e-4
