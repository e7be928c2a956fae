"""TensorFlow math op converters (placeholder until its owner fills it)."""
