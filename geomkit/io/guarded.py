"""Reads of variable-length HDF5 data (strings: ids, texts, labels, attributes) in a child process.

A damaged global heap makes the HDF5 library (1.14 and 2.0 alike) loop forever inside
``H5HG__cache_heap_deserialize`` while it holds Python's GIL: no signal handler, thread or timer of
the process can end it. Fixed-size data (the vectors) live outside that heap; variable-length
values are read through it. So those reads run in a forked child that sends the values back as
JSON (never pickle: the file is untrusted); a child that does not answer in time is killed and the
read becomes one :class:`~geomkit.errors.InputError` naming the file. A dump's metadata strings
(ids, texts, labels) are read together in one child (:func:`read_many`): a fork costs ~20 ms and
every command opens its files. Where ``fork`` does not exist (Windows) the read runs in-process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time

from geomkit.errors import InputError

# a healthy read of a million strings takes a few seconds; GEOMKIT_READ_TIMEOUT sets the base
BASE_SECONDS = float(os.environ.get("GEOMKIT_READ_TIMEOUT", "10"))


def is_variable_length(dtype) -> bool:
    """True for HDF5 types read through the global heap (vlen strings and sequences)."""
    import h5py

    if dtype.kind == "O":
        return True
    if dtype.fields:
        return any(is_variable_length(dtype.fields[name][0]) for name in dtype.fields)
    info = h5py.check_string_dtype(dtype)
    return (info is not None and info.length is None) or h5py.check_vlen_dtype(dtype) is not None


def run_guarded(read, where: str, *, seconds: float = BASE_SECONDS):
    """``read()`` in a forked child; its value must be JSON-serialisable. Errors raised by
    ``read`` are re-raised here as :class:`InputError` (their message); a child that hangs or
    dies is an :class:`InputError` naming ``where``."""
    if not hasattr(os, "fork"):
        return read()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, answer, leave without running the parent's cleanup
        code = 0
        try:
            os.close(r)
            try:
                payload = json.dumps({"value": read()}, ensure_ascii=False)
            except InputError as exc:
                payload, code = json.dumps({"error": str(exc)}), 3
            except Exception as exc:  # noqa: BLE001 - reported by the parent in one sentence
                payload, code = json.dumps({"error": f"{where}: cannot be read "
                                                     f"({type(exc).__name__}: {exc})"}), 3
            data = payload.encode("utf-8", "surrogatepass")
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline = [], time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([r], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise InputError(f"{where}: reading it did not finish in {seconds:.0f} s; the "
                                 f"file's heap of variable-length data is probably damaged.")
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        raise InputError(f"{where}: cannot be read (the reading process ended with status "
                         f"{status}); the file may be corrupt.")
    answer = json.loads(b"".join(chunks).decode("utf-8", "surrogatepass"))
    if "error" in answer:
        raise InputError(answer["error"])
    return answer["value"]


def read_many(items: list, where: str, describe=None) -> list:
    """All values of several 1-D datasets ``[(dataset, its label), …]``: fixed-size ones read
    here, the variable-length ones together in ONE guarded child (one fork per file, not per
    dataset). A read that fails names its own dataset (``describe(exc)`` words the error; by
    default its type and message); a child that hangs names ``where``."""
    import numpy as np

    out: list = [None] * len(items)
    vlen = [i for i, (obj, _) in enumerate(items) if is_variable_length(obj.dtype)]
    for i, (obj, _) in enumerate(items):
        if i not in vlen:
            out[i] = np.asarray(obj[0:obj.shape[0]])
    if not vlen:
        return out

    def read():
        got = []
        for i in vlen:
            obj, label = items[i]
            try:
                values = obj[0:obj.shape[0]]
            except Exception as exc:  # noqa: BLE001 - one sentence naming the dataset
                text = describe(exc) if describe else f"{type(exc).__name__}: {exc}"
                raise InputError(f"{label}: cannot be read ({text}).") from None
            got.append([v.decode("utf-8", "replace") if isinstance(v, bytes) else
                        (v.tolist() if hasattr(v, "tolist") else v) for v in values])
        return got

    # + 1 s per 50k values
    seconds = BASE_SECONDS + sum(items[i][0].shape[0] for i in vlen) / 50_000
    for i, values in zip(vlen, run_guarded(read, where, seconds=seconds)):
        out[i] = np.array(values, dtype=object)
    return out


def read_values(obj, where: str):
    """All values of a 1-D dataset; variable-length ones through :func:`run_guarded`."""
    return read_many([(obj, where)], where)[0]
