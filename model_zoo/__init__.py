"""Recipes that build small reference models in each source format (see model_zoo/<format>/)."""
