#!/usr/bin/env bash
# The offline demo in one command: sets up .venv if there is none (the newest OpenVINO and the
# converter's ovc backend, plus TensorFlow to build the graph and NNCF to quantize:
# '.[convert,reproduce,quantize]'), then
# builds retinanet-tf's graph here, serves it from 127.0.0.1, downloads it with verification,
# converts it to FP32 and FP16 IR, quantizes it to FP16-INT8 and draws the detections on the
# bundled picture. Output:
# demo-out/. It says which backend converted (mo where openvino-dev is installed, e.g. a .venv
# made with '.[mo]'; ovc otherwise). Options: --backend auto|mo|ovc, --verbose, --input-size N.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[convert,reproduce,quantize]'
exec .venv/bin/python -m modelzoo.devtools.demo --out demo-out "$@"
