"""The management API (``/api/v1``): what the CLI and a UI need, one module per resource.

The package itself imports nothing, so the CLI can use its schemas without loading FastAPI.
"""
