#!/usr/bin/env python3
"""Open Model Zoo's models converted against stand-ins: per model, the time to convert and the IR's error.

    python bench/zoo_proof.py --all [--models_dir OMZ_MODELS] [--json FILE]
    python bench/zoo_proof.py resnet-18-pytorch convnext-tiny

Each model is proven alone (`modelzoo.devtools.zoo_proof.prove`: stand-in checkpoint, the real
downloader, `converter.py --backend ovc`, the IR against the framework), so its time is the
converter command's wall time for that model only (start-up and the PyTorch export's child
included). What this environment can run is run; what it cannot is a line saying why:

- PyTorch models (torchvision, timm, transformers): need torch (`[pytorch]`, CI's .venv-torch).
  The mo backend refuses PyTorch models by design (convert/pipeline.py: openvino-dev's
  pytorch_to_onnx.py fails on torch 2.9 and later), so they have no mo time.
- TensorFlow models: `modelzoo.devtools.tf_standins` (`TF_MODELS`, `prove_tf`), when that module
  is in this checkout and TensorFlow is installed; with the ovc backend, and with mo when
  openvino-dev's `openvino.tools.mo` is importable (CI's first environment).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from modelzoo.devtools import zoo_proof  # noqa: E402

TF_STANDINS = "modelzoo.devtools.tf_standins"


def default_models_dir() -> Path:
    from modelzoo.devtools.peer import omz_models_root

    return omz_models_root()


def _one(prove: Callable[[Path], Any], name: str, errors: tuple[type[BaseException], ...]) -> dict[str, Any]:
    """One proof in a fresh folder: {"seconds", "error"} or {"failed": the reason} (for `errors`)."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-zoo-proof-{name}-"))
    try:
        proof = prove(work)
        return {"seconds": round(proof.seconds, 1), "error": proof.error}
    except (*errors, subprocess.TimeoutExpired) as exc:
        return {"failed": str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def torch_rows(names: list[str], models_dir: Path, wheels: Path) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        ovc = _one(lambda work: zoo_proof.prove(name, models_dir, work, wheels=wheels), name, (zoo_proof.ProofError,))
        rows.append({"model": name, "framework": "pytorch", "ovc": ovc,
                     "mo": {"not run": "the mo backend refuses PyTorch models (ovc only)"}})
        print(_line(rows[-1]), flush=True)
    return rows


def tf_rows(models_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The TensorFlow proofs, or why they are not run here."""
    if importlib.util.find_spec(TF_STANDINS) is None:
        return [], f"TensorFlow proofs not run: {TF_STANDINS} is not in this checkout"
    if importlib.util.find_spec("tensorflow") is None:
        return [], "TensorFlow proofs not run: TensorFlow is not installed in this environment"
    tf = importlib.import_module(TF_STANDINS)
    has_mo = importlib.util.find_spec("openvino.tools.mo") is not None
    errors = (getattr(tf, "StandInError", zoo_proof.ProofError),)
    rows = []
    for name in tf.TF_MODELS:
        ovc = _one(lambda work: tf.prove_tf(name, models_dir, work, backend="ovc"), name, errors)
        mo = _one(lambda work: tf.prove_tf(name, models_dir, work, backend="mo"), name, errors) if has_mo else \
            {"not run": "openvino-dev's mo is not installed in this environment"}
        rows.append({"model": name, "framework": "tf", "ovc": ovc, "mo": mo})
        print(_line(rows[-1]), flush=True)
    return rows, ""


def _cell(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"failed: {result['failed']}"
    if "not run" in result:
        return f"— ({result['not run']})"
    return f"{result['seconds']:.1f} s, {result['error']:.1e}"


def _line(row: dict[str, Any]) -> str:
    return f"| {row['model']} | {row['framework']} | {_cell(row['ovc'])} | {_cell(row['mo'])} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=Path, help="Open Model Zoo's models (default: openvino-dev's)")
    parser.add_argument("--all", action="store_true", help="every model with a stand-in recipe")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("names", nargs="*", help="PyTorch models to prove")
    args = parser.parse_args(argv)
    if not args.all and not args.names:
        parser.error("name models or give --all")
    models_dir = args.models_dir or default_models_dir()
    print("| model | framework | ovc: convert time, relative error | mo: convert time, relative error |")
    print("|---|---|---|---|", flush=True)
    rows, notes = [], []
    if importlib.util.find_spec("torch") is None:
        notes.append("PyTorch proofs not run: torch is not installed in this environment (the pytorch extra)")
    else:
        wheels = Path(tempfile.mkdtemp(prefix="bench-zoo-proof-wheels-"))
        try:
            rows += torch_rows(args.names or zoo_proof.provable(models_dir), models_dir, wheels)
        finally:
            shutil.rmtree(wheels, ignore_errors=True)
    if args.all:
        tf, note = tf_rows(models_dir)
        rows += tf
        notes += [note] if note else []
    for note in notes:
        print(f"\n{note}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "notes": notes}, indent=1))
    bad = [r for r in rows if "failed" in r["ovc"] or (r["ovc"].get("error") or 0) > 1e-4]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
