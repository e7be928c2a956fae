#!/usr/bin/env bash
# The README's first command: convert a bundled model, inspect it, run it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p out
MODEL=model_zoo/onnx/tiny_cnn.onnx
$PY -m mobconv onnx2mob "$MODEL" -o out/tiny_cnn.mob
$PY -m mobconv info out/tiny_cnn.mob
$PY -m mobconv run out/tiny_cnn.mob
