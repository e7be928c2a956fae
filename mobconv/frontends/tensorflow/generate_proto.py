"""Regenerate proto/*_pb2.py from proto/*.proto (never edit the *_pb2.py by hand).

    python -m mobconv.frontends.tensorflow.generate_proto          # rewrite proto/*_pb2.py
    python -m mobconv.frontends.tensorflow.generate_proto --check  # exit 1 if any is stale

The .proto files are TensorFlow's message definitions (GraphDef, SavedModel,
TensorBundle, ...) in package `mobconv.tensorflow`; they import each other as
"mobconv_tf/<name>.proto", so protoc runs on a copy under a `mobconv_tf/`
directory and the generated imports (`from mobconv_tf import x_pb2`) are
rewritten to be package-relative (`from . import x_pb2`). Uses grpcio-tools'
bundled protoc (`python -m grpc_tools.protoc`), so no system protoc is needed;
generated with grpcio-tools 1.85 (libprotoc 35.1), importable with the
protobuf 7.x runtime.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto")
PREFIX = "mobconv_tf"


def proto_files() -> list:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "*.proto")))


def generate() -> dict:
    """Run protoc on every proto/*.proto; {"graph_pb2.py": bytes, ...}."""
    names = proto_files()
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, PREFIX))
        for name in names:
            shutil.copy(os.path.join(HERE, name), os.path.join(tmp, PREFIX, name))
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp}", f"--python_out={out}"]
        cmd += [f"{PREFIX}/{name}" for name in names]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"protoc failed: {result.stderr.strip()}")
        generated = {}
        for name in names:
            module = name[:-len(".proto")] + "_pb2.py"
            with open(os.path.join(out, PREFIX, module), "rb") as f:
                text = f.read()
            generated[module] = re.sub(rb"^from " + PREFIX.encode() + rb" import ", b"from . import ",
                                       text, flags=re.M)
        return generated


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fresh = generate()
    if "--check" in argv:
        stale = []
        for module, data in fresh.items():
            path = os.path.join(HERE, module)
            if not os.path.isfile(path) or open(path, "rb").read() != data:
                stale.append(module)
        extra = sorted(set(os.path.basename(p) for p in glob.glob(os.path.join(HERE, "*_pb2.py")))
                       - set(fresh))
        if stale or extra:
            print(f"stale in {HERE}: {', '.join(stale + extra)}: run "
                  "python -m mobconv.frontends.tensorflow.generate_proto")
            return 1
        return 0
    for module, data in fresh.items():
        with open(os.path.join(HERE, module), "wb") as f:
            f.write(data)
    print(f"wrote {len(fresh)} modules in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
