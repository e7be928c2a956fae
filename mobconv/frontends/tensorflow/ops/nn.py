"""TensorFlow nn op converters (placeholder until its owner fills it)."""
