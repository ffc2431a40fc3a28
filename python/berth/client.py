"""A small client of berthd's REST API (standard library only).

berthd knows who asks from the connection: on the Unix socket in its data
directory (the default when its record is found: "unix:PATH") from the
kernel; over TCP ("http://HOST:PORT") from a token in $BERTH_TOKEN (a task
gets its job's token there). See docs/security.md."""

import fcntl
import http.client
import json
import os
import pwd
import socket
import stat
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


RECORD_NAME = "berthd.addr"
SOCKET_NAME = "berthd.sock"
SYSTEM_RUN_DIR = "/run/berth"
DEFAULT_SERVER = "http://127.0.0.1:7420"


def read_record(directory):
    """The daemon record (berthd.addr: url=, pid=, dataDir= lines) in `directory`, or None."""
    path = os.path.join(directory, RECORD_NAME)
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BerthError("cannot read %s: %s" % (path, e))
    rec = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            rec[k] = v
    try:
        pid = int(rec.get("pid", ""))
    except ValueError:
        pid = 0
    if pid <= 0 or not rec.get("url", "").startswith(("http://", "https://")):
        raise BerthError("%s: malformed (expected url=http://HOST:PORT and pid=N lines)" % path)
    return {"url": rec["url"], "pid": pid, "dataDir": rec.get("dataDir", ""), "path": path}


def _record_live(rec):
    try:
        os.kill(rec["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not rec["dataDir"]:
        return True
    try:
        fd = os.open(os.path.join(rec["dataDir"], "berthd.lock"), os.O_RDONLY)
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # nobody holds it: the daemon is gone (its pid was reused)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _from_record(directory):
    rec = read_record(directory)
    if rec is None:
        return None
    if not _record_live(rec):
        raise BerthError("the berthd recorded in %s (pid %d, %s) is not running (it did not stop cleanly); "
                         "`berth up` starts a new one, `berth down` clears the stale record"
                         % (rec["path"], rec["pid"], rec["url"]))
    # The socket in the daemon's data directory when there is one: berthd
    # then knows the caller from the kernel, no token needed.
    if rec["dataDir"]:
        sock = os.path.join(rec["dataDir"], SOCKET_NAME)
        try:
            if stat.S_ISSOCK(os.stat(sock).st_mode):
                return "unix:" + sock
        except OSError:
            pass
    return rec["url"]


def user_data_dir():
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return os.path.join(xdg, "berth")
    return os.path.join(os.environ.get("HOME") or "/tmp", ".local", "share", "berth")


def find_server(server=None):
    """berthd's address by the rule every berth command uses (README, "The CLI finds the daemon"):
    `server`, $BERTH_SERVER, the record in $BERTH_DATA_DIR (which must exist), the system
    daemon's record in /run/berth, the per-user data directory's record, http://127.0.0.1:7420.
    A record gives its daemon's Unix socket ("unix:PATH") when it has one.
    A record whose daemon is gone raises BerthError."""
    if server:
        return server
    if os.environ.get("BERTH_SERVER"):
        return os.environ["BERTH_SERVER"]
    data_dir = os.environ.get("BERTH_DATA_DIR")
    if data_dir:
        url = _from_record(data_dir)
        if url is None:
            raise BerthError("no berthd is running for %s (BERTH_DATA_DIR): %s does not exist; "
                             "start one with `berth up`" % (data_dir, os.path.join(data_dir, RECORD_NAME)))
        return url
    for directory in (SYSTEM_RUN_DIR, user_data_dir()):
        url = _from_record(directory)
        if url:
            return url
    return DEFAULT_SERVER


def caller_name():
    """The OS account of the effective uid (not $USER, which may be unset or wrong)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def identity_headers(server=None):
    """What tells berthd who asks, besides the Unix socket (where the kernel
    does): "Authorization: Bearer $BERTH_TOKEN" when BERTH_TOKEN is set (a
    task has its job's token there, so work it starts acts for its owner)."""
    token = os.environ.get("BERTH_TOKEN", "")
    return {"Authorization": "Bearer " + token} if token else {}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Client:
    def __init__(self, server=None, timeout=30):
        self.server = find_server(server).rstrip("/")
        self.timeout = timeout

    def _send(self, method, path, body=None):
        """One request; returns the reply's body (bytes) and headers, or raises BerthError."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        headers.update(identity_headers(self.server))
        if self.server.startswith("unix:"):
            return self._send_unix(method, path, data, headers)
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.read(), r.headers
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read().decode())["error"]
                raise BerthError(err.get("message", str(e)), err.get("code", "error"), e.code) from None
            except (ValueError, KeyError):
                raise BerthError(str(e), "error", e.code) from None
        except urllib.error.URLError as e:
            raise BerthError("cannot reach berthd at %s: %s (start it with `berth up`)" % (self.server, e.reason))

    def _send_unix(self, method, path, data, headers):
        sock = self.server[len("unix:"):]
        conn = _UnixConnection(sock, self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            payload = r.read()
        except OSError as e:
            raise BerthError("cannot reach berthd at %s: %s (start it with `berth up`)" % (self.server, e))
        finally:
            conn.close()
        if r.status // 100 != 2:
            try:
                err = json.loads(payload.decode())["error"]
                raise BerthError(err.get("message", payload.decode()), err.get("code", "error"), r.status)
            except (ValueError, KeyError):
                raise BerthError("HTTP %d: %s" % (r.status, payload.decode(errors="replace")), "error",
                                 r.status) from None
        return payload, r.headers

    def _request(self, method, path, body=None, raw=False):
        text = self._send(method, path, body)[0].decode()
        return text if raw else json.loads(text)

    def submit(self, pipeline, parameters=None):
        """Starts a run of a Pipeline (object, dict or document text); returns the run id.

        The run belongs to the caller (the socket's uid or the token's user); berthd decides it."""
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

    def logs(self, run, step, page_bytes=1 << 20):
        """A step's whole output as text, read page by page (the server never sends more than a page)."""
        path = "/api/v1/pipelines/runs/%s/logs?step=%s" % (run, urllib.parse.quote(step))
        out, offset = [], 0
        while True:
            data, headers = self._send("GET", "%s&offset=%d&limit=%d" % (path, offset, page_bytes))
            out.append(data)
            nxt, end = headers.get("X-Berth-Log-Next"), headers.get("X-Berth-Log-End")
            if not data or nxt is None or end is None or int(nxt) >= int(end):
                return b"".join(out).decode("utf-8", errors="replace")
            offset = int(nxt)

    def cancel(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/cancel" % run, {})

    def retry(self, run):
        return self._request("POST", "/api/v1/pipelines/runs/%s/retry" % run, {})
