"""Berth Python SDK: define pipelines in Python, render them to the
kind: Pipeline document, submit them to berthd, wait and read outputs.

Standard library only. Two styles, usable together:

    from berth import Pipeline, task, Client

    @task(gpus=1)
    def train(lr):
        return {"accuracy": 0.93}          # JSON-serialisable -> output "return"

    with Pipeline("ml", parameters={"lr": "0.1"}) as p:
        prep = p.step("prep", script="echo 3", outputs={"n": "stdout"})
        model = train(lr=p.param("lr"), after=[prep])
        p.step("deploy", command=["echo", "deploy"], after=[model],
               when=f"{prep.output('n')} > 2")

    run = Client().submit(p)
    Client().wait(run)
    print(Client().outputs(run, "train"))

Inside a step (BERTH_SERVER and BERTH_PIPELINE_RUN are set for every step)
Client() talks to the daemon that runs it, and current_run() says which run.
Every request names the caller's OS account (X-Berth-User); inside a task it
also names the job (X-Berth-Job, from BERTH_JOB_ID), so what a step submits
belongs to the step's owner.
"""

from .pipeline import Pipeline, Step, StepRef, Param, task, current_run
from .client import Client, BerthError, RunFailed
from .experiment import Experiment, Experiments, report

__all__ = ["Pipeline", "Step", "StepRef", "Param", "task", "current_run", "Client", "BerthError",
           "RunFailed", "Experiment", "Experiments", "report"]
