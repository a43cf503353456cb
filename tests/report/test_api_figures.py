"""A result built through the Python API gets the same figures as the CLI's page."""

import subprocess
import sys


def test_render_html_from_the_api_has_figures(tmp_path):
    # a fresh interpreter: no CLI module was imported, so nothing registered builders by accident
    code = f"""
import numpy as np, h5py
from geomkit import open_source
from geomkit.analysis.isotropy import compute_isotropy
from geomkit.report.figures import build_figures
with h5py.File({str(tmp_path / 'x.h5')!r}, 'w') as f:
    f['embeddings'] = np.random.default_rng(0).standard_normal((50, 6))
with open_source({str(tmp_path / 'x.h5')!r}) as src:
    print(len(build_figures(compute_isotropy(src))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
