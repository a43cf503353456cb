"""Output safety: an output option pointed at an input of the same command line (same path, a
relative spelling, a symlink, a hardlink, the input given through a symlink or as PATH:DATASET),
or two outputs pointed at one file, exits 2 before any work, with one line naming the option,
and changes nothing (every input's bytes, no new file).

"Before any work" is checked in-process: the functions that open inputs (EmbeddingSource,
open_h5, the co-occurrence reader/counter, the --fit-from loader, the document reader) are
replaced by ones that record the call and raise; none may be reached.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import badfiles
from badfiles import WORDS, dump, good_matrix, invoke, snapshot
from conftest import run_cli_subprocess as run_cli

# command -> (argv template, {role: placeholder file}, [output options])
# placeholders are file names in the test folder; outputs default to fresh names
COMMANDS = {
    "info": (["info", "{INPUT}"], {"INPUT": "good.h5"}, ["--html"]),
    "transform": (["transform", "{INPUT}", "--center"], {"INPUT": "good.h5"}, ["-o", "--html"]),
    "transform --fit-from": (["transform", "{INPUT}", "--fit-from", "{FIT}"],
                             {"INPUT": "good.h5", "FIT": "fit.h5"}, ["-o", "--html"]),
    "isotropy": (["isotropy", "{INPUT}", "--c0", "{C0}"], {"INPUT": "good.h5", "C0": "c0.h5"},
                 ["--html", "--per-item"]),
    "hubness": (["hubness", "{INPUT}", "-k", "3", "--reduce", "none,dis", "--querybank", "{BANK}"],
                {"INPUT": "good.h5", "BANK": "bank.h5"}, ["--html", "--per-item"]),
    "depth": (["depth", "{REF}", "{TEST}"], {"REF": "good.h5", "TEST": "test.h5"},
              ["--html", "--per-item"]),
    "norms": (["norms", "{INPUT}"], {"INPUT": "good.h5"}, ["--html", "--per-item"]),
    "drift": (["drift", "{REF}", "{NEW}", "--permutations", "20"],
              {"REF": "good.h5", "NEW": "test.h5"}, ["--html", "--per-item"]),
    "intdim": (["intdim", "{INPUT}", "-k", "3"], {"INPUT": "good.h5"}, ["--html", "--per-item"]),
    "infogain": (["infogain", "{CORPUS}", "--embeddings", "{EMB}", "--context-vectors", "{CTX}",
                  "--keywords-for", "{DOC}"],
                 {"CORPUS": "corpus.txt", "EMB": "emb.h5", "CTX": "ctx.h5", "DOC": "doc.txt"},
                 ["--save-cooccurrence", "--html", "--per-item"]),
    "infogain COOC.h5": (["infogain", "{CORPUS}", "--embeddings", "{EMB}"],
                         {"CORPUS": "cooc.h5", "EMB": "emb.h5"},
                         ["--save-cooccurrence", "--html", "--per-item"]),
}
# the required output of a command line, given a fresh path unless it is the one tested
REQUIRED_OUTPUT = {"transform": "-o", "transform --fit-from": "-o"}
TEXT_ROLES = {("infogain", "CORPUS"), ("infogain", "DOC")}
OPTION_NAMES = {"-o": ("-o", "--output")}

KINDS = ["same_path", "relative_path", "symlink", "hardlink", "input_via_symlink",
         "input_with_dataset"]


def _cases():
    out = []
    for cmd, (_, roles, outputs) in COMMANDS.items():
        for opt in outputs:
            for role in roles:
                for kind in KINDS:
                    if kind == "input_with_dataset" and ((cmd, role) in TEXT_ROLES or role == "FIT"):
                        continue
                    out.append((cmd, opt, role, kind))
    return out


def _clashes():
    out = []
    for cmd, (_, _, outputs) in COMMANDS.items():
        for i, a in enumerate(outputs):
            for b in outputs[i + 1:]:
                for kind in ("same_path", "relative_path", "symlink"):
                    out.append((cmd, a, b, kind))
    return out


CASES = _cases()
CLASHES = _clashes()


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory):
    """A --fit-from file written by geomkit transform itself (the product's own format)."""
    from geomkit.cli.main import cli

    folder = tmp_path_factory.mktemp("fit")
    good = dump(folder / "good.h5", good_matrix())
    result = CliRunner().invoke(cli, ["transform", str(good), "-o", str(folder / "fit.h5"),
                                      "--center"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return folder / "fit.h5"


@pytest.fixture
def world(tmp_path, fit_file):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "sub").mkdir()  # for relative spellings such as sub/../good.h5
    dump(folder / "good.h5", good_matrix(), counts=np.arange(1, 25))
    dump(folder / "test.h5", good_matrix(seed=1))
    dump(folder / "c0.h5", good_matrix(40, seed=2))
    dump(folder / "bank.h5", good_matrix(30, seed=3))
    dump(folder / "emb.h5", good_matrix(seed=4))
    dump(folder / "ctx.h5", good_matrix(seed=5))
    shutil.copy(fit_file, folder / "fit.h5")
    rng = np.random.default_rng(1)
    (folder / "corpus.txt").write_text(
        "\n".join(" ".join(rng.choice(WORDS, size=20)) for _ in range(100)) + "\n")
    (folder / "doc.txt").write_text("w1 w2 w3 w1\n")
    badfiles._cooc(folder / "cooc.h5", vocab=["w0", "w1", "w2"])
    return folder


class WorkStarted(AssertionError):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Every way into an input raises; the list records what was reached."""
    import geomkit.cli.infogain as cli_infogain
    import geomkit.cli.transform as cli_transform
    import geomkit.io.cooccurrence as cooc
    import geomkit.io.source as source
    import geomkit.transforms.run as trun

    reached = []

    def stop(name):
        def fail(*args, **kwargs):
            reached.append(name)
            raise WorkStarted(f"work started: {name}")
        return fail

    monkeypatch.setattr(source.EmbeddingSource, "__init__", stop("EmbeddingSource"))
    monkeypatch.setattr(source, "open_h5", stop("open_h5"))
    for mod in (cooc, cli_infogain):
        monkeypatch.setattr(mod, "count_corpus", stop("count_corpus"))
        monkeypatch.setattr(mod, "read_cooccurrence", stop("read_cooccurrence"))
    monkeypatch.setattr(cooc, "_documents", stop("_documents"))
    for mod in (trun, cli_transform):
        monkeypatch.setattr(mod, "load_pipeline", stop("load_pipeline"))
    return reached


def build_argv(cmd, folder: Path, *, role_paths=None, outputs=None):
    template, roles, out_opts = COMMANDS[cmd]
    role_paths = role_paths or {}
    paths = {r: role_paths.get(r, str(folder / name)) for r, name in roles.items()}
    argv = [t.format(**paths) if "{" in t else t for t in template]
    outputs = dict(outputs or {})
    req = REQUIRED_OUTPUT.get(cmd)
    if req and req not in outputs:
        outputs[req] = str(folder / "fresh_out.h5")
    for opt, path in outputs.items():
        argv += [opt, path]
    return argv


def assert_refused(argv, folder, before, code, out, err, tb, reached, options):
    after = snapshot([folder])
    problems = []
    if reached:
        problems.append(f"work started before the refusal: {reached}")
    if tb:
        problems.append(f"uncaught exception: {tb.strip().splitlines()[-1]}")
    if code != 2:
        problems.append(f"exit {code}, expected 2")
    text = err.strip()
    if not (text.startswith("geomkit: error: ") and len(text.splitlines()) == 1):
        problems.append(f"stderr is not one 'geomkit: error: ' line: {text[:300]!r}")
    names = [n for opt in options for n in OPTION_NAMES.get(opt, (opt,))]
    if not any(n in text for n in names):
        problems.append(f"message does not name {options}: {text[:300]!r}")
    if "Traceback" in out + err:
        problems.append("traceback printed")
    changed = [p for p in before if before[p] != after.get(p)]
    if changed:
        problems.append(f"changed or removed: {[os.path.basename(p) for p in changed]}")
    new = sorted(set(after) - set(before))
    if new:
        problems.append(f"new files: {[os.path.basename(p) for p in new]}")
    assert not problems, f"geomkit {' '.join(map(str, argv))}\n  " + "\n  ".join(problems)


def _point_at(folder: Path, kind: str, target_name: str, role_spec_name: str):
    """(output path, input argument) for pointing an output at input ``target_name``."""
    target = folder / target_name
    if kind == "same_path":
        return str(target), None
    if kind == "relative_path":
        return f"sub/../{target_name}", None
    if kind == "symlink":
        link = folder / f"link_{target_name}"
        os.symlink(target, link)
        return str(link), None
    if kind == "hardlink":
        link = folder / f"hard_{target_name}"
        os.link(target, link)
        return str(link), None
    if kind == "input_via_symlink":
        link = folder / f"in_{target_name}"
        os.symlink(target, link)
        return str(target), str(link)
    if kind == "input_with_dataset":
        return str(target), f"{target}:/embeddings" if role_spec_name != "CORPUS" else f"{target}:/data"
    raise ValueError(kind)


@pytest.mark.parametrize("cmd,opt,role,kind", CASES,
                         ids=[f"{c}-{o}-{r}-{k}".replace(" ", "_") for c, o, r, k in CASES])
def test_output_at_input_refused_before_work(world, no_work, cmd, opt, role, kind):
    target_name = COMMANDS[cmd][1][role]
    out_path, input_arg = _point_at(world, kind, target_name, role)
    before = snapshot([world])
    argv = build_argv(cmd, world, role_paths={role: input_arg} if input_arg else None,
                      outputs={opt: out_path})
    code, out, err, tb = invoke(argv, world)
    assert_refused(argv, world, before, code, out, err, tb, no_work, [opt])


@pytest.mark.parametrize("cmd,opt_a,opt_b,kind", CLASHES,
                         ids=[f"{c}-{a}-{b}-{k}".replace(" ", "_") for c, a, b, k in CLASHES])
def test_two_outputs_at_one_file_refused(world, no_work, cmd, opt_a, opt_b, kind):
    target = world / "clash.h5"
    if kind == "same_path":
        a, b = str(target), str(target)
    elif kind == "relative_path":
        a, b = str(target), "sub/../clash.h5"
    else:
        link = world / "clash_link.h5"
        os.symlink(target, link)  # dangling until written
        a, b = str(target), str(link)
    before = snapshot([world])
    argv = build_argv(cmd, world, outputs={opt_a: a, opt_b: b})
    code, out, err, tb = invoke(argv, world)
    assert_refused(argv, world, before, code, out, err, tb, no_work, [opt_a, opt_b])


def test_every_command_and_output_option_is_covered():
    cmds = {c.split()[0] for c in COMMANDS}
    assert cmds == {"info", "transform", "isotropy", "hubness", "depth", "norms", "infogain",
                    "drift", "intdim"}
    pairs = {(c.split()[0], o) for c, _, o_list in [(c, *COMMANDS[c][1:]) for c in COMMANDS]
             for o in o_list}
    assert ("transform", "-o") in pairs and ("infogain", "--save-cooccurrence") in pairs
    roles = {r for _, r, _ in [(c, r, 0) for c in COMMANDS for r in COMMANDS[c][1]]}
    assert roles == {"INPUT", "FIT", "C0", "BANK", "REF", "TEST", "NEW", "CORPUS", "EMB", "CTX",
                     "DOC"}


def test_baseline_command_lines_work(world):
    """Without any clash the same command lines succeed (so a refusal above is about the clash)."""
    for cmd, (_, _, outputs) in COMMANDS.items():
        outs = {opt: str(world / f"ok_{cmd.replace(' ', '_')}{i}.{'csv' if opt == '--per-item' else 'h5'}")
                for i, opt in enumerate(outputs)}
        argv = build_argv(cmd, world, outputs=outs)
        code, out, err, tb = invoke(argv, world)
        assert code == 0 and not tb, (argv, code, err[-500:], tb[-1500:])


# --------------------------------------------------------------------------- real processes

E2E = [("transform", "-o", "INPUT", "hardlink"), ("transform", "-o", "INPUT", "same_path"),
       ("isotropy", "--per-item", "INPUT", "symlink"), ("depth", "--html", "TEST", "same_path"),
       ("infogain", "--save-cooccurrence", "CORPUS", "same_path"),
       ("hubness", "--html", "BANK", "hardlink")]


@pytest.mark.parametrize("cmd,opt,role,kind", E2E,
                         ids=[f"{c}-{o}-{r}-{k}" for c, o, r, k in E2E])
def test_output_at_input_refused_subprocess(world, cmd, opt, role, kind):
    target_name = COMMANDS[cmd][1][role]
    out_path, input_arg = _point_at(world, kind, target_name, role)
    before = snapshot([world])
    argv = build_argv(cmd, world, role_paths={role: input_arg} if input_arg else None,
                      outputs={opt: out_path})
    proc = run_cli(*argv)
    assert_refused(argv, world, before, proc.returncode, proc.stdout, proc.stderr, "", [], [opt])
