# The real metadata is in pyproject.toml; this shim serves tools that still call setup.py.
from setuptools import find_packages, setup

setup(packages=find_packages(exclude=["order_tracking_tests", "order_tracking_tests.*"]))
