"""Input and output: HDF5 selection, metadata, validation, row blocks, atomic writers."""

from geomkit.io.selection import Selection, parse_selection
from geomkit.io.source import Block, EmbeddingSource, Metadata, open_source
from geomkit.io.writers import atomic_path, write_json, write_per_item, write_text

__all__ = [
    "Selection", "parse_selection", "Block", "EmbeddingSource", "Metadata", "open_source",
    "atomic_path", "write_json", "write_per_item", "write_text",
]
