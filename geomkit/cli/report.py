"""``geomkit report INPUT -o report.html``: every diagnostic that applies, in one page."""

import click

from geomkit.cli.options import input_options
from geomkit.errors import UsageError
from geomkit.report.progress import log, set_quiet


def _reader_argv(inputs) -> list:
    """The reader options given, as they would be typed again (for the reproducing commands)."""
    argv = []
    if inputs.layer is not None:
        argv += ["--layer", str(inputs.layer)]
    if inputs.dims:
        argv += ["--dims", str(inputs.dims[0])]
    if inputs.sample is not None:
        argv += ["--sample", str(inputs.sample), "--seed", str(inputs.seed)]
    for flag, on in (("--drop-nonfinite", inputs.drop_nonfinite),
                     ("--drop-zero", inputs.drop_zero),
                     ("--allow-external", inputs.allow_external)):
        if on:
            argv.append(flag)
    for kind, name in inputs.metadata_names.items():
        argv += [f"--{kind}", name]
    return argv


@click.command("report")
@click.argument("input", metavar="INPUT")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="The HTML page to write (self-contained, works offline).")
@click.option("--vs", "other", metavar="OTHER",
              help="A second dump: adds the depth test, compare and (rows paired) translate.")
@click.option("--quick", is_flag=True,
              help="The O(N²) parts (hubness, intrinsic dimension) on a seeded sample of "
                   "--quick-rows rows; the streaming parts still read every row.")
@click.option("--quick-rows", type=click.IntRange(min=10), default=40_000, show_default=True,
              metavar="N", help="Rows of the --quick sample.")
@click.option("-k", "k", type=click.IntRange(min=2), default=10, show_default=True,
              help="Neighbourhood size of hubness and compare.")
@click.option("--map-points", type=click.IntRange(min=10), default=200_000, show_default=True,
              metavar="N", help="Points drawn on the map (a seeded sample beyond).")
@click.option("--map", "map_method", type=click.Choice(["pca", "umap"]), default="pca",
              show_default=True,
              help="The map's projection; umap needs the optional extra geomkit[umap].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Also write every section's results as one JSON document.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@input_options(sweep=False)
def command(input, out, other, quick, quick_rows, k, map_points, map_method, json_path, quiet,
            inputs):
    """Run every analysis that applies to INPUT (norms, isotropy — per layer on a stack —,
    hubness, intrinsic dimension, a map of the space; with --vs OTHER the depth test, compare and translate) and
    write one interactive page with a summary at the top."""
    import dataclasses

    from geomkit.analysis.suite import run_report
    from geomkit.io.writers import check_outputs, write_json, write_text
    from geomkit.report.report_page import render_report

    set_quiet(quiet)
    if quick_rows != 40_000 and not quick:
        raise UsageError("--quick-rows sets the size of the --quick sample; add --quick.")
    if map_method == "umap":
        from geomkit.analysis.suite import require_umap

        require_umap()
    written = {"-o": out, **({"--json": json_path} if json_path else {})}
    check_outputs(written, [input] + ([other] if other else []))
    extra = _reader_argv(inputs)
    fixed = dataclasses.replace(inputs, layer=None, dims=None)
    # a layer stack without --layer: the last layer for the one-view sections (the isotropy
    # section sweeps every layer), said in their command lines
    with inputs.open(input, layer_required=False) as space:
        if space.source.n_layers is not None and inputs.layer is None:
            extra = ["--layer", str(space.source.layer)] + extra
        other_space = fixed.open(other) if other else None
        try:
            result = run_report(space, input, other=other_space, other_spec=other, k=k,
                                quick=quick, quick_rows=quick_rows, seed=inputs.seed,
                                map_points=map_points, map_method=map_method,
                                extra_argv=tuple(extra), log=log)
        finally:
            if other_space is not None:
                other_space.close()
    write_text(out, render_report(result))
    log(f"geomkit: report written to {out}")
    if json_path:
        write_json(json_path, {**result.to_dict(), "page": out})
        log(f"geomkit: JSON written to {json_path}")
    marks = {"green": "ok  ", "amber": "warn", "red": "FAIL", "grey": "info"}
    for v in result.verdicts:
        click.echo(f"[{marks[v.light]}] {v.concern}: {v.text}")
    for s in result.sections:
        if s.error:
            click.echo(f"[skip] {s.name}: {s.error}")
