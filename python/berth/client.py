"""A small client of berthd's REST API (urllib only)."""

import json
import os
import pwd
import time
import urllib.error
import urllib.parse
import urllib.request


class BerthError(Exception):
    """The daemon said no (code and message from its JSON error) or could not be reached."""

    def __init__(self, message, code="unavailable", status=0):
        super().__init__(message)
        self.code = code
        self.status = status


class RunFailed(BerthError):
    pass


TERMINAL = ("Succeeded", "Failed", "Cancelled")


def caller_name():
    """The OS account of the effective uid (not $USER, which may be unset or wrong)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def identity_headers(server):
    """What every request to `server` tells berthd about who asks: X-Berth-User
    (the OS account) and, inside a task (BERTH_JOB_ID set) talking to the
    daemon that runs it ($BERTH_SERVER), X-Berth-Job, so that work started
    from a pipeline step acts for the step's owner."""
    h = {"X-Berth-User": caller_name()}
    job = os.environ.get("BERTH_JOB_ID", "")
    if job and os.environ.get("BERTH_SERVER", "").rstrip("/") == server:
        h["X-Berth-Job"] = job
    return h


class Client:
    def __init__(self, server=None, timeout=30):
        self.server = (server or os.environ.get("BERTH_SERVER") or "http://127.0.0.1:7420").rstrip("/")
        self.timeout = timeout

    def _request(self, method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        headers.update(identity_headers(self.server))
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read().decode())["error"]
                raise BerthError(err.get("message", str(e)), err.get("code", "error"), e.code) from None
            except (ValueError, KeyError):
                raise BerthError(str(e), "error", e.code) from None
        except urllib.error.URLError as e:
            raise BerthError("cannot reach berthd at %s: %s (start it with `berth up`)" % (self.server, e.reason))
        return text if raw else json.loads(text)

    def submit(self, pipeline, parameters=None):
        """Starts a run of a Pipeline (object, dict or document text); returns the run id.

        The run belongs to the caller (see identity_headers); berthd decides it."""
        if hasattr(pipeline, "to_json"):
            text = pipeline.to_json()
        elif isinstance(pipeline, dict):
            text = json.dumps(pipeline)
        else:
            text = str(pipeline)
        body = {"spec": text, "parameters": {k: str(v) for k, v in (parameters or {}).items()}}
        return self._request("POST", "/api/v1/pipelines/runs", body)["id"]

    def get(self, run):
        return self._request("GET", "/api/v1/pipelines/runs/%s" % run)

    def list(self, limit=100):
        return self._request("GET", "/api/v1/pipelines/runs?limit=%d" % limit)

    def wait(self, run, timeout=None, poll=0.2, check=True):
        """Waits for the run to end; returns it. RunFailed if it did not succeed and check is true."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            r = self.get(run)
            if r["state"] in TERMINAL:
                if check and r["state"] != "Succeeded":
                    raise RunFailed("run %s %s: %s" % (run, r["state"], r.get("message", "")), r["state"])
                return r
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("run %s still %s after %ss" % (run, r["state"], timeout))
            time.sleep(poll)

    def outputs(self, run, step):
        """A step's output parameters, JSON-decoded when they are JSON (a @task's "return")."""
        for n in self.get(run)["nodes"]:
            if n["name"] == step:
                out = {}
                for k, v in n.get("outputs", {}).get("parameters", {}).items():
                    try:
                        out[k] = json.loads(v)
                    except (ValueError, TypeError):
                        out[k] = v
                return out
        raise BerthError("run %s has no step %s" % (run, step), "not_found", 404)

    def logs(self, run, step):
        return self._request("GET", "/api/v1/pipelines/runs/%s/logs?step=%s" % (run, urllib.parse.quote(step)),
                             raw=True)

    def cancel(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/cancel" % run, {})

    def retry(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/retry" % run, {})
