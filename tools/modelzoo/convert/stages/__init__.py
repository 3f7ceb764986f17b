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

Adding a family is a module here plus its entries in `STAGES`. May import: the ground (errors)
and OpenVINO; never convert/ovc.py (which imports this package).
"""

from __future__ import annotations

from typing import Any, Callable

from . import retinanet

Stage = Callable[[Any, Any], Any]

STAGES: dict[str, Stage] = {
    "front/tf/retinanet.json": retinanet.stage,
}
