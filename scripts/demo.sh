#!/usr/bin/env bash
# The README's first command: convert the bundled Caffe digits classifier
# (trained on scikit-learn's digits, see model_zoo/caffe/digits/), inspect it,
# classify the bundled sample images, then quantize it to int8 and classify them again.
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

# int8: calibrate on the bundled samples, then classify them again with the int8 model
echo
$MOBCONV quantize out/digits.mob --calib $ZOO/samples -o out/digits.int8.mob
for sample in $ZOO/samples/*.npy; do
  echo "== int8: $(basename "$sample") (true label: $(basename "$sample" .npy | sed "s/.*label//")) =="
  $MOBCONV run out/digits.int8.mob --input "data=$sample" | grep "row 0"
done
