#!/usr/bin/env bash
# The README's first command: convert the bundled Caffe digits classifier
# (trained on scikit-learn's digits, see model_zoo/caffe/digits/), inspect it,
# and classify the bundled sample images.
set -euo pipefail
cd "$(dirname "$0")/.."
MOBCONV=".venv/bin/python -m mobconv"
ZOO=model_zoo/caffe/digits
mkdir -p out
$MOBCONV caffe2mob $ZOO/deploy.prototxt $ZOO/digits.caffemodel -o out/digits.mob
$MOBCONV info out/digits.mob
for sample in $ZOO/samples/*.npy; do
  echo
  echo "== $(basename "$sample") (true label: $(basename "$sample" .npy | sed "s/.*label//")) =="
  $MOBCONV run out/digits.mob --input "data=$sample"
done
