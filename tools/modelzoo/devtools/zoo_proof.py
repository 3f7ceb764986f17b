"""Stand-in proof: convert Open Model Zoo's PyTorch models end to end without their real files.

For a model whose architecture torchvision builds, `prove(...)` makes a stand-in checkpoint (the
architecture's own random initialisation, BatchNorm statistics calibrated on random batches,
saved as the `state_dict` that the descriptor's loader reads), writes a copy of the descriptor
whose file entry has the stand-in's size and SHA-384 and a loopback URL, serves the file under
the descriptor's own name from the loopback server, downloads it with the real downloader,
converts it with the real converter (`--backend ovc`), and compares the IR with torch on the same
input (the descriptor's mean/scale/channel order applied on the torch side, as the IR does
inside). It returns the relative error max|IR - torch| / max|torch|.

`python -m modelzoo.devtools.zoo_proof --models_dir OMZ_MODELS [NAMES...]` proves the named
(default: every torchvision) model and prints a line per model. Needs torch and torchvision
(`[pytorch]`) and OpenVINO (`[convert]`).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parents[2] / "downloader"


@dataclass
class Proof:
    model: str
    error: float  # max|IR - torch| / max|torch|
    seconds: float  # download + conversion through the command line


def torchvision_models(models_dir: Path) -> list[str]:
    """The descriptors whose conversion builds a torchvision architecture."""
    import yaml

    names = []
    for yml in sorted(models_dir.glob("*/*/model.yml")):
        data = yaml.safe_load(yml.read_text())
        args = data.get("conversion_to_onnx_args") or []
        if "--import-module=torchvision.models" in args:
            names.append(yml.parent.name)
    return names


def _arg(args: list[str], prefix: str) -> str:
    for a in args:
        if a.startswith(prefix):
            return a.partition("=")[2]
    raise KeyError(prefix)


def stand_in(model_name: str, shape: list[int], seed: int = 0) -> Any:
    """torchvision's `model_name`, randomly initialised, BatchNorm statistics calibrated on random batches."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    kwargs = {"init_weights": True} if model_name == "inception_v3" else {}
    net = getattr(torchvision.models, model_name)(**kwargs)
    net.train()
    for m in net.modules():  # a running average over the calibration batches, not a momentum blend
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn([2, *shape[1:]]))
    return net.eval()


def _mo_values(args: list[str], flag: str) -> list[float] | None:
    for a in args:
        if a.startswith(flag + "="):
            m = re.search(r"\[([^\]]*)\]", a)
            return [float(v) for v in m.group(1).split(",")] if m else None
    return None


def prove(name: str, models_dir: Path, work: Path, python: str = sys.executable, timeout: float = 900) -> Proof:
    """Convert one model against a stand-in through the real command lines; the IR's relative error."""
    import numpy as np
    import openvino as ov
    import torch
    import yaml

    from .loopback import LoopbackServer

    source = next(models_dir.glob(f"*/{name}/model.yml"))
    data = yaml.safe_load(source.read_text())
    onnx_args = data["conversion_to_onnx_args"]
    model_name = _arg(onnx_args, "--model-name")
    weights_name = Path(_arg(onnx_args, "--weights")).name
    shape = list(data["input_info"][0]["shape"])
    net = stand_in(model_name, shape)
    zoo = work / "zoo"
    folder = zoo / source.parent.relative_to(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    blob = work / "serve" / weights_name
    blob.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), blob)
    content = blob.read_bytes()
    with LoopbackServer() as server:
        url = server.add(f"/{name}/{weights_name}", blob)
        data["files"] = [{"name": weights_name, "size": len(content),
                          "checksum": hashlib.sha384(content).hexdigest(), "source": url}]
        (folder / "model.yml").write_text(yaml.safe_dump(data, sort_keys=False))
        started = time.monotonic()
        _run(python, "downloader", "--models_dir", zoo, "--name", name, "-o", work / "dl", timeout=timeout)
    _run(python, "converter", "--models_dir", zoo, "--name", name, "-d", work / "dl", "-o", work / "ir",
         "--backend", "ovc", "--precisions", "FP32", "--log", work / "export.log", "--allow_zoo_code", timeout=timeout)
    seconds = time.monotonic() - started
    xml = work / "ir" / folder.relative_to(zoo) / "FP32" / f"{name}.xml"
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rng = np.random.default_rng(1)
    bgr = rng.uniform(0, 255, shape).astype(np.float32)  # what the IR takes (--reverse_input_channels)
    mo_args = data.get("model_optimizer_args", [])
    rgb = bgr[:, ::-1] if "--reverse_input_channels" in mo_args else bgr
    mean = np.float32(_mo_values(mo_args, "--mean_values") or [0.0]).reshape(1, -1, 1, 1)
    scale = np.float32(_mo_values(mo_args, "--scale_values") or [1.0]).reshape(1, -1, 1, 1)
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray((rgb - mean) / scale))).numpy()
    got = compiled(bgr)[0]
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    return Proof(name, error, seconds)


def _run(python: str, tool: str, *args: Any, timeout: float) -> None:
    result = subprocess.run([python, str(SCRIPTS / f"{tool}.py"), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=Path, required=True, help="Open Model Zoo's models folder")
    parser.add_argument("names", nargs="*", help="models to prove (default: every torchvision model)")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.names or torchvision_models(args.models_dir):
        work = Path(tempfile.mkdtemp(prefix=f"zoo-proof-{name}-"))
        try:
            proof = prove(name, args.models_dir, work)
            print(f"{proof.model}: relative error {proof.error:.2e}, {proof.seconds:.1f} s", flush=True)
            failed += proof.error > 1e-4
        except Exception as exc:  # noqa: BLE001 - a report line per model
            print(f"{name}: FAILED: {exc}", flush=True)
            failed += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
