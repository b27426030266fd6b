"""Profilers (one module per device) and how their outputs are named and written."""
