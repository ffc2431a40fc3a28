#!/usr/bin/python3
"""Optuna 3.1's samplers (Debian's python3-optuna) on the functions of
functions.py: the best value after 25, 50 and 100 trials per seed, as CSV
lines like berth_tune_bench's; or, with --latency, the time of one trial's
sampling as the history grows to 1,000 trials.

  nice /usr/bin/python3 bench/tune/optuna_bench.py --seeds 0-19 > optuna.csv
  nice /usr/bin/python3 bench/tune/optuna_bench.py --latency > optuna_latency.csv
"""
import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optuna  # noqa: E402
from functions import FUNCTIONS  # noqa: E402

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)

SAMPLERS = {
    "tpe": lambda s: optuna.samplers.TPESampler(seed=s),
    "multivariate-tpe": lambda s: optuna.samplers.TPESampler(multivariate=True, seed=s),
    "cmaes": lambda s: optuna.samplers.CmaEsSampler(seed=s),
    "random": lambda s: optuna.samplers.RandomSampler(seed=s),
}


def suggest(trial, params):
    p = {}
    for spec in params:
        if spec[1] == "cat":
            p[spec[0]] = trial.suggest_categorical(spec[0], spec[2])
        elif spec[1] == "int":
            p[spec[0]] = trial.suggest_int(spec[0], spec[2], spec[3])
        else:
            p[spec[0]] = trial.suggest_float(spec[0], spec[2], spec[3], log=spec[4])
    return p


def seeds(text):
    lo, _, hi = text.partition("-")
    return range(int(lo), int(hi or lo) + 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--trials", type=int, default=1000)
    a = ap.parse_args()
    if a.latency:
        print("impl,algorithm,trials,cpu_ms_per_suggestion")
        fn, params = FUNCTIONS["hartmann6"]
        for name in a.samplers.split(","):
            study = optuna.create_study(sampler=SAMPLERS[name](0))
            times = []
            for i in range(a.trials):
                t0 = time.process_time()  # CPU time: the machine is shared
                trial = study.ask()
                p = suggest(trial, params)
                times.append(time.process_time() - t0)
                study.tell(trial, fn(p))
            for n in (10, 100, 250, 500, 1000):
                if n <= a.trials:
                    window = sorted(times[max(0, n - 10):n])
                    print("optuna,%s,%d,%.4f" % (name, n, 1e3 * window[len(window) // 2]), flush=True)
        return
    print("impl,algorithm,function,seed,best25,best50,best100,seconds")
    for fname in a.functions.split(","):
        fn, params = FUNCTIONS[fname]
        for name in a.samplers.split(","):
            for s in seeds(a.seeds):
                study = optuna.create_study(sampler=SAMPLERS[name](s))
                best, marks = float("inf"), []
                t0 = time.perf_counter()
                for i in range(100):
                    trial = study.ask()
                    v = fn(suggest(trial, params))
                    study.tell(trial, v)
                    best = min(best, v)
                    if i + 1 in (25, 50, 100):
                        marks.append(best)
                print("optuna,%s,%s,%d,%.9g,%.9g,%.9g,%.3f" % (name, fname, s, *marks,
                                                              time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
