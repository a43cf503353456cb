"""Where the passes run: ``--scheduler`` (and ``GEOMKIT_SCHEDULER``) to a pass executor.

- none (the default): :class:`~geomkit.engine.executor.LocalExecutor`, in this process;
- ``local:N``: a ``distributed.LocalCluster`` of N worker processes (one thread each) that geomkit
  starts for the command and shuts down after it;
- ``tcp://HOST:PORT`` (or any address a ``distributed.Client`` accepts): an existing cluster.
  Its workers open the input files themselves, at the same paths: they need a shared filesystem.

:func:`executor_for` is a context manager: the cluster (or the connection) lives as long as the
command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

from geomkit.engine.executor import DaskExecutor, LocalExecutor
from geomkit.errors import UsageError

ENV = "GEOMKIT_SCHEDULER"
_LOCAL = re.compile(r"local:(\d+)")
CONNECT_TIMEOUT = "15s"


def parse_scheduler(text: str | None):
    """``None`` (in-process), ``("local", N)`` or ``("address", "tcp://HOST:PORT")``; anything else
    is a usage error in one sentence."""
    if text is None or not text.strip() or text.strip() == "none":
        return None
    text = text.strip()
    match = _LOCAL.fullmatch(text)
    if match:
        n = int(match.group(1))
        if n < 1:
            raise UsageError("--scheduler local:N needs N >= 1 worker processes.")
        return ("local", n)
    if re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s/]+(:\d+)?/?", text):
        return ("address", text.rstrip("/"))
    raise UsageError(f"--scheduler '{text}' is not local:N or tcp://HOST:PORT.")


def scheduler_from(option: str | None) -> str | None:
    """The option's value, else ``GEOMKIT_SCHEDULER``, else None."""
    return option if option is not None else (os.environ.get(ENV) or None)


class ClusterExecutor(DaskExecutor):
    """A :class:`DaskExecutor` whose cluster (or connection) starts on the first pass, so that a
    command refused before any pass starts none; :meth:`close` shuts it down."""

    def __init__(self, spec):
        super().__init__(None)
        self.spec = spec
        self._client_obj = None
        self._cluster = None

    @property
    def scheduler(self):
        if self._client_obj is None:
            self._start()
        return self._client_obj

    @scheduler.setter
    def scheduler(self, value):
        pass  # always the client of this executor's cluster

    def _start(self) -> None:
        from distributed import Client, LocalCluster

        kind, value = self.spec
        # the cluster's own chatter (worker start/stop, restarts) is not the user's output
        for name in ("distributed", "distributed.nanny", "distributed.scheduler",
                     "distributed.worker", "distributed.core"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if kind == "local":
            # the worker processes and multiprocessing's resource tracker inherit this: a command
            # ended by a signal must print its one line, not the tracker's leak warnings
            os.environ.setdefault("PYTHONWARNINGS", "ignore")
            import warnings

            with warnings.catch_warnings():  # e.g. "Port 8787 is already in use" (dashboard)
                warnings.simplefilter("ignore")
                self._cluster = LocalCluster(n_workers=value, threads_per_worker=1,
                                             processes=True, dashboard_address=None,
                                             silence_logs=logging.CRITICAL)
            self._client_obj = Client(self._cluster)
            return
        try:
            client = Client(value, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"--scheduler {value}: no Dask scheduler answered ({first}).") from None
        if not client.scheduler_info().get("workers"):
            client.close()
            raise UsageError(f"--scheduler {value}: the Dask cluster has no workers.")
        self._client_obj = client

    @property
    def started(self) -> bool:
        return self._client_obj is not None

    def close(self) -> None:
        if self._client_obj is not None:
            self._client_obj.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client_obj = self._cluster = None


@contextlib.contextmanager
def executor_for(text: str | None):
    """The pass executor for a ``--scheduler`` value; a cluster it starts (on the first pass)
    is shut down when the ``with`` block ends."""
    spec = parse_scheduler(text)
    if spec is None:
        yield LocalExecutor()
        return
    executor = ClusterExecutor(spec)
    try:
        yield executor
    finally:
        executor.close()
