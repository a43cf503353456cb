"""Options shared by every subcommand, declared once (sqlite-utils style).

``@input_options`` adds the reader's options and passes ``inputs: InputSpec``;
``@output_options`` adds the rendering options and passes ``output: OutputSpec``.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field

import click

from geomkit.errors import GeomkitError, UsageError
from geomkit.io.writers import check_outputs, clean_text
from geomkit.io.source import DEFAULT_MEMORY
from geomkit.space import Space
from geomkit.report.progress import log, set_quiet
from geomkit.report.result import Result, SweepResult

_INPUT_KEYS = ("layer", "dims", "sample", "seed", "drop_nonfinite", "drop_zero", "allow_external",
               "memory")
METADATA_KINDS = ("ids", "texts", "labels", "counts")
_OUTPUT_KEYS = ("fmt", "as_json", "per_item", "html", "quiet")


def _parse_layer(ctx, param, value, *, sweep: bool = True):
    if value is None or (sweep and value == "all"):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter("takes an integer (negative counts from the end)"
                                 + (" or 'all'." if sweep else "; this command analyses one "
                                    "layer.")) from None


def _parse_dims(ctx, param, value, *, sweep: bool = True):
    if value is None:
        return None
    try:
        dims = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter("takes comma-separated integers, e.g. 32,64,128."
                                 if sweep else "takes one integer.") from None
    if not dims or dims[0] < 1:
        raise click.BadParameter("takes positive integers, e.g. 32,64,128.")
    if len(dims) > 1 and not sweep:
        raise click.BadParameter("takes one integer; this command analyses one prefix.")
    return dims


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not match:
        raise ValueError(text)
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _parse_memory(ctx, param, value):
    if value is None:
        return DEFAULT_MEMORY
    try:
        size = parse_size(value)
    except ValueError:
        raise click.BadParameter("takes a size such as 256MB or 2GB.") from None
    if size < 2**20:
        raise click.BadParameter("must be at least 1MB.")
    return size


@dataclass
class InputSpec:
    """How to open inputs: the reader options of one command line."""

    layer: object = None  # None, int or "all"
    dims: list | None = None
    sample: int | None = None
    seed: int = 0
    drop_nonfinite: bool = False
    drop_zero: bool = False
    allow_external: bool = False
    metadata_names: dict = field(default_factory=dict)
    memory: int = DEFAULT_MEMORY
    executor: object = None  # the pass executor of --scheduler (None: in this process)

    def open(self, spec: str, *, layer_required: bool = True) -> Space:
        """The :class:`Space` of ``spec`` as the command line selects it (the first view of a
        sweep; :meth:`run` goes over every view)."""
        layer = -1 if self.layer == "all" else self.layer
        dims = self.dims[0] if self.dims and len(self.dims) == 1 else None
        space = Space.open(spec, layer=layer, dims=dims, sample=self.sample, seed=self.seed,
                           drop_nonfinite=self.drop_nonfinite, drop_zero=self.drop_zero,
                           allow_external=self.allow_external,
                           metadata_names=self.metadata_names, memory=self.memory,
                           layer_required=layer_required, executor=self.executor)
        if self.dims and len(self.dims) > 1 and self.dims[-1] > space.source.d_full:
            space.close()
            raise UsageError(f"{space.label}: --dims {self.dims[-1]} exceeds the "
                             f"{space.source.d_full} dimensions of the vectors.")
        return space

    def run(self, space: Space, compute) -> Result:
        """``compute(space) -> Result`` on the space, or on every view of a sweep."""
        views = space.views(self.layer if self.layer == "all" else None, self.dims)
        if views[0][0] is None:
            return _naming(space, compute)
        results = []
        for kind, value, view in views:
            log(f"geomkit: {kind} {value}")
            results.append(_naming(view, compute))
        return SweepResult(views[0][0], [v for _, v, _ in views], tuple(results))


def _naming(view: Space, compute) -> Result:
    """``compute(view)``; a library error that does not name the file gets the view's label
    in front (the CLI's one sentence always names file and dataset)."""
    try:
        return compute(view)
    except GeomkitError as exc:
        if view.path in str(exc):
            raise
        raise exc.prefixed(view.label) from None


def scheduler_given() -> bool:
    """--scheduler was given on the command line (not only by GEOMKIT_SCHEDULER, which sets a
    default for every command and is ignored where no pass can run on Dask)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx) and ctx.get_parameter_source("scheduler") == click.core.ParameterSource.COMMANDLINE


def input_options(fn=None, *, metadata=METADATA_KINDS, sweep: bool = True, drop: bool = True,
                  scheduler: bool = False):
    """Reader options: --layer, --dims, --sample, --seed, --drop-nonfinite, --drop-zero,
    --allow-external, --memory, and the metadata names the command uses (``metadata``: of
    ids, texts, labels, counts). ``sweep``: --layer all and several --dims values sweep the
    views; without it the command analyses one view and those are usage errors. ``drop``:
    --drop-nonfinite and --drop-zero (not where no analysis runs over the rows). ``scheduler``:
    --scheduler (and GEOMKIT_SCHEDULER), where the command's passes can run on Dask; the cluster
    (or the connection to one) lives while the command runs."""
    if fn is None:
        return functools.partial(input_options, metadata=metadata, sweep=sweep, drop=drop,
                                 scheduler=scheduler)
    meta_help = {"ids": "Dataset with row ids (default: ids).",
                 "texts": "Dataset with row texts (default: texts).",
                 "labels": "Dataset with row labels (default: labels).",
                 "counts": "Dataset with row frequencies (default: counts)."}
    options = [
        click.option("--layer", callback=functools.partial(_parse_layer, sweep=sweep),
                     metavar="INT|all" if sweep else "INT",
                     help="Layer of an (N, L, d) stack" + ("; 'all' sweeps every layer."
                                                           if sweep else ".")),
        click.option("--dims", callback=functools.partial(_parse_dims, sweep=sweep),
                     metavar="K[,K...]" if sweep else "K",
                     help="Use the first K dimensions (Matryoshka prefix)"
                          + ("; several values sweep." if sweep else ".")),
        click.option("--sample", type=click.IntRange(min=2), metavar="N",
                     help="Analyse a random subset of N rows."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for --sample and any other randomness."),
        *([click.option("--drop-nonfinite", is_flag=True,
                        help="Skip rows with NaN/Inf (and report how many) instead of failing."),
           click.option("--drop-zero", is_flag=True,
                        help="Skip all-zero rows (and report how many) instead of failing where "
                             "a cosine measure needs a direction.")] if drop else []),
        click.option("--allow-external", is_flag=True,
                     help="Follow HDF5 external links / virtual sources in other files."),
        *[click.option(f"--{kind}", f"{kind}_name", metavar="DSET", help=meta_help[kind])
          for kind in metadata],
        click.option("--memory", callback=_parse_memory, metavar="SIZE",
                     help="Memory budget for a row block (default 256MB)."),
        *([click.option("--scheduler", envvar="GEOMKIT_SCHEDULER", show_envvar=True,
                        metavar="local:N|tcp://HOST:PORT",
                        help="Run the passes on Dask: local:N starts N worker processes for "
                             "this command, tcp://HOST:PORT uses a running cluster (its workers "
                             "must see the input files at the same paths). Default: in this "
                             "process.")] if scheduler else []),
    ]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from geomkit.engine.cluster import executor_for, parse_scheduler

        values = {k: kwargs.pop(k) for k in _INPUT_KEYS if k in kwargs}
        names = {k: kwargs.pop(f"{k}_name") for k in metadata}
        chosen = kwargs.pop("scheduler", None)
        spec = InputSpec(metadata_names={k: v for k, v in names.items() if v}, **values)
        kwargs["inputs"] = spec
        if parse_scheduler(chosen) is None:
            return fn(*args, **kwargs)
        with executor_for(chosen) as executor:
            spec.executor = executor
            return fn(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@dataclass
class OutputSpec:
    fmt: str | None = None
    per_item: str | None = None
    html: str | None = None
    quiet: bool = False

    @property
    def format(self) -> str:
        if self.fmt:
            return self.fmt
        return "table" if sys.stdout.isatty() else "json"

    def emit(self, result: Result, *, source_label: str = "") -> None:
        """Write --per-item and --html files (atomically), then the result to stdout."""
        from geomkit.io.writers import write_per_item
        from geomkit.report.html import write_html
        from geomkit.report.render import RENDERERS

        if self.per_item:
            table = result.per_item()
            if table is None:
                raise UsageError(f"{result.command} has no per-item values for --per-item.")
            write_per_item(self.per_item, table)
            log(f"geomkit: per-item values written to {self.per_item}")
        if self.html:
            write_html(self.html, result, source_label=source_label)
            log(f"geomkit: HTML report written to {self.html}")
        click.echo(clean_text(RENDERERS[self.format](result).rstrip("\n")))


def output_options(fn=None, *, per_item: bool = True, outputs: tuple = ()):
    """Rendering options: --format/--json, --html, --quiet and, where the command has per-item
    values, --per-item. ``outputs``: the command's own output parameters as
    ``(parameter name, flag)`` pairs (e.g. ``("out", "-o")``).

    Before the command runs, every output path is checked against every input path of the
    command line (any other argument or option naming an existing file, e.g. INPUT, --c0,
    --fit-from) and against the other outputs, by inode: an output that is an input (same path,
    symlink or hardlink) is a usage error before any work starts."""
    if fn is None:
        return functools.partial(output_options, per_item=per_item, outputs=outputs)
    keys = _OUTPUT_KEYS if per_item else tuple(k for k in _OUTPUT_KEYS if k != "per_item")
    options = [
        click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                     help="Output format (default: table on a terminal, json when piped)."),
        click.option("--json", "as_json", is_flag=True, help="Alias of --format json."),
        click.option("--per-item", type=click.Path(dir_okay=False), metavar="PATH",
                     help="Write per-row values (.csv or .h5).") if per_item else None,
        click.option("--html", type=click.Path(dir_okay=False), metavar="PATH",
                     help="Write a self-contained interactive HTML report."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars or log lines on stderr."),
    ]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        values = {k: kwargs.pop(k) for k in keys}
        if values.pop("as_json"):
            if values["fmt"] not in (None, "json"):
                raise click.UsageError("--json conflicts with --format " + values["fmt"] + ".")
            values["fmt"] = "json"
        set_quiet(values["quiet"])
        named = {"--per-item": values.get("per_item"), "--html": values["html"]}
        named.update({flag: kwargs.get(name) for name, flag in outputs})
        written = {flag: path for flag, path in named.items() if path}
        read = [v for name, v in kwargs.items()
                if isinstance(v, str) and name not in dict(outputs)]
        check_outputs(written, read)
        kwargs["output"] = OutputSpec(**values)
        return fn(*args, **kwargs)

    for option in reversed(options):
        if option is not None:
            wrapper = option(wrapper)
    return wrapper


def anchor_options(fn):
    """--anchors N / --anchor-ids FILE (compare, translate fit): relative representations over
    parallel anchors; passes ``anchors`` (int or None) and ``anchor_ids`` (list or None)."""
    @functools.wraps(fn)
    def wrapper(*args, anchors=None, anchor_ids=None, **kwargs):
        from geomkit.analysis.translate import read_anchor_ids

        if anchors is not None and anchor_ids is not None:
            raise UsageError("give --anchors N or --anchor-ids FILE, not both.")
        return fn(*args, anchors=anchors,
                  anchor_ids=read_anchor_ids(anchor_ids) if anchor_ids else None, **kwargs)

    wrapper = click.option("--anchor-ids", type=click.Path(dir_okay=False, exists=True),
                           metavar="FILE",
                           help="The anchors by id, one per line (instead of --anchors N).")(wrapper)
    return click.option("--anchors", type=click.IntRange(min=1), metavar="N",
                        help="Relative representations over N parallel anchors (a seeded "
                             "choice of paired items, --seed): how well they agree across the "
                             "spaces.")(wrapper)


def approximate_options(fn):
    """--approximate/--exact, --nprobe, --target-recall (hubness, intdim): the command receives
    ``approximate`` (None: by size), ``nprobe`` and ``target_recall``; :func:`use_approximate`
    decides per view and refuses the two tuning options on an exact search."""
    from geomkit.engine.ann import APPROXIMATE_FROM, TARGET_RECALL, TUNE_SAMPLE

    for option in reversed([
        click.option("--approximate/--exact", default=None,
                     help=f"faiss IVF neighbours streamed within --memory, recall measured on a "
                          f"sample (default: approximate from {APPROXIMATE_FROM:,} rows)."),
        click.option("--nprobe", type=click.IntRange(min=1), default=None,
                     help="Inverted lists searched per query with --approximate (default: the "
                          "fewest reaching --target-recall); more: higher recall, slower."),
        click.option("--target-recall", type=click.FloatRange(0, 1, min_open=True),
                     default=None, metavar="R",
                     help=f"With --approximate and no --nprobe: nprobe is tuned to the fewest "
                          f"lists whose recall@k on {TUNE_SAMPLE} seeded queries reaches R "
                          f"(default {TARGET_RECALL})."),
    ]):
        fn = option(fn)
    return fn


def use_approximate(approximate, n: int, nprobe=None, target_recall=None) -> bool:
    """The search of a view of ``n`` rows: --approximate/--exact as given, else approximate from
    :data:`geomkit.engine.ann.APPROXIMATE_FROM` rows; --nprobe / --target-recall on an exact
    search are refused (exit 2)."""
    from geomkit.engine import ann

    use = approximate if approximate is not None else n >= ann.APPROXIMATE_FROM
    for flag, value in (("--nprobe", nprobe), ("--target-recall", target_recall)):
        if value is not None and not use:
            raise UsageError(f"{flag} acts on approximate neighbours only; add --approximate.")
    return use
