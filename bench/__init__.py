"""Benchmarks of djust's upload path (``bench/run.py``); not part of the test suite."""
