"""Package discovery with the ``kernels/`` → ``gpu_engine.kernels`` mapping (everything else
is in pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gpu_engine", "gpu_engine.*"]), "gpu_engine.kernels"],
    package_dir={"gpu_engine.kernels": "kernels"},
)
