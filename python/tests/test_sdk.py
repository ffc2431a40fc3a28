"""Tests of the Berth Python SDK: rendering, @task scripts, the client against
a fake server, and (when a built berthd is found) a real run end to end."""

import http.server
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from berth import Client, Pipeline, RunFailed, BerthError, task  # noqa: E402
from berth.pipeline import RETURN_FILE  # noqa: E402
from berth.client import find_server, read_record  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@task
def add(a, b):
    return a + b


@task(gpus=1, retry={"limit": 2})
def train(lr, n):
    return {"lr": float(lr), "n": n, "accuracy": 0.9}


class RenderTest(unittest.TestCase):
    def test_steps_dependencies_and_parameters(self):
        with Pipeline("ml", parameters={"lr": "0.1", "epochs": None}, parallelism=4) as p:
            prep = p.step("prep", script="echo 3", outputs={"n": "stdout"}, artifacts={"data": "out"})
            model = train(lr=p.param("lr"), n=prep.output("n"))
            p.step("deploy", command=["echo", "go"], when="%s > 0.5" % model,
                   inputs={"in/data": prep.artifact("data")})
        doc = p.to_dict()
        self.assertEqual(doc["kind"], "Pipeline")
        self.assertEqual(doc["metadata"]["name"], "ml")
        spec = doc["spec"]
        self.assertEqual(spec["parameters"], [{"name": "lr", "value": "0.1"}, {"name": "epochs"}])
        self.assertEqual(spec["parallelism"], 4)
        steps = {s["name"]: s for s in spec["steps"]}
        self.assertEqual(steps["prep"]["outputs"]["parameters"], [{"name": "n", "valueFrom": {"stdout": True}}])
        self.assertEqual(steps["prep"]["outputs"]["artifacts"], [{"name": "data", "path": "out"}])
        self.assertEqual(steps["train"]["dependencies"], ["prep"])
        self.assertEqual(steps["train"]["resources"], {"gpus": "1"})
        self.assertEqual(steps["train"]["retryStrategy"], {"limit": 2})
        self.assertIn("{{inputs.parameters.lr}}", steps["train"]["script"])
        self.assertIn("{{steps.prep.outputs.parameters.n}}", steps["train"]["script"])
        self.assertEqual(sorted(steps["deploy"]["dependencies"]), ["prep", "train"])
        self.assertEqual(steps["deploy"]["when"], "{{steps.train.outputs.parameters.return}} > 0.5")
        self.assertEqual(steps["deploy"]["inputs"]["artifacts"][0]["from"], "{{steps.prep.outputs.artifacts.data}}")
        json.loads(p.to_json())  # valid JSON

    def test_task_outside_a_pipeline_is_a_plain_call_and_names_are_unique(self):
        self.assertEqual(add(2, 3), 5)
        with Pipeline("twice") as p:
            a = add(1, 2)
            add(a, 10)
        self.assertEqual([s.name for s in p.steps], ["add", "add-2"])
        self.assertEqual(p.steps[1].dependencies, ["add"])
        with self.assertRaises(ValueError):
            p.step("add", command=["true"])
        with self.assertRaises(KeyError):
            p.param("nope")


class TaskScriptTest(unittest.TestCase):
    def test_the_rendered_script_runs_the_function_and_writes_its_result(self):
        with Pipeline("t") as p:
            first = add(1, 2)
            add(first, 10)
        script = p.to_dict()["spec"]["steps"][1]["script"]
        # What berthd does before starting the step: substitute the templates.
        script = script.replace("{{steps.add.outputs.parameters.return}}", "3")
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run(["/bin/sh", "-c", script], cwd=d, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(d, RETURN_FILE)) as f:
                self.assertEqual(json.load(f), 13)


class FakeBerthd(http.server.BaseHTTPRequestHandler):
    runs = {}
    seen = []  # (Authorization, X-Berth-User, body) of every POST

    def log_message(self, *a):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers.get("Authorization"), self.headers.get("X-Berth-User"), body))
        if self.path == "/api/v1/pipelines/runs":
            doc = json.loads(body["spec"])
            if doc["spec"]["steps"][0]["name"] == "bad":
                return self._reply(400, {"error": {"code": "invalid_argument", "message": "spec.steps[0](bad): no"}})
            rid = len(self.runs) + 1
            self.runs[rid] = {"id": rid, "state": "Running", "polls": 0, "params": body["parameters"],
                              "nodes": [{"name": s["name"], "outputs": {"parameters": {"return": "{\"x\": 1}", "t": "text"}}}
                                        for s in doc["spec"]["steps"]]}
            return self._reply(201, self.runs[rid])
        self._reply(404, {"error": {"code": "not_found", "message": "no"}})

    def do_GET(self):
        rid = int(self.path.split("/")[5].split("?")[0])
        run = self.runs[rid]
        run["polls"] += 1
        if run["polls"] >= 3:
            run["state"] = "Failed" if run["params"].get("fail") else "Succeeded"
        self._reply(200, run)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeBerthd)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.client = Client("http://127.0.0.1:%d" % cls.server.server_address[1])

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def test_submit_wait_and_outputs(self):
        with Pipeline("p") as p:
            add(1, 2)
        rid = self.client.submit(p, {"k": 1})
        run = self.client.wait(rid, timeout=5, poll=0.01)
        self.assertEqual(run["state"], "Succeeded")
        self.assertEqual(self.client.outputs(rid, "add"), {"return": {"x": 1}, "t": "text"})
        with self.assertRaises(BerthError):
            self.client.outputs(rid, "nope")

    def test_requests_over_tcp_carry_the_token_and_never_a_user_name(self):
        saved = {k: os.environ.get(k) for k in ("USER", "BERTH_TOKEN")}
        try:
            os.environ["USER"] = "impostor"
            os.environ.pop("BERTH_TOKEN", None)
            with Pipeline("p") as p:
                p.step("a", command=["true"])
            self.client.submit(p)
            auth, user, body = FakeBerthd.seen[-1]
            self.assertEqual((auth, user), (None, None))
            self.assertNotIn("user", body)
            os.environ["BERTH_TOKEN"] = "berth_0123456789abcdef_secret"  # e.g. inside a task
            self.client.submit(p)
            self.assertEqual(FakeBerthd.seen[-1][:2], ("Bearer berth_0123456789abcdef_secret", None))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_errors_carry_the_servers_message(self):
        with Pipeline("p") as p:
            p.step("bad", command=["x"])
        with self.assertRaises(BerthError) as e:
            self.client.submit(p)
        self.assertEqual(e.exception.code, "invalid_argument")
        self.assertIn("spec.steps[0](bad)", str(e.exception))
        with Pipeline("p") as p:
            p.step("ok", command=["x"])
        rid = self.client.submit(p, {"fail": "1"})
        with self.assertRaises(RunFailed):
            self.client.wait(rid, timeout=5, poll=0.01)
        with self.assertRaises(BerthError):
            Client("http://127.0.0.1:1").get(1)


class DiscoveryTest(unittest.TestCase):
    """The SDK finds berthd by the CLI's rule: --server/argument, BERTH_SERVER, BERTH_DATA_DIR's record, ..."""

    def setUp(self):
        self.saved = {k: os.environ.pop(k) for k in ("BERTH_SERVER", "BERTH_DATA_DIR", "XDG_DATA_HOME")
                      if k in os.environ}
        self.dir = tempfile.mkdtemp(prefix="berth-disc-")
        os.environ["XDG_DATA_HOME"] = os.path.join(self.dir, "xdg")  # no per-user daemon

    def tearDown(self):
        for k in ("BERTH_SERVER", "BERTH_DATA_DIR", "XDG_DATA_HOME"):
            os.environ.pop(k, None)
        os.environ.update(self.saved)
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_record(self, pid, url="http://127.0.0.1:1234"):
        with open(os.path.join(self.dir, "berthd.addr"), "w") as f:
            f.write("url=%s\npid=%d\ndataDir=\n" % (url, pid))

    def test_order(self):
        os.environ["BERTH_DATA_DIR"] = self.dir
        self.write_record(os.getpid(), "http://127.0.0.1:1111")
        self.assertEqual(find_server(), "http://127.0.0.1:1111")
        os.environ["BERTH_SERVER"] = "http://127.0.0.1:2222"
        self.assertEqual(find_server(), "http://127.0.0.1:2222")
        self.assertEqual(find_server("http://127.0.0.1:3333"), "http://127.0.0.1:3333")

    def test_data_dir_without_daemon_is_an_error(self):
        os.environ["BERTH_DATA_DIR"] = self.dir
        with self.assertRaises(BerthError) as e:
            Client()
        self.assertIn("no berthd is running for " + self.dir, str(e.exception))

    def test_stale_record_is_an_error(self):
        os.environ["BERTH_DATA_DIR"] = self.dir
        child = subprocess.Popen(["true"])
        child.wait()  # a pid that no longer runs
        self.write_record(child.pid)
        with self.assertRaises(BerthError) as e:
            Client()
        self.assertIn("is not running", str(e.exception))


def find_berthd():
    for d in [os.environ.get("BERTH_BIN_DIR", ""), os.path.join(ROOT, "build", "bin"),
              os.path.join(ROOT, "build-pipe", "bin")]:
        if d and os.access(os.path.join(d, "berthd"), os.X_OK):
            return os.path.join(d, "berthd")
    return None


@unittest.skipIf(find_berthd() is None, "no built berthd (set BERTH_BIN_DIR)")
class EndToEndTest(unittest.TestCase):
    def test_a_task_pipeline_runs_on_berthd(self):
        data = tempfile.mkdtemp(prefix="berth-sdk-")
        proc = subprocess.Popen([find_berthd(), "--listen", "127.0.0.1:0", "--data-dir", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                if read_record(data):
                    break
                time.sleep(0.01)
            # The SDK finds the daemon the way the CLI does: here by BERTH_DATA_DIR's record.
            env = {k: os.environ.pop(k) for k in ("BERTH_SERVER", "BERTH_DATA_DIR") if k in os.environ}
            os.environ["BERTH_DATA_DIR"] = data
            try:
                client = Client()
            finally:
                os.environ.pop("BERTH_DATA_DIR")
                os.environ.update(env)
            # ... and talks to it on the Unix socket in its data directory.
            self.assertEqual(client.server, "unix:" + os.path.join(data, "berthd.sock"))
            with Pipeline("sdk", parameters={"lr": "0.5"}) as p:
                m = train(lr=p.param("lr"), n=add(2, 3))
                p.step("show", command=["echo", m])
            # No GPUs declared: drop the request for this test.
            p.steps[1].resources = {}
            rid = client.submit(p)
            client.wait(rid, timeout=30)
            self.assertEqual(client.outputs(rid, "train")["return"], {"lr": 0.5, "n": 5, "accuracy": 0.9})
            self.assertIn('"accuracy": 0.9', client.logs(rid, "show"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
