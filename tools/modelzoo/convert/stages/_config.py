"""Reading a transformation config (mo's JSON) for a stage: one replacement, checked, in one place.

mo's configs are a JSON list of replacements, each with an `id` (which of mo's transformations
runs), `custom_attributes` (its parameters) and, for sub-graph replacements, `instances` (the
nodes it starts and ends at). Configs that a model downloads (yolo-v3-tf's `yolo-v3.json`, the
barrier SSD's `model.tfmo.json`) are read the same way; a file that is not such a list is refused
by name, not half-understood.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ...errors import ConversionError, ModelzooError, UnsupportedArgumentError

ARGUMENT = "--transformations_config"
MAX_BYTES = 1 << 20  # mo's configs are a few hundred bytes; anything this big is not one


def replacement(plan: Any) -> dict[str, Any]:
    """The one replacement of the plan's config file (`plan.output_stage_file`).

    Raises:
        UnsupportedArgumentError: the file cannot be read, is not JSON, or does not hold exactly
            one replacement with an `id` (the stages here rebuild one of mo's transformations).
    """
    path = Path(plan.output_stage_file or "")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{path} is over {MAX_BYTES} bytes: not a mo config")
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{path} is not JSON: {exc}") from None
    if not (isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict)
            and isinstance(items[0].get("id"), str)):
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{path} is not one mo replacement "
                                                             "([{\"id\": ..., \"custom_attributes\": ...}])")
    attributes = items[0].get("custom_attributes", {})
    if not isinstance(attributes, dict):
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{path}: custom_attributes is not an object")
    return items[0]


def number_list(plan: Any, attributes: dict[str, Any], key: str, kind: type = float) -> list:
    """attributes[key] as a list of numbers of `kind` (absent: []).

    Raises:
        UnsupportedArgumentError: the value is not a list of numbers.
    """
    value = attributes.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{key} must be a list of numbers (got {value!r})")
    return [kind(v) for v in value]


def integer(plan: Any, attributes: dict[str, Any], key: str, default: int | None = None) -> int:
    """attributes[key] as an int (mo reads 0/1 flags such as do_softmax the same way).

    Raises:
        UnsupportedArgumentError: missing without a default, or not a whole number.
    """
    value = attributes.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise UnsupportedArgumentError(plan.model, ARGUMENT, f"{key} must be a whole number (got {value!r})")
    return int(value)


@contextmanager
def building(plan: Any, what: str) -> Iterator[None]:
    """OpenVINO's refusal of an op the stage builds (shapes that do not fit) as one ConversionError
    line naming the transformation (the reporter adds the model), not a traceback.

    Raises:
        ConversionError: OpenVINO raised while the block built or validated ops.
    """
    try:
        yield
    except ModelzooError:
        raise
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises plain RuntimeError/OpError
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        useful = [line for line in lines if not line.startswith(("Check ", "Exception from", "While validating",
                                                                  "Shape inference input shapes"))]
        # (the reporter names the model; OpenVINO says why last, after where it checked)
        raise ConversionError(f"{what}: {(useful or lines or [type(exc).__name__])[-1]}") from None
