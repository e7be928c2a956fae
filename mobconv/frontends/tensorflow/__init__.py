"""TensorFlow frontend: not built yet (it is planned: frozen GraphDef and SavedModel).

Until it lands, `mobconv.convert("model.pb")` says so in one line and points to
the route that works today: tf2onnx, then `mobconv onnx2mob`.
"""
from ...errors import UsageError


def load_tensorflow(path, input_shapes=None, **options):
    raise UsageError(
        f"{path}: TensorFlow models are not supported yet; convert to ONNX first "
        "(pip install tf2onnx; python -m tf2onnx.convert --graphdef model.pb "
        "--inputs IN:0 --outputs OUT:0 --output model.onnx) and run `mobconv onnx2mob model.onnx`"
    )
