#!/usr/bin/env python3
"""Pipeline orchestration overhead on real processes.

Starts berthd (from --bin, default build/bin) on a temporary data directory
and runs, through the Python SDK:
  chain:  a 100-step chain of `true`
  fanout: a 1,000-item fan-out of `true` (withItems, no parallelism limit)
and prints the wall time of each run and its orchestration overhead: wall
time minus the steps' own run time (each step's job start to end, as
berth-shim measured it; for the fan-out, the longest child, since children
run side by side). Targets: < 10 ms per step in the chain, < 5 s for the
whole fan-out.

    python3 bench/pipeline_bench.py [--bin build/bin] [--chain 100] [--fanout 1000]
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
from berth import Client, Pipeline  # noqa: E402
from berth.client import read_record  # noqa: E402


def ms(t):
    if not t:
        return 0
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def run(client, p):
    start = time.monotonic()
    rid = client.submit(p)
    r = client.wait(rid, timeout=600, poll=0.01)
    wall = (time.monotonic() - start) * 1000
    leaves = [n for n in r["nodes"] if n["jobId"]]
    own = [ms(n["endTime"]) - ms(n["startTime"]) for n in leaves]
    return wall, own, len(leaves), r, rid


def chain_breakdown(client, r):
    """Mean ms from a step's end to the next step's job submission (pipeline
    controller) and from submission to start (job controller and executor)."""
    leaves = [n for n in r["nodes"] if n["jobId"]]
    to_submit, to_start = [], []
    for prev, cur in zip(leaves, leaves[1:]):
        job = client._request("GET", "/api/v1/jobs/%d" % cur["jobId"])
        sub = ms(job["submitTime"])
        to_submit.append(sub - ms(prev["endTime"]))
        to_start.append(ms(cur["startTime"]) - sub)
    return sum(to_submit) / len(to_submit), sum(to_start) / len(to_start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--chain", type=int, default=100)
    ap.add_argument("--fanout", type=int, default=1000)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="berth-pbench-")
    proc = subprocess.Popen([os.path.join(args.bin, "berthd"), "--listen", "127.0.0.1:0", "--data-dir", data,
                             "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1000):
            if read_record(data):
                break
            time.sleep(0.01)
        client = Client(read_record(data)["url"])

        with Pipeline("chain") as p:
            prev = None
            for i in range(args.chain):
                prev = p.step("s%d" % i, command=["true"], after=[prev] if prev else [])
        wall, own, n, r, _ = run(client, p)
        overhead = wall - sum(own)
        print("chain:  %d steps  wall %.0f ms  steps' own %.0f ms  overhead %.0f ms = %.1f ms/step (target < 10)"
              % (n, wall, sum(own), overhead, overhead / n))
        a, b = chain_breakdown(client, r)
        print("        per step: end -> next submitted %.1f ms (pipeline controller), submitted -> started "
              "%.1f ms (job path)" % (a, b))

        with Pipeline("fanout") as p:
            p.step("fan", command=["true"], with_items=list(range(args.fanout)))
        wall, own, n, r, _ = run(client, p)
        print("fanout: %d items  wall %.0f ms  longest child %.0f ms  overhead %.0f ms (target < 5000)"
              % (n, wall, max(own), wall - max(own)))
        leaves = [x for x in r["nodes"] if x["jobId"]]
        last = client._request("GET", "/api/v1/jobs/%d" % max(x["jobId"] for x in leaves))
        created = ms(r["created"])
        print("        all %d jobs submitted %.0f ms after the run was created; last step ended at %.0f ms; "
              "run ended at %.0f ms" % (n, ms(last["submitTime"]) - created,
                                         max(ms(x["endTime"]) for x in leaves) - created, ms(r["ended"]) - created))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
