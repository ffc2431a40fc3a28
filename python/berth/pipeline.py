"""Pipeline definitions and their rendering to the kind: Pipeline document."""

import inspect
import json
import os
import textwrap

_current = []  # the stack of Pipelines entered with `with`

RETURN_FILE = ".berth_return.json"


def current_run():
    """The id of the pipeline run this process is a step of, or None."""
    v = os.environ.get("BERTH_PIPELINE_RUN")
    return int(v) if v else None


class Param:
    """A reference to a pipeline parameter: renders as {{inputs.parameters.NAME}}."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return "{{inputs.parameters.%s}}" % self.name

    __format__ = lambda self, spec: str(self)


class StepRef:
    """A reference to a step's output parameter; passing it to another step adds the dependency."""

    def __init__(self, step, name):
        self.step = step
        self.name = name

    def __str__(self):
        if self.name == "result":
            return "{{steps.%s.outputs.result}}" % self.step.name
        return "{{steps.%s.outputs.parameters.%s}}" % (self.step.name, self.name)

    __format__ = lambda self, spec: str(self)


class Step:
    def __init__(self, pipeline, name, command=None, script=None, env=None, gpus=None, cpu=None,
                 memory=None, after=(), when=None, with_items=None, with_param=None, parallelism=None,
                 outputs=None, artifacts=None, inputs=None, retry=None, timeout=None, trigger_rule=None,
                 memoize=None, working_dir=None):
        self.pipeline = pipeline
        self.name = name
        self.command = list(command) if command else None
        self.script = script
        self.env = dict(env or {})
        self.resources = {k: v for k, v in (("gpus", gpus), ("cpu", cpu), ("memory", memory)) if v is not None}
        self.dependencies = []
        for a in after:
            self._depend(a)
        self.when = when
        self.with_items = with_items
        self.with_param = with_param
        self.parallelism = parallelism
        self.outputs = dict(outputs or {})  # name -> "stdout" or a file path
        self.artifacts = dict(artifacts or {})  # name -> path the step produces
        self.inputs = dict(inputs or {})  # path -> (Step, artifact name)
        self.retry = retry
        self.timeout = timeout
        self.trigger_rule = trigger_rule
        self.memoize = memoize
        self.working_dir = working_dir
        for v in list(self.env.values()) + list(self.command or []) + [script, when, with_param]:
            self._scan(v)
        for src in self.inputs.values():
            self._depend(src[0])

    def _depend(self, other):
        other = other.step if isinstance(other, StepRef) else other
        if other.name not in self.dependencies and other is not self:
            self.dependencies.append(other.name)

    def _scan(self, value):
        if isinstance(value, StepRef):
            self._depend(value.step)
        elif isinstance(value, str):
            for s in self.pipeline.steps:
                if "{{steps.%s." % s.name in value:
                    self._depend(s)

    def output(self, name="return"):
        """A reference to an output parameter ("return" for @task functions, "result" for stdout)."""
        return StepRef(self, name)

    def artifact(self, name):
        return (self, name)

    def to_dict(self):
        d = {"name": self.name}
        if self.script is not None:
            d["script"] = str(self.script)
        else:
            d["command"] = [str(c) for c in self.command]
        if self.env:
            d["env"] = {k: str(v) for k, v in self.env.items()}
        if self.working_dir:
            d["workingDir"] = self.working_dir
        if self.resources:
            d["resources"] = {k: str(v) for k, v in self.resources.items()}
        if self.dependencies:
            d["dependencies"] = list(self.dependencies)
        if self.when:
            d["when"] = str(self.when)
        if self.with_items is not None:
            d["withItems"] = list(self.with_items)
        if self.with_param is not None:
            d["withParam"] = str(self.with_param)
        if self.parallelism:
            d["parallelism"] = self.parallelism
        outs = {}
        if self.outputs:
            outs["parameters"] = [
                {"name": n, "valueFrom": {"stdout": True} if src == "stdout" else {"path": src}}
                for n, src in self.outputs.items()]
        if self.artifacts:
            outs["artifacts"] = [{"name": n, "path": p} for n, p in self.artifacts.items()]
        if outs:
            d["outputs"] = outs
        if self.inputs:
            d["inputs"] = {"artifacts": [
                {"name": "%s-%s" % (src.name, art), "path": path,
                 "from": "{{steps.%s.outputs.artifacts.%s}}" % (src.name, art)}
                for path, (src, art) in self.inputs.items()]}
        if self.retry:
            r = self.retry if isinstance(self.retry, dict) else {"limit": int(self.retry)}
            d["retryStrategy"] = r
        if self.timeout:
            d["timeout"] = str(self.timeout)
        if self.trigger_rule:
            d["triggerRule"] = self.trigger_rule
        if self.memoize:
            d["memoize"] = self.memoize
        return d


class Pipeline:
    """A DAG of steps. Use as a context manager so @task calls add steps to it."""

    def __init__(self, name, parameters=None, parallelism=None, timeout=None, on_exit=None):
        self.name = name
        self.parameters = dict(parameters or {})
        self.parallelism = parallelism
        self.timeout = timeout
        self.steps = []
        self.on_exit = on_exit  # a dict step spec: {"command": [...]} or {"script": "..."}

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()
        return False

    def param(self, name):
        if name not in self.parameters:
            raise KeyError("pipeline %s has no parameter %s" % (self.name, name))
        return Param(name)

    def step(self, name, **kwargs):
        if any(s.name == name for s in self.steps):
            raise ValueError("duplicate step name %r" % name)
        s = Step(self, name, **kwargs)
        self.steps.append(s)
        return s

    def to_dict(self):
        spec = {"steps": [s.to_dict() for s in self.steps]}
        if self.parameters:
            spec["parameters"] = [
                {"name": k} if v is None else {"name": k, "value": str(v)} for k, v in self.parameters.items()]
        if self.parallelism:
            spec["parallelism"] = self.parallelism
        if self.timeout:
            spec["timeout"] = str(self.timeout)
        if self.on_exit:
            spec["onExit"] = self.on_exit
        return {"apiVersion": "berth/v1", "kind": "Pipeline", "metadata": {"name": self.name}, "spec": spec}

    def to_json(self, indent=2):
        """The document as JSON (berthd reads JSON as YAML)."""
        return json.dumps(self.to_dict(), indent=indent)


def _function_script(fn, kwargs, python):
    """A shell script that runs `fn(**kwargs)` with python and writes its JSON result."""
    src = textwrap.dedent(inspect.getsource(fn))
    lines = src.splitlines()
    while lines and lines[0].lstrip().startswith("@"):
        lines.pop(0)  # the decorator
    src = "\n".join(lines)
    args = {}
    for k, v in kwargs.items():
        args[k] = str(v) if isinstance(v, (StepRef, Param)) else v
    # Templates are substituted by berthd before the script runs; values from
    # outputs arrive as text, and are decoded as JSON when they are JSON.
    body = src + ("\n\nimport json as _j\n"
            "def _arg(v):\n"
            "    try:\n        return _j.loads(v)\n    except Exception:\n        return v\n"
            "_args = {k: (_arg(v) if isinstance(v, str) else v) for k, v in _j.loads(%r).items()}\n"
            "_r = %s(**_args)\n"
            "with open(%r, 'w') as _f:\n    _j.dump(_r, _f)\n") % (json.dumps(args), fn.__name__, RETURN_FILE)
    return "%s - <<'BERTH_PY_EOF'\n%s\nBERTH_PY_EOF\n" % (python, body)


def task(_fn=None, *, name=None, python="python3", **step_kwargs):
    """Turns a function into a step factory (Airflow TaskFlow style).

    Calling the decorated function inside `with Pipeline(...)` adds a step
    that runs the function's source with `python`; arguments may be plain
    JSON values, pipeline parameters (p.param) or other steps' outputs (their
    return values: pass the call's result), which also adds the dependency.
    The return value (JSON) is the step's output parameter "return".
    Outside a pipeline the function runs as usual.
    """

    def wrap(fn):
        def call(*args, after=(), **kwargs):
            if not _current:
                return fn(*args, **kwargs)
            if args:
                params = list(inspect.signature(fn).parameters)
                kwargs.update(dict(zip(params, args)))
            p = _current[-1]
            base = name or fn.__name__.replace("_", "-")
            step_name, i = base, 2
            while any(s.name == step_name for s in p.steps):
                step_name, i = "%s-%d" % (base, i), i + 1
            deps = list(after) + [v for v in kwargs.values() if isinstance(v, StepRef)]
            extra = dict(step_kwargs)
            outputs = dict(extra.pop("outputs", {}) or {})
            outputs.setdefault("return", RETURN_FILE)
            s = p.step(step_name, script=_function_script(fn, kwargs, python), after=deps,
                       outputs=outputs, **extra)
            return s.output("return")

        call.__wrapped__ = fn
        call.__name__ = fn.__name__
        return call

    return wrap(_fn) if _fn is not None else wrap
