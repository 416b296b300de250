"""Conformance suite: recorded real-Azure traffic replayed against the emulator (see suite.py, SOURCES.md)."""
