"""The exceptions geomkit raises on purpose, and the exit codes the CLI maps them to.

Exit codes (docs/cli.md): 0 ok, 1 a ``check`` gate failed, 2 usage error, 3 input error.
"""

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3


class GeomkitError(Exception):
    """Base class: a message meant for the user, one sentence, and an exit code."""

    exit_code = EXIT_INPUT


class InputError(GeomkitError):
    """The input file, dataset or metadata cannot be analysed as asked (exit code 3)."""

    exit_code = EXIT_INPUT


class UsageError(GeomkitError):
    """Options that do not fit together or do not fit the data (exit code 2)."""

    exit_code = EXIT_USAGE


class GateFailed(GeomkitError):
    """A ``check`` threshold was not met (exit code 1)."""

    exit_code = EXIT_GATE_FAILED
