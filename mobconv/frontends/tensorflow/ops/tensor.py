"""TensorFlow tensor op converters (placeholder until its owner fills it)."""
