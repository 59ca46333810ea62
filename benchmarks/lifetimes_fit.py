"""The `lifetimes` package's BG/NBD fit, run by ``clv.py`` in a virtualenv of its own.

Not part of omnicrm, and not imported by it: `lifetimes` (archived, last release 0.11.3)
pins what omnicrm has outgrown, so ``clv.py`` runs this file with the interpreter of
``benchmarks/.venv-lifetimes`` (see benchmarks/README.md), on the very arrays omnicrm
fits, saved to a ``.npz``. Prints one JSON line: the fit's seconds and parameters.

    benchmarks/.venv-lifetimes/bin/python benchmarks/lifetimes_fit.py ARRAYS.npz
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version


def main(path: str) -> None:
    import numpy as np
    from lifetimes import BetaGeoFitter

    arrays = np.load(path)
    x, t_x, big_t = arrays["x"], arrays["t_x"], arrays["T"]
    started = time.perf_counter()
    # As its users call it: defaults (BFGS, tol 1e-7, no penalizer).
    fitter = BetaGeoFitter().fit(x, t_x, big_t)
    seconds = time.perf_counter() - started
    params = {name: float(fitter.params_[name]) for name in ("r", "alpha", "a", "b")}
    versions = {name: version(name) for name in ("lifetimes", "numpy", "scipy", "pandas")}
    print(json.dumps({"seconds": seconds, "params": params, "versions": versions}))


if __name__ == "__main__":
    main(sys.argv[1])
