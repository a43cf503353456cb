"""``geomkit report``: every analysis that applies to a dump, run on one Space, read in plain words.

What runs is decided by what the input holds:

- always: norms (per label with labels; norm vs frequency with counts), isotropy (per layer on a
  layer stack), hubness (k = 10, reductions none / mp / csls; the k-NN error with labels), the
  intrinsic geometry (``geomkit intdim`` with its defaults: TwoNN, MLE, GRIDE, lPCA and the
  per-item LID, k = 20) and a map of the space (2-D PCA of every row, from the covariance the
  isotropy pass computed);
- with ``other`` (``--vs OTHER``): the depth test, ``compare`` and, when the rows pair (ids in
  both, or the same number of rows), a supervised ``translate`` map evaluated on held-out pairs.

``quick``: the O(N²) parts (hubness, intdim's exact k-NN graph, and the k-NN metrics of compare,
which already sample beyond their ``knn_items``) use a seeded sample of ``quick_rows`` rows —
exactly the rows ``--sample quick_rows --seed SEED`` selects, so the command line printed with
each section reproduces its numbers — while the O(N·d) passes (norms, isotropy, depth, the
map's projection, compare's CKA) read every row. Every section records the geomkit command line that reproduces it; a section
that cannot run (an analysis that does not apply, an input it refuses) is kept with its reason
and the others go on.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import numpy as np

from geomkit.errors import GeomkitError
from geomkit.report.result import Result

QUICK_ROWS = 40_000
MAP_POINTS = 200_000
HUBNESS_REDUCE = ("none", "mp", "csls")
INTDIM_K = 20  # geomkit intdim's default -k (the report's -k is hubness's and compare's)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    argv: list
    result: Result | None = None
    error: str | None = None
    sample: int | None = None  # rows of the seeded sample the section used (None: all)

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(str(a)) for a in self.argv)


@dataclass(frozen=True)
class SpaceMap:
    """A 2-D map of the rows shown (all, or a seeded sample) — PCA, or UMAP with the optional
    extra — with the values the page can colour them by: ``colours[name] = (values, "numeric" |
    "category")``. ``explained``: PCA's variance shares (None for UMAP)."""

    rows: np.ndarray
    xy: np.ndarray
    explained: tuple | None
    colours: dict
    ids: np.ndarray | None
    texts: np.ndarray | None
    n_total: int
    method: str = "pca"


@dataclass(frozen=True)
class Verdict:
    concern: str
    light: str  # green, amber, red, grey (information, no judgement)
    text: str
    key: str = ""
    value: float | None = None


@dataclass(frozen=True)
class ReportResult(Result):
    label: str
    n: int
    d: int
    quick: bool
    sections: tuple
    verdicts: tuple = ()
    space_map: SpaceMap | None = field(repr=False, default=None)
    other_label: str | None = None
    command: str = "report"

    @property
    def title(self):
        return f"geomkit report {self.label}" + (f" vs {self.other_label}" if self.other_label
                                                 else "")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def to_dict(self) -> dict:
        out = {"input": self.label, "vs": self.other_label, "n": self.n, "d": self.d,
               "quick": self.quick,
               "summary": [{"concern": v.concern, "light": v.light, "text": v.text,
                            "key": v.key or None, "value": v.value} for v in self.verdicts]}
        if self.space_map is not None:
            m = self.space_map
            out["map"] = {"method": m.method, "points": int(m.rows.size), "of": m.n_total,
                          "explained": None if m.explained is None else list(m.explained),
                          "colours": list(m.colours)}
        for s in self.sections:
            body = s.result.to_dict() if s.result is not None else {"error": s.error}
            out[s.name] = {**body, "command_line": s.command_line, "sample": s.sample}
        return out


def _sample_rows(space, count: int, seed: int) -> np.ndarray:
    """The rows ``--sample count --seed seed`` selects (among those the space keeps)."""
    total = space.source.n_total
    rows = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    return rows[np.isin(rows, space.rows)]


def run_report(space, spec: str, *, other=None, other_spec: str | None = None, k: int = 10,
               quick: bool = False, quick_rows: int = QUICK_ROWS, seed: int = 0,
               map_points: int = MAP_POINTS, map_method: str = "pca", extra_argv: tuple = (),
               log=None) -> ReportResult:
    """Run every section that applies (module docstring); ``spec``/``other_spec`` are the
    inputs as given on the command line (for the reproducing command lines), ``extra_argv``
    the reader options given (``--layer 3``, ``--drop-nonfinite`` ...)."""
    from geomkit.analysis.check import run_command
    from geomkit.space import as_space

    space = as_space(space)
    log = log or (lambda message: None)
    meta = space.metadata
    sections = []
    extra = list(extra_argv)

    def run(name, title, argv, fn, sample=None):
        log(f"geomkit: report: {name}")
        try:
            sections.append(Section(name, title, argv, result=fn(), sample=sample))
        except GeomkitError as exc:
            sections.append(Section(name, title, argv, error=exc.cli_message(), sample=sample))
        except MemoryError:
            sections.append(Section(name, title, argv, sample=sample,
                                    error="out of memory; use --quick or a smaller --sample."))

    # the input itself first: non-finite rows are the input's problem, not a section's (exit 3,
    # naming --drop-nonfinite, as every command); the pass is the one norms and isotropy share
    log("geomkit: report: reading every row")
    space.products("row_stats", "moments", progress="report: read")
    if other is not None:
        other.products("row_stats", "moments", progress="report: read OTHER")
    labels_opt = ["--labels", "labels"] if meta.labels is not None else []
    run("norms", "Norms", ["geomkit", "norms", spec, *labels_opt, *extra],
        lambda: run_command("norms", space))
    stack = space.source.n_layers is not None
    if stack:
        from geomkit.analysis.isotropy import compute_isotropy
        from geomkit.report.result import SweepResult

        def sweep():
            views = space.views("all", None)
            return SweepResult(views[0][0], [v for _, v, _ in views],
                               tuple(compute_isotropy(view, seed=seed) for _, _, view in views))
        run("isotropy", "Isotropy, layer by layer",
            ["geomkit", "isotropy", spec, "--layer", "all", *_without_layer(extra)], sweep)
    else:
        run("isotropy", "Isotropy", ["geomkit", "isotropy", spec, *extra],
            lambda: run_command("isotropy", space, seed=seed))
    hub_space, hub_sample = space, None
    if quick and space.n > quick_rows:
        rows = _sample_rows(space, quick_rows, seed)
        hub_space, hub_sample = space.subset(rows, f"sample of {rows.size}"), int(rows.size)
    hub_argv = ["geomkit", "hubness", spec, "-k", str(k), "--reduce", ",".join(HUBNESS_REDUCE),
                *(["--knn-error"] if meta.labels is not None else []), *extra]
    if hub_sample is not None:
        hub_argv += ["--sample", str(quick_rows), "--seed", str(seed)]
    from geomkit.engine import ann

    # the sections search exactly; from APPROXIMATE_FROM rows the commands default to the
    # approximate search, so their printed lines say --exact to reproduce these numbers
    exact_opt = ["--exact"] if hub_space.n >= ann.APPROXIMATE_FROM else []
    hub_argv += exact_opt
    run("hubness", "Hubness", hub_argv,
        lambda: run_command("hubness", hub_space, k=k, hubness_reduce=HUBNESS_REDUCE),
        sample=hub_sample)
    # intrinsic geometry: an exact k-NN graph like hubness, so on the same rows (the --quick
    # sample beyond quick_rows; the matrix hubness read is cached), intdim's defaults otherwise
    from geomkit.analysis.intdim import compute_intdim

    intdim_argv = ["geomkit", "intdim", spec, "-k", str(INTDIM_K), *extra]
    if hub_sample is not None:
        intdim_argv += ["--sample", str(quick_rows), "--seed", str(seed)]
    intdim_argv += exact_opt
    run("intdim", "Intrinsic geometry: how many dimensions does the space use?", intdim_argv,
        lambda: compute_intdim(hub_space, k=INTDIM_K), sample=hub_sample)
    if other is not None:
        run("depth", "Depth: has OTHER drifted away from INPUT?",
            ["geomkit", "depth", spec, other_spec, *extra],
            lambda: run_command("depth", space, other))
        run("compare", "Compare: how alike are the two spaces?",
            ["geomkit", "compare", spec, other_spec, "-k", str(k), "--seed", str(seed),
             *_without_seed(extra)],
            lambda: run_command("compare", space, other, k=k, seed=seed))
        pairable = (meta.ids is not None and other.metadata.ids is not None) or \
            space.n == other.n
        if pairable:
            from geomkit.analysis.translate import compute_translate_fit

            run("translate", "Translate: a map from INPUT's space into OTHER's",
                ["geomkit", "translate", "fit", spec, other_spec, "-o", "map.h5",
                 "--train-fraction", "0.8", "--seed", str(seed), *extra],
                lambda: compute_translate_fit(space, other, train_fraction=0.8, seed=seed)[1])
    space_map = None
    log("geomkit: report: map")
    try:
        space_map = project(space, seed=seed, max_points=map_points, method=map_method,
                            hubness=_result(sections, "hubness"), hub_space=hub_space,
                            norms=_result(sections, "norms"),
                            isotropy=_result(sections, "isotropy"))
    except GeomkitError as exc:
        sections.append(Section("map", "Map of the space", [], error=exc.cli_message()))
    result = ReportResult(label=space.label, n=space.n, d=space.d, quick=quick,
                          sections=tuple(sections), space_map=space_map,
                          other_label=None if other is None else other.label)
    from geomkit.analysis.check import verdicts

    return ReportResult(**{**result.__dict__, "verdicts": tuple(verdicts(result))})


def _without_seed(argv: list) -> list:
    return [a for i, a in enumerate(argv)
            if a != "--seed" and not (i > 0 and argv[i - 1] == "--seed")]


def _without_layer(argv: list) -> list:
    return [a for i, a in enumerate(argv)
            if a != "--layer" and not (i > 0 and argv[i - 1] == "--layer")]


def _result(sections, name):
    s = next((s for s in sections if s.name == name), None)
    return None if s is None else s.result


def _values_at(rows: np.ndarray, values: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """``values`` (one per entry of the sorted ``rows``) at the ``shown`` rows; NaN where a
    shown row has none (a zero row has no cosine, a row outside the hubness sample no
    k-occurrence)."""
    out = np.full(shown.size, np.nan)
    if rows.size:
        idx = np.minimum(np.searchsorted(rows, shown), rows.size - 1)
        ok = rows[idx] == shown
        out[ok] = values[idx[ok]]
    return out


def umap_available() -> bool:
    from importlib.util import find_spec

    return find_spec("umap") is not None


def require_umap() -> None:
    """``--map umap`` without the optional extra is a usage error (before any pass runs)."""
    if not umap_available():
        from geomkit.errors import UsageError

        raise UsageError("--map umap needs umap-learn, the optional extra: pip install "
                         "'geomkit[umap]'.")


def project(space, *, seed: int = 0, max_points: int = MAP_POINTS, hubness=None,
            hub_space=None, norms=None, isotropy=None, method: str = "pca") -> SpaceMap:
    """2-D PCA of the rows: the top two eigenvectors of the covariance (shared with isotropy),
    every row projected in one streaming pass (16 bytes a row), then the rows shown: those of
    the hubness sample when hubness ran on one (so every point has its k-occurrence), else all
    rows up to ``max_points`` (a seeded sample beyond). ``method="umap"`` (the optional extra
    ``geomkit[umap]``): UMAP (cosine, seeded) of the shown rows instead."""
    if method == "umap":
        require_umap()
    rows_all = space.rows
    if hub_space is not None and hub_space is not space:
        shown = hub_space.rows
    elif rows_all.size > max_points:
        shown = np.sort(np.random.default_rng(seed).choice(rows_all, max_points, replace=False))
    else:
        shown = rows_all
    if method == "umap":  # the shown rows only; no projection pass
        import umap

        x = np.asarray(space.read_rows(shown), dtype=np.float32)
        xy = umap.UMAP(n_components=2, metric="cosine", random_state=seed,
                       n_jobs=1).fit_transform(x)
        explained = None
    else:
        values, vectors = space.spectrum()
        top = vectors[:, :2]
        mean = space.moments().mean
        xy_all = np.empty((rows_all.size, 2))
        pos = 0
        for blk in space.blocks(progress="map: project"):
            m = blk.x.shape[0]
            xy_all[pos:pos + m] = (np.asarray(blk.x, dtype=np.float64) - mean) @ top
            pos += m
        xy = xy_all[np.searchsorted(rows_all, shown)]
        total = float(values.sum()) or 1.0
        explained = (float(values[0] / total), float(values[1] / total))
    meta = space.metadata
    colours = {}  # the first is shown first: label, k-occurrence, norm, conformity
    if meta.labels is not None:
        colours["label"] = (np.asarray([str(v) for v in meta.labels[shown]], dtype=object),
                            "category")
    if hubness is not None and hubness.rows is not None and hubness.kocc.get("none") is not None:
        colours["k-occurrence (k-NN lists an item is in)"] = (
            _values_at(hubness.rows, hubness.kocc["none"], shown), "numeric")
    if norms is not None and norms.norms is not None:
        colours["norm"] = (_values_at(rows_all if norms.rows is None else norms.rows,
                                      norms.norms, shown), "numeric")
    if isotropy is not None and getattr(isotropy, "conformity", None) is not None:
        colours["conformity (mean cosine to the others = cosine depth − 1)"] = (
            _values_at(rows_all if isotropy.rows is None else isotropy.rows,
                       isotropy.conformity, shown), "numeric")
    return SpaceMap(rows=shown, xy=np.asarray(xy, dtype=np.float64), explained=explained,
                    colours=colours, ids=None if meta.ids is None else meta.ids[shown],
                    texts=None if meta.texts is None else meta.texts[shown],
                    n_total=int(rows_all.size), method=method)
