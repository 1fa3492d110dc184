"""Benchmark tooling, run as scripts (`python bench/fleet.py`); its tests are in bench/tests/."""
