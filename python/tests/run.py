#!/usr/bin/env python3
"""The simq Python package's tests against a real simqd and simq-worker.
Prints TAP.

    /usr/bin/python3 python/tests/run.py [--bin bin] [-k SUBSTRING]

Every test_* function of this file is one test, run with a fresh Ctx in
its own temporary directory; most share one broker and one worker -j 2
(ctx.shared), a test that needs its own starts it (ctx.broker()).
"""

import argparse
import concurrent.futures as cf
import os
import operator
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
sys.path.insert(0, PYDIR)
sys.path.insert(0, HERE)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [PYDIR, HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p])

import simq  # noqa: E402
import counting  # noqa: E402
import crashing  # noqa: E402
import slow_import  # noqa: E402
import tasks  # noqa: E402

BIN = None


class Skip(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    def __init__(self, argv, log):
        self.argv = argv
        self.log = log
        with open(log, "ab") as f:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=f, stderr=f,
                                      start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killpg()

    def killpg(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()


class Broker:
    def __init__(self, ctx, args=()):
        self.ctx = ctx
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.data = os.path.join(ctx.tmp, "data%d" % self.port)
        self.args = list(args)
        self.proc = None
        self.start()

    def start(self):
        self.proc = Proc([os.path.join(BIN, "simqd"), "-d", self.data,
                          "-p", str(self.port)] + self.args,
                         os.path.join(self.ctx.tmp, "simqd.log"))
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.proc.p.poll() is not None or \
                        time.monotonic() > deadline:
                    raise AssertionError("simqd did not start")
                time.sleep(0.02)

    def worker(self, *args):
        return self.ctx.track(Proc(
            [os.path.join(BIN, "simq-worker"), "-s", self.addr,
             "-w", os.path.join(self.ctx.tmp, "w%d" % len(self.ctx.procs))]
            + list(args), os.path.join(self.ctx.tmp, "worker.log")))

    def client(self, **kw):
        return simq.Client(self.addr, **kw)


class Ctx:
    shared_broker = None

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.closers = []

    def track(self, p):
        self.procs.append(p)
        return p

    def broker(self, args=()):
        b = Broker(self, args)
        self.track(b.proc)
        return b

    @property
    def shared(self):
        return Ctx.shared_broker

    def executor(self, **kw):
        kw.setdefault("server", self.shared.addr)
        ex = simq.Executor(**kw)
        self.closers.append(lambda: ex.shutdown(wait=False,
                                                cancel_futures=True))
        return ex

    def cleanup(self):
        for c in self.closers:
            try:
                c()
            except Exception:
                pass
        for p in reversed(self.procs):
            p.stop()
            if p.p.poll() is None:
                p.killpg()


def eq(got, want, what="value"):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    raise AssertionError("%s not raised by %s" % (exc.__name__,
                                                  getattr(fn, "__name__",
                                                          fn)))


def wait_until(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# Client

def test_server_and_token_defaults(ctx):
    from simq import _wire
    eq(_wire.split_server("h:12"), ("h", 12), "HOST:PORT")
    eq(_wire.split_server(":12"), ("127.0.0.1", 12), ":PORT")
    eq(_wire.split_server("h"), ("h", 7733), "HOST")
    eq(_wire.split_server("[::1]:9"), ("::1", 9), "[V6]:PORT")
    eq(_wire.split_server("::1"), ("::1", 7733), "bare IPv6")
    for bad in ("h:0", "h:65536", "h:x", "h:012", "", "[::1"):
        raises(ValueError, _wire.split_server, bad)
    old = dict(os.environ)
    try:
        os.environ.pop("SIMQ_SERVER", None)
        os.environ.pop("SIMQ_TOKEN", None)
        eq(simq.Client().server, "127.0.0.1:7733", "default server")
        eq(simq.Client().token, None, "default token")
        os.environ["SIMQ_SERVER"] = ""
        eq(simq.Client().server, "127.0.0.1:7733", "empty SIMQ_SERVER")
        os.environ["SIMQ_SERVER"] = ctx.shared.addr
        os.environ["SIMQ_TOKEN"] = "tok"
        c = simq.Client()
        eq(c.server, ctx.shared.addr, "SIMQ_SERVER")
        eq(c.token, "tok", "SIMQ_TOKEN")
        check(c.ping(), "ping through SIMQ_SERVER")
        eq(simq.Client("h:1").server, "h:1", "argument over SIMQ_SERVER")
        tf = os.path.join(ctx.tmp, "tok")
        with open(tf, "w") as f:
            f.write("s3cret \n\n")
        eq(simq.Client(token_file=tf).token, "s3cret", "token file")
        eq(simq.Client(token="x").token, "x", "token argument")
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_broker_unreachable(ctx):
    c = simq.Client("127.0.0.1:%d" % free_port(), reconnect=0)
    e = raises(simq.BrokerUnreachable, c.ping)
    check("cannot reach" in str(e), "message: %s" % e)
    check(isinstance(e, ConnectionError), "a ConnectionError")


def test_token_refused(ctx):
    tf = os.path.join(ctx.tmp, "token")
    with open(tf, "w") as f:
        f.write("right-token\n")
    b = ctx.broker(["--token-file", tf])
    e = raises(simq.TokenRefused, b.client(token="wrong").ping)
    check("refused the token" in str(e), "message: %s" % e)
    e = raises(simq.TokenRefused, b.client(token=None).submit, ["true"])
    check("wants a token" in str(e) and "SIMQ_TOKEN" in str(e),
          "message: %s" % e)
    c = b.client(token="right-token")
    j = c.submit(["true"])
    check(j.id.isdigit(), "submit with the right token")
    c2 = b.client(token_file=tf)
    eq(c2.job(j.id).id, j.id, "token from a file")


def test_unknown_id(ctx):
    c = ctx.shared.client()
    e = raises(simq.UnknownJob, c.job, 987654321)
    check(isinstance(e, LookupError), "a LookupError")
    raises(simq.UnknownJob, simq.Job("987654321", client=c).result)
    raises(simq.UnknownJob, c.cancel, "987654321")
    raises(simq.UnknownJob, c.status, "987654321")
    raises(simq.UnknownJob, c.pause, "no-such-queue")


def test_submit_and_job_calls(ctx):
    c = ctx.shared.client()
    d = os.path.join(ctx.tmp, "wd")
    os.mkdir(d)
    j = c.submit(["sh", "-c", 'echo "$FOO $(pwd)"; echo oops >&2; '
                  'printf r%s "$SIMQ_JOB_ID" >"$SIMQ_RESULT"; exit 3'],
                 queue="default", priority=5, timeout=60, retries=0,
                 name="my job", env={"FOO": "a b%"}, cwd=d)
    eq(j.wait(timeout=30), "failed", "state after wait")
    eq(j.state, "failed", ".state")
    eq(j.exit_code, 3, ".exit_code")
    eq(j.output(), ("a b%% %s\n" % d).encode(), "stdout (env, cwd)")
    eq(j.output(stderr=True), b"oops\n", "stderr")
    eq(j.result(), ("r%s" % j.id).encode(), "result")
    info = j.refresh().info
    eq(info["name"], "my job", "name")
    eq(info["pri"], 5, "priority")
    eq(info["q"], "default", "queue")
    eq(info["attempts"], 1, "attempts")
    eq(c.retry(j), 1, "retry")
    check(j.refresh().info["state"] in ("queued", "running", "failed"),
          "retried")
    j.wait(30)
    eq(j.refresh().info["attempts"], 2, "attempts after retry")
    # A dependency and a delay.
    first = c.submit(["sleep", "0.3"])
    dep = c.submit(["true"], after=[first], delay=0.2)
    check(dep.refresh().info["state"] == "waiting", "waits for its dep")
    eq(dep.wait(30), "done", "dependent done")
    bad = c.submit(["false"])
    rescue = c.submit(["true"], after="failed:%s" % bad.id)
    eq(rescue.wait(30), "done", "after failed:ID")
    check(first.refresh().info["finished"] <= dep.info["started"],
          "ran after its dependency")
    # Cancel a running job.
    s = c.submit(["sleep", "60"])
    wait_until(lambda: s.state == "running", what="running")
    eq(s.cancel(), 1, "cancel")
    eq(s.wait(30), "canceled", "canceled")
    # wait(timeout) gives up.
    s = c.submit(["sleep", "60"], timeout="1m")
    t = time.monotonic()
    raises(TimeoutError, s.wait, 0.3)
    check(time.monotonic() - t < 5, "wait(0.3) returned in time")
    raises(simq.BadState, s.result)
    s.cancel()
    raises(TypeError, c.submit, "echo hi")


def test_submit_resources(ctx):
    c = ctx.shared.client()
    j = c.submit(["sh", "-c", "echo $SIMQ_CPUS $OMP_NUM_THREADS"], cpus=2,
                 mem="64M")
    eq(j.wait(timeout=30), "done", "a 2-CPU job on a 2-slot worker")
    eq(j.output(), b"2 2\n", "SIMQ_CPUS, OMP_NUM_THREADS")
    info = j.refresh().info
    eq((info.get("cpus"), info.get("mem")), (2, 64 << 20), "its record")
    try:
        c.submit(["true"], mem="lots")
    except ValueError:
        pass
    else:
        raise AssertionError("mem='lots' accepted")


def test_array(ctx):
    c = ctx.shared.client()
    a = c.submit(["sh", "-c", 'printf "%s" {} >"$SIMQ_RESULT"; '
                  'exit $(( {} % 4 == 0 ))'], array="1-10")
    check(a.is_array, "an array")
    eq(a.wait(60), "failed", "array state")
    eq([t.id for t in a.tasks()], ["%s_%d" % (a.id, i) for i in
                                    (4, 8, 1, 2, 3, 5, 6, 7, 9, 10)],
       "tasks, the failed first")
    eq([t.id for t in a.tasks(failed_first=False)],
       ["%s_%d" % (a.id, i) for i in range(1, 11)], "tasks by index")
    eq(a.results(), [str(i).encode() if i % 4 else None
                     for i in range(1, 11)], "results in index order")
    eq([t.id for t in a.failed()], ["%s_4" % a.id, "%s_8" % a.id],
       "failed tasks")
    eq(a.failed()[0].exit_code, 1, "a failed task's exit code")
    b = c.submit(["true"], array=range(2, 9, 3))
    eq(b.wait(30), "done", "range array")
    eq([t.id for t in b.tasks()], ["%s_%d" % (b.id, i) for i in (2, 5, 8)],
       "range tasks")


def test_status_workers_pause_resume(ctx):
    c = ctx.shared.client()
    q = "pq%d" % os.getpid()
    # Two slots: a worker with a free slot keeps a TAKE waiting, which a
    # cancel ends at once (a full one hears of it at its next heartbeat).
    w = ctx.shared.worker("-q", q, "-j", "2")
    wait_until(lambda: any(x["queues"] == q for x in c.workers()),
               what="the worker")
    ws = [x for x in c.workers() if x["queues"] == q][0]
    eq(ws["slots"], 2, "worker slots")
    check(ws["connected"], "worker connected")
    held = c.submit(["true"], queue=q, delay=3600)   # makes the queue
    c.pause(q)
    j = c.submit(["true"], queue=q)
    time.sleep(0.3)
    eq(j.state, "queued", "paused queue holds its job")
    st = c.status()
    eq(st["queues"][q]["queued"], 1, "status() counts")
    check(st["queues"][q]["paused"], "status() paused")
    check(any(x["name"] == ws["name"] for x in st["workers"]),
          "status() workers")
    c.resume(q)
    eq(j.wait(30), "done", "resumed")
    eq(c.queues()[q]["done"], 1, "queues()")
    j2 = c.submit(["sleep", "30"], queue=q)
    wait_until(lambda: j2.state == "running", what="running")
    wait_until(lambda: [x for x in c.workers() if x["queues"] == q][0]
               ["running"] == [j2.id], what="worker shows its job")
    eq(c.status(j2)[0]["state"], "running", "status(id)")
    eq(c.cancel(queue=q, state="waiting"), 1, "cancel(queue=, state=)")
    eq(c.cancel(queue=q), 1, "cancel(queue=)")
    eq(held.state, "canceled", "the delayed job canceled with its queue")
    w.stop()


def test_pipelining(ctx):
    c = ctx.shared.client()
    q = "pipe%d" % os.getpid()
    raises(simq.UnknownJob, c.pause, q)   # no such queue yet
    c.submit(["true"], queue=q, delay=3600)
    c.pause(q)
    js = c.submit_many([["echo", str(i)] for i in range(600)], queue=q)
    ids = [int(j.id) for j in js]
    eq(ids, sorted(ids), "ids in order")
    eq(len(set(ids)), 600, "600 jobs")
    eq([d["state"] for d in c.status(*js)], ["queued"] * 600, "statuses")
    eq(c.cancel(*js), 600, "cancel 600")



def test_reconnect(ctx):
    b = ctx.broker()
    c = b.client()
    j = c.submit(["true"])
    b.proc.stop()
    b.start()
    ctx.track(b.proc)
    eq(c.job(j.id).id, j.id, "same client after a broker restart")
    w = b.worker("-j", "1")
    eq(j.wait(30), "done", "ran after the restart")
    w.stop()
    b.proc.stop()
    # The idle connection's end is seen before the next submit is sent.
    b.start()
    ctx.track(b.proc)
    j2 = c.submit(["true"])
    check(int(j2.id) > int(j.id), "a fresh id after the restart")
    b.proc.stop()
    c.reconnect = 0.5
    raises(simq.BrokerUnreachable, c.ping)


def test_lost_reply_is_not_resent(ctx):
    """A broker that takes a request and closes without a reply: a SUBMIT
    is sent once and raises ConnectionLost, a STATUS is sent again on a
    new connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen = []

    def serve():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            f = s.makefile("rb")
            for line in f:
                w = line.split()
                seen.append(w[0].decode())
                if w[0] == b"HELLO":
                    s.sendall(b"OK simq 1\r\n")
                elif w[0] == b"STATUS" and seen.count("STATUS") > 1:
                    s.sendall(b"ITEMS 1\r\njob id=5 state=done\r\n")
                else:
                    break
            f.close()
            s.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = simq.Client("127.0.0.1:%d" % srv.getsockname()[1], reconnect=5)
    e = raises(simq.ConnectionLost, c.submit, ["true"])
    check("may or may not" in str(e), "says so: %s" % e)
    eq(seen.count("SUBMIT"), 1, "SUBMIT sent once")
    eq(c.job(5).info["state"], "done", "STATUS sent again")
    eq(seen.count("STATUS"), 2, "STATUS sent twice")
    srv.close()


# ---------------------------------------------------------------------------
# Executor

def test_executor_submit_wait_as_completed(ctx):
    ex = ctx.executor()
    fs = [ex.submit(tasks.slow_square, i, 0.05 * (5 - i)) for i in range(5)]
    done, not_done = cf.wait(fs, timeout=60)
    eq(len(done), 5, "wait: all done")
    eq([f.result() for f in fs], [i * i for i in range(5)], "results")
    fs = [ex.submit(tasks.slow_square, i, 0.3 if i == 0 else 0)
          for i in range(4)]
    first = cf.wait(fs, timeout=60, return_when=cf.FIRST_COMPLETED)[0]
    check(fs[0] not in first, "FIRST_COMPLETED: not the slow one")
    got = sorted(f.result() for f in cf.as_completed(fs, timeout=60))
    eq(got, [0, 1, 4, 9], "as_completed")
    f = ex.submit(tasks.add, "a", b="b")
    eq(f.result(60), "ab", "kwargs")
    check(f.job.id.isdigit(), "future.job")


def test_executor_map(ctx):
    ex = ctx.executor()
    eq(list(ex.map(operator.add, range(20), range(20), timeout=60)),
       [2 * i for i in range(20)], "map")
    eq(list(ex.map(tasks.square, range(23), chunksize=5)),
       [i * i for i in range(23)], "map chunksize=5")
    eq(list(ex.map(tasks.square, [])), [], "empty map")
    it = ex.map(tasks.sleep, [30], timeout=0.5)
    raises(cf.TimeoutError, next, it)


def test_executor_exception_traceback(ctx):
    ex = ctx.executor()
    f = ex.submit(tasks.fails, 7)
    e = raises(ValueError, f.result, 60)
    eq(str(e), "bad value 7", "the exception")
    tb = str(e.__cause__)
    check(isinstance(e.__cause__, simq.RemoteTraceback), "a RemoteTraceback")
    check("tasks.py" in tb and "in fails" in tb, "remote traceback: " + tb)
    eq(f.job.state, "failed", "the job failed")
    it = ex.map(tasks.fails, [1, 2], chunksize=2)
    raises(ValueError, next, it)
    j = simq.Job(f.job.id, client=ctx.shared.client())
    raises(ValueError, j.result)


def test_executor_timeout(ctx):
    ex = ctx.executor(timeout=1)
    f = ex.submit(tasks.sleep, 60)
    e = raises(simq.TaskFailed, f.result, 60)
    check("timeout" in str(e), "says why: %s" % e)
    eq(e.job.id, f.job.id, "names the job")


test_executor_timeout.timeout = 90


def test_executor_failed_without_result(ctx):
    ex = ctx.executor(retries=1)
    e = raises(simq.TaskFailed, ex.submit(tasks.hard_exit, 3).result, 60)
    check("exited with status 3" in str(e) and "2 attempts" in str(e),
          "says why: %s" % e)
    e = raises(simq.PayloadTooLarge, ex.submit(tasks.big, 200000).result, 60)
    check("at most 65536" in str(e), "result too large: %s" % e)
    e = raises(simq.PayloadTooLarge, ex.submit, tasks.add,
               *[os.urandom(40) for _ in range(2000)])
    check("call of add" in str(e), "call too large: %s" % e)


def test_worker_killed_mid_task(ctx):
    b = ctx.broker()
    w1 = b.worker("-j", "1", "--lease", "1s")
    ex = simq.Executor(server=b.addr)
    ctx.closers.append(lambda: ex.shutdown(wait=False))
    pidfile = os.path.join(ctx.tmp, "pid")
    f = ex.submit(tasks.attempt_after, 60, pidfile)
    calls = []
    f.add_done_callback(calls.append)
    wait_until(lambda: os.path.exists(pidfile) and
               open(pidfile).read().strip(), what="the first attempt")
    pid = int(open(pidfile).read())
    w1.killpg()
    try:
        os.kill(pid, signal.SIGKILL)   # the orphan of the first attempt
    except ProcessLookupError:
        pass
    check(not f.done(), "not resolved by the worker's death")
    b.worker("-j", "1")
    eq(f.result(60), 2, "the second attempt's result")
    time.sleep(0.5)
    eq(len(calls), 1, "resolved once")
    eq(f.job.refresh().info["attempts"], 2, "two attempts")


test_worker_killed_mid_task.timeout = 90


def test_lost_task_fails(ctx):
    """A task whose worker is lost more often than --max-lost allows
    raises TaskFailed, saying so."""
    b = ctx.broker(["--max-lost", "0"])
    w = b.worker("-j", "1", "--lease", "1s")
    ex = simq.Executor(server=b.addr)
    ctx.closers.append(lambda: ex.shutdown(wait=False))
    pidfile = os.path.join(ctx.tmp, "pid")
    f = ex.submit(tasks.attempt_after, 60, pidfile)
    wait_until(lambda: os.path.exists(pidfile) and
               open(pidfile).read().strip(), what="the first attempt")
    pid = int(open(pidfile).read())
    w.killpg()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    e = raises(simq.TaskFailed, f.result, 60)
    check("lost" in str(e), "says why: %s" % e)
    print("# " + str(e))


test_lost_task_fails.timeout = 90


def test_executor_cancel(ctx):
    c = ctx.shared.client()
    q = "nobody%d" % os.getpid()
    ex = ctx.executor(queue=q)
    f = ex.submit(tasks.square, 3)
    check(f.cancel(), "cancel() of a queued future")
    check(f.cancelled(), "cancelled()")
    wait_until(lambda: c.job(f.job.id).state == "canceled",
               what="canceled on the broker")
    raises(cf.CancelledError, f.result)
    # A running future cannot be canceled, as concurrent.futures says.
    ex2 = ctx.executor()
    g = ex2.submit(tasks.slow_square, 2, 1.5)
    wait_until(g.running, what="running")
    check(not g.cancel(), "cancel() of a running future")
    eq(g.result(60), 4, "it ran to the end")


def test_shutdown_cancel_futures(ctx):
    c = ctx.shared.client()
    q = "held%d" % os.getpid()
    ex = simq.Executor(server=ctx.shared.addr, queue=q)
    fs = [ex.submit(tasks.square, i) for i in range(20)]
    ex.shutdown(wait=True, cancel_futures=True)
    check(all(f.cancelled() for f in fs), "futures cancelled")
    eq([c.job(f.job.id).state for f in fs], ["canceled"] * 20,
       "canceled on the broker")
    raises(RuntimeError, ex.submit, tasks.square, 1)
    ex2 = simq.Executor(server=ctx.shared.addr)
    fs = [ex2.submit(tasks.square, i) for i in range(5)]
    ex2.shutdown(wait=True)
    check(all(f.done() and not f.cancelled() for f in fs),
          "shutdown(wait=True) waits")


def test_by_reference_and_by_value(ctx):
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        raise Skip("cloudpickle is not installed")
    ex = ctx.executor()
    eq(ex.submit(tasks.add, 1, 2).result(60), 3, "by reference")
    k = 10
    eq(ex.submit(lambda x: x + k, 5).result(60), 15, "a closure by value")

    def local(x):
        return -x
    eq(list(ex.map(local, [1, 2])), [-1, -2], "a local function by value")
    ex2 = ctx.executor(by_value=True)
    eq(ex2.submit(tasks.add, 2, 2).result(60), 4, "forced by value")


def test_without_cloudpickle(ctx):
    """A directory whose cloudpickle cannot be imported, first on the path
    of the submitter and of the tasks."""
    hide = os.path.join(ctx.tmp, "hide")
    os.mkdir(hide)
    with open(os.path.join(hide, "cloudpickle.py"), "w") as f:
        f.write("raise ImportError('hidden by the test')\n")
    code = r"""
import sys, simq, tasks
ex = simq.Executor(server=sys.argv[1])
try:
    import cloudpickle
    print("cloudpickle visible")
except ImportError:
    pass
print(ex.submit(tasks.add, 20, 22).result(60))
print(sys.argv[2] in ex.submit(tasks.env, "PYTHONPATH").result(60).split(":"),
      ex.submit(tasks.importable, "cloudpickle").result(60))
try:
    ex.submit(lambda: 1)
except TypeError as e:
    print("TypeError", "cloudpickle" in str(e), "__main__" in str(e))
ex.shutdown()
"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([hide, env["PYTHONPATH"]])
    out = subprocess.run([sys.executable, "-c", code, ctx.shared.addr, hide],
                         env=env, capture_output=True, text=True, timeout=90)
    eq(out.stdout.split("\n"), ["42", "True False", "TypeError True True", ""],
       "output (stderr: %s)" % out.stderr)


test_without_cloudpickle.timeout = 90


def test_results_outlive_the_client(ctx):
    ex = ctx.executor()
    f = ex.submit(tasks.add, 40, 2)
    jid = f.job.id
    ex.shutdown(wait=False)
    del ex, f
    c = ctx.shared.client()
    j = c.job(jid)
    j.wait(60)
    eq(j.result(), 42, "client.job(id).result()")
    old = os.environ.get("SIMQ_SERVER")
    os.environ["SIMQ_SERVER"] = ctx.shared.addr
    try:
        eq(simq.Job(jid).result(), 42, "Job(id).result()")
    finally:
        if old is None:
            del os.environ["SIMQ_SERVER"]
        else:
            os.environ["SIMQ_SERVER"] = old
    check(simq.Job(jid, client=c).result(raw=True).startswith(b"simq-py1"),
          "raw result")


def test_queue_enqueue(ctx):
    q = simq.Queue("default", server=ctx.shared.addr)
    ctx.closers.append(q.close)
    j = q.enqueue(tasks.add, 1, b=2)
    eq(j.wait(60), "done", "enqueued job")
    eq(j.result(), 3, "its result")
    j = q.enqueue(tasks.fails, 1)
    j.wait(60)
    raises(ValueError, j.result)


# ---------------------------------------------------------------------------
# Warm runners (simq-runner(7)): each with its own broker and a worker -j 1,
# so that every task runs in the same slot as the one before.

def warm_setup(ctx, worker_args=(), **kw):
    b = ctx.broker()
    b.worker("-j", "1", *worker_args)
    ex = simq.Executor(server=b.addr, **kw)
    ctx.closers.append(lambda: ex.shutdown(wait=False, cancel_futures=True))
    return b, ex


def alive(pid):
    """pid exists, even as a zombie nobody reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_warm_imports_once(ctx):
    counter = os.path.join(ctx.tmp, "counter")
    env = {"SIMQ_TEST_COUNTER": counter}
    b, ex = warm_setup(ctx, env=env)
    fs = [ex.submit(counting.count, i) for i in range(10)]
    eq([f.result(60) for f in fs], list(range(10)), "results")
    eq(len(open(counter).read().split()), 1, "imports: one, in the runner")
    eq(fs[0].job.output(), b"counting imported\n",
       "what the import printed is the first task's output")
    eq(fs[1].job.output(), b"", "later tasks print nothing")
    parents = {ex.submit(tasks.parent).result(60) for _ in range(3)}
    eq(len(parents), 1, "every task a child of one runner")
    check(list(parents)[0][1] != "simq-shepherd", "warm: %r" % parents)
    cold = simq.Executor(server=b.addr, env=env, warm=False)
    ctx.closers.append(lambda: cold.shutdown(wait=False))
    eq(list(cold.map(counting.count, range(5))), list(range(5)), "cold")
    eq(len(open(counter).read().split()), 6, "warm=False: one per task")
    eq(cold.submit(tasks.parent).result(60)[1], "simq-shepherd",
       "warm=False: a command job's parent")


test_warm_imports_once.timeout = 90


def test_warm_task_process(ctx):
    """A warm task's process is a command job's: own session and group,
    its cwd, environment, descriptors, output, exit status, rusage and
    the worker's --mem-limit."""
    b, ex = warm_setup(ctx, ["--mem-limit", "1G"])
    cold = simq.Executor(server=b.addr, warm=False)
    ctx.closers.append(lambda: cold.shutdown(wait=False))
    f = ex.submit(tasks.where)
    w = f.result(60)
    c = cold.submit(tasks.where).result(60)
    check(w["parent"][1] != "simq-shepherd", "warm: %r" % (w["parent"],))
    eq(w["pgrp"], w["pid"], "its own process group")
    eq(w["sid"], w["pid"], "its own session")
    eq(w["cwd"], os.getcwd(), "the submitter's directory")
    eq(w["job"], f.job.id, "SIMQ_JOB_ID")
    check(w["result"].endswith("/%s.1.result" % f.job.id), "SIMQ_RESULT")
    eq(w["fds"], c["fds"], "descriptors, as a command job's")
    eq(w["stdin"], "/dev/null", "stdin")
    f = ex.submit(tasks.chatty, 0.3)
    eq(f.result(60), "chatted", "result")
    eq(f.job.output(), b"to stdout\n", "stdout captured")
    eq(f.job.output(stderr=True), b"to stderr\n", "stderr captured")
    info = f.job.refresh().info
    check(info["utime"] + info["stime"] >= 250000,
          "CPU time reported: %r" % info)
    check(info["maxrss"] > 1000, "peak memory reported: %r" % info)
    f = ex.submit(tasks.hard_exit, 3)
    e = raises(simq.TaskFailed, f.result, 60)
    eq(f.job.exit_code, 3, "exit status")
    check("status 3" in str(e), "says why: %s" % e)
    eq(ex.submit(tasks.allocate, 10).result(60), 10 << 20, "10 MiB")
    raises(MemoryError, ex.submit(tasks.allocate, 2048).result, 60)


test_warm_task_process.timeout = 90


def test_warm_timeout_kills_group(ctx):
    b, ex = warm_setup(ctx, timeout=1)
    runner = ex.submit(tasks.parent).result(60)
    pidfile = os.path.join(ctx.tmp, "pids")
    f = ex.submit(tasks.child_and_sleep, pidfile, 60)
    e = raises(simq.TaskFailed, f.result, 60)
    check("timeout" in str(e), "says why: %s" % e)
    pids = [int(x) for x in open(pidfile).read().split()]
    wait_until(lambda: not any(alive(p) for p in pids), 10,
               "the task and its child to go")
    eq(ex.submit(tasks.parent).result(60), runner,
       "the next task, in the same runner")


test_warm_timeout_kills_group.timeout = 90


def test_warm_cancel_running(ctx):
    b, ex = warm_setup(ctx)
    runner = ex.submit(tasks.parent).result(60)
    pidfile = os.path.join(ctx.tmp, "pids")
    f = ex.submit(tasks.child_and_sleep, pidfile, 60)
    wait_until(lambda: os.path.exists(pidfile) and
               len(open(pidfile).read().split()) == 2, what="the task")
    pids = [int(x) for x in open(pidfile).read().split()]
    eq(f.job.cancel(), 1, "cancel")
    eq(f.job.wait(30), "canceled", "canceled")
    e = raises(simq.TaskFailed, f.result, 30)
    check("canceled" in str(e), "says why: %s" % e)
    wait_until(lambda: not any(alive(p) for p in pids), 10,
               "the task and its child to go")
    eq(ex.submit(tasks.parent).result(60), runner,
       "the next task, in the same runner")


def test_warm_runner_killed(ctx):
    b, ex = warm_setup(ctx)
    r1 = ex.submit(tasks.parent).result(60)
    os.kill(r1[0], signal.SIGKILL)
    wait_until(lambda: not alive(r1[0]), 10, "the runner to be reaped")
    r2 = ex.submit(tasks.parent).result(60)
    check(r2[0] != r1[0] and r2[1] == r1[1], "a new runner: %r %r" % (r1, r2))
    # Killed while its task runs: the task goes on, and is reaped.
    pidfile = os.path.join(ctx.tmp, "pids")
    f = ex.submit(tasks.child_and_sleep, pidfile, 1.5)
    wait_until(lambda: os.path.exists(pidfile) and
               len(open(pidfile).read().split()) == 2, what="the task")
    pids = [int(x) for x in open(pidfile).read().split()]
    os.kill(r2[0], signal.SIGKILL)
    eq(f.result(60), 1.5, "the task's result")
    eq(f.job.refresh().info["attempts"], 1, "one attempt")
    eq(f.job.exit_code, 0, "its exit status")
    wait_until(lambda: not any(alive(p) for p in pids), 10,
               "the task and its child to go")
    r3 = ex.submit(tasks.parent).result(60)
    check(r3[0] not in (r1[0], r2[0]), "another runner: %r" % (r3,))


test_warm_runner_killed.timeout = 90


def test_warm_leak_isolation(ctx):
    """What a task leaks, changes or crashes with stays in its process:
    the next task in the same slot and runner sees none of it."""
    b, ex = warm_setup(ctx)
    base = ex.submit(tasks.inspect).result(60)
    rss = ex.submit(tasks.leak, 200, 50).result(60)
    check(rss > base["rss"] + 150 * 1024, "the leak: %d KiB" % rss)
    after = ex.submit(tasks.inspect).result(60)
    check(after["rss"] < base["rss"] + 20 * 1024,
          "memory: %d KiB, first %d" % (after["rss"], base["rss"]))
    del after["rss"], base["rss"]
    eq(after, base, "state, descriptors, environment, modules, runner")
    e = raises(simq.TaskFailed, ex.submit(tasks.segfault).result, 60)
    check("signal 11" in str(e), "a segfault: %s" % e)
    e = raises(simq.TaskFailed, ex.submit(tasks.hard_exit, 7).result, 60)
    check("status 7" in str(e), "os._exit: %s" % e)
    last = ex.submit(tasks.inspect).result(60)
    del last["rss"]
    eq(last, base, "after the crashes")


test_warm_leak_isolation.timeout = 90


def test_warm_gc_state(ctx):
    """A task's garbage collector is a fresh interpreter's whatever the
    task before it did, and the runner's objects are frozen before each
    fork: a full collection in a task does not copy the runner's pages."""
    b, ex = warm_setup(ctx)
    cold = simq.Executor(server=b.addr, warm=False)
    ctx.closers.append(lambda: cold.shutdown(wait=False))
    fresh = cold.submit(tasks.gc_state, False).result(60)
    eq(ex.submit(tasks.gc_state, True).result(60), fresh, "a fresh one's")
    eq(ex.submit(tasks.gc_state, False).result(60), fresh,
       "after a task that changed it")
    cold_faults = cold.submit(tasks.collect_faults).result(60)
    faults = min(ex.submit(tasks.collect_faults).result(60)
                 for _ in range(3))
    check(faults < 300, "a full collection in a task copied %d pages "
          "(in a fresh interpreter: %d)" % (faults, cold_faults))


test_warm_gc_state.timeout = 90


def test_warm_learns_imports(ctx):
    """A module a task imports by itself, which its call does not name,
    the runner imports after that task (its output to /dev/null): the
    tasks after it do not pay for it."""
    counter = os.path.join(ctx.tmp, "counter")
    b, ex = warm_setup(ctx, env={"SIMQ_TEST_COUNTER": counter})
    first = ex.submit(tasks.lazy_count, 0)
    eq(first.result(60), 0, "first")
    eq(first.job.output(), b"counting imported\n",
       "the first task imported it, and printed")
    runner = ex.submit(tasks.parent).result(60)[0]
    eq(list(ex.map(tasks.lazy_count, range(10))), list(range(10)), "more")
    pids = [int(p) for p in open(counter).read().split()]
    eq(len(pids), 2, "imports: the first task's, the runner's: %r" % pids)
    eq(pids[1], runner, "then in the runner")
    check(pids[0] != runner, "first in the task")


def test_warm_job_files_not_learned(ctx):
    """A module a task imported from its job's own files is not kept by
    the runner: the next job's files may hold another one."""
    b, ex = warm_setup(ctx)
    c = simq.Client(server=b.addr)
    ctx.closers.append(c.close)
    from simq import _task_codec, executor
    word = _task_codec.encode_call(executor.dumps_call(
        True, [(tasks.value_of, ("shipped_mod",), {})]))
    argv = [ex.python, "-m", "simq.task", word]
    env = ex._opts["env"]
    parents = set()
    for v in range(1, 4):
        j = c.submit(argv, env=env, files={
            "shipped_mod.py": b"VALUE = %d\n" % v})
        eq(j.wait(60), "done", "job %d" % v)
        got, ppid = j.result()
        eq(got, v, "its own files' module")
        parents.add(ppid)
    eq(len(parents), 1, "all in one runner")
    # A function of such a module, which the call names.
    with open(os.path.join(ctx.tmp, "shipped_fn.py"), "w") as f:
        f.write("import os\nVALUE = 0\n\ndef value():\n"
                "    return VALUE, os.getppid()\n")
    sys.path.insert(0, ctx.tmp)
    try:
        import shipped_fn
        word = _task_codec.encode_call(executor.dumps_call(
            True, [(shipped_fn.value, (), {})]))
    finally:
        sys.path.remove(ctx.tmp)
    argv = [ex.python, "-m", "simq.task", word]
    for v in range(1, 4):
        j = c.submit(argv, env=env, files={
            "shipped_fn.py": b"import os\nVALUE = %d\n\ndef value():\n"
            b"    return VALUE, os.getppid()\n" % v})
        eq(j.wait(60), "done", "job %d" % v)
        got, ppid = j.result()
        eq(got, v, "its own files' function")
        parents.add(ppid)
    eq(len(parents), 1, "all in one runner")


def test_warm_environment_per_task(ctx):
    """Each task of a runner has exactly its own environment: the
    variables of one attempt of the task before it (an array's index, a
    name) are not left over."""
    b, ex = warm_setup(ctx)
    c = simq.Client(server=b.addr)
    ctx.closers.append(c.close)
    names = ("SIMQ_ARRAY_ID", "SIMQ_ARRAY_INDEX", "SIMQ_JOB_NAME",
             "SIMQ_JOB_ID", "SIMQ_TEST_LEAKED")
    from simq import _task_codec, executor
    word = _task_codec.encode_call(executor.dumps_call(
        True, [(tasks.environ, names, {})]))
    argv = [ex.python, "-m", "simq.task", word]
    env = ex._opts["env"]
    runner = ex.submit(tasks.parent).result(60)
    a = c.submit(argv, env=env, array=2, name="swept")
    eq(a.wait(60), "done", "the array")
    got = a.results()
    eq([g[1:3] for g in got], [["1", "swept"], ["2", "swept"]],
       "an array's tasks: index and name")
    j = c.submit(argv, env=env)
    eq(j.wait(60), "done", "a task without")
    eq(j.result(), [None, None, None, j.id, None], "none of them left")
    eq(ex.submit(tasks.parent).result(60), runner, "all in one runner")


def test_warm_runner_crash_is_the_tasks(ctx):
    """A runner that dies in its imports, before the task starts, leaves
    the task to run as a command: the task fails only because its own
    import kills it, and says so."""
    b, ex = warm_setup(ctx, env={"SIMQ_TEST_CRASH": "5"})
    f = ex.submit(crashing.f, 1)
    e = raises(simq.TaskFailed, f.result, 60)
    check("status 5" in str(e), "says why: %s" % e)
    eq(f.job.refresh().info["attempts"], 1, "not retried as lost")
    other = simq.Executor(server=b.addr)
    ctx.closers.append(lambda: other.shutdown(wait=False))
    check(other.submit(tasks.parent).result(60)[1] != "simq-shepherd",
          "other tasks still warm")
    eq(other.submit(crashing.f, 2).result(60), 2, "without the crash")


test_warm_runner_crash_is_the_tasks.timeout = 90


def test_warm_timeout_during_import(ctx):
    """A task whose import in the runner outlasts its timeout is killed
    there (the runner with it), and the next task gets a new runner."""
    b, ex = warm_setup(ctx, ["--grace", "10s"], timeout=1,
                       env={"SIMQ_TEST_SLOW_IMPORT": "30"})
    r1 = ex.submit(tasks.parent).result(60)
    t = time.monotonic()
    f = ex.submit(slow_import.f, 1)
    e = raises(simq.TaskFailed, f.result, 60)
    check(time.monotonic() - t < 8, "killed at its timeout, not its end")
    check("timeout" in str(e), "says why: %s" % e)
    eq(f.job.refresh().info.get("signal"), signal.SIGTERM,
       "killed by the timeout's SIGTERM")
    wait_until(lambda: not alive(r1[0]), 10, "the runner to go")
    r2 = ex.submit(tasks.parent).result(60)
    check(r2[0] != r1[0], "a new runner")


test_warm_timeout_during_import.timeout = 90


# ---------------------------------------------------------------------------
# Blobs: large arguments and results through the broker's blob store

def blob_files(data):
    """{name: size} of the complete blobs in a broker's data directory."""
    out = {}
    top = os.path.join(data, "blobs")
    for d in os.listdir(top) if os.path.isdir(top) else ():
        if len(d) != 2:
            continue            # tmp/, corrupt/
        for f in os.listdir(os.path.join(top, d)):
            out[f] = os.path.getsize(os.path.join(top, d, f))
    return out


def test_client_files_and_collect(ctx):
    c = ctx.shared.client()
    b1 = c.put_blob(b"hello")
    eq(b1.hash, __import__("hashlib").sha256(b"hello").hexdigest(), "hash")
    eq(c.put_blob(b"hello"), b1, "stored once")
    eq(c.get_blob(b1), b"hello", "GET")
    j = c.submit(["sh", "-c", "tr a-z A-Z <in.txt >out.txt; "
                  "cp in.txt \"$SIMQ_WORKDIR/copy.txt\""],
                 files={"in.txt": b"hello"}, collect=["*.txt"])
    eq(j.wait(60), "done", "the job (%s)" % j.refresh().info)
    got = j.collected()
    eq(sorted(got), ["copy.txt", "in.txt", "out.txt"], "collected")
    eq(j.fetch("out.txt"), b"HELLO", "a collected file")
    eq(got["in.txt"], b1, "the input's blob")


def test_blob_shared_argument(ctx):
    """A 50 MB argument passed to 100 tasks is pickled and stored once:
    the broker's blob directory grows by one copy."""
    import hashlib
    b = ctx.broker()
    b.worker("-j", "2")
    ex = simq.Executor(server=b.addr)
    ctx.closers.append(lambda: ex.shutdown(wait=False, cancel_futures=True))
    big = os.urandom(50 << 20)
    want = hashlib.sha256(big).hexdigest()
    before = blob_files(b.data)
    fs = [ex.submit(tasks.digest, big, i) for i in range(50)]
    rest = ex.map(tasks.digest, [big] * 50, range(50, 100), chunksize=5)
    eq([f.result(120) for f in fs] + list(rest),
       [(want, i) for i in range(100)], "every task saw the argument")
    new = {k: v for k, v in blob_files(b.data).items() if k not in before}
    eq(len(new), 1, "blobs stored: %r" % new)
    size = list(new.values())[0]
    check(50 << 20 <= size < (50 << 20) + 4096, "one copy: %d bytes" % size)
    eq(len(ex._blobs), 1, "pickled once")
    words = fs[0].job.refresh().info.get("file", [])
    eq(len(words), 1, "the job's file= words: %r" % words)
    check(words[0].startswith(list(new)[0] + ":"), "names the blob")


test_blob_shared_argument.timeout = 300


def test_blob_large_result(ctx):
    ex = ctx.executor(large_results=True)
    f = ex.submit(tasks.big, 300000)
    eq(len(f.result(60)), 300000, "a 300 KB result")
    eq(sorted(f.job.collected()), ["simq-result.pickle"], "collected")
    eq(len(simq.Job(f.job.id, client=ctx.shared.client()).result()),
       300000, "Job(id).result()")
    eq(ex.submit(tasks.square, 7).result(60), 7 * 7, "a small one inline")


def test_pip_install(ctx):
    target = os.path.join(ctx.tmp, "site")
    # A copy: pip builds in the tree it is given (build/, *.egg-info).
    src = os.path.join(ctx.tmp, "src")
    shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", "tests"))
    r = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "-q",
                        "--no-index", "--no-build-isolation",
                        "--no-deps", "--target", target, src],
                       capture_output=True, text=True, timeout=300,
                       cwd=ctx.tmp)
    eq(r.returncode, 0, "pip install (%s)" % r.stderr[-2000:])
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": target}
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import simq, sys; print(simq.__file__); "
                        "print(simq.Client(sys.argv[1]).ping())",
                        ctx.shared.addr], capture_output=True, text=True,
                       env=env, cwd=ctx.tmp, timeout=60)
    eq(r.stdout.split("\n")[1:], ["True", ""], "import of the installed copy"
       " (%s)" % r.stderr)
    check(r.stdout.startswith(target), "from the target: " + r.stdout)


test_pip_install.timeout = 300


# ---------------------------------------------------------------------------
# The tests of the other test_*.py files here, run with this file's helpers.

for _name in sorted(os.listdir(HERE)):
    if _name.startswith("test_") and _name.endswith(".py"):
        _path = os.path.join(HERE, _name)
        with open(_path) as _f:
            exec(compile(_f.read(), _path, "exec"), globals())


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(PYDIR, "..", "bin"))
    ap.add_argument("-k", default=None)
    args = ap.parse_args()
    BIN = os.path.abspath(args.bin)
    tests = [(n, f) for n, f in globals().items()
             if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda t: (t[1].__code__.co_filename != __file__,
                              t[1].__code__.co_filename,
                              t[1].__code__.co_firstlineno))
    if args.k:
        tests = [t for t in tests if any(k in t[0]
                                         for k in args.k.split("|"))]
    top = tempfile.mkdtemp(prefix="simq-pytest-")
    shared = Ctx(os.path.join(top, "shared"))
    os.mkdir(shared.tmp)
    Ctx.shared_broker = shared.broker()
    Ctx.shared_broker.worker("-j", "2")
    print("1..%d" % len(tests), flush=True)
    failed = 0
    cwd = os.getcwd()
    for i, (name, f) in enumerate(tests, 1):
        tmp = os.path.join(top, name)
        os.mkdir(tmp)
        os.chdir(tmp)
        ctx = Ctx(tmp)

        def alarm(sig, frame):
            raise AssertionError("the test's time limit ran out here")
        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(getattr(f, "timeout", 60))
        t0 = time.monotonic()
        try:
            f(ctx)
            status = "ok %d - %s" % (i, name)
        except Skip as e:
            status = "ok %d - %s # SKIP %s" % (i, name, e)
        except BaseException:
            failed += 1
            status = "not ok %d - %s" % (i, name)
            for l in traceback.format_exc().splitlines():
                print("# " + l)
                sys.stderr.write(name + ": " + l + "\n")
        finally:
            signal.alarm(0)
            ctx.cleanup()
            os.chdir(cwd)
        print("%s (%.1fs)" % (status, time.monotonic() - t0)
              if "SKIP" not in status else status, flush=True)
    shared.cleanup()
    if not failed:
        shutil.rmtree(top, ignore_errors=True)
    else:
        print("# kept %s" % top)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
