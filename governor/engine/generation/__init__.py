"""GENERATION mode: new rows drawn from what the engine learns of the source tables."""

from governor.engine.generation.run import Generation

__all__ = ["Generation"]
