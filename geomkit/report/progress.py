"""Progress bars on stderr, only when stderr is a terminal and the user did not ask for quiet."""

from __future__ import annotations

import contextlib
import sys

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, description: str | None):
    """A tqdm bar on stderr when stderr is a TTY, not quiet and a description is given."""
    if description is None or _QUIET or not sys.stderr.isatty():
        yield _NoBar()
        return
    from tqdm import tqdm
    bar = tqdm(total=total, desc=description, unit="rows", file=sys.stderr, leave=False,
               unit_scale=True)
    try:
        yield bar
    finally:
        bar.close()


def log(message: str) -> None:
    """A line for the user on stderr (silenced by --quiet)."""
    if not _QUIET:
        print(message, file=sys.stderr)
