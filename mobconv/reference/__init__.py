from .interpreter import run

__all__ = ["run"]
