"""A generator of bad (and degenerate-but-valid) input files for every geomkit command.

``bad_cases(tmp_dir)`` writes the files under ``tmp_dir`` and returns a list of :class:`Case`; each
case holds the command lines (``runs``) it applies to and, per run, what the contract allows
(:class:`Expect`). The case list itself is static (``CASE_NAMES``, ``run_ids()``) so tests can be
parametrised at collection time without writing any file.

Layout under ``tmp_dir``::

    common/good.h5       24 x 8 float32 dump with ids w0..w23, texts, labels, counts
    common/corpus.txt    a corpus made of the words w0..w23 (infogain)
    <case name>/...      the case's files; runs write their outputs (-o, ...) here too

The contract checked for every run (``check_run``):

* the exit code is one of ``Expect.codes``;
* no ``Traceback`` on stdout/stderr, no uncaught exception;
* on a non-zero exit: stderr is exactly one line ``geomkit: error: ...`` that contains the bad
  file's basename, the dataset name when the problem is a dataset's (``Expect.dataset``) and the
  ``Expect.words`` (each a string or a tuple of alternatives, case-insensitive); stdout is empty;
* on exit 0: stdout is one JSON document without NaN/Infinity whose numbers are all finite, and
  ``Expect.json_check`` (if any) holds; a transform output holds only finite values;
* the bytes of every input file are unchanged and, after a failed run, no file appeared.

``make_huge`` writes the huge sparse case ((10**9, 768) float32, chunked, nothing written); it is
not among the in-process runs (a regression there would run for hours): test_bad_inputs.py runs
it in watched subprocesses. ``invoke`` runs the console script in-process (see
``_ConsoleScript``); fuzz_worker.py uses the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

N, D = 24, 8
WORDS = [f"w{i}" for i in range(N)]

# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    codes: frozenset
    words: tuple = ()               # each: str or tuple of alternatives (case-insensitive)
    dataset: str | None = None      # the message must name this dataset (dataset problems)
    json_check: Callable | None = None  # on exit 0: fn(obj) raising AssertionError
    note: str = ""

    def __post_init__(self):
        object.__setattr__(self, "codes", frozenset(self.codes))


def E(*codes, words=(), dataset=None, json_check=None, note=""):
    return Expect(frozenset(codes), tuple(words), dataset, json_check, note)


@dataclass
class Run:
    slot: str          # e.g. "isotropy", "depth_test", "hubness[mp -k 1]"
    argv: list         # the command line after "geomkit"
    expect: Expect
    outputs: list = field(default_factory=list)  # paths the run may create on success


@dataclass
class Case:
    name: str
    folder: Path
    path: Path                       # the bad file (its basename must be in every error message)
    runs: list                       # list[Run]
    inputs: list = field(default_factory=list)   # every input file whose bytes must not change
    note: str = ""


# --------------------------------------------------------------------------- JSON helpers


def _reject_constant(name):
    raise ValueError(f"non-finite JSON constant {name}")


def parse_json_strict(text: str):
    """Parse JSON refusing NaN/Infinity literals; returns the object or raises ValueError."""
    return json.loads(text, parse_constant=_reject_constant)


def nonfinite_numbers(obj, where="$"):
    """Paths of numbers in ``obj`` that are not finite."""
    bad = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad += nonfinite_numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad += nonfinite_numbers(v, f"{where}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        bad.append(where)
    return bad


def _walk(obj, key=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)
    else:
        yield key, obj


def mentions_count(word: str):
    """json_check: some key containing ``word`` holds a positive count (or a note string
    mentions it), e.g. the JSON says how many rows were zero / non-finite."""
    def check(obj):
        for key, value in _walk(obj):
            if word in key.lower() and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and value > 0:
                return
            if isinstance(value, str) and word in value.lower() and any(ch.isdigit() for ch in value):
                return
        raise AssertionError(f"exit 0 but the JSON reports no positive '{word}' count")
    check.__name__ = f"mentions_count({word!r})"
    return check


def mentions_words(*words):
    """json_check: the JSON text contains each word (str or tuple of alternatives)."""
    def check(obj):
        text = json.dumps(obj).lower()
        for w in words:
            alts = w if isinstance(w, tuple) else (w,)
            if not any(a.lower() in text for a in alts):
                raise AssertionError(f"exit 0 but the JSON does not mention {alts}")
    check.__name__ = f"mentions_words{words!r}"
    return check


def reports_problem(*words):
    """json_check for ``info`` on a file whose analysed dataset cannot be used: exit 0 is fine
    when a problem/warning/note string in the JSON names it (each word: str or alternatives)."""
    def check(obj):
        texts = [v for k, v in _walk(obj) if isinstance(v, str)
                 and any(t in k.lower() for t in ("problem", "warning", "note", "error"))]
        for text in texts:
            low = text.lower()
            if all(any(a.lower() in low for a in (w if isinstance(w, tuple) else (w,)))
                   for w in words):
                return
        raise AssertionError(f"exit 0 but no problem string in the JSON names {words} "
                             f"(problem strings: {texts[:3]})")
    check.__name__ = f"reports_problem{words!r}"
    return check


def INFO(*words, dataset=None):
    """``info`` on a file whose dataset is unusable: a refusal, or exit 0 reporting the problem."""
    return E(0, 3, words=words, dataset=dataset, json_check=reports_problem(*words))


# --------------------------------------------------------------------------- file helpers


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot(folders) -> dict:
    """{path: sha256 or 'dir'/'link->target'} of everything under ``folders`` (no link following)."""
    out = {}
    for folder in folders:
        folder = Path(folder)
        for root, dirs, files in os.walk(folder, followlinks=False):
            for name in dirs + files:
                p = Path(root) / name
                if p.is_symlink():
                    out[str(p)] = "link->" + os.readlink(p)
                elif p.is_dir():
                    out[str(p)] = "dir"
                else:
                    out[str(p)] = sha256(p)
    return out


def _utf8(values):
    return np.array([str(v) for v in values], dtype=object)


def dump(path, x, *, dataset="embeddings", meta=True, chunks=None, words=None, **extra):
    """Write ``x`` (any array) under ``dataset`` plus ids/texts/labels aligned with its rows."""
    path = Path(path)
    x = np.asarray(x)
    with h5py.File(path, "w") as f:
        f.create_dataset(dataset, data=x, chunks=chunks)
        n = x.shape[0] if x.ndim else 0
        if meta and n:
            ids = words if words is not None else [f"w{i}" for i in range(n)]
            utf8 = h5py.string_dtype("utf-8")
            f.create_dataset("ids", data=_utf8(ids), dtype=utf8)
            f.create_dataset("texts", data=_utf8([f"text of {w}" for w in ids]), dtype=utf8)
            f.create_dataset("labels", data=_utf8(["a" if i % 2 else "b" for i in range(n)]),
                             dtype=utf8)
        for name, values in extra.items():
            f.create_dataset(name, data=values)
    return path


def good_matrix(n=N, d=D, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


def make_common(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    good = dump(folder / "good.h5", good_matrix(), counts=np.arange(1, N + 1, dtype=np.int64))
    rng = np.random.default_rng(1)
    lines = [" ".join(rng.choice(WORDS, size=20)) for _ in range(200)]
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"good": good, "corpus": corpus, "folder": folder}


# --------------------------------------------------------------------------- command slots

# slot -> (template, default options); S = the bad spec, G = good.h5, C = corpus.txt, O = output
SLOTS = {
    "info": (["info", "S"], []),
    "info_scan": (["info", "S", "--scan"], []),
    "transform": (["transform", "S", "-o", "O"], ["--center"]),
    "isotropy": (["isotropy", "S"], []),
    "hubness": (["hubness", "S"], ["-k", "3"]),
    "depth": (["depth", "S"], []),
    "depth_test": (["depth", "G", "S"], []),
    "norms": (["norms", "S"], []),
    "intdim": (["intdim", "S"], ["-k", "3"]),
    # drift reads two dumps: the bad one as REF against good.h5 as NEW, and the other way round
    "drift_ref": (["drift", "S", "G"], ["--permutations", "20"]),
    "drift_new": (["drift", "G", "S"], ["--permutations", "20"]),
    "isotropy_c0": (["isotropy", "G", "--c0", "S"], []),
    "hubness_querybank": (["hubness", "G", "--querybank", "S"], ["-k", "3", "--reduce", "dis"]),
    "transform_fit_from": (["transform", "G", "-o", "O", "--fit-from", "S"], []),
    "infogain_embeddings": (["infogain", "C", "--embeddings", "S"], []),
    "infogain_context": (["infogain", "C", "--embeddings", "G", "--context-vectors", "S"], []),
    "infogain_corpus": (["infogain", "S"], []),
    "infogain_keywords_for": (["infogain", "C", "--keywords-for", "S"], []),
}

# the slots that read S as an embedding dump (PATH[:DATASET])
EMB_SLOTS = ("info", "info_scan", "transform", "isotropy", "hubness", "depth", "depth_test",
             "norms", "intdim", "drift_ref", "drift_new", "isotropy_c0", "hubness_querybank", "infogain_embeddings", "infogain_context")
ANALYSES = tuple(s for s in EMB_SLOTS if s not in ("info", "info_scan"))
# slots where S is opened as an HDF5 file of any kind
H5_SLOTS = EMB_SLOTS + ("transform_fit_from",)
ALL_FILE_SLOTS = H5_SLOTS + ("infogain_corpus", "infogain_keywords_for")


def base_slot(slot: str) -> str:
    return slot.split("[", 1)[0]


# --------------------------------------------------------------------------- case specs


@dataclass
class Spec:
    name: str
    build: Callable                  # build(folder, common) -> (path, spec_suffix, extra inputs)
    expect: dict                     # slot (or "slot[variant]") -> Expect
    options: dict = field(default_factory=dict)   # slot -> options replacing the slot's defaults
    extra: list = field(default_factory=list)     # appended to every run of the case
    note: str = ""


SPECS: list[Spec] = []


def spec(name, expect, options=None, extra=None, note=""):
    def deco(build):
        SPECS.append(Spec(name, build, expect, options or {}, extra or [], note))
        return build
    return deco


def for_slots(slots, expect, **overrides):
    out = {s: expect for s in slots}
    out.update(overrides)
    return out


TRUNC = ("truncated", "corrupt", "not an hdf5", "cannot be")
NOT_H5 = ("not an hdf5", "not hdf5")

# ---- file-level problems: every slot that opens the file


@spec("missing_file", for_slots(ALL_FILE_SLOTS, E(3, words=[("no such file", "does not exist")])))
def _missing(folder, common):
    return folder / "missing.h5", "", []


@spec("directory", for_slots(ALL_FILE_SLOTS, E(3, words=["directory"]),
                             # click.Path(dir_okay=False) options: a usage error is fine too
                             transform_fit_from=E(2, 3, words=["directory"]),
                             infogain_keywords_for=E(2, 3, words=["directory"])))
def _directory(folder, common):
    p = folder / "adir.h5"
    p.mkdir()
    return p, "", []


@spec("empty_file", for_slots(H5_SLOTS + ("infogain_keywords_for",),
                              E(3, words=[("empty", "not an hdf5", "truncated")]),
                              infogain_keywords_for=E(0, 3, words=["empty"])))
def _empty_file(folder, common):
    p = folder / "empty.h5"
    p.write_bytes(b"")
    return p, "", []


@spec("text_file", for_slots(H5_SLOTS, E(3, words=[NOT_H5])))
def _text_file(folder, common):
    p = folder / "text.h5"
    p.write_text("id,vector\n1,0.5 0.25\n2,0.1 0.3\n")
    return p, "", []


@spec("binary_garbage_after_signature", for_slots(H5_SLOTS, E(3, words=[TRUNC])))
def _garbage(folder, common):
    p = folder / "garbage.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(3).bytes(4096))
    return p, "", []


@spec("dangling_symlink", for_slots(ALL_FILE_SLOTS,
                                    E(3, words=[("no such file", "dangling", "broken", "does not exist")])))
def _dangling_symlink(folder, common):
    p = folder / "dangling.h5"
    os.symlink(folder / "nowhere.h5", p)
    return p, "", []


def _truncated(cut, chunked):
    """A valid 2000 x 16 dump cut to ``cut`` bytes (int), a fraction of its size (float) or its
    size minus one ("end")."""
    def build(folder, common):
        p = folder / "trunc.h5"
        dump(p, good_matrix(2000, 16), chunks=(256, 16) if chunked else None)
        data = p.read_bytes()
        n = len(data) - 1 if cut == "end" else int(len(data) * cut) if isinstance(cut, float) else cut
        p.write_bytes(data[:n])
        return p, "", []
    return build


for _cut, _chunked in [(8, False), (200, False), (1500, False), (0.25, False), (0.5, False),
                       (0.9, False), ("end", False), (200, True), (0.5, True), ("end", True)]:
    _label = f"at{_cut}" if isinstance(_cut, int) else f"{_cut}"
    spec(f"truncated_{'chunked' if _chunked else 'contig'}_{_label}",
         for_slots(H5_SLOTS + ("infogain_corpus",), E(3, words=[TRUNC])))(_truncated(_cut, _chunked))


# ---- dataset-level problems: the dataset is named explicitly (PATH:/vec)

def _dataset_case(name, data_fn, words, *, info_codes=(0, 3), codes=(3,)):
    ex = E(*codes, words=words, dataset="/vec")
    info = E(*info_codes, words=words, dataset="/vec", json_check=reports_problem(*words))

    @spec(name, for_slots(ANALYSES, ex, info=info, info_scan=info))
    def build(folder, common):
        p = dump(folder / f"{name}.h5", data_fn(), dataset="vec")
        return p, ":/vec", []
    return build


_dataset_case("dtype_int64", lambda: np.arange(N * D, dtype=np.int64).reshape(N, D),
              [("integer", "int64")])
_dataset_case("dtype_uint8", lambda: np.ones((N, D), dtype=np.uint8), [("integer", "uint8")])
_dataset_case("dtype_complex", lambda: np.ones((N, D), dtype=np.complex64), ["complex"])
_dataset_case("dtype_string", lambda: np.full((N, D), b"ab"), ["string"])
_dataset_case("dtype_bool", lambda: np.ones((N, D), dtype=bool), ["bool"])
_dataset_case("dtype_compound", lambda: np.zeros((N, D), dtype=[("re", "f4"), ("im", "f4")]),
              ["compound"])
_dataset_case("dtype_float128", lambda: good_matrix().astype(np.longdouble),
              [("float128", "longdouble", "128")])
_dataset_case("rank_1d", lambda: np.ones(N, dtype=np.float32), [("1 dimension", "1-d")])
_dataset_case("rank_4d", lambda: np.ones((4, 3, 2, 2), dtype=np.float32), [("4 dimension", "4-d")])
_dataset_case("empty_rows", lambda: np.ones((0, D), dtype=np.float32), ["empty"])
_dataset_case("empty_cols", lambda: np.ones((N, 0), dtype=np.float32), ["empty"])
_dataset_case("one_row", lambda: np.ones((1, D), dtype=np.float32), [("1 row", "one row")])


@spec("scalar_dataset", for_slots(ANALYSES, E(3, dataset="/vec"),
                                  info=INFO(dataset="/vec"), info_scan=INFO(dataset="/vec")))
def _scalar(folder, common):
    p = folder / "scalar.h5"
    with h5py.File(p, "w") as f:
        f["vec"] = np.float32(1.5)
    return p, ":/vec", []


@spec("no_float_dataset", for_slots(ANALYSES, E(3), info=INFO(), info_scan=INFO()))
def _no_float(folder, common):
    p = folder / "nofloat.h5"
    with h5py.File(p, "w") as f:
        f["ids"] = np.arange(5)
        f.create_group("grp")
    return p, "", []


@spec("missing_dataset", for_slots(ANALYSES + ("info", "info_scan"),
                                   E(3, words=["/nope"])))
def _missing_ds(folder, common):
    return dump(folder / "nods.h5", good_matrix()), ":/nope", []


@spec("dataset_is_group", for_slots(ANALYSES + ("info", "info_scan"), E(3, words=["group"])))
def _group(folder, common):
    p = dump(folder / "grp.h5", good_matrix())
    with h5py.File(p, "a") as f:
        f.create_group("sub")
    return p, ":/sub", []


@spec("layer_stack_without_layer",
      for_slots(ANALYSES, E(2, words=["--layer"]),
                info=E(0), info_scan=E(0)),
      note="(N, L, d) without --layer: usage error for analyses, info describes the last layer")
def _stack(folder, common):
    x = np.random.default_rng(4).standard_normal((N, 3, D)).astype(np.float32)
    return dump(folder / "stack.h5", x, dataset="hidden"), "", []


# ---- huge declared shape (only info here; the other commands: test_bad_inputs memory tests)

def make_huge(path, rows=10**9, d=768):
    with h5py.File(path, "w") as f:
        f.create_dataset("embeddings", shape=(rows, d), dtype="float32", chunks=(1024, d))
    return Path(path)


# ---- data problems

def _with_rows(fn, n=N, d=D, dtype=np.float32, seed=0):
    def data():
        x = good_matrix(n, d, seed=seed).astype(dtype)
        fn(x)
        return x
    return data


def _data_case(name, data_fn, expect, **kw):
    @spec(name, expect, **kw)
    def build(folder, common):
        return dump(folder / f"{name}.h5", data_fn()), "", []
    return build


def _nan(x):
    x[[3, 7], 1] = np.nan


def _inf(x):
    x[5, 0] = np.inf
    x[11, 2] = -np.inf


NONFINITE = E(3, words=[("nan", "inf", "non-finite", "nonfinite"), "--drop-nonfinite"],
              dataset="/embeddings")
SCAN_NONFINITE = E(0, json_check=mentions_count("nonfinite"))
_data_case("nan_rows", _with_rows(_nan),
           for_slots(ANALYSES, NONFINITE, info=E(0), info_scan=SCAN_NONFINITE))
_data_case("inf_rows", _with_rows(_inf),
           for_slots(ANALYSES, NONFINITE, info=E(0), info_scan=SCAN_NONFINITE))
_data_case("nan_rows_dropped", _with_rows(_nan),
           for_slots(ANALYSES, E(0), info=E(0), info_scan=E(0),
                     # the 2 dropped rows' words then lack a context vector: a clear refusal is fine
                     infogain_context=E(0, 3, words=["context"])),
           extra=["--drop-nonfinite"],
           note="--drop-nonfinite: every analysis runs on the 22 finite rows")
_data_case("all_nan", lambda: np.full((N, D), np.nan, dtype=np.float32),
           for_slots(ANALYSES, NONFINITE, info=E(0), info_scan=SCAN_NONFINITE))
_data_case("all_nan_dropped", lambda: np.full((N, D), np.nan, dtype=np.float32),
           for_slots(ANALYSES, E(3, words=[("finite", "nan")], dataset="/embeddings"),
                     info=E(0), info_scan=E(0, 3)), extra=["--drop-nonfinite"])


def _zero(x):
    x[[2, 5]] = 0


ZERO_REFUSED = E(3, words=["zero"], dataset="/embeddings")
ZERO_COSINE = E(0, 3, words=["zero"], dataset="/embeddings", json_check=mentions_count("zero"),
                note="policy being unified: exit 3 naming the zero rows, or 0 reporting them")
_data_case("zero_rows", _with_rows(_zero),
           for_slots(ANALYSES, E(0), depth=ZERO_REFUSED, depth_test=ZERO_REFUSED,
                     # drift runs the (cosine) depth test by default, as depth refuses them
                     drift_ref=ZERO_REFUSED, drift_new=ZERO_REFUSED,
                     isotropy=ZERO_COSINE, hubness=ZERO_COSINE, hubness_querybank=ZERO_COSINE,
                     info=E(0), info_scan=E(0, json_check=mentions_count("zero"))))

DEGENERATE = E(0, 2, 3, note="degenerate but valid: a clear refusal, or finite results")
# all-zero and identical rows have zero variance exactly: whitening has no direction to keep (a
# kept "direction" would be float round-off blown up to unit variance)
NO_VARIANCE = E(3, words=["variance"], dataset="/embeddings")
_data_case("all_zero", lambda: np.zeros((N, D), dtype=np.float32),
           for_slots(ANALYSES, E(0, 3), depth=ZERO_REFUSED, depth_test=ZERO_REFUSED,
                     drift_ref=ZERO_REFUSED, drift_new=ZERO_REFUSED, isotropy=ZERO_COSINE, hubness=ZERO_COSINE, hubness_querybank=ZERO_COSINE,
                     info=E(0), info_scan=E(0, json_check=mentions_count("zero")),
                     **{"transform[whiten]": NO_VARIANCE, "isotropy[whiten]": ZERO_COSINE,
                        "hubness[mp -k 1]": ZERO_COSINE}),
           options={"transform[whiten]": ["--whiten"], "isotropy[whiten]": ["--transform", "whiten"],
                    "hubness[mp -k 1]": ["-k", "1", "--reduce", "mp"]})
_data_case("identical_rows", lambda: np.tile(good_matrix(1), (N, 1)),
           for_slots(ANALYSES, E(0, 3), info=E(0), info_scan=E(0), norms=E(0),
                     transform=E(0),
                     **{"transform[whiten]": NO_VARIANCE, "isotropy[whiten]": NO_VARIANCE,
                        "hubness[mp -k 1]": DEGENERATE}),
           options={"transform[whiten]": ["--whiten"], "isotropy[whiten]": ["--transform", "whiten"],
                    "hubness[mp -k 1]": ["-k", "1", "--reduce", "mp"]})
_data_case("duplicates", lambda: np.vstack([np.tile(good_matrix(1, seed=5), (20, 1)),
                                            good_matrix(4, seed=6)]),
           for_slots(ANALYSES, E(0), info=E(0), info_scan=E(0),
                     **{"hubness[mp,ls,nicdm,csls]": E(0), "transform[whiten]": E(0, 3)}),
           options={"hubness[mp,ls,nicdm,csls]": ["-k", "3", "--reduce", "none,mp,ls,nicdm,csls"],
                    "transform[whiten]": ["--whiten"]},
           note="20 copies of one row + 4 others: valid data, every analysis must answer")
_data_case("two_rows", lambda: good_matrix(2),
           {"info": E(0), "info_scan": E(0), "transform": E(0), "norms": E(0),
            "isotropy": E(0, 3), "depth": E(0, 3), "hubness[mp -k 1]": DEGENERATE,
            "hubness": E(2, words=[("-k", "k =")]),
            # -k 3 needs 4 distinct rows; each drift test needs a few rows a side
            "intdim": E(2, words=["-k", "distinct rows"]),
            "drift_ref": E(3, words=["rows", "at least"]),
            "drift_new": E(3, words=["rows", "at least"])},
           options={"hubness[mp -k 1]": ["-k", "1", "--reduce", "mp"]})
_data_case("three_rows", lambda: good_matrix(3),
           {"info": E(0), "transform": E(0), "norms": E(0), "isotropy": E(0, 3), "depth": E(0, 3),
            **{f"hubness[{m} -k 2]": DEGENERATE for m in ("ls", "nicdm", "csls", "mp", "dis")}},
           options={f"hubness[{m} -k 2]": ["-k", "2", "--reduce", m]
                    for m in ("ls", "nicdm", "csls", "mp", "dis")})

FINITE_OK = E(0, note="finite values: every analysis must answer with finite numbers")
_data_case("f32_1e30", lambda: (good_matrix() * np.float32(1e30)).astype(np.float32),
           for_slots(ANALYSES, FINITE_OK, info=E(0), info_scan=E(0),
                     **{"transform[whiten]": FINITE_OK, "isotropy[whiten]": FINITE_OK,
                        "hubness[mp,ls,csls]": FINITE_OK}),
           options={"transform[whiten]": ["--whiten"], "isotropy[whiten]": ["--transform", "whiten"],
                    "hubness[mp,ls,csls]": ["-k", "3", "--reduce", "none,mp,ls,csls"]})
TOO_BIG = E(0, 3, words=[("large", "overflow", "rescale", "magnitude")], dataset="/embeddings")
_data_case("f64_1e200", lambda: good_matrix(dtype=np.float64) * 1e200,
           for_slots(ANALYSES, TOO_BIG, info=E(0), info_scan=E(0, 3)))
_data_case("f32_subnormal_1e-40", lambda: (good_matrix() * np.float32(1e-40)).astype(np.float32),
           for_slots(ANALYSES, E(0, 3), info=E(0), info_scan=E(0)))
_data_case("f16_near_max", lambda: (good_matrix() * 2e4).clip(-65000, 65000).astype(np.float16),
           for_slots(ANALYSES, FINITE_OK, info=E(0), info_scan=E(0)))


# ---- metadata problems

@spec("ids_shorter_than_rows",
      for_slots(ANALYSES, E(3, words=["ids", "24"]),
                info=INFO("ids", "24"), info_scan=INFO("ids", "24")))
def _ids_short(folder, common):
    p = dump(folder / "idshort.h5", good_matrix(), meta=False)
    with h5py.File(p, "a") as f:
        f.create_dataset("ids", data=_utf8(WORDS[:20]), dtype=h5py.string_dtype("utf-8"))
    return p, "", []


@spec("labels_longer_than_rows",
      for_slots(ANALYSES, E(3, words=["labels", "24"]),
                info=INFO("labels", "24"), info_scan=INFO("labels", "24")))
def _labels_long(folder, common):
    p = dump(folder / "lablong.h5", good_matrix(), meta=False)
    with h5py.File(p, "a") as f:
        f.create_dataset("ids", data=_utf8(WORDS), dtype=h5py.string_dtype("utf-8"))
        f["labels"] = np.arange(30)
    return p, "", []


@spec("counts_negative",
      for_slots(ANALYSES, E(3, words=["counts", "negative"]),
                info=INFO("counts", "negative"), info_scan=INFO("counts", "negative")))
def _counts_neg(folder, common):
    c = np.arange(N, dtype=np.float64)
    c[4] = -1
    return dump(folder / "countneg.h5", good_matrix(), counts=c), "", []


@spec("labels_float",
      {"hubness[--knn-error]": E(3, words=["float", "labels"]),
       "depth[--split-by labels]": E(3, words=["float", "labels"]),
       "hubness": E(0), "info": E(0), "norms": E(0)},
      options={"hubness[--knn-error]": ["-k", "3", "--knn-error"],
               "depth[--split-by labels]": ["--split-by", "labels", "--ref", "0.5", "--test", "1.5"]})
def _labels_float(folder, common):
    p = dump(folder / "flabels.h5", good_matrix(), meta=False)
    with h5py.File(p, "a") as f:
        f.create_dataset("ids", data=_utf8(WORDS), dtype=h5py.string_dtype("utf-8"))
        f["labels"] = np.tile([0.5, 1.5], N // 2)
    return p, "", []


@spec("texts_ids_non_utf8",
      for_slots(ANALYSES, E(0), info=E(0), info_scan=E(0),
                # the ids (decoded with replacement characters) are no corpus words
                infogain_embeddings=E(3, words=["ids"]), infogain_context=E(3, words=["context"]),
                **{"hubness[--per-item csv]": E(0)}),
      options={"hubness[--per-item csv]": ["-k", "3", "--per-item", "O.csv"]},
      note="invalid UTF-8 in ids/texts: analyses still answer; output must be valid JSON")
def _non_utf8(folder, common):
    p = dump(folder / "nonutf8.h5", good_matrix(), meta=False)
    bad = [b"w%d\xff\xfe" % i for i in range(N)]
    with h5py.File(p, "a") as f:
        f.create_dataset("ids", data=np.array(bad, dtype=object), dtype=h5py.vlen_dtype(bytes))
        f.create_dataset("texts", data=np.array([b"caf\xe9 " + b for b in bad], dtype="S16"))
    return p, "", []


# ---- links, external storage, virtual datasets

EXTERNAL = E(3, words=["external", "--allow-external"])


@spec("external_link_missing_as_dataset",
      for_slots(ANALYSES, EXTERNAL, info=INFO("external"), info_scan=INFO("external")),
      note="/embeddings is an HDF5 external link to a file that does not exist")
def _ext_missing(folder, common):
    p = folder / "extlink.h5"
    with h5py.File(p, "w") as f:
        f["embeddings"] = h5py.ExternalLink(str(folder / "gone.h5"), "/embeddings")
    return p, "", []


@spec("external_link_missing_allowed",
      for_slots(ANALYSES, E(3, words=[("gone.h5", "external", "cannot", "no such")]),
                info=INFO(("gone.h5", "external", "cannot", "no such")),
                info_scan=INFO(("gone.h5", "external", "cannot", "no such"))),
      extra=["--allow-external"])
def _ext_missing_allowed(folder, common):
    return _ext_missing(folder, common)


@spec("external_link_missing_elsewhere",
      for_slots(ANALYSES, E(0), info=E(0, json_check=mentions_words("external")), info_scan=E(0)),
      note="a valid /embeddings; another member is a dangling external link: not our business")
def _ext_elsewhere(folder, common):
    p = dump(folder / "extelse.h5", good_matrix())
    with h5py.File(p, "a") as f:
        f["other"] = h5py.ExternalLink(str(folder / "gone.h5"), "/x")
    return p, "", []


@spec("soft_link_dangling_as_dataset",
      for_slots(ANALYSES + ("info", "info_scan"),
                E(3, words=["/embeddings", ("link", "dangling", "broken", "/nowhere", "no dataset")])))
def _soft_dangling(folder, common):
    p = folder / "softlink.h5"
    with h5py.File(p, "w") as f:
        f["embeddings"] = h5py.SoftLink("/nowhere")
    return p, ":/embeddings", []


@spec("soft_link_dangling_default",
      for_slots(ANALYSES, E(3), info=INFO(("soft link", "dangling", "does not exist", "broken")),
                info_scan=INFO(("soft link", "dangling", "does not exist", "broken"))),
      note="the default dataset /embeddings is a dangling soft link (no dataset named)")
def _soft_dangling_default(folder, common):
    p = folder / "softdef.h5"
    with h5py.File(p, "w") as f:
        f["embeddings"] = h5py.SoftLink("/nowhere")
    return p, "", []


@spec("soft_link_dangling_elsewhere", for_slots(ANALYSES, E(0), info=E(0), info_scan=E(0)))
def _soft_else(folder, common):
    p = dump(folder / "softelse.h5", good_matrix())
    with h5py.File(p, "a") as f:
        f["broken"] = h5py.SoftLink("/nowhere")
    return p, "", []


@spec("virtual_dataset_other_file",
      for_slots(ANALYSES, E(3, words=["virtual", "--allow-external"]),
                info=INFO("virtual"), info_scan=INFO("virtual")))
def _virtual(folder, common):
    src = dump(folder / "vsource.h5", good_matrix(), meta=False)
    p = folder / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(N, D), dtype="f4")
    layout[:] = h5py.VirtualSource(str(src), "embeddings", shape=(N, D))
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("embeddings", layout)
    return p, "", [src]


@spec("virtual_dataset_allowed", for_slots(ANALYSES, E(0), info=E(0), info_scan=E(0),
                                           infogain_embeddings=E(3, words=["ids"]),
                                           infogain_context=E(3, words=["ids"])),
      extra=["--allow-external"])
def _virtual_allowed(folder, common):
    return _virtual(folder, common)


@spec("virtual_dataset_missing_source",
      for_slots(ANALYSES, E(3, words=["virtual", "--allow-external"]),
                info=INFO("virtual"), info_scan=INFO("virtual")))
def _virtual_missing(folder, common):
    p = folder / "vmissing.h5"
    layout = h5py.VirtualLayout(shape=(N, D), dtype="f4")
    layout[:] = h5py.VirtualSource(str(folder / "gone.h5"), "embeddings", shape=(N, D))
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("embeddings", layout)
    return p, "", []


@spec("external_raw_storage",
      for_slots(ANALYSES, E(3, words=["external", "--allow-external"]),
                info=INFO("external"), info_scan=INFO("external")))
def _external_raw(folder, common):
    raw = folder / "raw.bin"
    raw.write_bytes(good_matrix().tobytes())
    p = folder / "extraw.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("embeddings", shape=(N, D), dtype="f4",
                         external=[(str(raw), 0, N * D * 4)])
    return p, "", [raw]


# ---- second-input problems

@spec("dimension_mismatch",
      {"depth_test": E(2, 3, words=["dimension"]), "isotropy_c0": E(2, 3, words=["dimension"]),
       "hubness_querybank": E(2, 3, words=["dimension"]),
       "drift_ref": E(2, 3, words=["dimension"]), "drift_new": E(2, 3, words=["dimension"]),
       "infogain_context": E(0, 2, 3)})
def _dims(folder, common):
    return dump(folder / "d5.h5", good_matrix(d=5)), "", []


@spec("fit_from_not_a_transform", {"transform_fit_from": E(3, words=["geomkit_transform"])})
def _fit_plain(folder, common):
    return dump(folder / "plain.h5", good_matrix()), "", []


@spec("fit_from_corrupt_params",
      {"transform_fit_from": E(2, 3, words=[("geomkit_transform", "corrupt", "mean", "dimension",
                                             "fitted")])})
def _fit_corrupt(folder, common):
    p = dump(folder / "fitbad.h5", good_matrix())
    with h5py.File(p, "a") as f:
        g = f.create_group("geomkit_transform")
        g.attrs["steps"] = json.dumps([{"name": "center"}])
        s = g.create_group("step_0_center")
        s["mean"] = np.full(3, np.nan)
    return p, "", []


# ---- infogain-specific

@spec("corpus_non_utf8", {"infogain_corpus": E(3, words=["utf-8"]),
                          "infogain_keywords_for": E(3, words=["utf-8"])})
def _corpus_bad(folder, common):
    p = folder / "latin1.txt"
    p.write_bytes("w1 w2 caf\xe9 w3\n".encode("latin-1") * 5)
    return p, "", []


@spec("corpus_empty", {"infogain_corpus": E(3)})
def _corpus_empty(folder, common):
    p = folder / "empty.txt"
    p.write_bytes(b"")
    return p, "", []


@spec("corpus_whitespace_only", {"infogain_corpus": E(3)})
def _corpus_ws(folder, common):
    p = folder / "blank.txt"
    p.write_text("\n   \n\t\n")
    return p, "", []


@spec("cooc_missing_datasets", {"infogain_corpus": E(3, words=["co-occurrence"])})
def _cooc_missing(folder, common):
    p = folder / "cooc_partial.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.ones(3)
    return p, "", []


def _cooc(path, *, data=None, indptr=None, shape=None, vocab=None, counts=None):
    with h5py.File(path, "w") as f:
        f["data"] = np.array([2.0, 1, 2, 1, 1, 1]) if data is None else data
        f["indices"] = np.array([1, 2, 0, 2, 0, 1])
        f["indptr"] = np.array([0, 2, 4, 6]) if indptr is None else indptr
        f["shape"] = np.array([3, 3]) if shape is None else shape
        f.create_dataset("vocab", data=_utf8(["a", "b", "c"] if vocab is None else vocab),
                         dtype=h5py.string_dtype("utf-8"))
        f["counts"] = np.array([2.0, 2, 2]) if counts is None else counts
        f.attrs["window"] = 1
    return path


@spec("cooc_inconsistent_csr", {"infogain_corpus": E(3)})
def _cooc_csr(folder, common):
    return _cooc(folder / "cooc_csr.h5", indptr=np.array([0, 5, 9, 2])), "", []


@spec("cooc_vocab_mismatch", {"infogain_corpus": E(3, words=["vocab"])})
def _cooc_vocab(folder, common):
    return _cooc(folder / "cooc_vocab.h5", vocab=["a", "b"]), "", []


@spec("cooc_huge_shape", {"infogain_corpus": E(3)})
def _cooc_huge(folder, common):
    return _cooc(folder / "cooc_huge.h5", shape=np.array([10**12, 10**12])), "", []


@spec("cooc_nan_counts", {"infogain_corpus": E(3, words=[("nan", "finite", "negative")])})
def _cooc_nan(folder, common):
    return _cooc(folder / "cooc_nan.h5", data=np.array([2.0, np.nan, 2, 1, 1, 1]),
                 counts=np.array([2.0, np.nan, 2])), "", []


@spec("cooc_negative_counts", {"infogain_corpus": E(3, words=[("negative", "finite")])})
def _cooc_neg(folder, common):
    return _cooc(folder / "cooc_neg.h5", data=np.array([2.0, -1, 2, 1, 1, 1])), "", []


@spec("cooc_1d_shape", {"infogain_corpus": E(3)})
def _cooc_shape(folder, common):
    return _cooc(folder / "cooc_shape.h5", shape=np.array([3])), "", []


@spec("embeddings_share_no_word", {"infogain_embeddings": E(3, words=[("no word", "none of", "share")])})
def _no_shared(folder, common):
    return dump(folder / "nowords.h5", good_matrix(), words=[f"zz{i}" for i in range(N)]), "", []


@spec("embeddings_without_ids", {"infogain_embeddings": E(3, words=["ids"]),
                                 "infogain_context": E(3, words=["ids"])})
def _no_ids(folder, common):
    return dump(folder / "noids.h5", good_matrix(), meta=False), "", []


@spec("context_vectors_missing_words", {"infogain_context": E(3, words=["context"])})
def _ctx_missing(folder, common):
    return dump(folder / "ctxfew.h5", good_matrix(12), words=WORDS[:12]), "", []


# --------------------------------------------------------------------------- building


def _argv(slot: str, options: list | None, spec_text: str, common: dict, out: Path) -> list:
    template, defaults = SLOTS[base_slot(slot)]
    argv = []
    for part in template:
        argv.append({"S": spec_text, "G": str(common["good"]), "C": str(common["corpus"]),
                     "O": str(out)}.get(part, part))
    opts = defaults if options is None else options
    return argv + [str(out) + p[1:] if p.startswith("O.") else p for p in opts]


def _safe(slot: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in slot).strip("_")


CASE_NAMES = [s.name for s in SPECS]


def accepts(slot: str, flags) -> bool:
    """Whether the command of ``slot`` has every option in ``flags`` (options are attached only
    to the commands where they act: --drop-nonfinite is no option of info)."""
    from geomkit.cli.main import cli

    base = SLOTS.get(slot)
    name = base[0][0] if base else slot.split("[")[0].split("_")[0]
    command = cli.get_command(None, name)
    have = {o for p in command.params for o in p.opts}
    return all(f in have for f in flags if str(f).startswith("--"))


def _expect(s: Spec) -> dict:
    return {slot: e for slot, e in s.expect.items() if accepts(slot, s.extra)}


def run_ids() -> list[tuple[str, str]]:
    """(case name, slot) for every run, without writing files (for parametrisation)."""
    return [(s.name, slot) for s in SPECS for slot in _expect(s)]


def build_case(s: Spec, tmp_dir: Path, common: dict) -> Case:
    folder = Path(tmp_dir) / s.name
    folder.mkdir(parents=True, exist_ok=True)
    path, suffix, extra_inputs = s.build(folder, common)
    spec_text = str(path) + suffix
    runs = []
    for slot, expect in _expect(s).items():
        out = folder / f"out_{_safe(slot)}.h5"
        argv = _argv(slot, s.options.get(slot), spec_text, common, out) + list(s.extra)
        outputs = [out] + [Path(str(out) + ".csv")]
        runs.append(Run(slot, argv, expect, outputs))
    inputs = [p for p in [path, *extra_inputs, common["good"], common["corpus"]]
              if os.path.isfile(p)]
    return Case(s.name, folder, Path(path), runs, inputs, s.note)


def bad_cases(tmp_dir) -> list[Case]:
    """Write every case's files under ``tmp_dir`` and return the cases."""
    tmp_dir = Path(tmp_dir)
    common = make_common(tmp_dir / "common")
    return [build_case(s, tmp_dir, common) for s in SPECS]


def spec_by_name(name: str) -> Spec:
    return next(s for s in SPECS if s.name == name)


# --------------------------------------------------------------------------- the contract


def check_run(run: Run, case: Case, code: int, stdout: str, stderr: str) -> list[str]:
    """Problems with one finished run (empty list: the contract holds)."""
    problems = []
    ex = run.expect
    if code not in ex.codes and code not in (0, 2, 3) and not stderr.strip():
        # an uncaught exception (CliRunner) or a crash: the caller reports the exception itself
        return [f"exit {code} with nothing on stderr"]
    if "Traceback" in stdout or "Traceback" in stderr:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [""]
        problems.append(f"traceback: {tail[0]}")
    if code not in ex.codes:
        first = stderr.strip().splitlines()[0] if stderr.strip() else "(no stderr)"
        problems.append(f"exit {code} not in {sorted(ex.codes)}: {first}")
    if code != 0:
        err = stderr.strip()
        lines = err.splitlines()
        if len(lines) != 1:
            problems.append(f"stderr has {len(lines)} lines: {err[:300]!r}")
        if not err.startswith("geomkit: error: "):
            problems.append(f"stderr does not start with 'geomkit: error: ': {err[:200]!r}")
        if code in ex.codes:  # the message's content is only judged for an allowed exit code
            low = err.lower()
            if case.path.name.lower() not in low:
                problems.append(f"message does not name the file {case.path.name!r}: {err[:300]!r}")
            if ex.dataset and ex.dataset.lower() not in low:
                problems.append(f"message does not name the dataset {ex.dataset!r}: {err[:300]!r}")
            for w in ex.words:
                alts = w if isinstance(w, tuple) else (w,)
                if not any(a.lower() in low for a in alts):
                    problems.append(f"message lacks {alts}: {err[:300]!r}")
        if stdout.strip():
            problems.append(f"stdout not empty on failure: {stdout[:200]!r}")
    else:
        try:
            obj = parse_json_strict(stdout)
        except ValueError as exc:
            problems.append(f"exit 0 but stdout is not strict JSON ({exc}): {stdout[:200]!r}")
        else:
            bad = nonfinite_numbers(obj)
            if bad:
                problems.append(f"non-finite numbers at {bad[:5]}")
            if ex.json_check is not None:
                try:
                    ex.json_check(obj)
                except AssertionError as exc:
                    problems.append(str(exc))
        if base_slot(run.slot) in ("transform", "transform_fit_from"):
            problems += check_transform_output(run.outputs[0])
    return problems


def check_transform_output(out: Path) -> list[str]:
    if not out.exists():
        return [f"exit 0 but {out.name} was not written"]
    try:
        with h5py.File(out, "r") as f:
            x = f["embeddings"][()]
    except Exception as exc:  # noqa: BLE001 - reported as a problem
        return [f"output {out.name} unreadable: {exc}"]
    if not np.isfinite(x).all():
        return [f"output {out.name} holds {int((~np.isfinite(x)).sum())} non-finite values"]
    return []


# --------------------------------------------------------------------------- running in-process


class _ConsoleScript:
    """The console script ``geomkit`` (``geomkit.cli.main:main``) in a shape CliRunner can invoke.

    ``main()`` wraps the click group ``cli``: it turns click's own parsing errors (a bad option
    value, a directory where a file is expected) into the one-line ``geomkit: error: ...`` and
    installs the signal handlers. Invoking ``cli`` directly would skip that, so these tests
    invoke ``main()`` through CliRunner (same streams and isolation), restoring the signal
    handlers afterwards so pytest's own Ctrl-C keeps working."""

    name = "geomkit"

    def main(self, args=(), prog_name=None, **extra):
        import signal
        import sys

        from geomkit.cli.main import main

        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        old_argv = sys.argv
        sys.argv = ["geomkit", *args]
        try:
            main()
        finally:
            sys.argv = old_argv
            for s, handler in saved.items():
                signal.signal(s, handler)


CONSOLE_SCRIPT = _ConsoleScript()


def invoke(argv, cwd=None):
    """``geomkit ARGV`` in-process: (exit code, stdout, stderr, traceback text or '')."""
    import traceback

    from click.testing import CliRunner

    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(CONSOLE_SCRIPT, [str(a) for a in argv], catch_exceptions=True)
    finally:
        os.chdir(old)
    tb = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, result.stdout, result.stderr, tb
