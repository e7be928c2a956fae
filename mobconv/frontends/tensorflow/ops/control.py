"""TensorFlow control op converters (placeholder until its owner fills it)."""
