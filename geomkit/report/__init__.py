"""Rendering: result -> table | json | csv, result -> plotly figures -> one self-contained HTML."""
