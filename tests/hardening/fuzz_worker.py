"""Worker for test_fuzz.py: imports geomkit once and runs command lines in-process (CliRunner on
the console script's ``main()``, see ``badfiles.CONSOLE_SCRIPT``).

Protocol: one JSON job per line on stdin ``{"id": .., "argv": [..]}``; one JSON answer per line on
the protocol channel ``{"id", "code", "stdout", "stderr", "tb"}`` (``tb``: the formatted traceback
of an uncaught exception, else ""). The first line it writes is ``{"ready": true}``.

The protocol goes to a private duplicate of fd 1; fd 1 itself is pointed at /dev/null so that
anything the HDF5 C library prints cannot garble the answers. A crash of the C library kills this
process: the parent notices, records the job as a crash and starts a new worker. faulthandler
writes the Python stack of a crash, and of a job that runs past ``job["timeout"]`` seconds (then
the worker exits), to stderr, which the parent keeps in a log to name where it happened.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import traceback
import warnings


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")
    # as run_cli (PYTHONWARNINGS=ignore): Python warnings are not part of the contract here
    warnings.simplefilter("ignore")
    faulthandler.enable(file=sys.stderr)

    from click.testing import CliRunner

    from geomkit.cli import main as cli_main

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from badfiles import CONSOLE_SCRIPT  # the console script's main(), as the other suites

    for name in cli_main.COMMANDS.values():  # import every subcommand (torch, faiss...) up front
        __import__(f"geomkit.cli.{name}")
    runner = CliRunner()
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        sys.stderr.write(f"=== job {job['id']}\n")
        sys.stderr.flush()
        if job.get("timeout"):
            faulthandler.dump_traceback_later(job["timeout"], exit=True, file=sys.stderr)
        result = runner.invoke(CONSOLE_SCRIPT, job["argv"], catch_exceptions=True)
        faulthandler.cancel_dump_traceback_later()
        tb = ""
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(*result.exc_info))[-4000:]
        proto.write(json.dumps({"id": job["id"], "code": result.exit_code,
                                "stdout": result.stdout[-200_000:], "stderr": result.stderr[-4000:],
                                "tb": tb}) + "\n")


if __name__ == "__main__":
    main()
