"""The exceptions geomkit raises on purpose, and the exit codes the CLI maps them to.

Exit codes (docs/cli.md): 0 ok, 1 a ``check`` gate failed, 2 usage error, 3 input error.

Messages name parameters, not command-line flags: a message is written with ``{name}`` markers
for the options it mentions (``"... pass {drop_nonfinite} to skip them."``). ``str(exc)`` (what
a library user sees) renders them as Python parameters (``drop_nonfinite=True``);
:meth:`GeomkitError.cli_message` (what ``geomkit`` prints) as flags (``--drop-nonfinite``).
"""

import re

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3

# marker -> (library phrase, command-line phrase)
OPTIONS = {
    "drop_nonfinite": ("drop_nonfinite=True", "--drop-nonfinite"),
    "drop_zero": ("drop_zero=True", "--drop-zero"),
    "allow_external": ("allow_external=True", "--allow-external"),
    "layer": ("layer", "--layer"),
    "layer_int": ("layer=INT", "--layer INT"),
    "layer_all": ("Space.views(layers='all')", "--layer all"),
    "dims": ("dims", "--dims"),
    "dims_sweep": ("several dims", "a --dims sweep"),
    "sample": ("sample", "--sample"),
    "labels": ("metadata_names={'labels': NAME}", "--labels NAME"),
    "per_item": ("the per-item path", "--per-item"),
    "fit_from": ("fit_from", "--fit-from"),
    "group_by": ("groups", "--group-by"),
    "c0": ("c0", "--c0"),
    "querybank": ("querybank", "--querybank"),
    "candidates": ("candidates", "--mp-candidates"),
    "k": ("k", "-k"),
    "device": ("device", "--device"),
    "memory": ("memory=", "--memory "),
    "nprobe": ("nprobe", "--nprobe"),
    "target_recall": ("target_recall", "--target-recall"),
}
_MARKER = re.compile(r"\{(" + "|".join(OPTIONS) + r")\}")


def render(template: str, cli: bool) -> str:
    """A message template with its option markers as Python parameters or as CLI flags."""
    return _MARKER.sub(lambda m: OPTIONS[m.group(1)][1 if cli else 0], template)


class GeomkitError(Exception):
    """Base class: a message meant for the user, one sentence, and an exit code."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.template = message

    def __str__(self) -> str:
        return render(self.template, cli=False)

    def cli_message(self) -> str:
        """The message with command-line flags (what the ``geomkit`` command prints)."""
        return render(self.template, cli=True)

    def prefixed(self, prefix: str) -> "GeomkitError":
        """The same error with ``prefix: `` in front (markers kept)."""
        return type(self)(f"{prefix}: {self.template}")


class InputError(GeomkitError):
    """The input file, dataset or metadata cannot be analysed as asked (exit code 3)."""

    exit_code = EXIT_INPUT


class UsageError(GeomkitError):
    """Options that do not fit together or do not fit the data (exit code 2)."""

    exit_code = EXIT_USAGE


class GateFailed(GeomkitError):
    """A ``check`` threshold was not met (exit code 1)."""

    exit_code = EXIT_GATE_FAILED
