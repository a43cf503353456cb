"""geomkit — look inside stored embedding matrices.

Library use mirrors the CLI: make a :class:`geomkit.Space` — ``Space.open("emb.h5")`` for a dump
(HDF5 or ``.npy``), ``Space.from_array(x, ids=..., texts=...)`` for an array — pass it to an
analysis (``geomkit.analysis.<name>.compute_<name>(space, ...)``), and render the result with
:mod:`geomkit.report` (``geomkit.report.html.render_html(result)``). The space computes the
products several analyses share (moments, row statistics, spectrum, kNN graph) once.
:func:`geomkit.open_source` opens the underlying reader of a file.
"""

__version__ = "0.1.0"

from geomkit.errors import GeomkitError, InputError, GateFailed, UsageError  # noqa: E402
from geomkit.io.source import EmbeddingSource, open_source  # noqa: E402
from geomkit.space import Space  # noqa: E402

__all__ = ["__version__", "GeomkitError", "InputError", "GateFailed", "UsageError",
           "EmbeddingSource", "Space", "open_source"]
