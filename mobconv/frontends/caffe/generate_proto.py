"""Regenerate caffe_pb2.py from caffe.proto (never edit caffe_pb2.py by hand).

    python -m mobconv.frontends.caffe.generate_proto          # rewrite caffe_pb2.py
    python -m mobconv.frontends.caffe.generate_proto --check  # exit 1 if it is stale

Uses grpcio-tools' bundled protoc (`python -m grpc_tools.protoc`), so no system
protoc is needed. Generated with grpcio-tools 1.85 (libprotoc 35.1); the code
imports with the protobuf 7.x runtime (it requires protobuf >= the protoc's
runtime version that it names in its header).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = "caffe.proto"
OUTPUT = os.path.join(HERE, "caffe_pb2.py")


def generate() -> bytes:
    """Run protoc on caffe.proto and return the generated module's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={tmp}", PROTO]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"protoc failed on {PROTO}: {result.stderr.strip()}")
        with open(os.path.join(tmp, "caffe_pb2.py"), "rb") as f:
            return f.read()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fresh = generate()
    if "--check" in argv:
        with open(OUTPUT, "rb") as f:
            if f.read() != fresh:
                print(f"{OUTPUT} is stale: run python -m mobconv.frontends.caffe.generate_proto")
                return 1
        return 0
    with open(OUTPUT, "wb") as f:
        f.write(fresh)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
