"""A small client of berthd's REST API (urllib only)."""

import json
import os
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


class Client:
    def __init__(self, server=None, timeout=30):
        self.server = (server or os.environ.get("BERTH_SERVER") or "http://127.0.0.1:7420").rstrip("/")
        self.timeout = timeout

    def _request(self, method, path, body=None, raw=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
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

    def submit(self, pipeline, parameters=None, user=None):
        """Starts a run of a Pipeline (object, dict or document text); returns the run id."""
        if hasattr(pipeline, "to_json"):
            text = pipeline.to_json()
        elif isinstance(pipeline, dict):
            text = json.dumps(pipeline)
        else:
            text = str(pipeline)
        body = {"spec": text, "parameters": {k: str(v) for k, v in (parameters or {}).items()},
                "user": user or os.environ.get("USER", "")}
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

    def logs(self, run, step, page_bytes=1 << 20):
        """A step's whole output as text, read page by page (the server never sends more than a page)."""
        path = "/api/v1/pipelines/runs/%s/logs?step=%s" % (run, urllib.parse.quote(step))
        out, offset = [], 0
        while True:
            req = urllib.request.Request("%s%s&offset=%d&limit=%d" % (self.server, path, offset, page_bytes))
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    data, headers = r.read(), r.headers
            except urllib.error.HTTPError as e:
                try:
                    err = json.loads(e.read().decode())["error"]
                    raise BerthError(err.get("message", str(e)), err.get("code", "error"), e.code) from None
                except (ValueError, KeyError):
                    raise BerthError(str(e), "error", e.code) from None
            except urllib.error.URLError as e:
                raise BerthError("cannot reach berthd at %s: %s (start it with `berth up`)" % (self.server, e.reason))
            out.append(data)
            nxt, end = headers.get("X-Berth-Log-Next"), headers.get("X-Berth-Log-End")
            if not data or nxt is None or end is None or int(nxt) >= int(end):
                return b"".join(out).decode("utf-8", errors="replace")
            offset = int(nxt)

    def cancel(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/cancel" % run, {})

    def retry(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/retry" % run, {})
