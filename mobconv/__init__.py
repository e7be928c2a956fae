"""mobconv: convert Caffe / TensorFlow / ONNX models to `.mob` and run them."""
__version__ = "0.1.0"

from .api import Model, convert, load  # noqa: E402  (api reads __version__)
from .errors import MobconvError  # noqa: E402

__all__ = ["__version__", "Model", "convert", "load", "MobconvError"]
