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
`NEEDS` says what a stage needs of the conversion before it runs (convert/ovc.py reads it while
planning): the graph tensors to convert instead of the descriptor's `--output` (mo's config cut
and rebuilt the graph's end), float inputs, the OD API pipeline config.

Adding a family is a module here plus its entries in `STAGES`. May import: the ground (errors)
and OpenVINO; never convert/ovc.py (which imports this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import efficientdet, odapi, retinanet

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
