"""The one compiled part of geomkit: the row-sweep kernel (geomkit/engine/_sweep.c).

It is optional: if it cannot be built (no C compiler), geomkit installs anyway and uses the numpy
equivalent (geomkit.engine.kernels), which gives the same results, somewhat slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "geomkit.engine._sweep", ["geomkit/engine/_sweep.c"], optional=True,
    # reassociation lets the row reductions vectorise; no -ffinite-math-only: NaN/Inf propagate
    extra_compile_args=["-O3", "-fno-math-errno", "-fassociative-math", "-fno-signed-zeros",
                        "-fno-trapping-math"])])
