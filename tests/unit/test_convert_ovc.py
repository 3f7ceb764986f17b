"""convert_ovc's plan in-process: mo's arguments read through the flag-to-handler table, without
a model or OpenVINO; anything it cannot honour refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelzoo.convert.ovc import HANDLERS, MO_FLAGS, InputSpec, plan
from modelzoo.errors import UnsupportedArgumentError

EXT = "/mo/extensions"


def test_every_handled_flag_is_one_of_mo():
    assert set(HANDLERS) <= set(MO_FLAGS)


def test_a_retinanet_like_plan():
    p = plan("rt", ["--input_model=/dl/rt.pb", "--input=input_1", "--input_shape=[1,1333,1333,3]",
                    "--output=a,b,c", "--reverse_input_channels", "--mean_val=[103.9,116.8,123.7]",
                    "--layout=input_1(nhwc->nchw)", f"--transformations_config={EXT}/front/tf/retinanet.json",
                    "--framework=tf", "--model_name=x"], EXT)
    assert (p.framework, p.source) == ("tf", Path("/dl/rt.pb"))
    assert p.inputs == [InputSpec("input_1", [1, 1333, 1333, 3])] and p.outputs == ["a", "b", "c"]
    assert p.reverse_channels and p.means == {None: [103.9, 116.8, 123.7]}  # (--mean_val: mo's abbreviation)
    assert p.layouts == {"input_1": ("nhwc", "nchw")} and p.output_stage == "front/tf/retinanet.json"
    assert "openvino.convert_model('/dl/rt.pb'" in p.describe()


def test_source_and_target_layouts_merge():
    p = plan("m", ["--input_model=m.onnx", "--source_layout=x(nchw)", "--target_layout=x(nhwc)", "--scale=255"], EXT)
    assert p.layouts == {"x": ("nchw", "nhwc")} and p.scale == 255.0 and p.framework == "onnx"


@pytest.mark.parametrize("args, argument, words", [
    (["--input_model=m.pb", "--batch=1"], "--batch=1", "no equivalent"),
    (["--input_model=m.pb", "--compress_to_fp16=True"], "--compress_to_fp16=True", "--precisions"),
    (["--input_model=m.pb", "--framework=caffe"], "--framework=caffe", "no frontend for 'caffe'"),
    (["--input_model=m.pb", "--input=x{f32}"], "--input=x{f32}", "no types"),  # (0:x is a cut: convert/cuts.py)
    (["--input_model=m.pb", "--scale=big"], "--scale=big", "cannot read it"),
    (["--input_model=m.pb", f"--transformations_config={EXT}/front/tf/ssd.json"], None, "no equivalent in the ovc"),
    (["--input_shape=[1,2]", "--input_model=m.pb"], "--input_shape", "without --input names"),
    (["--output=y"], "--input_model", "no model file given"),
    (["input_model=m.pb"], "input_model=m.pb", "not an option"),
])
def test_refusals_name_the_argument(args, argument, words):
    with pytest.raises(UnsupportedArgumentError) as info:
        plan("m", args, EXT)
    assert words in info.value.why and info.value.model == "m"
    assert info.value.argument == (argument or args[-1])
