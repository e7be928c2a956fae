"""The README's first command (`make demo` = scripts/demo.sh) runs end to end: conversion,
float classification and int8 quantization + classification of the bundled samples.
The script runs the project's .venv, which `make test` creates first."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_script_classifies_the_samples_in_float_and_int8():
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert "Quantized out/digits.mob -> out/digits.int8.mob" in text + done.stderr
    int8 = re.findall(r"== int8: digit_\d+_label(\d)\.npy .*?==\n\s+row 0: (\d) ", text)
    assert len(int8) == 5, text[-3000:]
    assert all(label == top for label, top in int8), int8
