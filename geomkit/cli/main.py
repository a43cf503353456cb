"""The ``geomkit`` click group and the one place where errors become messages and exit codes."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys

import click

from geomkit import __version__
from geomkit.errors import EXIT_INPUT, GeomkitError

# subcommand name -> module under geomkit.cli (each defines a click command called ``command``)
COMMANDS = {
    "info": "info",
    "transform": "transform",
    "isotropy": "isotropy",
    "hubness": "hubness",
    "depth": "depth",
    "drift": "drift",
    "norms": "norms",
    "infogain": "infogain",
    "axes": "axes",
    "compare": "compare",
    "translate": "translate",
    "report": "report",
    "check": "check",
    "intdim": "intdim",
}


class GeomkitGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self.get_command(ctx, name) is not None]

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        try:
            return importlib.import_module(f"geomkit.cli.{module}").command
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name == f"geomkit.cli.{module}":
                return None
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GeomkitError as exc:
            _fail(exc.cli_message(), exc.exit_code)
        except MemoryError:
            _fail("out of memory; lower --memory or analyse a --sample.", EXIT_INPUT)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                sys.stderr.close()
                ctx.exit(0)
            name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            _fail(f"{name}{exc.strerror or exc}.", EXIT_INPUT)


def _on_signal(signum, frame):
    """Ctrl-C, SIGTERM, SIGHUP: remove the outputs being written, one line, exit 128 + N.

    Not an exception: one raised from a signal handler is lost when it lands in a finaliser or
    a weakref callback, and the run would go on."""
    from geomkit.io.writers import remove_partial_outputs

    remove_partial_outputs()
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    with contextlib.suppress(Exception):
        sys.stderr.write(f"geomkit: error: interrupted ({name}); nothing was written.\n")
        sys.stderr.flush()
    os._exit(128 + signum)


def _fail(message: str, code: int):
    click.echo(f"geomkit: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=GeomkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geomkit")
def cli():
    """Look inside stored embedding matrices (HDF5).

    INPUT is PATH[:DATASET], e.g. emb.h5 or dump.h5:/layer_6/embeddings.
    Exit codes: 0 ok, 1 a check gate failed, 2 usage error, 3 input error.
    """


def main():
    """The console script: click's parsing errors are one line too (exit 2), and a signal that
    ends the run (Ctrl-C, SIGTERM, SIGHUP) leaves no partial output behind and exits 128 + N."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        code = cli.main(prog_name="geomkit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and ctx.command_path:
            hint = f" (see {ctx.command_path} --help)"
        _fail(exc.format_message().rstrip(".") + hint + ".", exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _on_signal(signal.SIGINT, None)
    sys.exit(code if isinstance(code, int) else 0)
