"""Stand-in proof: convert Open Model Zoo's PyTorch models end to end without their real checkpoints.

For a model whose architecture can be built here (torchvision from the environment; timm and
transformers from the very wheels the descriptor pins), `prove_many(...)`:

1. fetches the descriptor's PyPI wheels with `pip download` and checks them against the
   descriptor's own SHA-384 (a wheel that does not verify stops the proof: `ProofError`);
2. serves them from the loopback server and downloads them with the real downloader into a first
   folder (unpacked and patched as the descriptor's postprocessing says), so the stand-in is built
   by exactly the library code the converter will import;
3. makes the stand-in in a child process (devtools/standin_child.py): the architecture's own random
   initialisation, BatchNorm statistics calibrated on random batches drawn like the compared input,
   saved in the layout and under the file names the descriptor's loader reads (`RECIPES`), and
   runs it on this run's inputs;
4. writes a zoo copy whose checkpoint entries have the stand-ins' sizes and SHA-384 (the wheels
   keep the real ones) and loopback URLs, downloads every selected model with the real downloader,
   converts them in one run of the real converter (`--backend ovc`), and compares each IR with the
   stand-in's outputs on the same input (the descriptor's mean, scale and channel order applied on
   the torch side, as the IR does inside). The error is max|IR - torch| / max|torch|.

Descriptor files that are neither wheels nor written by the recipe (a tokenizer's vocabulary: the
conversion never reads it) are served as short text files saying they are stand-ins.

`python -m modelzoo.devtools.zoo_proof --models_dir OMZ_MODELS [NAMES...]` proves the named models
(default: every model with a recipe) one at a time and prints a line per model. Needs torch and
torchvision (`[pytorch]`), OpenVINO (`[convert]`) and pip; the wheels come from PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..verify import file_digest

SCRIPTS = Path(__file__).resolve().parents[2] / "downloader"
TOOLS = Path(__file__).resolve().parents[2]
PYPI = "https://files.pythonhosted.org/"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin")


class ProofError(RuntimeError):
    """A proof that could not be run to the comparison: a wheel that does not verify, a stand-in
    that cannot be made, a download that fails (the message names the model and the step)."""


@dataclass
class Proof:
    model: str
    error: float | None  # max|IR - torch| / max|torch| over the outputs --output-names names
    seconds: float  # the converter command's wall time (for a batch: the whole batch's)
    batch: int = 1  # how many models that converter command converted
    failure: str = ""  # the converter's line for this model when it made no IR


@dataclass(frozen=True)
class Recipe:
    """How a model's stand-in is built and saved (standin_child.py reads these fields)."""

    builder: str  # "module:function" (transformers: "module:ModelClass")
    layout: str  # standin_child.LAYOUTS: the checkpoint layout the descriptor's loader reads
    kwargs: dict[str, Any] = field(default_factory=dict)
    config_class: str = ""  # transformers: the config class built from `config`
    config: dict[str, Any] = field(default_factory=dict)
    value_ranges: dict[str, int] = field(default_factory=dict)  # integer inputs: values in [0, N)
    family: str = "timm"


# The published configurations' architecture values (the checkpoints' own config.json on the
# Hugging Face hub); everything else is the pinned transformers' default.
_BERT_NER = {"vocab_size": 28996, "num_labels": 9,
             "id2label": dict(enumerate(["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC",
                                         "I-LOC"]))}

RECIPES: dict[str, Recipe] = {
    "convnext-tiny": Recipe("timm.models.convnext:convnext_tiny", "convnext_fb"),
    "efficientnet-v2-b0": Recipe("timm.models.efficientnet:tf_efficientnetv2_b0", "state_dict"),
    "efficientnet-v2-s": Recipe("timm.models.efficientnet:tf_efficientnetv2_s_in21ft1k", "state_dict"),
    "levit-128s": Recipe("timm.models.levit:levit_128s", "model_key"),
    "swin-tiny-patch4-window7-224": Recipe("timm.models.swin_transformer:swin_tiny_patch4_window7_224", "model_key"),
    "bert-base-ner": Recipe("transformers.models.bert:BertForTokenClassification", "pretrained",
                            config_class="BertConfig", config=_BERT_NER, family="transformers",
                            value_ranges={"input_ids": 28996, "attention_mask": 2, "token_type_ids": 2}),
    "wav2vec2-base": Recipe("transformers.models.wav2vec2:Wav2Vec2ForCTC", "pretrained",
                            config_class="Wav2Vec2Config", family="transformers"),
    "gpt-2": Recipe("transformers.models.gpt2:GPT2LMHeadModel", "pretrained", config_class="GPT2Config",
                    config={"use_cache": False}, family="transformers", value_ranges={"input": 50257}),
}

# Proven in CI (tests/pytorch/test_torch_export.py), and under `-m slow` only: CI's time budget
# (docs/performance.md has each proof's time) keeps three torchvision models and gpt-2 out of CI.
CI_PROOFS = ("resnet-18-pytorch", "resnet-34-pytorch", "resnet-50-pytorch", "mobilenet-v2-pytorch", "shufflenet-v2-x1.0",
             "googlenet-v3-pytorch", "convnext-tiny", "efficientnet-v2-b0", "efficientnet-v2-s", "levit-128s",
             "swin-tiny-patch4-window7-224", "bert-base-ner", "wav2vec2-base")
SLOW_PROOFS = ("gpt-2",)  # 180 s and 5 GB
PROOF_TEST = "tests/pytorch/test_torch_export.py"


def _descriptor(models_dir: Path, name: str) -> tuple[Path, dict[str, Any]]:
    import yaml

    found = sorted(models_dir.glob(f"*/{name}/model.yml"))
    if not found:
        raise ProofError(f"{name}: no such model in {models_dir}")
    return found[0], yaml.safe_load(found[0].read_text())


def _pytorch_descriptors(models_dir: Path) -> list[Path]:
    """The descriptors that mention conversion_to_onnx_args (a text search: parsing all 248 with
    PyYAML's pure-Python loader takes seconds)."""
    return [yml for yml in sorted(models_dir.glob("*/*/model.yml")) if "conversion_to_onnx_args" in yml.read_text()]


def torchvision_models(models_dir: Path) -> list[str]:
    """The descriptors whose conversion builds a torchvision architecture."""
    import yaml

    names = []
    for yml in _pytorch_descriptors(models_dir):
        args = yaml.safe_load(yml.read_text()).get("conversion_to_onnx_args") or []
        if "--import-module=torchvision.models" in args:
            names.append(yml.parent.name)
    return names


def wheel_models(models_dir: Path) -> list[str]:
    """The PyTorch descriptors whose model code is a pinned timm or transformers wheel from PyPI and
    nothing else (no source file fetched from elsewhere): what `RECIPES` must cover."""
    import yaml

    names = []
    for yml in _pytorch_descriptors(models_dir):
        data = yaml.safe_load(yml.read_text())
        if not data.get("conversion_to_onnx_args"):
            continue
        files = data.get("files") or []
        wheels = [f for f in files if f["source"].startswith(PYPI) and f["name"].startswith(("timm-", "transformers-"))]
        foreign_code = [f for f in files if f["name"].endswith(".py") and not f["source"].startswith(PYPI)]
        if wheels and not foreign_code:
            names.append(yml.parent.name)
    return names


def provable(models_dir: Path) -> list[str]:
    """Every model this harness can make a stand-in for: torchvision's and `RECIPES`."""
    return torchvision_models(models_dir) + [n for n in RECIPES if any(models_dir.glob(f"*/{n}/model.yml"))]


def recipe(name: str, data: dict[str, Any]) -> Recipe:
    """The model's recipe: `RECIPES`, or torchvision's architecture named by --model-name."""
    if name in RECIPES:
        return RECIPES[name]
    args = data.get("conversion_to_onnx_args") or []
    if "--import-module=torchvision.models" not in args:
        raise ProofError(f"{name}: no stand-in recipe (only torchvision's models and {', '.join(RECIPES)})")
    model_name = _arg(args, "--model-name")
    kwargs = {"init_weights": True} if model_name == "inception_v3" else {}
    return Recipe(f"torchvision.models:{model_name}", "state_dict", kwargs=kwargs, family="torchvision")


def _arg(args: list[str], prefix: str) -> str:
    for a in args:
        if a.startswith(prefix):
            return a.partition("=")[2]
    raise KeyError(prefix)


def mo_values(args: list[str], flag: str) -> list[float] | None:
    """`--mean_values=input[127.5,127.5,127.5]` -> [127.5, 127.5, 127.5]; None when absent (the
    stand-in proofs apply on the framework side what the IR does inside)."""
    for a in args:
        if a.startswith(flag + "="):
            m = re.search(r"\[([^\]]*)\]", a)
            return [float(v) for v in m.group(1).split(",")] if m else None
    return None


def _export(data: dict[str, Any]) -> Any:
    """conversion_to_onnx_args read as the converter reads them (paths do not matter here)."""
    from ..convert.pytorch import parse_export

    fill = {"dl_dir": "/dl", "config_dir": "/config", "conv_dir": "/conv"}
    return parse_export([string.Template(a).safe_substitute(fill) for a in data["conversion_to_onnx_args"]])


@dataclass
class _Inputs:
    ir: dict[str, Any]  # what the IR takes, by input name
    torch: list[Any]  # what the stand-in takes, in --input-names order
    calibrate: list[list[Any]]  # batches for BatchNorm statistics (torch side), drawn like `torch`


def make_inputs(data: dict[str, Any], rec: Recipe, seed: int = 1) -> _Inputs:
    """One input set: images as the IR takes them (BGR 0..255 where --reverse_input_channels) and
    as torch takes them (mean/scale applied), and two calibration batches of 2 drawn the same way;
    ids within `value_ranges`; audio in [-1, 1]. The shape is
    `input_info`'s (the converter gives it as --input_shape, as omz_converter did); where that has
    none, a dimension `dynamic_axes` leaves free is a quarter of the export's (the IR is compared
    off the shape it was traced with)."""
    import numpy as np

    export = _export(data)
    mo_args = data.get("model_optimizer_args", [])
    rng = np.random.default_rng(seed)
    ir, torch_side, calibrate = {}, [], []
    fixed = {i["name"]: list(i["shape"]) for i in data.get("input_info", []) if i.get("shape")}
    for name, shape in zip(export.input_names, export.input_shapes):
        dynamic = export.dynamic_axes.get(name, [])
        shape = fixed.get(name) or [max(1, d // 4) if i in dynamic and i > 0 else d for i, d in enumerate(shape)]
        if export.inputs_dtype == "long":
            value = rng.integers(0, rec.value_ranges.get(name, 2), shape).astype(np.int64)
            if name == "attention_mask":
                value[:, 0] = 1
            ir[name], torch_side = value, [*torch_side, value]
            continue
        mean, scale = mo_values(mo_args, "--mean_values"), mo_values(mo_args, "--scale_values")
        if mean is None and scale is None:
            value = rng.uniform(-1, 1, shape).astype(np.float32)
            ir[name], torch_side = value, [*torch_side, value]
            continue
        m = np.float32(mean or [0.0]).reshape(1, -1, 1, 1)
        s = np.float32(scale or [1.0]).reshape(1, -1, 1, 1)

        def image(dims: list[int]) -> tuple[Any, Any]:
            bgr = rng.uniform(0, 255, dims).astype(np.float32)
            rgb = bgr[:, ::-1] if "--reverse_input_channels" in mo_args else bgr
            return bgr, np.ascontiguousarray((rgb - m) / s, dtype=np.float32)

        ir[name], normalised = image(shape)
        torch_side.append(normalised)
        calibrate.append([image([2, *shape[1:]])[1] for _ in range(2)])
    batches = [list(b) for b in zip(*calibrate)] if len(calibrate) == len(torch_side) else []
    return _Inputs(ir, torch_side, batches)


def pypi_wheel(entry: dict[str, Any], dest: Path, timeout: float = 300) -> Path:
    """The descriptor's wheel from PyPI (`pip download`), verified against the descriptor's own
    size and SHA-384; kept in `dest` for the next call."""
    name = entry["name"]
    target = dest / name
    if not _matches(target, entry):
        project, version = name.split("-")[:2]
        dest.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                                 "-d", str(dest), f"{project}=={version}"], capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        if result.returncode != 0 or not target.is_file():
            raise ProofError(f"{name}: pip download failed: {result.stderr.strip().splitlines()[-1:]}")
        if not _matches(target, entry):
            raise ProofError(f"{name}: PyPI's file does not verify against the descriptor's size and SHA-384")
    return target


def _matches(path: Path, entry: dict[str, Any]) -> bool:
    return path.is_file() and path.stat().st_size == entry["size"] and _sha384(path) == entry["checksum"]


@dataclass
class _Model:
    name: str
    source: Path  # the descriptor in models_dir
    data: dict[str, Any]
    rel: Path  # its folder relative to the zoo's root
    recipe: Recipe
    inputs: _Inputs
    expected: list[Any] = field(default_factory=list)


def _write_zoo(zoo: Path, m: _Model, files: list[dict[str, Any]]) -> None:
    import yaml

    folder = zoo / m.rel
    if not folder.exists():
        shutil.copytree(m.source.parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "model.yml").write_text(yaml.safe_dump(dict(m.data, files=files), sort_keys=False))


def _sha384(path: Path) -> str:
    return file_digest(path)[1]


def _entry(entry: dict[str, Any], path: Path, url: str) -> dict[str, Any]:
    """A descriptor's file entry for a stand-in: its own size and SHA-384, a loopback URL."""
    return {"name": entry["name"], "size": path.stat().st_size, "checksum": _sha384(path), "source": url}


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TOOLS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def make_stand_in(m: _Model, sys_path: list[Path], serve: Path, timeout: float) -> None:
    """Run standin_child for one model: checkpoint files under `serve/<model>/`, expected outputs."""
    import numpy as np

    out = serve / m.name
    out.mkdir(parents=True, exist_ok=True)
    rec = m.recipe
    stand_ins = [f for f in m.data["files"] if not f["source"].startswith(PYPI)]
    if rec.layout == "pretrained":
        weights = next((f for f in stand_ins if f["name"].endswith("pytorch_model.bin")), None)
        if weights is None:
            raise ProofError(f"{m.name}: no pytorch_model.bin among the descriptor's files")
        checkpoint = out / Path(weights["name"]).parent
    else:
        found = [f for f in stand_ins if f["name"].endswith(CHECKPOINT_SUFFIXES)]
        if len(found) != 1:
            raise ProofError(f"{m.name}: {len(found)} checkpoint files among the descriptor's files, not 1")
        checkpoint = out / found[0]["name"]
    scratch = out.parent / f".{m.name}.io"
    scratch.mkdir(exist_ok=True)
    inputs = []
    for i, value in enumerate(m.inputs.torch):
        inputs.append(str(scratch / f"in{i}.npy"))
        np.save(inputs[-1], value)
    batches = []
    for b, batch in enumerate(m.inputs.calibrate):
        batches.append([str(scratch / f"calibrate{b}-{i}.npy") for i in range(len(batch))])
        for path, value in zip(batches[-1], batch):
            np.save(path, value)
    outputs = [str(scratch / f"out{i}.npy") for i in range(len(_export(m.data).output_names))]
    spec = {"sys_path": [str(p) for p in sys_path], "builder": rec.builder, "kwargs": rec.kwargs,
            "layout": rec.layout, "checkpoint": str(checkpoint), "config_class": rec.config_class,
            "config": rec.config, "calibrate": batches, "inputs": inputs, "outputs": outputs}
    (scratch / "spec.json").write_text(json.dumps(spec))
    result = subprocess.run([sys.executable, "-m", "modelzoo.devtools.standin_child", str(scratch / "spec.json")],
                            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                            env=_child_env(), cwd=scratch)
    if result.returncode != 0:
        raise ProofError(f"{m.name}: making the stand-in failed: {result.stderr.strip()[-2000:]}")
    m.expected = [np.load(p) for p in outputs]
    for f in stand_ins:  # what the recipe did not write: a file the conversion never reads
        path = out / f["name"]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"stand-in for {f['name']} of {m.name}: the conversion does not read this file\n")


def prove_many(names: list[str], models_dir: Path, work: Path, python: str = sys.executable,
               timeout: float = 900, wheels: Path | None = None) -> list[Proof]:
    """Prove `names` together: one downloader run for the wheels, one for everything, one converter run.

    Raises:
        ProofError: a model without a recipe, a wheel that does not verify, a stand-in that cannot
            be made, a download that fails. A model the converter fails is a Proof with `failure`.
    """
    from .loopback import LoopbackServer

    models = []
    for name in names:
        source, data = _descriptor(models_dir, name)
        rec = recipe(name, data)
        models.append(_Model(name, source, data, source.parent.relative_to(models_dir), rec, make_inputs(data, rec)))
    wheels = wheels or work / "wheels"
    work.mkdir(parents=True, exist_ok=True)
    listing = work / "models.lst"
    listing.write_text("".join(m.name + "\n" for m in models))
    cache = work / "cache"
    with LoopbackServer() as server:
        wheel_entries: dict[str, list[dict[str, Any]]] = {}
        for m in models:
            wheel_entries[m.name] = []
            for entry in m.data["files"]:
                if entry["source"].startswith(PYPI):
                    url = server.add(f"/wheels/{m.name}/{entry['name']}", pypi_wheel(entry, wheels))
                    wheel_entries[m.name].append(dict(entry, source=url))
        with_wheels = [m for m in models if wheel_entries[m.name]]
        if with_wheels:  # the pinned libraries, unpacked and patched by the real downloader
            for m in with_wheels:
                _write_zoo(work / "zoo-wheels", m, wheel_entries[m.name])
            (work / "wheels.lst").write_text("".join(m.name + "\n" for m in with_wheels))
            _run(python, "downloader", "--models_dir", work / "zoo-wheels", "--list", work / "wheels.lst",
                 "-o", work / "dl-wheels", "--cache_dir", cache, timeout=timeout)
        serve = work / "serve"
        for m in models:
            path = [work / "dl-wheels" / m.rel] if wheel_entries[m.name] else []
            make_stand_in(m, path, serve, timeout)
            files = []
            for entry in m.data["files"]:
                if entry["source"].startswith(PYPI):
                    files.append(next(e for e in wheel_entries[m.name] if e["name"] == entry["name"]))
                else:
                    local = serve / m.name / entry["name"]
                    files.append(_entry(entry, local, server.add(f"/{m.name}/{entry['name']}", local)))
            _write_zoo(work / "zoo", m, files)
        _run(python, "downloader", "--models_dir", work / "zoo", "--list", listing, "-o", work / "dl",
             "--cache_dir", cache, timeout=timeout)
    started = time.monotonic()
    result = _run(python, "converter", "--models_dir", work / "zoo", "--list", listing, "-d", work / "dl",
                  "-o", work / "ir", "--backend", "ovc", "--precisions", "FP32", "--log", work / "export.log",
                  "--allow_zoo_code", timeout=timeout * len(models), check=False)
    seconds = time.monotonic() - started
    return [_compare(m, work / "ir", seconds, len(models), result.stderr) for m in models]


def _compare(m: _Model, ir: Path, seconds: float, batch: int, stderr: str) -> Proof:
    """The IR against the stand-in's outputs, by the names --output-names gives them."""
    import numpy as np
    import openvino as ov

    xml = ir / m.rel / "FP32" / f"{m.name}.xml"
    if not xml.is_file():
        lines = [line for line in stderr.splitlines() if f"{m.name}:" in line]
        return Proof(m.name, None, seconds, batch, (lines or ["no IR and no line naming it"])[0])
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled({name: value for name, value in m.inputs.ir.items()})
    errors = []
    for name, expected in zip(_export(m.data).output_names, m.expected):
        port = next(p for p in compiled.outputs if name in p.get_names())
        errors.append(float(np.abs(got[port] - expected).max() / np.abs(expected).max()))
    return Proof(m.name, max(errors), seconds, batch)


def prove(name: str, models_dir: Path, work: Path, python: str = sys.executable, timeout: float = 900,
          wheels: Path | None = None) -> Proof:
    """One model's proof (`prove_many` of one).

    Raises:
        ProofError: as prove_many, and when the converter made no IR (its line for the model).
    """
    proof = prove_many([name], models_dir, work, python, timeout, wheels)[0]
    if proof.failure:
        raise ProofError(f"converter failed: {proof.failure}")
    return proof


def _run(python: str, tool: str, *args: Any, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([python, str(SCRIPTS / f"{tool}.py"), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise ProofError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=Path, required=True, help="Open Model Zoo's models folder")
    parser.add_argument("names", nargs="*", help="models to prove (default: every model with a stand-in recipe)")
    args = parser.parse_args(argv)
    failed = 0
    wheels = Path(tempfile.mkdtemp(prefix="zoo-proof-wheels-"))
    try:
        for name in args.names or provable(args.models_dir):
            work = Path(tempfile.mkdtemp(prefix=f"zoo-proof-{name}-"))
            try:
                proof = prove(name, args.models_dir, work, wheels=wheels)
                print(f"{proof.model}: relative error {proof.error:.2e}, converted in {proof.seconds:.1f} s",
                      flush=True)
                failed += proof.error > 1e-4
            except (ProofError, subprocess.TimeoutExpired) as exc:
                print(f"{name}: FAILED: {exc}", flush=True)
                failed += 1
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(wheels, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
