"""The :class:`Space`: one validated view of an embedding matrix, between input and analysis.

A Space wraps one view of a dump — file and dataset (HDF5, or a ``.npy`` array), layer of a
stack, vector prefix (``dims``), row sample, metadata — or an in-memory array
(:meth:`Space.from_array`). It is the only way analyses reach the data:

- **one row policy**: non-finite rows are an error (or dropped and counted with
  ``drop_nonfinite``); all-zero rows are an error for every cosine/unit measure (or dropped and
  counted with ``drop_zero``, for every analysis alike); rows are unit-normalised in one place
  (:func:`geomkit.engine.rows.unit_rows`);
- **one pass executor** (:mod:`geomkit.engine.executor`): local in-process by default, Dask as a
  drop-in (``executor=DaskExecutor(...)``); analyses hand it accumulators (:meth:`run`);
- **shared products, computed once** and cached: :meth:`moments` and :meth:`row_stats` (fused
  into one read when both are needed: :meth:`products`), :meth:`spectrum`,
  :meth:`unit_sample`, :meth:`matrix`, :meth:`duplicates` and :meth:`knn` (the exact kNN graph,
  reused by every hubness reduction and by k-NN error).

Analyses are ``compute_x(space, **params) -> XResult``; they also accept what
:func:`geomkit.open_source` returns (wrapped by :func:`as_space`).
"""

from __future__ import annotations

import numpy as np

from geomkit.engine.executor import LocalExecutor
from geomkit.errors import InputError
from geomkit.io.source import DEFAULT_MEMORY, ArraySource, EmbeddingSource, open_source


class Space:
    """A validated view of embeddings with its cached products. Make one with
    :meth:`Space.open` (a file), :meth:`Space.from_array` (an array) or :func:`as_space`."""

    def __init__(self, source: EmbeddingSource, *, executor=None, transform=None,
                 transform_name: str | None = None, nonzero: bool = False):
        self.source = source
        self.executor = executor or LocalExecutor()
        self.transform = transform  # applied to every block after validation (derived spaces)
        self.transform_name = transform_name
        self.nonzero = nonzero  # every pass refuses all-zero input rows (e.g. normalize first)
        self._cache: dict = {}

    # ------------------------------------------------------------------ making one
    @classmethod
    def open(cls, spec, *, layer: int | None = None, dims: int | None = None,
             sample: int | None = None, seed: int = 0, drop_nonfinite: bool = False,
             drop_zero: bool = False, allow_external: bool = False,
             metadata_names: dict | None = None, memory: int = DEFAULT_MEMORY,
             layer_required: bool = True, executor=None) -> "Space":
        """Open ``PATH[:DATASET]`` (HDF5) or a ``.npy`` file read-only and validate it."""
        return cls(open_source(spec, layer=layer, dims=dims, sample=sample, seed=seed,
                               drop_nonfinite=drop_nonfinite, drop_zero=drop_zero,
                               allow_external=allow_external, metadata_names=metadata_names,
                               memory=memory, layer_required=layer_required),
                   executor=executor)

    @classmethod
    def from_array(cls, x, *, ids=None, texts=None, labels=None, counts=None,
                   name: str = "array", layer: int | None = None, dims: int | None = None,
                   sample: int | None = None, seed: int = 0, drop_nonfinite: bool = False,
                   drop_zero: bool = False, memory: int = DEFAULT_MEMORY,
                   layer_required: bool = True, executor=None) -> "Space":
        """A Space over an in-memory ``(N, d)`` array (or ``(N, L, d)`` stack) and optional
        per-row metadata; the same numbers as the same rows stored in HDF5."""
        return cls(ArraySource(x, name=name, ids=ids, texts=texts, labels=labels, counts=counts,
                               layer=layer, dims=dims, sample=sample, seed=seed,
                               drop_nonfinite=drop_nonfinite, drop_zero=drop_zero,
                               memory=memory, layer_required=layer_required),
                   executor=executor)

    def _derive(self, source: EmbeddingSource) -> "Space":
        return Space(source, executor=self.executor, transform=self.transform,
                     transform_name=self.transform_name, nonzero=self.nonzero)

    def view(self, *, layer=..., dims=...) -> "Space":
        """Another layer and/or prefix of the same rows (its own products)."""
        return self._derive(self.source.view(layer=layer, dims=dims))

    def views(self, layers: str | None = None, dims: list[int] | None = None
              ) -> list[tuple[str | None, int | None, "Space"]]:
        """The views of a layer or prefix sweep: ``[(kind, value, space), ...]`` with kind
        "layer" (``layers="all"``) or "dims" (several ``dims``); ``[(None, None, self)]``
        otherwise."""
        return [(kind, value, self if view is self.source else self._derive(view))
                for kind, value, view in self.source.sweep(layers, dims)]

    def subset(self, rows: np.ndarray, name: str | None = None) -> "Space":
        """The given original rows only (e.g. the rows of one label)."""
        return self._derive(self.source.subset(rows, name))

    def transformed(self, transform, name: str, *, nonzero: bool = False) -> "Space":
        """The same rows with ``transform`` applied to every block (its own products);
        ``nonzero``: the transform needs a direction (normalize), so every pass refuses
        all-zero input rows (or drops them with ``drop_zero``)."""
        return Space(self.source, executor=self.executor, transform=transform,
                     transform_name=name, nonzero=nonzero or self.nonzero)

    # a Space travels to Dask workers (paired passes) without its executor and its cache
    def __getstate__(self):
        state = dict(self.__dict__)
        state["executor"] = LocalExecutor()
        state["_cache"] = {}
        return state

    # ------------------------------------------------------------------ the view
    @property
    def label(self) -> str:
        return self.source.label

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def d(self) -> int:
        if self.transform is not None and hasattr(self.transform, "output_dim"):
            return self.transform.output_dim(self.source.d)
        return self.source.d

    @property
    def n(self) -> int:
        """Rows analysed (after sampling and dropping)."""
        return self.source.n

    @property
    def n_selected(self) -> int:
        return self.source.n_selected

    @property
    def metadata(self):
        return self.source.metadata

    @property
    def seed(self) -> int:
        return self.source.seed

    @property
    def memory(self) -> int:
        return self.source.memory

    @property
    def compute_dtype(self) -> np.dtype:
        return self.source.compute_dtype

    @property
    def rows(self) -> np.ndarray:
        return self.source.rows

    @property
    def n_dropped(self) -> int:
        """Rows dropped (non-finite and, with ``drop_zero``, all-zero); 0 before any pass."""
        return int(self.source.n_dropped or 0)

    @property
    def n_dropped_zero(self) -> int:
        return int(self.source.n_dropped_zero or 0)

    def dropped(self) -> dict:
        """The JSON keys every result carries about dropped rows."""
        return {"n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero}

    # ------------------------------------------------------------------ data access
    def run(self, *consumers, unit: bool = False, nonzero: bool = False, dtype=None,
            progress: str | None = None) -> None:
        """One pass over the rows feeding every accumulator (the pass executor)."""
        self.executor.run(self.source, list(consumers), transform=self.transform, unit=unit,
                          nonzero=nonzero or self.nonzero, dtype=dtype, progress=progress)

    def blocks(self, **options):
        """Validated row blocks (the transform applied), for passes that are not accumulators
        (writing a file)."""
        if self.nonzero:
            options["nonzero"] = True
        for blk in self.source.blocks(**options):
            if self.transform is not None:
                blk.x = self.transform(blk.x)
            yield blk

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The given original rows (sorted), in the compute dtype, the transform applied."""
        x = np.asarray(self.source.read_rows(rows), dtype=self.compute_dtype)
        return self.transform(x) if self.transform is not None else x

    def matrix(self, *, nonzero: bool = False, max_bytes: int | None = None):
        """All rows in memory, ``(rows, X)`` (cached): kNN, small dumps."""
        key = ("matrix", nonzero)
        if key not in self._cache:
            if not nonzero and ("matrix", True) in self._cache:
                return self._cache[("matrix", True)]
            rows, x = self.source.to_array(max_bytes=max_bytes, nonzero=nonzero)
            if self.transform is not None:
                x = self.transform(x)
            self._cache[key] = (rows, x)
        return self._cache[key]

    # ------------------------------------------------------------------ shared products
    def products(self, *names: str, nonzero: bool = False, progress: str | None = None):
        """The products named ("moments", "row_stats") in one fused pass for those not cached
        yet. ``nonzero``: all-zero rows are an error (cosine measures), also when the products
        came from an earlier pass."""
        missing = [name for name in names if name not in self._cache]
        if missing:  # the pass itself refuses zero rows when asked
            self.run_with(products=missing, nonzero=nonzero, progress=progress)
        elif nonzero and not self.source._nonzero_checked:
            if "row_stats" in self._cache:
                self._refuse_zero_rows(self._cache["row_stats"])
            else:
                self.products("row_stats", nonzero=True, progress=progress)
        return tuple(self._cache[name] for name in names)

    def run_with(self, *consumers, products=(), nonzero: bool = False,
                 progress: str | None = None) -> None:
        """One pass feeding ``consumers`` that also computes the named shared products
        ("moments", "row_stats") not cached yet, fused into the same read."""
        from geomkit.engine.moments import MomentAccumulator, RowStatAccumulator

        makers = {"moments": MomentAccumulator, "row_stats": RowStatAccumulator}
        missing = [name for name in dict.fromkeys(products) if name not in self._cache]
        accs = [makers[name]() for name in missing]
        self.run(*consumers, *accs, nonzero=nonzero, progress=progress)
        for name, acc in zip(missing, accs):
            self._cache[name] = acc.result()

    def _refuse_zero_rows(self, stats) -> None:
        zero = np.flatnonzero(stats.norms == 0)
        if zero.size:
            rows = zero if stats.rows is None else stats.rows[zero]
            raise self.source._zero_error(rows)

    def moments(self, *, scatter: bool = True, progress: str | None = None):
        """n, mean and centred scatter (float64) of the rows (:class:`Moments`); with
        ``scatter=False`` the mean alone may come back (``scatter`` None) when the full moments
        were not computed yet (a pass without the d×d product)."""
        if scatter or "moments" in self._cache:
            return self.products("moments", progress=progress)[0]
        if "mean" not in self._cache:
            from geomkit.engine.moments import MomentAccumulator

            acc = MomentAccumulator(scatter=False)
            self.run(acc, progress=progress)
            self._cache["mean"] = acc.result()
        return self._cache["mean"]

    def row_stats(self, *, progress: str | None = None):
        """Per-row norms, Σx, Σx̂, Σ‖x‖ (:class:`RowStats`)."""
        return self.products("row_stats", progress=progress)[0]

    def spectrum(self, *, centred: bool = True, progress: str | None = None):
        """Eigenvalues (descending) and eigenvectors of the covariance (ddof = 1), or of the
        uncentred scatter XᵀX with ``centred=False``."""
        from geomkit.engine.moments import eigh_descending

        key = ("spectrum", centred)
        if key not in self._cache:
            m = self.moments(progress=progress)
            self._cache[key] = eigh_descending(
                m.cov() if centred else m.scatter + m.n * np.outer(m.mean, m.mean))
        return self._cache[key]

    def unit_sample(self, count: int, seed: int | None = None):
        """``(rows, unit vectors)`` of all rows, or of a seeded sample of ``count`` of them
        (sorted original rows), in memory; the rows come from :meth:`row_stats`' pass."""
        from geomkit.engine.moments import row_numbers
        from geomkit.engine.rows import unit_rows

        seed = self.seed if seed is None else seed
        key = ("unit_sample", count, seed)
        if key not in self._cache:
            stats = self.row_stats()
            rows = stats.rows
            total = stats.n
            if count < total:
                pick = np.random.default_rng(seed).choice(total, size=count, replace=False)
                rows = np.sort(pick if rows is None else rows[pick])
            else:
                rows = row_numbers(rows, total)
            self._cache[key] = (rows, unit_rows(self.read_rows(rows)))
        return self._cache[key]

    def duplicates(self, *, nonzero: bool = False):
        """The lowest equal row (position) of every row of :meth:`matrix` (exact copies)."""
        from geomkit.engine.duplicates import duplicate_representatives

        if "duplicates" not in self._cache:
            self._cache["duplicates"] = duplicate_representatives(self.matrix(nonzero=nonzero)[1])
        return self._cache["duplicates"]

    def knn(self, k: int, metric: str = "cosine", *, device: str | None = None,
            float64: bool = False):
        """The exact k nearest neighbours of every row (self excluded; copies at distance 0),
        computed once per metric for the largest k asked and sliced for smaller ones (the
        lists are ordered by distance, then row, so a prefix is the smaller graph).

        ``float64`` (euclidean only): lists exact under float64 distances ‖x_i − x_j‖, which
        ``distances`` then holds (:func:`geomkit.engine.knn_certified.float64_knn`: the
        certified bfloat16 search where the CPU has it)."""
        from geomkit.engine.knn import KnnResult, exact_knn

        if float64 and metric != "euclidean":
            raise ValueError("float64 lists are euclidean")
        key = ("knn", metric, float64)
        cached = self._cache.get(key)
        if cached is None or cached.k < k:
            from geomkit.engine.knn_certified import float64_knn, usable

            x = self.matrix(nonzero=metric == "cosine")[1]
            # the certified search needs no copy groups (copies are at float64 distance 0)
            dups = (None if float64 and usable(x, device) else
                    self.duplicates(nonzero=metric == "cosine"))
            if float64:
                cached = float64_knn(x, k, memory=self.memory, device=device, duplicates=dups)
            else:
                cached = exact_knn(x, k, metric=metric, memory=self.memory, device=device,
                                   duplicates=dups)
            self._cache[key] = cached
        if cached.k == k:
            return cached
        return KnnResult(cached.indices[:, :k], cached.distances[:, :k], metric,
                         search=cached.search)

    def close(self) -> None:
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Space({self.label!r}, d={self.d})"


def as_space(obj) -> Space:
    """A :class:`Space` for what an analysis was given: a Space, a source from
    :func:`geomkit.open_source`, or an array (wrapped as :meth:`Space.from_array`)."""
    if isinstance(obj, Space):
        return obj
    if isinstance(obj, EmbeddingSource):
        space = getattr(obj, "_space", None)  # one Space (and cache) per source
        if space is None:
            space = obj._space = Space(obj)
        return space
    if isinstance(obj, np.ndarray):
        return Space.from_array(obj)
    raise InputError(f"expected a geomkit Space, a source or an array, got {type(obj).__name__}.")
