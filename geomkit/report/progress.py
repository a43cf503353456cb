"""Progress bars on stderr, only when stderr is a terminal and the user did not ask for quiet."""

from __future__ import annotations

import contextlib
import sys

_QUIET = False
_COMMAND = False  # set by the CLI: the passes deep in the engine (kNN, MP) show bars too


def set_quiet(quiet: bool) -> None:
    """Called by every command: --quiet, and that a command (not a library call) is running."""
    global _QUIET, _COMMAND
    _QUIET = quiet
    _COMMAND = True


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, description: str | None, *, engine: bool = False,
                 unit: str = "rows"):
    """A tqdm bar on stderr (rows done, rate, time left) when stderr is a TTY, not quiet and a
    description is given. ``engine=True``: a pass inside the engine (exact kNN blocks, mutual
    proximity), shown only while a geomkit command runs, so library calls stay silent."""
    if (description is None or _QUIET or not sys.stderr.isatty()
            or (engine and not _COMMAND)):
        yield _NoBar()
        return
    from tqdm import tqdm
    bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, leave=False,
               unit_scale=True, mininterval=0.5, delay=1.0,  # passes under a second: no bar
               **({} if _width() else {"ncols": 100, "nrows": 24}))
    try:
        yield bar
    finally:
        bar.close()


def _width() -> int:
    """The terminal's columns (0 for a terminal of unknown size, where tqdm would draw nothing:
    it takes 0 lines for a screen with no room)."""
    import os

    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 0


def log(message: str) -> None:
    """A line for the user on stderr (silenced by --quiet)."""
    if not _QUIET:
        print(message, file=sys.stderr)
