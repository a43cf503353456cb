"""Blockwise computations shared by every analysis: the row sweep (kernels), streaming moments,
row statistics, kNN.

Everything here consumes row blocks (from :meth:`geomkit.io.EmbeddingSource.blocks`) and keeps
mergeable accumulators (``merge``), so the same code runs over local blocks or Dask partitions.
"""

from geomkit.engine.moments import (MomentAccumulator, Moments, RowStatAccumulator, RowStats,
                                    eigh_descending, run_pass, streaming_moments, streaming_row_stats)

__all__ = ["MomentAccumulator", "Moments", "RowStatAccumulator", "RowStats", "eigh_descending", "run_pass",
           "streaming_moments", "streaming_row_stats"]
