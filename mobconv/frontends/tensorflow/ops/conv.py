"""TensorFlow conv op converters (placeholder until its owner fills it)."""
