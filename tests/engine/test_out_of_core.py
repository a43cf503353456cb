"""Out-of-core proof (issue #16): norms, isotropy, transform, depth and hubness finish in a process
whose address space (RLIMIT_AS) is capped at half the size of the dump they analyse, with the
results of an uncapped run (benchmarks/out_of_core.py holds the harness and the full record).

The caps cannot be small: before reading any data the commands' imports, thread pools and malloc
arenas reserve 0.25-0.45 GiB of address space, hubness ~1 GiB (torch), so the dumps are 1.3 GiB
(tall, d = 1024) and 2.5 GiB (wide, d = 524 288). One test per command, the dumps written once."""

import importlib.util
import resource
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "out_of_core.py"
COMMANDS = ["norms", "isotropy", "transform", "depth", "hubness"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="RLIMIT_AS and /proc: Linux")]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    # the uncapped reference run needs an uncapped parent (make test / CI are)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY, \
        "this test process is itself capped (RLIMIT_AS): the uncapped reference cannot run"
    spec = importlib.util.spec_from_file_location("geomkit_out_of_core", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    workdir = tmp_path_factory.mktemp("out_of_core")
    yield module, workdir
    for f in workdir.glob("*.h5"):
        f.unlink()


@pytest.mark.parametrize("command", COMMANDS)
def test_command_finishes_under_a_cap_half_the_dump_with_the_uncapped_result(harness, command):
    ooc, workdir = harness
    params = dict(ooc.SCALES["full"])
    rows = ooc.prove(workdir, **params, only=[command], log=lambda line: None)
    (row,) = rows
    assert row["command"] == command and row["equal"]
    assert row["ratio"] >= 2.0  # the dump really is twice the cap
