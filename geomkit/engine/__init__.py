"""Blockwise computations shared by every analysis: row sums and unit rows, streaming moments,
row statistics, kNN, and the one pass executor (local or Dask).

Everything here consumes row blocks and keeps mergeable accumulators (``fresh`` and ``merge``),
so the same code runs over local blocks or Dask partitions (:mod:`geomkit.engine.executor`).
"""

from geomkit.engine.executor import DaskExecutor, LocalExecutor
from geomkit.engine.moments import (MomentAccumulator, Moments, RowStatAccumulator, RowStats,
                                    eigh_descending, run_pass, streaming_moments, streaming_row_stats)

__all__ = ["DaskExecutor", "LocalExecutor", "MomentAccumulator", "Moments", "RowStatAccumulator",
           "RowStats", "eigh_descending", "run_pass", "streaming_moments", "streaming_row_stats"]
