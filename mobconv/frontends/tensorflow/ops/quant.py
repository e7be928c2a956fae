"""TensorFlow quant op converters (placeholder until its owner fills it)."""
