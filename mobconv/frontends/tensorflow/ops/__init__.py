"""TensorFlow op converters, one module per op family; importing this package
registers them all in `registry.TF_OPS`.

Owners: nn, conv, activation, quant ([tfnn]); tensor, math, control ([tftensor]).
"""
from . import activation, control, conv, math, nn, quant, tensor  # noqa: F401
