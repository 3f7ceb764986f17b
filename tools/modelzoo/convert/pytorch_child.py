"""The PyTorch export's child process: `python -m modelzoo.convert.pytorch_child SPEC.json`.

Builds one model as openvino-dev's pytorch_to_onnx.py built it (the descriptor's module and
constructor, its parameters, `load_state_dict` of its checkpoint), converts it with
`openvino.convert_model` and saves an FP32 IR where the spec says. Runs apart from the converter
(convert/pytorch.py) because model code imports what it likes into `sys.modules` and may crash or
run out of memory. On failure it writes one line (what failed and why) to the spec's `cause` file,
its traceback to stderr, and exits 1.
"""

from __future__ import annotations

import ast
import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # no usage telemetry (see convert/mo.py)


class Failure(Exception):
    """One line for the converter: what failed and why."""


def _step(what: str, fn, *args, **kwargs) -> Any:
    try:
        return fn(*args, **kwargs)
    except Failure:
        raise
    except BaseException as exc:  # noqa: BLE001 - model code raises anything, SystemExit included
        traceback.print_exc()
        text = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in ("torch", "torchvision"):
            reason += " (pip install 'modelzoo[pytorch]')"
        raise Failure(f"{what}: {reason}") from None


def build(spec: dict[str, Any]) -> Any:
    """The module, built and loaded as pytorch_to_onnx.py did (weights_only=False only for verified files)."""
    import torch

    a = spec["args"]
    sys.path[:0] = a["model_paths"]
    module = _step(f"importing {a['import_module']}", importlib.import_module, a["import_module"])
    creator = getattr(module, a["model_name"], None)
    if creator is None:
        raise Failure(f"{a['import_module']} has no {a['model_name']}")
    params = {k: ast.literal_eval(v) for k, v in a["params"].items()}
    model = _step(f"building {a['import_module']}.{a['model_name']}", creator, **params)
    if a["weights"]:
        weights = a["weights"]
        trusted = str(Path(weights).resolve()) in spec["verified"]

        def load() -> Any:
            return torch.load(weights, map_location="cpu", weights_only=not trusted)
        try:
            state = load()
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            if not trusted and "weights_only" in str(exc):
                raise Failure(f"loading {weights}: it needs unpickling (torch.load weights_only=False), which is "
                              "done only for a file whose SHA-384 the descriptor verifies, and this one is not "
                              "such a file") from None
            raise Failure(f"loading {weights}: {type(exc).__name__}: "
                          f"{(str(exc).strip().splitlines() or [''])[0]}") from None
        _step(f"loading {weights} into {a['model_name']}", model.load_state_dict, state)
    return model


def convert(spec: dict[str, Any], model: Any) -> Any:
    import openvino as ov
    import torch

    a = spec["args"]
    from .pytorch import DTYPES

    torch_name, ov_name = DTYPES[a["dtype"]]
    torch_type, ov_type = getattr(torch, torch_name), getattr(ov.Type, ov_name)
    examples = tuple(torch.zeros(shape, dtype=torch_type) for shape in a["shapes"])
    model.eval()
    with torch.no_grad():
        _step(f"running {a['model_name']} on zeros of {a['shapes']}", model, *examples)
        ov_model = _step("openvino.convert_model", ov.convert_model, model, example_input=examples,
                         input=[(shape, ov_type) for shape in a["conversion_shapes"]])
    if len(ov_model.inputs) != len(a["input_names"]):
        raise Failure(f"the converted model has {len(ov_model.inputs)} inputs, --input-names names "
                      f"{len(a['input_names'])}")
    for port, parameter, name in zip(ov_model.inputs, ov_model.get_parameters(), a["input_names"]):
        port.get_tensor().set_names({name})
        parameter.set_friendly_name(name)
    if len(ov_model.outputs) < len(a["output_names"]):
        raise Failure(f"the converted model has {len(ov_model.outputs)} outputs, --output-names names "
                      f"{len(a['output_names'])}")
    for port, name in zip(ov_model.outputs, a["output_names"]):
        port.get_tensor().set_names({name})
    return ov_model


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        model = build(spec)
        ov_model = convert(spec, model)
        import openvino as ov

        _step("saving the exported model", ov.save_model, ov_model, spec["xml"], compress_to_fp16=False)
    except Failure as exc:
        Path(spec["cause"]).write_text(str(exc) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
