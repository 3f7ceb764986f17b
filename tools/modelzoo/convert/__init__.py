"""Making IR: the conversion pipeline (IR cache, then mirror, then a backend), the Model
Optimizer backend (mo), the openvino.convert_model backend (ovc), and INT8 quantization with NNCF.

May import: the ground modules, transport, store, download, mirror (the IR read side) and
accuracy (the quantizer's validation).
"""
