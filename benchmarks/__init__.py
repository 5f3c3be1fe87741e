"""Benchmarks of aiosessions against chuk-sessions and bare floors.

Run ``make bench`` (or ``python -m benchmarks --help``) from the repository
root. They measure speed and memory; the tests live in ``tests/``.
"""
