"""The stand-in maker's child process: `python -m modelzoo.devtools.standin_child SPEC.json`.

Builds one architecture with the library the descriptor pins (timm or transformers unpacked from
the wheel the real downloader fetched, first on `sys.path`; or the environment's torchvision),
from its own random initialisation (scales that start a residual branch at zero revived: `revive`),
calibrates its BatchNorm statistics on random batches,
saves it in the layout the descriptor's loader reads, and runs it on the inputs the parent wrote,
saving what it returns. A child because timm 0.4.12 and 0.5.4, transformers 4.5.1, 4.8.2 and 4.9.1
cannot share one `sys.modules`. Used only by devtools/zoo_proof.py.

SPEC: {"sys_path": [...], "builder": "module:function", "kwargs": {...}, "layout": one of LAYOUTS,
"checkpoint": path (or a folder for "pretrained"), "config": {...} (transformers), "calibrate":
[[npy, ...], ...] (batches), "inputs": [npy, ...], "outputs": [npy, ...]}.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

LAYOUTS = ("state_dict", "model_key", "convnext_fb", "pretrained")


def build(spec: dict[str, Any]) -> Any:
    """The architecture, randomly initialised by its own code (seed 0)."""
    import torch

    torch.manual_seed(0)
    module, _, name = spec["builder"].partition(":")
    if spec["layout"] == "pretrained":  # transformers: a config object, then the model class on it
        mod = importlib.import_module(module)
        config_class = getattr(mod, spec["config_class"])
        return getattr(mod, name)(config_class(**spec["config"]))
    return getattr(importlib.import_module(module), name)(**spec.get("kwargs", {}))


def revive(net: Any) -> None:
    """Scales the architecture initialises to (nearly) zero so that a residual branch starts silent
    (ConvNeXt's layer scale `gamma` = 1e-6, LeViT's last BatchNorm of a branch = 0) are drawn from
    U(0.1, 0.3) instead: a stand-in whose branches add nothing would prove nothing about them (larger
    scales, such as U(0.5, 1.5), make LeViT ill-conditioned: torch's own float32 result 6e-5 off its
    float64 one)."""
    import torch

    with torch.no_grad():
        for module in net.modules():
            for name, param in module.named_parameters(recurse=False):
                is_scale = name == "gamma" or (name == "weight" and isinstance(
                    module, torch.nn.modules.batchnorm._BatchNorm))
                if is_scale and param.abs().max() <= 1e-5:
                    param.uniform_(0.1, 0.3)


def calibrate(net: Any, batches: list[list[str]]) -> None:
    """BatchNorm statistics as a plain average over the parent's calibration batches (not a
    momentum blend), drawn like the compared input: statistics of another distribution (randn for
    an image the descriptor's mean and scale normalise) leave a random LeViT so ill-conditioned
    that torch's own float32 output is 12 % off its float64 one."""
    import numpy as np
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or not batches:
        return
    net.train()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    with torch.no_grad():
        for batch in batches:
            net(*(torch.from_numpy(np.load(path)) for path in batch))


def convnext_to_fb(state: dict[str, Any]) -> dict[str, Any]:
    """timm 0.5.4's ConvNeXt names -> the original (facebookresearch) checkpoint's names, which is
    what convnext-tiny's file holds and what timm's checkpoint_filter_fn maps back."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^stem\.", "downsample_layers.0.", key)
        key = re.sub(r"^stages\.(\d+)\.downsample\.(\d+)", r"downsample_layers.\1.\2", key)
        key = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)", r"stages.\1.\2", key)
        key = key.replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv")
        key = key.replace("head.fc.", "head.").replace("head.norm.", "norm.")
        out[key] = value
    return out


def save(net: Any, spec: dict[str, Any]) -> None:
    """The checkpoint in the layout the descriptor's loader reads."""
    import torch

    target = Path(spec["checkpoint"])
    target.parent.mkdir(parents=True, exist_ok=True)
    layout = spec["layout"]
    if layout == "pretrained":
        net.save_pretrained(str(target))  # config.json + pytorch_model.bin, as the pinned transformers writes them
        return
    state = net.state_dict()
    if layout == "convnext_fb":
        fb = convnext_to_fb(state)
        back = importlib.import_module("timm.models.convnext").checkpoint_filter_fn({"model": fb}, net)
        if sorted(back) != sorted(state) or any(not torch.equal(back[k], state[k]) for k in state):
            raise SystemExit("convnext_to_fb does not invert timm's checkpoint_filter_fn")
        torch.save({"model": fb}, target)
    elif layout == "model_key":
        torch.save({"model": state}, target)
    elif layout == "state_dict":
        torch.save(state, target)
    else:
        raise SystemExit(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")


def run(net: Any, spec: dict[str, Any]) -> None:
    """The stand-in's outputs on the parent's inputs (in --input-names order), saved as .npy."""
    import numpy as np
    import torch

    inputs = [torch.from_numpy(np.load(p)) for p in spec["inputs"]]
    net.eval()
    with torch.no_grad():
        result = net(*inputs)
    if isinstance(result, torch.Tensor):
        result = (result,)
    elif hasattr(result, "to_tuple"):  # transformers' ModelOutput
        result = result.to_tuple()
    for path, tensor in zip(spec["outputs"], result):
        np.save(path, tensor.numpy())


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sys.path[:0] = spec["sys_path"]
    net = build(spec)
    revive(net)
    calibrate(net, spec["calibrate"])
    net.eval()
    save(net, spec)
    run(net, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
