"""Command-line interface: ``gpu-engine`` (see :mod:`gpu_engine.cli.main`)."""
