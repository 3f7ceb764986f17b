"""The facts tests/test_stages_yolo.py takes from Open Model Zoo, checked against the zoo itself.

Runs in the first environment only (openvino-dev 2024.6 brings `omz_tools/models` and mo's own
configs); the newest-OpenVINO environment runs tests/test_stages_yolo.py without them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml
from stages_yolo_reference import CASES, DESCRIPTORS, OUTPUT_NAMES

from modelzoo.convert.stages import yolo


def omz_models() -> Path:
    spec = importlib.util.find_spec("omz_tools")
    assert spec is not None, "this test runs where openvino-dev 2024.6 (omz_tools) is installed"
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def test_the_descriptors_are_the_zoos():
    """The mo arguments the stage tests convert with are each model's own."""
    for model, (args, _, _) in DESCRIPTORS.items():
        doc = yaml.safe_load((omz_models() / "public" / model / "model.yml").read_text())
        assert doc["model_optimizer_args"] == args, model


def test_the_v3_output_names_and_masks_are_what_accuracy_check_reads():
    """The openvino launcher of each v3/v4 model's accuracy-check.yml reads exactly the outputs
    the stage names, with the masks of the config the synthetic graph carries."""
    for model in ("yolo-v3-tf", "yolo-v3-tiny-tf", "mobilenet-yolo-v4-syg"):
        doc = yaml.safe_load((omz_models() / "public" / model / "accuracy-check.yml").read_text())
        launcher = next(la for m in doc["models"] for la in m["launchers"] if la["framework"] == "openvino")
        assert launcher["adapter"]["outputs"] == OUTPUT_NAMES[model]
        assert launcher["adapter"]["anchor_masks"] == CASES[model].config["custom_attributes"]["masks"]


def test_the_stage_carries_mos_own_yolo_configs():
    """yolo.MO_CONFIGS (the ovc backend has no mo folder) is mo 2024.6's files, attribute for attribute."""
    mo_ext = omz_models().parents[1] / "openvino" / "tools" / "mo"
    for rel, attributes in yolo.MO_CONFIGS.items():
        config, = json.loads((mo_ext / rel).read_text())
        assert config["id"] == "TFYOLO" and config["custom_attributes"] == attributes, rel
