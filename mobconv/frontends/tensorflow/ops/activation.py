"""TensorFlow activation op converters (placeholder until its owner fills it)."""
