"""Benchmarks: `make bench` (or `python -m benchmarks`) runs them all and prints ratios
against a baseline measured in the same run."""
