"""Rules on the analyses' JSON contracts: ``geomkit check`` (a deployment gate) and the traffic
lights at the top of ``geomkit report``.

A rule names a key of an analysis's JSON as ``command.key`` (``isotropy.isoscore``,
``hubness.k_skewness``, ``norms.quantiles.p99``) and a bound: ``max``, ``min`` or ``between``.
Keys resolve against the flattened JSON (``a.b.c``); a key that is not there matches the one
flattened key that ends with it, preferring the unreduced hubness measures (``k_skewness`` ->
``methods.none.k_skewness``, ``mp.k_skewness`` -> ``methods.mp.k_skewness``). The valid keys of
every command are read off its contract on a small synthetic dump (:func:`contract_keys`), so
they never drift from the analyses.

A value that is missing or null (an analysis that cannot say, e.g. IsoScore* without a C0) fails
its rule: a gate never passes on a number it does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from geomkit.errors import InputError, UsageError
from geomkit.report.result import Result, flatten

# the analyses a rule (and the report) can address, and those that need a second input (--vs)
COMMANDS = ("isotropy", "hubness", "norms", "depth", "compare")
NEEDS_OTHER = ("depth", "compare")


@dataclass(frozen=True)
class Rule:
    command: str
    key: str
    low: float | None = None
    high: float | None = None

    @property
    def text(self) -> str:
        name = f"{self.command}.{self.key}"
        if self.low is not None and self.high is not None:
            return f"{self.low:g} <= {name} <= {self.high:g}"
        if self.high is not None:
            return f"{name} <= {self.high:g}"
        return f"{name} >= {self.low:g}"

    def holds(self, value) -> bool:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        return ((self.low is None or value >= self.low)
                and (self.high is None or value <= self.high))


def parse_rule(kind: str, text: str) -> Rule:
    """``--max hubness.k_skewness=3``, ``--min isotropy.isoscore=0.05``,
    ``--between norms.cv=0,0.5``."""
    name, sep, bound = text.partition("=")
    if not sep or "." not in name:
        raise UsageError(f"--{kind} {text!r}: write COMMAND.KEY=VALUE, e.g. "
                         f"--{kind} hubness.k_skewness=3.")
    command, key = name.strip().split(".", 1)
    try:
        values = [float(v) for v in bound.split(",")]
    except ValueError:
        raise UsageError(f"--{kind} {text!r}: {bound!r} is not a number.") from None
    if kind == "between":
        if len(values) != 2 or values[0] > values[1]:
            raise UsageError(f"--between {text!r}: give LOW,HIGH with LOW <= HIGH.")
        return _checked(Rule(command, key, values[0], values[1]))
    if len(values) != 1:
        raise UsageError(f"--{kind} {text!r}: give one number.")
    return _checked(Rule(command, key, values[0] if kind == "min" else None,
                         values[0] if kind == "max" else None))


def rules_from_toml(path: str) -> list[Rule]:
    """A rules file::

        [max]
        "hubness.k_skewness" = 3
        [min]
        "isotropy.isoscore" = 0.05
        [between]
        "norms.cv" = [0.0, 0.5]
    """
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: is not valid TOML ({exc}).") from None
    unknown = set(doc) - {"max", "min", "between"}
    if unknown:
        raise UsageError(f"{path}: unknown table [{sorted(unknown)[0]}]; rules go in [max], "
                         f"[min] and [between].")
    rules = []
    for kind in ("max", "min", "between"):
        for name, value in doc.get(kind, {}).items():
            bound = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
            rules.append(parse_rule(kind, f"{name}={bound}"))
    if not rules:
        raise UsageError(f"{path}: holds no rules.")
    return rules


def _checked(rule: Rule) -> Rule:
    if rule.command not in COMMANDS:
        raise UsageError(f"rule {rule.text}: '{rule.command}' is not one of "
                         f"{', '.join(COMMANDS)}.")
    return rule


# ----------------------------------------------------------------------------- keys
_KEYS: dict[str, list[str]] = {}


def contract_keys(command: str) -> list[str]:
    """The flattened numeric keys of ``command``'s JSON, read off its result on a small seeded
    synthetic dump that has every kind of metadata (so optional keys are there too)."""
    if command not in _KEYS:
        import numpy as np

        from geomkit import Space

        rng = np.random.default_rng(0)
        n, d = 60, 6
        x = rng.standard_normal((n, d)) + 0.5
        meta = dict(ids=[f"i{i}" for i in range(n)], labels=[f"c{i % 3}" for i in range(n)],
                    counts=rng.integers(1, 100, n))
        space = Space.from_array(x, **meta)
        other = Space.from_array(x + rng.standard_normal((n, d)), **meta)
        from geomkit.transforms.hubness import REDUCTIONS

        reduce = tuple(m for m in REDUCTIONS if m != "dsl")  # dsl: euclidean only
        result = run_command(command, space, other, k=5, hubness_reduce=reduce)
        flat = flatten(result.to_dict())
        _KEYS[command] = sorted(k for k, v in flat.items()
                                if v is None or (isinstance(v, (int, float))
                                                 and not isinstance(v, bool)))
    return _KEYS[command]


def resolve(command: str, key: str) -> str:
    """The flattened contract key a rule's key names (see the module docstring)."""
    keys = contract_keys(command)
    if key in keys:
        return key
    hits = [k for k in keys if k.endswith("." + key)]
    if len(hits) > 1:
        preferred = [k for k in hits if k.startswith("methods.none.")] or [
            k for k in hits if k == f"methods.{key}"]
        hits = preferred or hits
    if len(hits) == 1:
        return hits[0]
    short = sorted({k.split(".")[-1] if k.startswith("methods.none.") else k for k in keys})
    raise UsageError(f"'{command}.{key}' is not a key of {command}'s JSON"
                     + (f" (it matches {', '.join(hits)})" if hits else "")
                     + f"; valid keys: {', '.join(short)}.")


def run_command(command: str, space, other=None, *, k: int = 10, hubness_reduce=("none",),
                seed: int = 0):
    """The analysis ``command`` on ``space`` (and ``other``) with the CLI's defaults."""
    if command == "isotropy":
        from geomkit.analysis.isotropy import compute_isotropy

        return compute_isotropy(space, seed=seed)
    if command == "hubness":
        from geomkit.analysis.hubness import compute_hubness

        labels = space.metadata.class_labels(space.path) if space.metadata.labels is not None \
            else None
        return compute_hubness(space, k=k, reduce=hubness_reduce, labels=labels)
    if command == "norms":
        from geomkit.analysis.norms import compute_norms

        groups = space.metadata.class_labels(space.path) if space.metadata.labels is not None \
            else None
        return compute_norms(space, groups=groups, counts=space.metadata.counts)
    if other is None:
        raise UsageError(f"{command} compares two inputs: give the second with --vs OTHER.")
    if command == "depth":
        from geomkit.analysis.depth import compute_depth

        return compute_depth(space, other)
    if command == "compare":
        from geomkit.analysis.compare import compute_compare

        return compute_compare(space, other, k=k, seed=seed)
    raise UsageError(f"'{command}' is not one of {', '.join(COMMANDS)}.")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CheckResult(Result):
    """Each rule with its value, bound and verdict; ``passed`` when every rule holds."""

    rules: tuple
    values: tuple
    label: str = ""
    errors: dict = field(default_factory=dict)
    n_dropped: int = 0
    n_dropped_zero: int = 0
    command: str = "check"

    @property
    def title(self):
        return f"geomkit check {self.label}"

    @property
    def outcomes(self) -> list[bool]:
        return [r.holds(v) for r, v in zip(self.rules, self.values)]

    @property
    def passed(self) -> bool:
        return all(self.outcomes)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "n_rules": len(self.rules),
                "n_failed": sum(not o for o in self.outcomes),
                "rules": [{"rule": r.text, "key": f"{r.command}.{r.key}", "value": v,
                           "min": r.low, "max": r.high, "passed": o}
                          for r, v, o in zip(self.rules, self.values, self.outcomes)],
                "n_dropped": self.n_dropped, "n_dropped_zero": self.n_dropped_zero}


def evaluate_rules(rules: list[Rule], space, other=None, *, k: int = 10,
                   seed: int = 0, label: str = "", progress=None) -> CheckResult:
    """Resolve every rule's key (usage errors before any work), run only the analyses the rules
    name (each once, on one Space, sharing its cached products), read the values."""
    from geomkit.space import as_space

    space = as_space(space)
    resolved = [Rule(r.command, resolve(r.command, r.key), r.low, r.high) for r in rules]
    needed = list(dict.fromkeys(r.command for r in resolved))
    missing = [c for c in needed if c in NEEDS_OTHER and other is None]
    if missing:
        raise UsageError(f"rules on {missing[0]} compare two inputs: give the second with "
                         f"--vs OTHER.")
    results = {}
    reduce = tuple(dict.fromkeys(["none"] + [r.key.split(".")[1] for r in resolved
                                             if r.command == "hubness"
                                             and r.key.startswith("methods.")]))
    for command in needed:
        if progress:
            progress(f"geomkit: check: {command}")
        results[command] = flatten(run_command(command, space, other, k=k, seed=seed,
                                               hubness_reduce=reduce).to_dict())
    values = tuple(results[r.command].get(r.key) for r in resolved)
    dropped = space.n_dropped + (other.n_dropped if other is not None else 0)
    dropped_zero = space.n_dropped_zero + (other.n_dropped_zero if other is not None else 0)
    return CheckResult(rules=tuple(resolved), values=values, label=label, n_dropped=dropped,
                       n_dropped_zero=dropped_zero)


# ----------------------------------------------------------------------------- proposed defaults
@dataclass(frozen=True)
class Guide:
    """A proposed threshold (docs/check.md): ``warn`` turns a report's light amber, ``fail``
    red, and ``geomkit check --defaults`` fails beyond ``fail``. ``worse``: "high" or "low"."""

    concern: str
    command: str
    key: str
    warn: float
    fail: float | None  # None: a warning only, never a gate
    worse: str
    reason: str

    def rule(self) -> Rule:
        return Rule(self.command, self.key, low=self.fail if self.worse == "low" else None,
                    high=self.fail if self.worse == "high" else None)

    def light(self, value) -> str:
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "grey"
        bad = (lambda v, t: v > t) if self.worse == "high" else (lambda v, t: v < t)
        if self.fail is not None and bad(value, self.fail):
            return "red"
        return "amber" if bad(value, self.warn) else "green"


GUIDES = (
    Guide("anisotropy", "isotropy", "avg_cosine", 0.3, 0.6, "high",
          "the mean cosine between random pairs: 0 for an isotropic space; well-trained sentence "
          "models sit near 0.1-0.3, raw BERT-style hidden states at 0.6-0.9, where every "
          "cosine looks alike and similarity thresholds stop discriminating"),
    Guide("dominant direction", "isotropy", "top_pc_share.top1", 0.1, 0.3, "high",
          "the share of variance on the first principal direction: one direction carrying "
          "> 30% (a frequency or position artefact) dominates every dot product; remove it "
          "(transform --abtt 1)"),
    Guide("hubness", "hubness", "k_skewness", 1.0, 3.0, "high",
          "skewness of the k-occurrence (k = 10): above 1 a few items appear in many "
          "neighbour lists (Radovanović et al. 2010); above 3 retrieval returns the same hubs "
          "for unrelated queries; a reduction (mp, csls) helps"),
    Guide("zero vectors", "norms", "n_zero", 0, 0, "high",
          "all-zero rows have no direction: a failed or padded embedding, refused by every "
          "cosine measure"),
    Guide("duplicate rows", "hubness", "n_duplicates", 0, None, "high",
          "exact copies of an earlier row (repeated texts, or a pipeline that wrote one vector "
          "twice): they sit at distance 0 and fill each other's neighbour lists"),
    Guide("drift", "depth", "p", 0.05, 0.01, "low",
          "the rank-sum test of depths: p < 0.01 says OTHER sits away from INPUT's centre "
          "(Seegmiller & Preum 2023); effect_size says how far"),
)


def default_rules(with_other: bool) -> list[Rule]:
    """The proposed thresholds as check rules (``geomkit check --defaults``)."""
    return [g.rule() for g in GUIDES
            if g.fail is not None and (with_other or g.command not in NEEDS_OTHER)]


def verdicts(report) -> list:
    """The report's traffic lights: one per concern whose section ran, from :data:`GUIDES`, with
    the numbers in plain words; plus what the reductions and the second input add."""
    from geomkit.analysis.suite import Verdict

    out = []
    for g in GUIDES:
        s = report.section(g.command)
        if s is None or s.result is None:
            continue
        flat = flatten(s.result.to_dict())
        key = resolve(g.command, g.key)
        value = flat.get(key)
        light = g.light(value)
        text = _verdict_text(g, value, flat, s)
        if g.command == "hubness" and g.key == "n_duplicates" and value:
            light = "red" if value > 0.05 * flat.get("n", value) else "amber"
        out.append(Verdict(g.concern, light, text, f"{g.command}.{key}", value))
    s = report.section("norms")
    cv = None if s is None or s.result is None else s.result.to_dict().get("cv")
    if cv is not None and cv < 1e-6:
        out.append(Verdict("norms", "grey", "every vector has the same length (normalised model "
                           "output): the norms carry no information here.", "norms.cv", cv))
    s = report.section("compare")
    if s is not None and s.result is not None:
        r = s.result
        out.append(Verdict("similarity to OTHER", "grey",
                           f"linear CKA {r.cka_linear:.3f}, mutual {r.k}-NN {r.mutual_knn:.3f} "
                           f"(chance {r.k / max(r.knn_items - 1, 1):.3f}).", "compare.cka_linear",
                           r.cka_linear))
    s = report.section("translate")
    if s is not None and s.result is not None and s.result.top1 is not None:
        r = s.result
        out.append(Verdict("translation to OTHER", "grey",
                           f"a {r.method} map finds the true partner first for "
                           f"{100 * r.top1:.1f}% of {r.n_eval} held-out items (mean rank "
                           f"{r.mean_rank:.1f}, random {r.random_rank:.1f}).", "translate.top1",
                           r.top1))
    return out


def _verdict_text(g: Guide, value, flat: dict, section) -> str:
    if value is None:
        return f"{g.concern}: {g.command}.{g.key} has no value here."
    sampled = (f" (on a seeded sample of {section.sample} rows)" if section.sample else "")
    if g.concern == "hubness":
        k = flat.get("k")
        text = f"k-skewness {value:.2f} (k = {k}){sampled}"
        reduced = {m: flat.get(f"methods.{m}.k_skewness") for m in ("mp", "csls")}
        reduced = {m: v for m, v in reduced.items() if v is not None}
        if reduced:
            best = min(reduced, key=reduced.get)
            text += f"; {best} lowers it to {reduced[best]:.2f}"
            err, err_best = flat.get("methods.none.knn_error"), flat.get(f"methods.{best}.knn_error")
            if err is not None and err_best is not None:
                text += f" and the k-NN error from {100 * err:.1f}% to {100 * err_best:.1f}%"
        return text + "."
    if g.concern == "anisotropy":
        return f"mean cosine between random pairs {value:.3f} (0: isotropic){sampled}."
    if g.concern == "dominant direction":
        return f"the first principal direction carries {100 * value:.1f}% of the variance."
    if g.concern == "zero vectors":
        return f"{int(value)} all-zero rows." if value else "no all-zero rows."
    if g.concern == "duplicate rows":
        return (f"{int(value)} rows are exact copies of an earlier row{sampled}." if value
                else f"no exact duplicate rows{sampled}.")
    if g.concern == "drift":
        eff = flat.get("effect_size")
        return (f"rank-sum p = {value:.3g}" + (f", effect size {eff:.3f}" if eff is not None
                                               else "") + ".")
    return f"{g.command}.{g.key} = {value:.4g}."
