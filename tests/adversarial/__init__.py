"""Attacks on the invariants in DESIGN.md: each test is one attempt that must fail."""
