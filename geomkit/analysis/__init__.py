"""Analyses: one module per concern, pure numerics. ``compute_<name>(source, *, ...) -> Result``."""
