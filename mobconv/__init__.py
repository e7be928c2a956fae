"""mobconv: convert Caffe / TensorFlow / ONNX models to `.mob` and run them."""
__version__ = "0.1.0"
