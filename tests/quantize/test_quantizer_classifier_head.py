"""The quantizer keeps a classifier's last fully connected layer in float (issue 26 item 5):
with NNCF's defaults it cost the small 1001-class classifier 8.3 of 41.7 top-5 points on 24
pictures; a network whose only compute layer is that MatMul keeps it quantized (else nothing
would be INT8)."""

from __future__ import annotations


import numpy as np

from modelzoo.convert.quantize import classifier_head


def _classifier(with_convolution: bool):
    import openvino as ov
    import openvino.opset8 as ops

    rng = np.random.default_rng(3)
    picture = ops.parameter([1, 3, 32, 32], np.float32, name="data")
    x = picture
    if with_convolution:
        x = ops.relu(ops.convolution(x, ops.constant(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32)),
                                     [1, 1], [1, 1], [1, 1], [1, 1]))
    channels = 8 if with_convolution else 3
    pooled = ops.avg_pool(x, [8, 8], [0, 0], [0, 0], [8, 8], exclude_pad=True)
    flat = ops.reshape(pooled, ops.constant(np.array([1, channels * 16], np.int64)), special_zero=False)
    fc = ops.matmul(flat, ops.constant(rng.normal(0, 1, (channels * 16, 10)).astype(np.float32)), False, False)
    fc.set_friendly_name("fc")
    return ov.Model([ops.softmax(fc, 1)], [picture], "c")


def test_the_last_matmul_is_the_head_only_beside_other_compute():
    assert classifier_head(_classifier(True)) == ["fc"]
    assert classifier_head(_classifier(False)) == []


def test_nncf_leaves_the_head_in_float_and_quantizes_the_rest():
    import nncf

    from modelzoo.convert.quantize import _ignored_scope

    model = _classifier(True)
    rng = np.random.default_rng(0)
    data = nncf.Dataset([rng.uniform(0, 255, (1, 3, 32, 32)).astype(np.float32) for _ in range(4)])
    quantized = nncf.quantize(model, data, subset_size=4, ignored_scope=_ignored_scope(model, [],
                                                                                      classifier_head(model)))
    fed_by_fq = {op.get_friendly_name(): any(v.get_node().get_type_name() == "FakeQuantize" for v in op.input_values())
                 for op in quantized.get_ops() if op.get_type_name() in ("Convolution", "MatMul")}
    assert fed_by_fq.pop("fc") is False
    assert list(fed_by_fq.values()) == [True]
