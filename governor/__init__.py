"""Governor: workflows that read a source database, mask, subset or generate data, and write a target."""

__version__ = "0.1.0"
