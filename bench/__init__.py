"""Benchmarks of the gateway, run one process each by `bench/run.py`."""
