#!/usr/bin/python3
"""A reference GP-BO on Debian's scikit-learn (Optuna 3.1 has no GP sampler):
a GaussianProcessRegressor with a Matern-5/2 ARD kernel (plus a white-noise
term, hyperparameters by sklearn's L-BFGS on the marginal likelihood),
normalised targets, expected improvement (xi=0.01) maximised over 2,000
random points of the unit cube; 10 random initial trials, as Berth's
bayesianoptimization. Same functions and CSV lines as optuna_bench.py.

  nice /usr/bin/python3 bench/tune/sklearn_gp_bench.py --seeds 0-19 > sklearn_gp.csv
"""
import argparse
import math
import os
import sys
import time
import warnings

import numpy as np
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from functions import FUNCTIONS  # noqa: E402

warnings.filterwarnings("ignore")


def decode(u, params):
    """A point of the unit cube (one coordinate per parameter) to parameter values."""
    p = {}
    for x, spec in zip(u, params):
        if spec[1] == "cat":
            p[spec[0]] = spec[2][min(int(x * len(spec[2])), len(spec[2]) - 1)]
        elif spec[1] == "int":
            p[spec[0]] = int(round(spec[2] - 0.5 + x * (spec[3] - spec[2] + 1)))
            p[spec[0]] = min(max(p[spec[0]], spec[2]), spec[3])
        elif spec[4]:
            p[spec[0]] = math.exp(math.log(spec[2]) + x * (math.log(spec[3]) - math.log(spec[2])))
        else:
            p[spec[0]] = spec[2] + x * (spec[3] - spec[2])
    return p


def run(fn, params, seed, budget=100, n_init=10, n_cand=2000):
    rng = np.random.RandomState(seed)
    d = len(params)
    X, y, marks, best = [], [], [], float("inf")
    for i in range(budget):
        if i < n_init:
            u = rng.rand(d)
        else:
            kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(d, 0.3), nu=2.5,
                                                  length_scale_bounds=(1e-2, 20)) + \
                WhiteKernel(1e-6, (1e-8, 1e-1))
            gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
            gp.fit(np.array(X), np.array(y))
            cand = rng.rand(n_cand, d)
            mu, sd = gp.predict(cand, return_std=True)
            sd = np.maximum(sd, 1e-12)
            imp = min(y) - mu - 0.01
            z = imp / sd
            ei = imp * norm.cdf(z) + sd * norm.pdf(z)
            u = cand[int(np.argmax(ei))]
        v = fn(decode(u, params))
        X.append(u)
        y.append(v)
        best = min(best, v)
        if i + 1 in (25, 50, 100):
            marks.append(best)
    return marks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    print("impl,algorithm,function,seed,best25,best50,best100,seconds")
    for fname in a.functions.split(","):
        fn, params = FUNCTIONS[fname]
        for s in range(int(lo), int(hi or lo) + 1):
            t0 = time.perf_counter()
            m = run(fn, params, s)
            print("sklearn,bayesianoptimization,%s,%d,%.9g,%.9g,%.9g,%.3f" %
                  (fname, s, *m, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
