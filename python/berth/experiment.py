"""Experiments (hyperparameter tuning, kind: Experiment) from Python.

Build an experiment, submit it, wait, read the best trial:

    from berth import Experiment, Experiments

    exp = Experiment("digits", objective="accuracy", goal="maximize",
                     algorithm="random", parallel=2, max_trials=12)
    exp.double("lr", 1e-4, 1e-1, distribution="logUniform")
    exp.int("layers", 1, 4)
    exp.categorical("optimizer", ["sgd", "adam"])
    exp.trial(command=["python3", "train.py", "--lr=${trialParameters.lr}"])
    api = Experiments()
    api.create(exp)
    done = api.wait("digits")
    print(done["currentOptimalTrial"])

Inside a trial, report metrics with berth.report(step=..., **metrics): it
pushes them to the daemon running the trial (BERTH_SERVER, BERTH_EXPERIMENT
and BERTH_TRIAL_ID are set for every trial). With the StdOut collector (the
default) printing `accuracy=0.93` is enough.
"""

import json
import os

from .client import Client, BerthError

TERMINAL = ("Succeeded", "Failed", "Stopped")


class Experiment:
    """An Experiment document built in Python (Katib's v1beta1 field names)."""

    def __init__(self, name, objective, goal="maximize", algorithm="random", parallel=3,
                 max_trials=None, max_failed=None, target=None, additional_metrics=None,
                 algorithm_settings=None, early_stopping=None, early_stopping_settings=None,
                 collector="StdOut"):
        self.name = name
        self.objective = {"type": goal, "objectiveMetricName": objective}
        if target is not None:
            self.objective["goal"] = target
        if additional_metrics:
            self.objective["additionalMetricNames"] = list(additional_metrics)
        self.algorithm = {"algorithmName": algorithm}
        if algorithm_settings:
            self.algorithm["algorithmSettings"] = [
                {"name": k, "value": str(v)} for k, v in algorithm_settings.items()]
        self.early_stopping = None
        if early_stopping:
            self.early_stopping = {"algorithmName": early_stopping}
            if early_stopping_settings:
                self.early_stopping["algorithmSettings"] = [
                    {"name": k, "value": str(v)} for k, v in early_stopping_settings.items()]
        self.parallel = parallel
        self.max_trials = max_trials
        self.max_failed = max_failed
        self.collector = collector
        self.parameters = []
        self.trial_spec = None

    def _param(self, name, ptype, space):
        self.parameters.append({"name": name, "parameterType": ptype, "feasibleSpace": space})
        return self

    def double(self, name, low, high, step=None, distribution="uniform"):
        space = {"min": str(low), "max": str(high), "distribution": distribution}
        if step is not None:
            space["step"] = str(step)
        return self._param(name, "double", space)

    def int(self, name, low, high, step=None):
        space = {"min": str(low), "max": str(high)}
        if step is not None:
            space["step"] = str(step)
        return self._param(name, "int", space)

    def categorical(self, name, values):
        return self._param(name, "categorical", {"list": [str(v) for v in values]})

    def discrete(self, name, values):
        return self._param(name, "discrete", {"list": [str(v) for v in values]})

    def trial(self, command, gpus=0, env=None, priority_class=None, kind="Job", spec=None):
        """The trial's job: `command` may use ${trialParameters.NAME} for every
        parameter (each parameter is its own trial parameter of the same name)."""
        s = dict(spec or {})
        s["command"] = list(command)
        if gpus:
            s.setdefault("resources", {})["gpus"] = gpus
        if env:
            s["env"] = dict(env)
        if priority_class:
            s["priorityClassName"] = priority_class
        self.trial_spec = {"kind": kind, "spec": s}
        return self

    def to_dict(self):
        if self.trial_spec is None:
            raise ValueError("experiment %s: call trial(...) to say what a trial runs" % self.name)
        spec = {
            "objective": self.objective,
            "algorithm": self.algorithm,
            "parallelTrialCount": self.parallel,
            "parameters": self.parameters,
            "trialTemplate": {
                "trialParameters": [{"name": p["name"], "reference": p["name"]}
                                    for p in self.parameters],
                "trialSpec": self.trial_spec,
            },
            "metricsCollectorSpec": {"collector": {"kind": self.collector}},
        }
        if self.max_trials is not None:
            spec["maxTrialCount"] = self.max_trials
        if self.max_failed is not None:
            spec["maxFailedTrialCount"] = self.max_failed
        if self.early_stopping:
            spec["earlyStopping"] = self.early_stopping
        return {"apiVersion": "berth/v1", "kind": "Experiment", "metadata": {"name": self.name},
                "spec": spec}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)


class Experiments:
    """The experiments of a berthd (the same server rules as Client)."""

    def __init__(self, server=None, timeout=30):
        self.client = Client(server, timeout)

    def _r(self, method, path, body=None):
        return self.client._request(method, path, body)

    def create(self, experiment):
        """Creates an experiment from an Experiment, a dict or document text."""
        if hasattr(experiment, "to_json"):
            text = experiment.to_json()
        elif isinstance(experiment, dict):
            text = json.dumps(experiment)
        else:
            text = str(experiment)
        return self._r("POST", "/api/v1/experiments", {"spec": text})

    def get(self, name):
        return self._r("GET", "/api/v1/experiments/%s" % name)

    def list(self):
        return self._r("GET", "/api/v1/experiments")["items"]

    def trials(self, name):
        return self._r("GET", "/api/v1/experiments/%s/trials" % name)["items"]

    def best(self, name):
        """The best trial so far (None before any trial ended with its objective)."""
        return self.get(name).get("currentOptimalTrial")

    def wait(self, name, timeout=None, poll=0.5):
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            e = self.get(name)
            if e["state"] in TERMINAL:
                return e
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("experiment %s still %s after %ss" % (name, e["state"], timeout))
            time.sleep(poll)

    def stop(self, name):
        return self._r("POST", "/api/v1/experiments/%s/stop" % name, {})

    def resume(self, name, parallel=None, max_trials=None, max_failed=None):
        body = {}
        if parallel is not None:
            body["parallelTrialCount"] = parallel
        if max_trials is not None:
            body["maxTrialCount"] = max_trials
        if max_failed is not None:
            body["maxFailedTrialCount"] = max_failed
        return self._r("POST", "/api/v1/experiments/%s/resume" % name, body)

    def delete(self, name):
        return self._r("DELETE", "/api/v1/experiments/%s" % name)


def report(step=None, **metrics):
    """Pushes metric values of the current trial (inside a trial only):
    berth.report(step=3, accuracy=0.91, loss=0.2)."""
    name = os.environ.get("BERTH_EXPERIMENT")
    trial = os.environ.get("BERTH_TRIAL_ID")
    if not name or trial is None:
        raise BerthError("berth.report: not inside an experiment's trial "
                         "(BERTH_EXPERIMENT and BERTH_TRIAL_ID are unset)", "failed_precondition")
    body = {"metrics": {k: float(v) for k, v in metrics.items()}}
    if step is not None:
        body["step"] = int(step)
    return Client(os.environ.get("BERTH_SERVER"))._request(
        "POST", "/api/v1/experiments/%s/trials/%s/metrics" % (name, trial), body)
