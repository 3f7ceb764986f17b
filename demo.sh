#!/usr/bin/env bash
# The offline demo in one command: sets up .venv (with the 'convert' extra), then builds
# retinanet-tf's graph here, serves it from 127.0.0.1, downloads it with verification, converts
# it to FP32 and FP16 IR and draws its detections on the bundled picture. Output: demo-out/.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[convert]'
exec .venv/bin/python -m modelzoo.demo --out demo-out "$@"
