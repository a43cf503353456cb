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
from geomkit.io.source import DEFAULT_MEMORY, EmbeddingSource, open_source
from geomkit.report.progress import log, set_quiet
from geomkit.report.result import Result, SweepResult

_INPUT_KEYS = ("layer", "dims", "sample", "seed", "drop_nonfinite", "allow_external", "ids_name",
               "texts_name", "labels_name", "counts_name", "memory")
_OUTPUT_KEYS = ("fmt", "as_json", "per_item", "html", "quiet")


def _parse_layer(ctx, param, value):
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter("takes an integer (negative counts from the end) or 'all'.") from None


def _parse_dims(ctx, param, value):
    if value is None:
        return None
    try:
        dims = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter("takes comma-separated integers, e.g. 32,64,128.") from None
    if not dims or dims[0] < 1:
        raise click.BadParameter("takes positive integers, e.g. 32,64,128.")
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
    allow_external: bool = False
    metadata_names: dict = field(default_factory=dict)
    memory: int = DEFAULT_MEMORY

    def open(self, spec: str, *, layer_required: bool = True) -> EmbeddingSource:
        layer = -1 if self.layer == "all" else self.layer
        dims = self.dims[0] if self.dims and len(self.dims) == 1 else None
        source = open_source(spec, layer=layer, dims=dims, sample=self.sample, seed=self.seed,
                             drop_nonfinite=self.drop_nonfinite, allow_external=self.allow_external,
                             metadata_names=self.metadata_names, memory=self.memory,
                             layer_required=layer_required)
        if self.dims and len(self.dims) > 1 and self.dims[-1] > source.d_full:
            raise UsageError(f"{source.label}: --dims {self.dims[-1]} exceeds the "
                             f"{source.d_full} dimensions of the vectors.")
        return source

    def run(self, source: EmbeddingSource, compute) -> Result:
        """``compute(view) -> Result`` on the source, or on every view of a sweep."""
        views = source.sweep(self.layer if self.layer == "all" else None, self.dims)
        if views[0][0] is None:
            return _naming(source, compute)
        results = []
        for kind, value, view in views:
            log(f"geomkit: {kind} {value}")
            results.append(_naming(view, compute))
        return SweepResult(views[0][0], [v for _, v, _ in views], results)


def _naming(view: EmbeddingSource, compute) -> Result:
    """``compute(view)``; a library error that does not name the file gets the view's label
    in front (the CLI's one sentence always names file and dataset)."""
    try:
        return compute(view)
    except GeomkitError as exc:
        if view.path in str(exc):
            raise
        raise type(exc)(f"{view.label}: {exc}") from None


def input_options(fn):
    """Reader options: --layer, --dims, --sample, --seed, --drop-nonfinite, --allow-external,
    --ids/--texts/--labels/--counts, --memory."""
    options = [
        click.option("--layer", callback=_parse_layer, metavar="INT|all",
                     help="Layer of an (N, L, d) stack; 'all' sweeps every layer."),
        click.option("--dims", callback=_parse_dims, metavar="K[,K...]",
                     help="Use the first K dimensions (Matryoshka prefix); several values sweep."),
        click.option("--sample", type=click.IntRange(min=2), metavar="N",
                     help="Analyse a random subset of N rows."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed for --sample and any other randomness."),
        click.option("--drop-nonfinite", is_flag=True,
                     help="Skip rows with NaN/Inf (and report how many) instead of failing."),
        click.option("--allow-external", is_flag=True,
                     help="Follow HDF5 external links / virtual sources in other files."),
        click.option("--ids", "ids_name", metavar="DSET", help="Dataset with row ids (default: ids)."),
        click.option("--texts", "texts_name", metavar="DSET",
                     help="Dataset with row texts (default: texts)."),
        click.option("--labels", "labels_name", metavar="DSET",
                     help="Dataset with row labels (default: labels)."),
        click.option("--counts", "counts_name", metavar="DSET",
                     help="Dataset with row frequencies (default: counts)."),
        click.option("--memory", callback=_parse_memory, metavar="SIZE",
                     help="Memory budget for a row block (default 256MB)."),
    ]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        values = {k: kwargs.pop(k) for k in _INPUT_KEYS}
        names = {k: values.pop(f"{k}_name") for k in ("ids", "texts", "labels", "counts")}
        kwargs["inputs"] = InputSpec(metadata_names={k: v for k, v in names.items() if v}, **values)
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


def progress_label(source: EmbeddingSource, what: str) -> str:
    return f"{what} {source.label}"
