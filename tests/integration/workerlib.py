"""
workerlib.py: runs real simq-worker processes for the integration tests.

The worker binary is the one next to the simqd under test (bin/simq-worker
next to bin/simqd, build/san/simq-worker next to build/san/simqd), so the
sanitizer run tests the sanitizer build.

    WorkerProc  one simq-worker: start against a Broker, wait until the
                broker lists it, signal, kill -9, wait for its exit; its
                stderr goes to a log file that is checked for sanitizer
                reports when the test ends (and the process is killed if
                it still runs).
    procs_with  the live processes whose environment holds a marker: every
                process of a job inherits the job's environment, so a test
                job given env=SIMQ_TEST_MARK=... can be found with all its
                children, including those that left its process group.
    wait_job    polls STATUS until a job reaches one of some states.
"""

import itertools
import os
import signal
import socket
import subprocess
import time
import uuid

from harness import (TestFailure, check, eq, sanitizer_env,
                     sanitizer_findings, tail, wait_until)

_names = itertools.count(1)
FINISHED = ("done", "failed", "canceled")


def worker_path(ctx):
    p = os.path.join(os.path.dirname(ctx.simqd), "simq-worker")
    if not os.access(p, os.X_OK):
        raise TestFailure("%s is missing: build it next to %s" %
                          (p, ctx.simqd))
    return p


class WorkerProc:
    """One simq-worker process.  Its options: -s the broker, --name,
    -w a fresh work directory, -j slots, --lease (ms), -v, then args."""

    def __init__(self, ctx, broker, name=None, slots=2, lease=2000,
                 args=(), env=None, cwd=None, server=None, verbose=True,
                 start=True):
        self.ctx = ctx
        self.broker = broker
        # name=False: no --name (the worker picks HOST:PID); slots=None:
        # no -j (one slot per CPU).
        self.name = "w%d" % next(_names) if name is None else name
        self.workdir = os.path.join(ctx.mkdtemp("work"), "w")
        self.logpath = ctx.newfile("worker-%s.log" % (self.name or "anon"))
        self.cmd = [worker_path(ctx), "-w", self.workdir]
        if self.name:
            self.cmd += ["--name", self.name]
        if slots is not None:
            self.cmd += ["-j", str(slots)]
        if server is None and broker is not None:
            server = "127.0.0.1:%d" % broker.port
        if server is not None:
            self.cmd += ["-s", server]
        if lease:
            self.cmd += ["--lease", "%dms" % lease]
        if verbose:
            self.cmd.append("-v")
        self.cmd += list(args)
        self.env = sanitizer_env()
        self.env.pop("SIMQ_SERVER", None)
        self.env.pop("SIMQ_TOKEN", None)
        # Run inside a Slurm job, a worker would take its end from it.
        self.env.pop("SLURM_JOB_ID", None)
        if env:
            self.env.update(env)
        self.cwd = cwd
        self.proc = None
        ctx.cleanups.append(self._cleanup)
        if start:
            self.start()

    def start(self):
        with open(self.logpath, "ab") as lf:
            lf.write(("=== %s\n" % " ".join(self.cmd)).encode())
            lf.flush()
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                         stdout=lf, stderr=lf, env=self.env,
                                         cwd=self.cwd)
        if not self.name:
            self.name = "%s:%d" % (socket.gethostname(), self.proc.pid)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=5):
        """Waits until text appears in the log; returns the log."""
        wait_until(lambda: text in self.log(), timeout * self.ctx.slow,
                   "%r in the log of worker %s" % (text, self.name))
        return self.log()

    def registered(self, client):
        for it in client.request("WORKERS").expect_items():
            if it.get("name") == self.name and it.get("connected") == "1":
                return it
        return None

    def wait_registered(self, client, timeout=5):
        return wait_until(lambda: self.registered(client),
                          timeout * self.ctx.slow,
                          "worker %s to register" % self.name)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        if self.running():
            self.proc.kill()
        self.proc.wait(10)

    def wait_exit(self, timeout=10):
        try:
            return self.proc.wait(timeout * self.ctx.slow)
        except subprocess.TimeoutExpired:
            raise TestFailure("worker %s did not exit within %.0fs:\n%s" %
                              (self.name, timeout * self.ctx.slow,
                               tail(self.log())))

    def check_sanitizer(self):
        if self.ctx.sanitized:
            f = sanitizer_findings(self.log())
            if f:
                raise TestFailure("sanitizer report in the log of worker "
                                  "%s:\n%s" % (self.name, tail(f, 60)))

    def _cleanup(self):
        if self.running():
            try:
                self.proc.send_signal(signal.SIGCONT)
            except OSError:
                pass
            self.kill9()
        self.ctx.extra_logs.append((
            "simq-worker %s (%s)" % (self.name, self.logpath), self.log()))
        self.check_sanitizer()


def marker():
    """A unique value for env=SIMQ_TEST_MARK=..."""
    return "m" + uuid.uuid4().hex[:16]


def procs_with(mark):
    """Pids of the live (not zombie) processes whose environment holds
    SIMQ_TEST_MARK=mark."""
    want = ("SIMQ_TEST_MARK=%s" % mark).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read()
            with open("/proc/%s/stat" % d, "rb") as f:
                st = f.read()
        except OSError:
            continue
        state = st[st.rindex(b")") + 2:st.rindex(b")") + 3]
        if state != b"Z" and want in env.split(b"\0"):
            pids.append(int(d))
    return pids


def wait_no_procs(ctx, mark, timeout=3, what="the job's processes"):
    wait_until(lambda: not procs_with(mark), timeout * ctx.slow,
               "%s to be gone (alive: %s)" % (what, procs_with(mark)))


def wait_procs(ctx, mark, n=1, timeout=5):
    return wait_until(lambda: len(procs_with(mark)) >= n and
                      procs_with(mark), timeout * ctx.slow,
                      "%d job process(es) with mark %s" % (n, mark))


def wait_job(ctx, client, jid, states=FINISHED, timeout=10):
    """Polls STATUS until the job is in one of states; returns its item."""
    got = [None]

    def ok():
        got[0] = client.status1(jid)
        return got[0]["state"] in states

    try:
        wait_until(ok, timeout * ctx.slow, "job %s to be %s" %
                   (jid, "/".join(states)), interval=0.02)
    except TestFailure:
        raise TestFailure("job %s is still %r after %.0fs: %r" %
                          (jid, got[0] and got[0]["state"],
                           timeout * ctx.slow, got[0]))
    return got[0]


def output(client, jid, stream="stdout"):
    r = client.request("OUTPUT %s %s" % (jid, stream))
    if r.kind != "DATA":
        raise TestFailure("OUTPUT %s %s: %r" % (jid, stream, r))
    return r.data


def run_simq_worker(ctx, args, env=None, timeout=10):
    """Runs simq-worker to its end; returns (exit code, stdout, stderr)."""
    e = sanitizer_env()
    e.pop("SIMQ_SERVER", None)
    e.pop("SIMQ_TOKEN", None)
    e.pop("SLURM_JOB_ID", None)
    if env:
        e.update(env)
    try:
        p = subprocess.run([worker_path(ctx)] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=e,
                           timeout=timeout * ctx.slow)
    except subprocess.TimeoutExpired:
        raise TestFailure("simq-worker %s did not exit" % " ".join(args))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if ctx.sanitized:
        f = sanitizer_findings(err)
        check(not f, "sanitizer report from simq-worker:\n%s" % f)
    return p.returncode, out, err

