"""Output stages: what mo's transformation configs did, rebuilt on a converted `openvino.Model`.

The Model Optimizer rewrote a graph's post-processing to a fixed interface (a `DetectionOutput`
[1,1,N,7], `RegionYolo` outputs, ...) when a descriptor passed `--transformations_config`; the
demos and `accuracy-check.yml` read that interface. The ovc backend (convert/ovc.py) converts the
graph as it is and then applies the stage registered here for the same config.

`STAGES` maps a config's path relative to mo's extensions folder (`front/tf/retinanet.json`) to a
function `stage(model, plan) -> model`. `plan` is convert/ovc.py's `OvcPlan`; a stage reads
`plan.model` (for messages), `plan.outputs`, `plan.inputs`, `plan.output_stage_file` (the config
itself, e.g. YOLO's JSON attributes) and `plan.pipeline_config` (Object Detection API models).
A stage that cannot honour a model raises UnsupportedArgumentError naming the argument.
A config outside mo's folder (one the model downloads) is registered as `DOWNLOADED` and picked by
the replacement id written in it (`BY_ID`); `prepare(plan)` gives the plan a stage needs converted
(YOLO v3 cuts the graph at its entry points), before the conversion. For mo's own configs, `NEEDS`
says the same while the plan is made (convert/ovc.py reads it, so --dry_run shows it): the graph
tensors to convert instead of the descriptor's `--output` (mo's config cut and rebuilt the graph's
end), float inputs, the OD API pipeline config.

Adding a family is a module here plus its entries in `STAGES`. May import: the ground (errors)
and OpenVINO; never convert/ovc.py (which imports this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ...errors import UnsupportedArgumentError
from . import _config, barrier, efficientdet, odapi, retinanet, yolo

Stage = Callable[[Any, Any], Any]

STAGES: dict[str, Stage] = {
    "front/tf/retinanet.json": retinanet.stage,
    **{family.config: odapi.stage_for(family) for family in odapi.FAMILIES},
    efficientdet.CONFIG: efficientdet.stage,
}


@dataclass(frozen=True)
class Needs:
    """What a stage needs of the conversion before it runs (mo's config changed the graph's ends)."""

    outputs: tuple[str, ...] = ()  # graph tensors converted in place of the descriptor's --output
    float_inputs: bool = False  # the inputs taken as f32 (mo removed a uint8 placeholder's cast)
    pipeline_config: bool = False  # reads --tensorflow_object_detection_api_pipeline_config


NEEDS: dict[str, Needs] = {
    **{family.config: Needs(odapi.graph_outputs(family), float_inputs=True, pipeline_config=True)
       for family in odapi.FAMILIES},
    efficientdet.CONFIG: Needs(efficientdet.HEADS, float_inputs=True),
}

# YOLO v1/v2 regions: mo's own configs that the zoo's descriptors name (convert/stages/yolo.py)
STAGES.update({config: yolo.regions for config in yolo.MO_CONFIGS})

# A config outside mo's folder is one the model downloads (yolo-v3-tf's yolo-v3.json, the barrier
# SSD's model.tfmo.json): its stage is chosen by the replacement id written in it, when converting
# (the file may not be downloaded yet when the plan is made).
DOWNLOADED = "transformation named in the model's own config"  # (how --dry_run and refusals show it)
BY_ID: dict[str, Stage] = {
    yolo.V2_ID: yolo.regions,
    yolo.V3_ID: yolo.entry_regions,
    barrier.ID: barrier.stage,
}
# What a stage needs of the conversion itself (by replacement id): YOLO v3 cuts at its entry points.
BEFORE: dict[str, Callable[[Any], Any]] = {yolo.V3_ID: yolo.cut_at_entry_points}


def _downloaded_id(plan: Any) -> str:
    """The replacement id of a downloaded config, refused by name when no stage rebuilds it.

    Raises:
        UnsupportedArgumentError: the file is not a mo config, or its id has no stage here.
    """
    ident = _config.replacement(plan)["id"]
    if ident not in BY_ID:
        raise UnsupportedArgumentError(plan.model, _config.ARGUMENT,
                                       f"{plan.output_stage_file} is mo's {ident} transformation, which has no "
                                       f"equivalent in the ovc backend (supported: {', '.join(sorted(BY_ID))})")
    return ident


def _downloaded(model: Any, plan: Any) -> Any:
    return BY_ID[_downloaded_id(plan)](model, plan)


STAGES[DOWNLOADED] = _downloaded


def prepare(plan: Any) -> Any:
    """The plan to convert with, as the plan's stage needs it (a copy; the plan itself is kept).

    Raises:
        UnsupportedArgumentError: a downloaded config that no stage rebuilds, or is malformed.
    """
    if plan.output_stage == DOWNLOADED:
        before = BEFORE.get(_downloaded_id(plan))
        return before(plan) if before else plan
    return plan
