"""geomkit — look inside stored embedding matrices.

Library use mirrors the CLI: open a dump with :func:`geomkit.open_source`, pass the source to an
analysis function (``geomkit.analysis.<name>.compute_<name>``), render the result with
:mod:`geomkit.report`.
"""

__version__ = "0.1.0"

from geomkit.errors import GeomkitError, InputError, GateFailed  # noqa: E402
from geomkit.io.source import EmbeddingSource, open_source  # noqa: E402

__all__ = ["__version__", "GeomkitError", "InputError", "GateFailed", "EmbeddingSource", "open_source"]
