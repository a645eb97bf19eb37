"""
clientlib.py: helpers for the tests of simq(1), the command-line client.

    simq_path(ctx)      the simq binary next to the simqd under test
                        (bin/simq next to bin/simqd, build/san/simq next
                        to build/san/simqd)
    Simq                runs simq against one broker with a timeout and
                        returns (rc, stdout, stderr); checks sanitizer
                        reports; parses --json output
    start_workers(ctx, broker, n)
                        the real simq-worker when it was built next to
                        simqd, else FakeWorker threads
    FakeWorker          a small worker in Python that speaks the protocol
                        and really runs jobs (subprocesses with
                        SIMQ_RESULT, SIMQ_ARRAY_INDEX, cwd, env, timeouts,
                        cancel), for use until bin/simq-worker exists
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import TestFailure, check, eq, enc


def simq_path(ctx):
    p = os.path.join(os.path.dirname(ctx.simqd), "simq")
    if not os.access(p, os.X_OK):
        raise TestFailure("no simq binary next to %s (build it: make %s)" %
                          (ctx.simqd, os.path.relpath(p)))
    return p


def worker_path(ctx):
    """The real simq-worker next to simqd, or None."""
    if os.environ.get("SIMQ_TEST_FAKE_WORKER"):
        return None
    p = os.path.join(os.path.dirname(ctx.simqd), "simq-worker")
    return p if os.access(p, os.X_OK) else None


class Result:
    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.outb = out
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")

    def __repr__(self):
        return "<simq %s: rc=%d out=%r err=%r>" % (
            " ".join(self.args), self.rc, self.out[:300], self.err[:300])

    def ok(self):
        """Asserts exit 0 and nothing on stderr; returns self."""
        if self.rc != 0:
            raise TestFailure("expected exit 0: %r" % self)
        return self

    def fails(self, rc, *words):
        """Asserts exit rc, nothing on stdout unless allowed, and a one-line
        error on stderr that starts with 'simq: ' and contains words."""
        if self.rc != rc:
            raise TestFailure("expected exit %d: %r" % (rc, self))
        lines = self.err.strip().splitlines()
        check(len(lines) >= 1 and lines[0].startswith("simq: "),
              "error must start with 'simq: ': %r" % self)
        for w in words:
            check(w in self.err, "expected %r in stderr: %r" % (w, self))
        return self

    def json(self):
        """The one JSON document on stdout."""
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise TestFailure("stdout is not one JSON document (%s): %r" %
                              (e, self))

    def lines(self):
        return self.out.splitlines()


class Simq:
    """Runs simq against a broker."""

    def __init__(self, ctx, broker=None, server=None, token=None):
        self.ctx = ctx
        self.path = simq_path(ctx)
        self.broker = broker
        if server is None and broker is not None:
            server = "%s:%d" % (broker.host, broker.port)
        self.server = server
        self.token = token

    def env(self, extra=None):
        env = harness.sanitizer_env()
        for k in ("SIMQ_SERVER", "SIMQ_TOKEN", "NO_COLOR"):
            env.pop(k, None)
        if self.server is not None:
            env["SIMQ_SERVER"] = self.server
        if self.token is not None:
            env["SIMQ_TOKEN"] = self.token
        env.setdefault("LC_ALL", "C.UTF-8")
        if extra:
            for k, v in extra.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
        return env

    def run(self, *args, input=None, env=None, timeout=None, cwd=None):
        args = [str(a) for a in args]
        timeout = timeout or 30 * self.ctx.slow
        if isinstance(input, str):
            input = input.encode("utf-8", "surrogateescape")
        try:
            p = subprocess.run([self.path] + args, input=input,
                               stdin=None if input is not None
                               else subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=self.env(env),
                               timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise TestFailure("simq %s did not exit within %ds" %
                              (" ".join(args), timeout))
        r = Result(args, p.returncode, p.stdout, p.stderr)
        if self.ctx.sanitized:
            f = harness.sanitizer_findings(r.err)
            if f:
                raise TestFailure("sanitizer report from simq %s:\n%s" %
                                  (" ".join(args), harness.tail(f, 60)))
        check(p.returncode in (0, 1, 2),
              "simq exits 0, 1 or 2 only: %r" % r)
        return r

    def __call__(self, *args, **kw):
        return self.run(*args, **kw)

    def submit(self, *args, **kw):
        """simq submit ARGS; returns the id (str)."""
        r = self.run("submit", *args, **kw).ok()
        ids = r.lines()
        eq(len(ids), 1, "ids printed by submit: %r" % r)
        return ids[0]


# ---------------------------------------------------------------------------
# Workers

def start_workers(ctx, broker, n=1, slots=4, queues=None, lease=None,
                  token=None):
    """Starts n workers on broker: the real simq-worker if it was built,
    else FakeWorker threads.  They are stopped when the test ends."""
    wp = worker_path(ctx)
    out = []
    for i in range(n):
        name = "w%d" % (i + 1)
        if wp:
            out.append(RealWorker(ctx, wp, broker, name, slots, queues,
                                  token))
        else:
            out.append(FakeWorker(ctx, broker, name, slots, queues, lease,
                                  token))
    return out


def wait_workers(simq, n, timeout=10):
    """Waits until the broker lists n connected workers."""
    def ready():
        r = simq("workers", "--json")
        if r.rc != 0:
            return False
        return len([w for w in r.json()["workers"] if w["connected"]]) >= n
    harness.wait_until(ready, timeout, "%d workers to connect" % n, 0.05)


class RealWorker:
    def __init__(self, ctx, path, broker, name, slots, queues, token):
        self.logpath = ctx.newfile("worker-%s.log" % name)
        wd = ctx.mkdtemp("workdir-%s" % name)
        cmd = [path, "-s", "%s:%d" % (broker.host, broker.port),
               "-j", str(slots), "--name", name, "-w", wd]
        if queues:
            cmd += ["-q", queues]
        env = harness.sanitizer_env()
        if token:
            env["SIMQ_TOKEN"] = token
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     env=env, cwd=wd)
        ctx.cleanups.append(self.stop)
        ctx.extra_logs.append(("simq-worker %s" % name, ""))
        self.ctx = ctx
        self.name = name

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self.log.close()
        with open(self.logpath, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.ctx.extra_logs.append(("simq-worker %s" % self.name, text))
        if self.ctx.sanitized:
            f = harness.sanitizer_findings(text)
            if f:
                raise TestFailure("sanitizer report in simq-worker:\n" + f)


class FakeWorker(threading.Thread):
    """A worker in Python: registers, takes jobs, runs each as its own
    process group with the job's argv, cwd and environment (plus
    SIMQ_JOB_ID, SIMQ_ATTEMPT, SIMQ_ARRAY_INDEX and SIMQ_RESULT), kills it
    on its timeout or when the broker drops it, and reports it with
    FINISH (stdout and stderr tails, result payload, times) or FAIL."""

    TAKE_WAIT_MS = 50

    def __init__(self, ctx, broker, name, slots=4, queues=None, lease=None,
                 token=None):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.port = broker.port
        self.name = name
        self.slots = slots
        self.queues = queues or "default"
        self.lease = lease
        self.token = token
        self.tmp = ctx.mkdtemp("fakeworker")
        self.running = {}		# id -> dict
        self.stopping = threading.Event()
        self.error = None
        self.ready = threading.Event()
        ctx.cleanups.append(self.stop)
        self.start()
        if not self.ready.wait(10 * ctx.slow):
            raise TestFailure("fake worker %s did not register: %r" %
                              (name, self.error))
        if self.error:
            raise TestFailure("fake worker %s: %r" % (name, self.error))

    def stop(self):
        self.stopping.set()
        self.join(10)
        for r in list(self.running.values()):
            try:
                os.killpg(r["proc"].pid, signal.SIGKILL)
            except OSError:
                pass
        if self.error:
            raise TestFailure("fake worker %s failed: %s" % (self.name,
                                                             self.error))

    def run(self):
        try:
            self.c = harness.Client(self.port, timeout=10 * self.ctx.slow)
            if self.token:
                self.c.request("HELLO 1 " + enc(self.token)).expect_ok()
            line = "WORKER %s host=%s slots=%d pid=%d queues=%s" % (
                self.name, socket.gethostname(), self.slots, os.getpid(),
                self.queues)
            if self.lease:
                line += " lease=%d" % self.lease
            self.c.request(line).expect_ok()
            self.ready.set()
            last_hb = time.monotonic()
            while not self.stopping.is_set():
                self.reap()
                free = self.slots - len(self.running)
                if free > 0:
                    r = self.c.request("TAKE %d %d %s" % (
                        free, self.TAKE_WAIT_MS, self.queues))
                    for it in r.expect_items():
                        if it.kind == "drop":
                            self.drop(it)
                        else:
                            self.launch(it)
                else:
                    time.sleep(0.01)
                if time.monotonic() - last_hb > 1:
                    held = ["%s:%s" % (k, v["attempt"])
                            for k, v in self.running.items()]
                    r = self.c.request(" ".join(["HEARTBEAT"] + held))
                    for it in r.expect_items():
                        self.drop(it)
                    last_hb = time.monotonic()
        except Exception as e:  # reported by stop()
            if not self.stopping.is_set():
                self.error = repr(e)
            self.ready.set()
        finally:
            try:
                self.c.close()
            except Exception:
                pass

    def drop(self, it):
        r = self.running.pop(it["id"], None)
        if r is not None:
            try:
                os.killpg(r["proc"].pid, signal.SIGKILL)
            except OSError:
                pass
            r["proc"].wait()

    def launch(self, it):
        jid, attempt = it["id"], it["attempt"]
        d = os.path.join(self.tmp, "%s.%s" % (jid, attempt))
        os.mkdir(d)
        env = dict(os.environ)
        for kv in it.multi.get("env", []):
            k, v = kv.split("=", 1)
            env[k] = v
        env["SIMQ_JOB_ID"] = jid
        env["SIMQ_ATTEMPT"] = attempt
        if "index" in it:
            env["SIMQ_ARRAY_INDEX"] = it["index"]
        env["SIMQ_RESULT"] = os.path.join(d, "result")
        out = open(os.path.join(d, "out"), "wb")
        err = open(os.path.join(d, "err"), "wb")
        start = int(time.time() * 1000)
        try:
            proc = subprocess.Popen(it.argv, cwd=it.get("cwd") or None,
                                    env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            out.close()
            err.close()
            self.c.request("FAIL %s %s %s" % (
                jid, attempt, enc("exec %s: %s" % (it.argv[0],
                                                   e.strerror)))).expect_ok()
            return
        out.close()
        err.close()
        timeout = int(it.get("timeout", "0") or 0)
        self.running[jid] = {"proc": proc, "attempt": attempt, "dir": d,
                             "start": start, "t0": time.monotonic(),
                             "timeout": timeout / 1000.0, "timedout": False}

    def reap(self):
        for jid, r in list(self.running.items()):
            p = r["proc"]
            if p.poll() is None:
                if r["timeout"] and not r["timedout"] and \
                        time.monotonic() - r["t0"] > r["timeout"]:
                    r["timedout"] = True
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except OSError:
                        pass
                continue
            del self.running[jid]
            end = int(time.time() * 1000)

            def tail(name):
                try:
                    with open(os.path.join(r["dir"], name), "rb") as f:
                        return f.read()[-65536:]
                except OSError:
                    return b""
            out, err, res = tail("out"), tail("err"), tail("result")
            kw = {"start": r["start"], "end": end, "maxrss": 1024,
                  "utime": 1000, "stime": 500,
                  "outpath": enc(os.path.join(r["dir"], "out"))}
            if r["timedout"]:
                kw["timedout"] = 1
            if p.returncode < 0:
                rep = harness.Worker.finish(self.c, jid, r["attempt"],
                                            out=out, err=err, res=res,
                                            signal_=-p.returncode, **kw)
            else:
                rep = harness.Worker.finish(self.c, jid, r["attempt"],
                                            exit=p.returncode, out=out,
                                            err=err, res=res, **kw)
            if rep.kind == "ERR" and rep.code != "stale":
                raise TestFailure("FINISH refused: %r" % rep)
