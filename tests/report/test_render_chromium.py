"""Every command's HTML page, opened in headless Chromium: its figures render (one plotly graph per
figure the page carries) with no script error, and no user string becomes markup.

Needs a ``chromium`` (Debian: ``apt-get install chromium``). Skipped where there is none, unless
``GEOMKIT_REQUIRE_CHROMIUM=1``, which turns a missing browser into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import geomkit_executable, write_h5

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRE = os.environ.get("GEOMKIT_REQUIRE_CHROMIUM") == "1"
pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRE,
                                reason="no chromium on PATH (GEOMKIT_REQUIRE_CHROMIUM=1 fails instead)")

# ids and texts that would run script if any of them became markup; the quotes must show as quotes
EVIL_ID = '"q" <img src=x onerror="window.__xss=1">'
EVIL_TEXT = "<script>window.__xss=2</script><b>bold</b> & <a href=\"javascript:window.__xss=3\">x</a>"

# Installed first thing in <head>: records script errors, console.error and unhandled rejections,
# and after the page settled how many plotly graphs hold a rendered svg.
PROBE = """<script>(function () {
  var errs = [];
  function show() {
    var el = document.getElementById('__gk_probe');
    if (!el) {
      if (!document.body) return;
      el = document.createElement('pre'); el.id = '__gk_probe'; document.body.appendChild(el);
    }
    var graphs = 0;
    document.querySelectorAll('.js-plotly-plot').forEach(function (g) {
      if (g.querySelector('svg.main-svg')) graphs++;
    });
    var external = (performance.getEntriesByType('resource') || []).map(function (e) {
      return e.name; }).filter(function (n) { return !/^(file|data|blob|about):/.test(n); });
    el.textContent = JSON.stringify({errors: errs, graphs: graphs, xss: window.__xss || null,
                                     external: external});
  }
  function rec(m) { errs.push(String(m)); show(); }
  window.addEventListener('error', function (e) {
    rec('error: ' + (e.message || e.type) + ' @' + (e.filename || '') + ':' + (e.lineno || ''));
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    rec('unhandled rejection: ' + ((e.reason && e.reason.message) || e.reason));
  });
  var original = console.error;
  console.error = function () {
    rec('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
    return original.apply(console, arguments);
  };
  document.addEventListener('DOMContentLoaded', show);
  window.addEventListener('load', function () { setTimeout(show, 500); setTimeout(show, 3000); });
})();</script>"""


def _data(tmp: Path) -> dict:
    rng = np.random.default_rng(7)
    n = 120
    stack = rng.standard_normal((n, 3, 12)) + np.linspace(0, 2, 12)
    ids = [EVIL_ID if k % 5 == 0 else f"item_with_a_long_shared_identifier_prefix_{k}" for k in range(n)]
    meta = {"ids": ids, "texts": [f"{EVIL_TEXT} {k}" for k in range(n)],
            "labels": ["ref"] * 60 + ["test"] * 60, "counts": rng.integers(1, 3000, n),
            "year": stack[:, -1, 0] + rng.normal(0, 0.3, n)}
    write_h5(tmp / "stack.h5", stack.astype("f4"), dataset="hidden", **meta)
    write_h5(tmp / "flat.h5", stack[:, -1].astype("f4"), **meta)
    words = [f"w{k}" for k in range(40)]
    weights = np.r_[np.full(8, 6.0), np.ones(32)]
    docs = [" ".join(rng.choice(words, size=25, p=weights / weights.sum())) for _ in range(300)]
    (tmp / "corpus.txt").write_text("\n".join(docs) + "\n")
    write_h5(tmp / "words.h5", rng.standard_normal((40, 8)).astype("f4"), ids=words)
    t = str(tmp)
    from geomkit import Space
    from geomkit.analysis.axes import compute_axis, read_attribute, write_axis
    space = Space.open(f"{t}/flat.h5")
    for method in ("regression", "pca"):
        write_axis(f"{t}/axis_{method}.h5",
                   compute_axis(space, read_attribute(space, "year"), method=method))
    # page -> (geomkit arguments, figures the page carries)
    return {
        "isotropy": (["isotropy", f"{t}/flat.h5", "--transform", "whiten"], 2),
        "isotropy-sweep": (["isotropy", f"{t}/stack.h5", "--layer", "all"], 3),  # per-layer + 2
        "hubness": (["hubness", f"{t}/flat.h5", "--exact", "-k", "5", "--reduce", "none,mp"], 2),
        "depth": (["depth", f"{t}/flat.h5", "--split-by", "labels", "--ref", "ref", "--test", "test"], 2),
        "norms": (["norms", f"{t}/flat.h5"], 3),
        "infogain": (["infogain", f"{t}/corpus.txt", "--window", "2", "--embeddings",
                      f"{t}/words.h5", "--fit-min-count", "0"], 2),
        "info": (["info", f"{t}/stack.h5"], 0),
        "transform": (["transform", f"{t}/flat.h5", "-o", f"{t}/centred.h5", "--center"], 0),
        "axes-score": (["axes", "score", f"{t}/flat.h5", "--attribute", "year",
                        "--null-directions", "200", "--shots", "2,10,40"], 3),
        "axes-project": (["axes", "project", f"{t}/flat.h5", "--axis", f"{t}/axis_regression.h5",
                          "--axis", f"{t}/axis_pca.h5", "--attribute", "year"], 3),
        "compare": (["compare", f"{t}/stack.h5:/hidden", f"{t}/flat.h5", "--layer", "1", "-k", "5",
                     "--pairs", "rows"],
                    3),
        "report": (["report", f"{t}/stack.h5:/hidden", "-o", f"{t}/report.html", "--vs",
                    f"{t}/flat.h5", "-k", "5"], None),
        "translate": (["translate", "fit", f"{t}/stack.h5:/hidden", f"{t}/flat.h5", "--layer", "1",
                       "-o", f"{t}/map.h5", "--train-fraction", "0.7", "--pairs", "rows"], 2),
    }


PAGES = ["isotropy", "isotropy-sweep", "hubness", "depth", "norms", "infogain", "info", "transform",
         "axes-score", "axes-project", "compare", "translate", "report"]


def _make_page(tmp: Path, name: str, args: list) -> Path:
    html = tmp / f"{name}.html"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if args[0] == "report":  # the page is its -o, nothing to stdout but the summary
        html = Path(args[args.index("-o") + 1])
        argv = [*args, "--quiet"]
    else:
        argv = [*args, "--html", str(html), "--json", "--quiet"]
    proc = subprocess.run([geomkit_executable(), *argv],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, (name, proc.stderr[-2000:])
    return html


def _render(tmp: Path, name: str, page: Path) -> str:
    """Dump the DOM of a copy of ``page`` with the probe installed, after scripts ran."""
    source = page.read_text(encoding="utf-8")
    assert "<head>" in source
    probed = tmp / f"probed-{name}.html"
    probed.write_text(source.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    profile = tmp / f"profile-{name}"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                           "--dump-dom", "--virtual-time-budget=15000", probed.as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, (name, proc.stderr[-2000:])
    return proc.stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    assert CHROMIUM is not None, ("GEOMKIT_REQUIRE_CHROMIUM=1 but no chromium / chromium-browser "
                                  "on PATH (Debian: apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("pages")
    specs = _data(tmp)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = dict(zip(specs, pool.map(lambda item: _make_page(tmp, item[0], item[1][0]),
                                         specs.items())))
        doms = dict(zip(pages, pool.map(lambda item: _render(tmp, *item), pages.items())))
    return {name: (pages[name].read_text(encoding="utf-8"), doms[name], specs[name][1])
            for name in specs}


def _plotly_graphs(dom: str) -> int:
    """plotly graph divs of the dumped DOM that hold a rendered svg."""
    starts = [m.start() for m in re.finditer(r'<div[^>]*class="[^"]*\bjs-plotly-plot\b', dom)]
    ends = starts[1:] + [len(dom)]
    return sum('class="main-svg"' in dom[a:b] for a, b in zip(starts, ends))


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_its_figures_without_errors(rendered, name):
    source, dom, expected = rendered[name]
    if expected is None:  # the report: a map, the layer sweep, norms, hubness, compare, translate
        expected = source.count("Plotly.newPlot(")
        assert expected >= 10 and source.count("plotly.js v") == 1  # plotly.js inlined once
    found = re.search(r'<pre id="__gk_probe">(.*?)</pre>', dom, re.S)
    assert found, f"{name}: the probe never reported (page did not load?)"
    probe = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert probe["errors"] == [], f"{name}: {probe['errors']}"
    assert probe["xss"] is None, f"{name}: a user string ran as script"
    assert probe["external"] == [], f"{name}: requests left the machine: {probe['external']}"
    assert source.count("Plotly.newPlot(") == expected
    assert _plotly_graphs(dom) == expected and probe["graphs"] == expected
    if expected:
        assert "plotly.js v" in source
    else:
        assert "plotly.js v" not in source and len(source) < 200_000
    # user strings stay text: no element they describe exists, quotes show as quotes
    assert "<img src=" not in dom and "<b>bold</b>" not in dom
    assert "&amp;quot;" not in dom  # plotly would have shown the entity "&quot;" literally


def test_hub_ids_show_with_their_quotes(rendered):
    _, dom, _ = rendered["hubness"]
    ticks = re.findall(r'<g class="ytick">.*?</g>', dom, re.S)
    # the evil id is drawn as its literal characters in the top-hub tick labels
    assert any('"q" &lt;img src=x' in t for t in ticks)
