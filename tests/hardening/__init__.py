"""Faults, concurrency, bad input and secrets, each injected into a real run (issue #5)."""
