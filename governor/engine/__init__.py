"""The data engine: a library with no HTTP and no metadata store. Given a config, a source and a
target, it plans and runs the transformation."""
