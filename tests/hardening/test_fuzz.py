"""Seeded fuzzing: randomly corrupted copies of a valid dump (bytes flipped, truncated at random
offsets) through every command, with the bad-input contract of ``badfiles.check_run``:

exit 0, 2 or 3; no traceback; on failure one line ``geomkit: error: ...`` naming the copy and
nothing on stdout; on success strict JSON with finite numbers (a transform output finite too);
the copy's bytes unchanged; no file left in its folder after a failure.

A corrupted HDF5 file can crash the HDF5 C library, so the commands run in worker processes
(``fuzz_worker.py``: geomkit imported once, CliRunner per job); a worker that dies or hangs is
recorded as a failure naming the copy and the command, and replaced.

``test_fuzz_fast`` (60 copies) runs always; ``test_fuzz_full`` (1 000 copies x every command) is
marked slow.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

import badfiles
from badfiles import Case, E, Run, check_run

WORKER = Path(__file__).with_name("fuzz_worker.py")
N_ROWS, DIM = 64, 16
WORDS = [f"w{i}" for i in range(N_ROWS)]
JOB_TIMEOUT_S = 20
ALLOWED = E(0, 2, 3)

# slot -> options after the copy's path (O = the output path in the copy's folder)
COMMANDS = {
    "info": ["info", "S"],
    "info --scan": ["info", "S", "--scan"],
    "transform": ["transform", "S", "-o", "O", "--center"],
    "isotropy": ["isotropy", "S"],
    "hubness": ["hubness", "S", "-k", "5", "--reduce", "none,mp"],
    "depth": ["depth", "S"],
    "norms": ["norms", "S"],
    "infogain --embeddings": ["infogain", "C", "--embeddings", "S"],
    "intdim": ["intdim", "S", "-k", "5"],
    # drift reads two dumps: the copy in each position, the uncorrupted base (G) in the other
    "drift REF": ["drift", "S", "G", "--permutations", "20"],
    "drift NEW": ["drift", "G", "S", "--permutations", "20"],
}


# --------------------------------------------------------------------------- corpus of copies


def write_base(path: Path, chunked: bool) -> Path:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_ROWS, DIM)).astype(np.float32)
    utf8 = h5py.string_dtype("utf-8")
    with h5py.File(path, "w", libver="earliest") as f:
        kw = dict(chunks=(16, DIM)) if chunked else {}
        f.create_dataset("embeddings", data=x, track_times=False, **kw)
        f.create_dataset("ids", data=np.array(WORDS, dtype=object), dtype=utf8, track_times=False)
        f.create_dataset("texts", data=np.array([f"the text of {w}" for w in WORDS], dtype=object),
                         dtype=utf8, track_times=False)
        f.create_dataset("labels", data=np.array(["a" if i % 3 else "b" for i in range(N_ROWS)],
                                                 dtype=object), dtype=utf8, track_times=False)
        f.create_dataset("counts", data=np.arange(1, N_ROWS + 1, dtype=np.int64), track_times=False)
        f.attrs["model"] = "fuzz-base"
    return path


def corrupt(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A flipped-bytes copy (1-8 random offsets, random XOR masks) or a truncated copy."""
    if rng.random() < 0.7:
        buf = bytearray(data)
        offsets = sorted(int(o) for o in rng.integers(0, len(buf), size=int(rng.integers(1, 9))))
        for o in offsets:
            buf[o] ^= int(rng.integers(1, 256))
        return bytes(buf), "flip@" + ",".join(map(str, offsets))
    cut = int(rng.integers(0, len(data)))
    return data[:cut], f"truncate@{cut}"


@dataclass
class Copy:
    path: Path
    detail: str


def make_copies(root: Path, n: int, seed: int) -> tuple[list[Copy], Path]:
    base_dir = root / "base"
    base_dir.mkdir(parents=True)
    bases = [write_base(base_dir / "contig.h5", False).read_bytes(),
             write_base(base_dir / "chunked.h5", True).read_bytes()]
    corpus = base_dir / "corpus.txt"
    words_rng = np.random.default_rng(11)
    corpus.write_text("\n".join(" ".join(words_rng.choice(WORDS, size=25)) for _ in range(300)) + "\n")
    rng = np.random.default_rng(seed)
    copies = []
    for i in range(n):
        variant = i % 2
        data, detail = corrupt(bases[variant], rng)
        folder = root / f"c{i:04d}"
        folder.mkdir()
        name = f"c{i:04d}_{'chunked' if variant else 'contig'}.h5"
        (folder / name).write_bytes(data)
        copies.append(Copy(folder / name, detail))
    return copies, corpus


# --------------------------------------------------------------------------- workers


class Worker:
    def __init__(self, log: Path):
        self.log = log
        self.proc = None
        self.lines: queue.Queue = queue.Queue()
        self.start()

    def start(self):
        # a damaged heap makes HDF5 loop forever; geomkit reads variable-length data in a child
        # it kills after GEOMKIT_READ_TIMEOUT s (default 10). The copies hold 64 strings a
        # dataset, read in milliseconds: 3 s keeps a hung copy from costing 10 s per command.
        env = dict(os.environ, PYTHONWARNINGS="ignore", GEOMKIT_READ_TIMEOUT="3")
        self.lines = queue.Queue()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, env=env,
                                         text=True, encoding="utf-8", bufsize=1)
        threading.Thread(target=self._pump, args=(self.proc, self.lines), daemon=True).start()
        ready = self.lines.get(timeout=180)
        if ready is None or not json.loads(ready).get("ready"):
            raise RuntimeError(f"fuzz worker did not start: {self.log.read_text()[-2000:]}")

    @staticmethod
    def _pump(proc, lines):
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def run(self, job_id: int, argv: list, timeout: float) -> dict:
        """The worker's answer, or {"crash": ...} / {"timeout": ...} (the worker is replaced).
        The worker itself gives up after ``timeout`` s (faulthandler writes the stack to the log
        and exits); the parent waits a little longer before killing it."""
        log_start = self.log.stat().st_size if self.log.exists() else 0
        try:
            self.proc.stdin.write(json.dumps({"id": job_id, "argv": argv, "timeout": timeout}) + "\n")
            self.proc.stdin.flush()
            line = self.lines.get(timeout=timeout + 30)
        except queue.Empty:
            self.kill()
            line = None
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                code = "killed"
            where = self._where(log_start)
            self.start()
            if "Timeout (" in where:
                return {"timeout": f"no answer within {timeout} s; stack: {where.split(chr(10), 1)[-1]}"}
            return {"crash": f"worker died with status {code}; stack: {where}"}
        answer = json.loads(line)
        assert answer["id"] == job_id
        return answer

    def _where(self, offset: int) -> str:
        """The innermost frames faulthandler wrote since ``offset`` (crash or timeout)."""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        lines = text.splitlines()
        head = next((ln for ln in lines if ln.startswith(("Timeout (", "Fatal Python error"))), "")
        frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
        # faulthandler lists the most recent call first: the first frames are the innermost
        return (head + "\n" if head else "") + " <- ".join(frames[:3])

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _argv(template, copy: Copy, corpus: Path, out: Path, good: Path) -> list:
    return [{"S": str(copy.path), "C": str(corpus), "O": str(out), "G": str(good)}.get(a, a)
            for a in template]


def _folder_state(folder: Path) -> dict:
    return badfiles.snapshot([folder])


def run_one(worker: Worker, job_id: int, copy: Copy, slot: str, corpus: Path, good: Path
            ) -> tuple[list[str], int | None]:
    """Run ``slot`` on ``copy``; (contract violations, exit code or None for a crash/hang)."""
    out = copy.path.parent / "out.h5"
    argv = _argv(COMMANDS[slot], copy, corpus, out, good)
    before = _folder_state(copy.path.parent)
    answer = worker.run(job_id, argv, JOB_TIMEOUT_S)
    after = _folder_state(copy.path.parent)
    problems = []
    if "crash" in answer or "timeout" in answer:
        if "crash" in answer:
            problems.append(f"worker crashed: {answer['crash']}")
        else:
            problems.append(f"hang: {answer['timeout']}")
        code = None
    else:
        code = answer["code"]
        run = Run(slot, argv, ALLOWED, [out])
        case = Case(copy.path.name, copy.path.parent, copy.path, [run])
        if answer["tb"]:  # an uncaught exception: report it alone (exit 1, empty stderr follow)
            problems.append("uncaught exception: " + answer["tb"].strip().splitlines()[-1][:300])
        else:
            problems += check_run(run, case, code, answer["stdout"], answer["stderr"])
    if before.get(str(copy.path)) != after.get(str(copy.path)):
        problems.append("input changed")
    allowed_new = {str(out)} if code == 0 else set()
    new = sorted(set(after) - set(before) - allowed_new)
    if new:
        problems.append(f"files left behind: {[os.path.basename(p) for p in new]}")
    if os.path.lexists(out):
        os.remove(out)
    first = ""
    if "code" in answer:
        err = answer["stderr"].strip().splitlines()
        first = f"exit {answer['code']}: {err[0][:200] if err else '(no stderr)'}"
    return [f"{copy.path.name} [{copy.detail}] `{slot}`: {p}" + (f"  ({first})" if first else "")
            for p in problems], code


def fuzz(root: Path, n_copies: int, seed: int, n_workers: int = 2) -> dict:
    copies, corpus = make_copies(root, n_copies, seed)
    good = corpus.parent / "contig.h5"  # the uncorrupted base: the other input of drift
    digests = {p: badfiles.sha256(p) for p in (corpus, good)}
    jobs = [(i * len(COMMANDS) + j, copy, slot) for i, copy in enumerate(copies)
            for j, slot in enumerate(COMMANDS)]
    failures: list[str] = []
    codes: Counter = Counter()
    lock = threading.Lock()
    logs = [root / f"worker{w}.log" for w in range(n_workers)]

    def drive(w: int):
        worker = Worker(logs[w])
        try:
            # every command on one copy runs on the same worker, one after the other: they
            # share the copy's folder (and its out.h5), so two workers there would race
            mine = [job for job in jobs if (job[0] // len(COMMANDS)) % n_workers == w]
            for job_id, copy, slot in mine:
                problems, code = run_one(worker, job_id, copy, slot, corpus, good)
                with lock:
                    failures.extend(problems)
                    codes[code] += 1
        finally:
            worker.close()

    t0 = time.monotonic()
    errors = []

    def guarded(w):
        try:
            drive(w)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(f"worker thread {w}: {exc!r}")

    threads = [threading.Thread(target=guarded, args=(w,)) for w in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for path, digest in digests.items():
        if badfiles.sha256(path) != digest:
            failures.append(f"{path.name}: an input every run shares changed")
    return {"failures": failures + errors, "runs": len(jobs), "seconds": time.monotonic() - t0,
            "codes": codes}


def _signature(problem: str) -> str:
    """A problem without file names and numbers, so equal causes group together."""
    import re
    text = problem.split("`: ", 1)[-1]
    text = text.split("  (exit ", 1)[0]
    text = re.sub(r"c\d{4}_(contig|chunked)\.h5", "COPY", text)
    text = re.sub(r"/[^ '\"]+", "PATH", text)
    text = re.sub(r"\d+", "#", text)
    return text[:140]


def summarize(failures: list[str], examples: int = 2) -> str:
    """Group failures by cause (the problem without numbers), listing the commands it hit."""
    groups = defaultdict(list)
    for f in failures:
        groups[_signature(f)].append(f)
    lines = [f"{len(failures)} contract violations in {len(groups)} groups:"]
    for sig, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        slots = Counter(f.split("`")[1] if "`" in f else "?" for f in items)
        lines.append(f"- {len(items)} x {sig}")
        lines.append(f"    commands: {dict(slots)}")
        lines += [f"    e.g. {x[:400]}" for x in items[:examples]]
    return "\n".join(lines)


def test_base_dump_is_valid_and_deterministic(tmp_path):
    """The uncorrupted dumps pass every command (exit 0), and are byte-identical when rewritten."""
    for chunked in (False, True):
        a = write_base(tmp_path / f"a{chunked}.h5", chunked).read_bytes()
        b = write_base(tmp_path / f"b{chunked}.h5", chunked).read_bytes()
        assert a == b
    root = tmp_path / "clean"
    root.mkdir()
    copies = [Copy(write_base(root / "contig.h5", False), "clean"),
              Copy(write_base(root / "chunked.h5", True), "clean")]
    corpus = root / "corpus.txt"
    corpus.write_text(" ".join(WORDS) + "\n" + " ".join(reversed(WORDS)) + "\n")
    for c in copies:
        sub = root / c.path.stem
        sub.mkdir()
        c.path = c.path.rename(sub / c.path.name)
    worker = Worker(tmp_path / "clean.log")
    try:
        for i, copy in enumerate(copies):
            for j, slot in enumerate(COMMANDS):
                answer = worker.run(i * 100 + j, _argv(COMMANDS[slot], copy, corpus,
                                                       copy.path.parent / "out.h5",
                                                       copies[0].path), JOB_TIMEOUT_S)
                assert answer.get("code") == 0, (copy.path.name, slot, answer)
                if os.path.exists(copy.path.parent / "out.h5"):
                    os.remove(copy.path.parent / "out.h5")
    finally:
        worker.close()


def _report(result) -> str:
    codes = ", ".join(f"{'crash/hang' if k is None else f'exit {k}'}: {v}"
                      for k, v in sorted(result["codes"].items(), key=lambda kv: str(kv[0])))
    return f"fuzz: {result['runs']} runs in {result['seconds']:.0f} s ({codes})"


def test_fuzz_fast(tmp_path):
    result = fuzz(tmp_path, 60, seed=20240601)
    print(_report(result))
    assert result["runs"] == 60 * len(COMMANDS)
    assert not result["failures"], summarize(result["failures"])
    # the corruption exercises both paths: some copies still work, some are refused
    assert result["codes"][0] > 0 and result["codes"][3] > 0, _report(result)


@pytest.mark.slow
def test_fuzz_full(tmp_path):
    result = fuzz(tmp_path, 1000, seed=1)
    print(_report(result))
    assert result["runs"] >= 1000 * len(COMMANDS)
    assert not result["failures"], summarize(result["failures"])
    assert result["codes"][0] > 0 and result["codes"][3] > 0, _report(result)
