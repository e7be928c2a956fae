"""The .mob model file: schema (mobconv.fbs), generated accessors (fb/), reader and writer.

    from mobconv.formats import to_bytes, write_model, from_bytes, read_model
"""
from .reader import from_bytes, read_model
from .version import FORMAT_VERSION
from .writer import to_bytes, write_model

__all__ = ["FORMAT_VERSION", "from_bytes", "read_model", "to_bytes", "write_model"]
