#!/usr/bin/env python3
"""The ML pipeline written with the Python SDK (python/berth), TaskFlow style.

    PYTHONPATH=python python3 examples/pipelines/ml_pipeline.py [--print]
"""
import sys

from berth import Client, Pipeline, task


@task
def prepare():
    return [0.01, 0.05, 0.1]


@task(gpus=1, retry={"limit": 2, "retryPolicy": "OnFailure"})
def train(lrs, epochs):
    import os
    lr = max(lrs)
    print("training lr=%s for %s epochs on GPU %s" % (lr, epochs, os.environ.get("CUDA_VISIBLE_DEVICES")))
    return round(0.7 + 2 * lr, 4)


@task
def evaluate(accuracy):
    return accuracy


with Pipeline("ml-sdk", parameters={"threshold": "0.8", "epochs": "3"}) as p:
    acc = evaluate(train(prepare(), p.param("epochs")))
    p.step("deploy", command=["echo", "deploying", acc], when="%s > %s" % (acc, p.param("threshold")))

if __name__ == "__main__":
    if "--print" in sys.argv:
        print(p.to_json())
        sys.exit(0)
    client = Client()
    run = client.submit(p)
    print("run", run)
    client.wait(run)
    print("evaluate ->", client.outputs(run, "evaluate")["return"])
