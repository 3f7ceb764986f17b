#!/usr/bin/env bash
# The offline demo in one command: sets up .venv-demo if there is none (the newest OpenVINO and
# the converter's ovc backend, plus TensorFlow to build the graph and NNCF to quantize:
# '.[convert,reproduce,quantize]'; an environment of its own, since NNCF 3.x needs the newest
# OpenVINO while the test environment .venv pins openvino-dev 2024.6's), then
# builds retinanet-tf's graph here, serves it from 127.0.0.1, downloads it with verification,
# converts it to FP32 and FP16 IR, quantizes it to FP16-INT8 and draws the detections on the
# bundled picture. Output: demo-out/. It says which backend converted (ovc here; mo where
# openvino-dev is installed). Options: --backend auto|mo|ovc, --verbose, --input-size N.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv-demo/bin/python ]; then
    python3 -m venv .venv-demo
fi
.venv-demo/bin/python -m pip install -q --upgrade pip
.venv-demo/bin/python -m pip install -q -e '.[convert,reproduce,quantize]'
exec .venv-demo/bin/python -m modelzoo.devtools.demo --out demo-out "$@"
