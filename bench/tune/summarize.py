#!/usr/bin/python3
"""Reads CSV lines of berth_tune_bench and optuna_bench.py / sklearn_gp_bench.py
(any number of files) and prints, per function and budget, the median and
quartiles of the best value per implementation and algorithm, and the gate:
Berth's median best no worse than the other implementation's for the same
algorithm name at 25, 50 and 100 trials.

  bench/tune/summarize.py berth.csv optuna.csv [--gate tpe,cmaes]
"""
import csv
import statistics
import sys
from collections import defaultdict


def quartiles(v):
    v = sorted(v)
    if len(v) < 2:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], statistics.median(v), q[2]


def main():
    files = [a for a in sys.argv[1:] if not a.startswith("--")]
    gate = set()
    if "--gate" in sys.argv:
        gate = set(sys.argv[sys.argv.index("--gate") + 1].split(","))
        files = [f for f in files if f != sys.argv[sys.argv.index("--gate") + 1]]
    data = defaultdict(list)  # (function, algorithm, impl) -> rows
    for f in files:
        with open(f) as fh:
            for row in csv.DictReader(fh):
                if "function" not in row:
                    continue
                data[(row["function"], row["algorithm"], row["impl"])].append(row)
    functions = sorted({k[0] for k in data}, key=lambda f: list(dict.fromkeys(k[0] for k in data)).index(f))
    failures = []
    for fn in functions:
        print("\n#### %s\n" % fn)
        print("| algorithm | impl | seeds | best@25 median [q1, q3] | best@50 | best@100 | s/run |")
        print("|---|---|---|---|---|---|---|")
        keys = sorted(k for k in data if k[0] == fn)
        for k in keys:
            rows = data[k]
            cells = []
            for b in ("best25", "best50", "best100"):
                q1, m, q3 = quartiles([float(r[b]) for r in rows])
                cells.append("%.4g [%.4g, %.4g]" % (m, q1, q3))
            sec = statistics.median(float(r["seconds"]) for r in rows)
            print("| %s | %s | %d | %s | %.3f |" % (k[1], k[2], len(rows), " | ".join(cells), sec))
        for algo in sorted(gate):
            b, o = data.get((fn, algo, "berth")), data.get((fn, algo, "optuna"))
            if not b or not o:
                continue
            for col in ("best25", "best50", "best100"):
                mb = statistics.median(float(r[col]) for r in b)
                mo = statistics.median(float(r[col]) for r in o)
                if mb > mo:
                    failures.append("%s %s %s: berth %.4g > optuna %.4g" % (fn, algo, col, mb, mo))
    if gate:
        print("\n**Gate** (%s, median best at 25/50/100 no worse than Optuna's): %s" %
              (", ".join(sorted(gate)), "met" if not failures else "NOT met"))
        for f in failures:
            print("- " + f)


if __name__ == "__main__":
    main()
