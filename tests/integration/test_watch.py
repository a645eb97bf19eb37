"""
Watching a sweep from the command line, against a real simqd and the real
simq-worker: simq output -f (FOLLOW, PUSH), simq status ID --tasks
(TASKS, and the HTTP API's tasks), simq explain (EXPLAIN), and simq
wait's failures on a terminal.
"""

import json
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time
import urllib.request

import harness
from harness import TestFailure, check, eq, free_port, wait_until
from clientlib import Simq, simq_path, start_workers, wait_workers, \
    worker_path


def need_real_worker(ctx):
    if worker_path(ctx) is None:
        raise harness.Skip("following output needs the real simq-worker")


def setup(ctx, workers=1, slots=4, broker=None, **kw):
    b = broker or ctx.broker
    s = Simq(ctx, b)
    if workers:
        start_workers(ctx, b, workers, slots=slots, **kw)
        wait_workers(s, workers)
    return b, s


def state_of(s, jid):
    r = s("status", "--json", jid)
    return r.json()["jobs"][0]["state"]


def stats(b):
    with b.client() as c:
        return c.stats()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS for %d" % pid)


class Follower:
    """simq output -f ARGS in the background; its stdout read as it comes,
    with the time each chunk arrived."""

    def __init__(self, s, *args, read=True):
        self.p = subprocess.Popen([s.path, "output", "-f"] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=s.env())
        self.chunks = []
        self.err = b""
        self.lock = threading.Lock()
        self.t = None
        if read:
            self.start_reading()

    def start_reading(self):
        def reader():
            while True:
                d = os.read(self.p.stdout.fileno(), 65536)
                if not d:
                    break
                with self.lock:
                    self.chunks.append((time.monotonic(), d))
        self.t = threading.Thread(target=reader, daemon=True)
        self.t.start()

    def data(self):
        with self.lock:
            return b"".join(d for _, d in self.chunks)

    def wait(self, timeout):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise TestFailure("simq output -f did not end with the job")
        if self.t is not None:
            self.t.join(5)
        self.err = self.p.stderr.read()
        return self.p.returncode


# ---------------------------------------------------------------------------
# simq output -f

JOB = ("for i in 1 2 3 4 5 6; do echo out $i; echo err $i >&2; "
       "sleep 0.4; done; exit %d")


def test_follow_running_job_stdout_and_stderr(ctx):
    need_real_worker(ctx)
    b, s = setup(ctx)
    jid = s.submit("--", "sh", "-c", JOB % 3)
    wait_until(lambda: state_of(s, jid) == "running", 10, "job running")
    out1 = Follower(s, jid)
    out2 = Follower(s, jid)         # a second client at the same time
    err = Follower(s, "--stderr", jid)
    # Lines arrive while the job still runs.
    wait_until(lambda: b"out 2" in out1.data(), 10, "a line followed")
    eq(state_of(s, jid), "running", "the job runs when a line is shown")
    check(b"out 6" not in out1.data(), "not all at the end: %r" %
          out1.data())
    rcs = [f.wait(20) for f in (out1, out2, err)]
    eq(state_of(s, jid), "failed", "the job ended")
    want_out = b"".join(b"out %d\n" % i for i in range(1, 7))
    want_err = b"".join(b"err %d\n" % i for i in range(1, 7))
    eq(out1.data(), want_out, "every stdout byte, in order")
    eq(out2.data(), want_out, "the second follower's stdout")
    eq(err.data(), want_err, "every stderr byte, in order")
    eq(rcs, [1, 1, 1], "exit 1: the job failed")
    # More than one chunk came: it was live, not one reply at the end.
    check(len(out1.chunks) >= 3, "chunks as written: %r" % out1.chunks)
    # A job that ends done: exit 0.
    jid = s.submit("--", "sh", "-c", JOB % 0)
    f = Follower(s, jid)
    eq(f.wait(20), 0, "exit 0 for a job done")
    eq(f.data(), want_out, "stdout of the job done")


def test_follow_finished_job_prints_the_tail(ctx):
    need_real_worker(ctx)
    b, s = setup(ctx)
    jid = s.submit("--", "sh", "-c", "echo hello; echo oops >&2; exit 2")
    s("wait", jid)
    r = s("output", "-f", jid)
    eq(r.rc, 1, "the job failed: %r" % r)
    eq(r.out, "hello\n", "the tail, as simq output prints it")
    eq(s("output", "-f", "--stderr", jid).out, "oops\n", "stderr's tail")
    eq(s("output", jid).out, "hello\n", "simq output without -f: same")


def test_follow_job_that_never_starts(ctx):
    b, s = setup(ctx, workers=0)
    jid = s.submit("-q", "nobody", "--", "echo", "x")
    t0 = time.monotonic()
    r = s("output", "-f", "-t", "1s", jid)
    dt = time.monotonic() - t0
    r.fails(2, "did not start within 1s", "simq explain %s" % jid)
    eq(r.out, "", "nothing on stdout")
    check(0.9 <= dt < 6 * ctx.slow, "-t bounds the wait: %.1fs" % dt)
    # Bad input: unknown ids, an array, -t without -f, -f with --json.
    s("output", "-f", "99999").fails(2, "no job 99999")
    aid = s.submit("--array", "1-3", "-q", "nobody", "--", "true")
    s("output", "-f", aid).fails(2, "is an array")
    s("output", "-t", "1s", jid).fails(2, "-t is for -f")
    s("output", "-f", "--json", jid).fails(2, "--json")
    s("output", "-f", "-t", "soon", jid).fails(2, "bad --timeout")


def follow_through_kill9(ctx, script, seen, end_while_down):
    """simq output -f of a job printing lines over time, the broker
    killed -9 once the follower has shown seen, and started again while
    the job runs on or (end_while_down) after it ended.  Returns the
    follower's exit status, stdout and stderr."""
    need_real_worker(ctx)
    b, s = setup(ctx)
    jid = s.submit("--", "sh", "-c", script)
    f = Follower(s, jid)
    wait_until(lambda: seen in f.data(), 20 * ctx.slow,
               "the first lines followed")
    b.kill9()
    if end_while_down:
        time.sleep(3.5 * ctx.slow)
    else:
        time.sleep(0.5)
    check(f.p.poll() is None, "output -f keeps trying while the broker is "
          "down: %r" % f.p.poll())
    b.start()
    rc = f.wait(60 * ctx.slow)
    return rc, f.data(), f.err.decode("utf-8", "replace")


def test_follow_survives_a_broker_kill9(ctx):
    """simq output -f reconnects as simq wait does and goes on from the
    byte it had shown: the whole output exactly once, and the job's exit
    status."""
    script = "for i in $(seq 1 20); do echo line $i; sleep 0.3; done; exit 3"
    rc, out, err = follow_through_kill9(ctx, script, b"line 3\n", False)
    want = b"".join(b"line %d\n" % i for i in range(1, 21))
    eq(out, want, "every byte once, in order, across the restart")
    eq(rc, 1, "exit 1: the job failed (exit 3): %r" % err)
    check("trying again" in err and "reconnected" in err,
          "says it lost and found the broker: %r" % err)
    check("missing or repeated" not in err and "skipped" not in err,
          "no gap and no repeat said: %r" % err)


test_follow_survives_a_broker_kill9.timeout = 120


def test_follow_survives_a_broker_kill9_the_job_ending_meanwhile(ctx):
    """The job ends while the broker is down: the restarted broker has
    only its kept tail, in which simq output -f finds where it was (a
    short output: the tail is all of it; a long one, past the 64 KiB kept:
    by the last bytes shown)."""
    script = ("for i in 1 2 3; do echo line $i; sleep 0.2; done; "
              "sleep 0.5; for i in 4 5 6; do echo line $i; done; exit 0")
    rc, out, err = follow_through_kill9(ctx, script, b"line 3\n", True)
    want = b"".join(b"line %d\n" % i for i in range(1, 7))
    eq(out, want, "every byte once: %r" % err)
    eq(rc, 0, "exit 0: the job ended done: %r" % err)
    check("missing or repeated" not in err, "no repeat said: %r" % err)
    # Past the tail: 3000 lines (~29 KiB) shown, then 4000 more after
    # the broker went, so the tail begins after what was shown.
    script = ("i=1; while [ $i -le 3000 ]; do echo line $i; i=$((i+1)); "
              "done; sleep 2; i=3001; while [ $i -le 7000 ]; do "
              "echo line $i; i=$((i+1)); done; exit 0")
    rc, out, err = follow_through_kill9(ctx, script, b"line 3000\n", True)
    want = b"".join(b"line %d\n" % i for i in range(1, 7001))
    check(len(want) > 65536, "longer than the kept tail")
    check(out == want, "every byte once, in order (%d bytes, want %d): %r"
          % (len(out), len(want), err))
    eq(rc, 0, "exit 0: the job ended done: %r" % err)


test_follow_survives_a_broker_kill9_the_job_ending_meanwhile.timeout = 180


def test_follow_costs_nothing_when_nobody_follows(ctx):
    need_real_worker(ctx)
    b, s = setup(ctx)
    # A job that writes a megabyte nobody follows: no output byte reaches
    # the broker until the end (the tail in its report).
    jid = s.submit("--", "sh", "-c", "head -c 1048576 /dev/zero; sleep 1")
    wait_until(lambda: state_of(s, jid) == "running", 10, "job running")
    time.sleep(0.5)
    st = stats(b)
    eq(st["follow_bytes"], "0", "output bytes sent while nobody follows")
    eq(st["followed"], "0", "streams followed")
    s("wait", jid)
    eq(stats(b)["follow_bytes"], "0", "nor at the end")
    # Followed, the same job's bytes do come: its last 64 KiB first.
    # The job writes its megabyte, says so, and waits to be told to end.
    d = ctx.mkdtemp("marks")
    ready, go = os.path.join(d, "ready"), os.path.join(d, "go")
    jid = s.submit("--", "sh", "-c", "head -c 1048576 /dev/zero; touch %s; "
                   "while [ ! -e %s ]; do sleep 0.05; done; echo end" %
                   (ready, go))
    wait_until(lambda: os.path.exists(ready), 10, "the megabyte written")
    f = Follower(s, jid)
    wait_until(lambda: int(stats(b)["follow_bytes"]) >= 65536, 10,
               "the tail pushed")
    open(go, "w").close()
    eq(f.wait(20), 0, "followed to the end")
    check(f.data().endswith(b"end\n"), "the last line: %r" % f.data()[-20:])
    sent = int(stats(b)["follow_bytes"])
    # (A chunk still in flight at the job's end is sent again with the
    # end; the broker drops what it has.)
    check(65536 + 4 <= sent <= 65536 + 4 + 4, "the tail, then the rest: "
          "%d bytes pushed" % sent)
    eq(len(f.data()), 65536 + 4, "bytes shown")
    # Nobody follows any more: the worker is told, and the broker says so.
    jid = s.submit("--", "sh", "-c", "for i in $(seq 60); do echo $i; "
                   "sleep 0.1; done")
    wait_until(lambda: state_of(s, jid) == "running", 10, "job running")
    f = Follower(s, jid)
    wait_until(lambda: b"\n" in f.data(), 10, "a line followed")
    f.p.kill()
    f.wait(5)
    wait_until(lambda: int(stats(b)["followed"]) == 0, 10 * ctx.slow,
               "the stream unfollowed")
    before = int(stats(b)["follow_bytes"])
    time.sleep(1)
    eq(int(stats(b)["follow_bytes"]), before, "no bytes once unfollowed")


def test_slow_follower_does_not_grow_the_broker(ctx):
    need_real_worker(ctx)
    b, s = setup(ctx)
    # 100 MB written over a few seconds.
    prog = ("import sys, time\n"
            "b = b'x' * 1048575 + b'\\n'\n"
            "for i in range(100):\n"
            "    sys.stdout.buffer.write(b)\n"
            "    sys.stdout.flush()\n"
            "    time.sleep(0.03)\n"
            "print('end', flush=True)\n")
    jid = s.submit("--", "python3", "-c", prog)
    wait_until(lambda: state_of(s, jid) == "running", 10, "job running")
    base = rss_kib(b.pid)
    # One follower that never reads its reply, on a raw connection...
    raw = socket.create_connection(("127.0.0.1", b.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sendall(("FOLLOW %s stdout wait=60000\r\n" % jid).encode())
    # ...and simq output -f whose stdout nobody reads until the end.
    slow = Follower(s, jid, read=False)
    peak = base
    while state_of(s, jid) == "running":
        peak = max(peak, rss_kib(b.pid))
        time.sleep(0.1)
    grew = peak - base
    print("# broker RSS %d KiB before, peak %d KiB while 100 MB were "
          "followed slowly" % (base, peak))
    # (Under AddressSanitizer freed memory is held in its quarantine, so
    # RSS says nothing there.)
    check(ctx.sanitized or grew < 16 * 1024, "broker RSS grew %d KiB "
          "following 100 MB" % grew)
    # Stuck for longer than the broker keeps following a stream nobody
    # asks for: it comes back to the ended job's kept tail.
    time.sleep(4)
    slow.start_reading()
    eq(slow.wait(30), 0, "the slow follower ends with the job")
    data = slow.data()
    check(data.endswith(b"end\n"), "it sees the end: %r" % data[-20:])
    check(len(data) < 100 * 1048576, "it skipped what it could not keep "
          "up with (%d bytes)" % len(data))
    check(b"skipped" in slow.err or b"was not kept" in slow.err,
          "and said so: %r" % slow.err)
    raw.close()


# ---------------------------------------------------------------------------
# simq status ID --tasks

FAILING = ("test $(( SIMQ_ARRAY_INDEX %% %d )) -ne 0 || "
           "{ echo no >&2; exit 4; }")


def http_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=10) as r:
        return json.loads(r.read())


def test_status_tasks(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    b, s = setup(ctx, broker=b)
    aid = s.submit("--array", "1-12", "--", "sh", "-c", FAILING % 5)
    s("wait", aid)
    r = s("status", aid, "--tasks")
    eq(r.rc, 1, "exit 1: some failed: %r" % r)
    lines = r.lines()
    check(lines[0].split()[:4] == ["TASK", "STATE", "ATTEMPTS", "EXIT"],
          "a header: %r" % lines[0])
    eq(len(lines), 13, "a line per task")
    failed = [ln for ln in lines if " failed " in ln]
    eq([ln.split()[0] for ln in failed], ["%s_5" % aid, "%s_10" % aid],
       "the failed tasks")
    check(all(" 4 " in ln and "exit status 4" in ln for ln in failed),
          "exit status and reason: %r" % failed)
    r = s("status", aid, "--tasks", "--state", "failed")
    eq([ln.split()[0] for ln in r.lines()[1:]],
       ["%s_5" % aid, "%s_10" % aid], "--state failed")
    r = s("status", aid, "--tasks", "--state", "done").ok()
    eq(len(r.lines()), 11, "--state done")
    r = s("status", aid, "--tasks", "--state", "running").ok()
    check("No task of array %s is running" % aid in r.out, r.out)
    # --json: the same task objects as the HTTP API's.
    js = s("status", aid, "--tasks", "--state", "failed", "--json").json()
    eq(js["array"], aid, "array")
    eq([t["id"] for t in js["tasks"]], ["%s_5" % aid, "%s_10" % aid],
       "json tasks")
    api = http_json(hp, "/api/jobs/%s/tasks?state=failed" % aid)
    eq([t["id"] for t in api["tasks"]], [t["id"] for t in js["tasks"]],
       "the HTTP API's failed tasks")
    for cli, web in zip(js["tasks"], api["tasks"]):
        for k in web:
            if k in cli and k != "runtime":
                eq(cli[k], web[k], "task %s key %s, CLI and API" %
                   (cli["id"], k))
        eq(cli["exit_code"], 4, "exit code")
        eq(cli["reason"], "exit status 4", "reason")
    check(len(http_json(hp, "/api/jobs/%s/tasks?state=done" %
                        aid)["tasks"]) == 10, "the API's done tasks")
    # Bad input.
    s("status", "99999", "--tasks").fails(2, "no job 99999")
    jid = s.submit("--", "true")
    s("status", jid, "--tasks").fails(2, "not an array")
    s("status", "%s_3" % aid, "--tasks").fails(2, "not an array")
    s("status", aid, "--tasks", "--state", "sad").fails(
        2, "bad --state 'sad'", "waiting, queued")
    s("status", aid, "--state", "failed").fails(2, "--state is for --tasks")
    s("status", aid, jid, "--tasks").fails(2, "one array")
    with b.client() as c:
        c.request("TASKS %s state=sad" % aid).expect_err("bad-request")
        c.request("TASKS %s from=x1" % aid).expect_err("bad-request")
        c.request("TASKS 99999").expect_err("not-found")


def test_status_tasks_pages_a_big_array(ctx):
    b, s = setup(ctx, workers=0)
    aid = s.submit("--array", "1-2500", "-q", "nobody", "--", "true")
    s("cancel", "%s_7" % aid).ok()      # a record past the cursor
    r = s("status", aid, "--tasks")
    eq(r.rc, 1, "exit 1: one was canceled")
    ids = [ln.split()[0] for ln in r.lines() if ln and
           not ln.startswith("TASK")]
    eq(len(ids), 2500, "every task, over several pages")
    eq(len(set(ids)), 2500, "each once")
    r = s("status", aid, "--tasks", "--state", "queued").ok()
    eq(len([ln for ln in r.lines() if ln.startswith(aid + "_")]), 2499,
       "queued tasks")
    js = s("status", aid, "--tasks", "--state", "canceled", "--json").json()
    eq([t["id"] for t in js["tasks"]], ["%s_7" % aid], "the canceled one")
    with b.client() as c:
        r = c.request("TASKS %s limit=1000" % aid)
        eq(len(r.items), 1001, "a page and its cursor")
        eq(r.items[-1].kind, "more", "the cursor item")
        nxt = c.request("TASKS %s limit=1000 from=%s" %
                        (aid, r.items[-1]["from"]))
        eq(nxt.items[0]["id"], "%s_1001" % aid, "the next page's first")


# ---------------------------------------------------------------------------
# simq explain

def explain(s, jid):
    r = s("explain", "--json", jid)
    eq(r.rc, 0, "explain %s: %r" % (jid, r))
    return r.json()


def codes(s, jid):
    return [w["code"] for w in explain(s, jid)["reasons"]]


def test_explain_reasons(ctx):
    need_real_worker(ctx)
    b, s = setup(ctx, workers=1, slots=1, queues="default,other")
    long = s.submit("--", "sleep", "30")
    wait_until(lambda: state_of(s, long) == "running", 10, "running")
    js = explain(s, long)
    eq(js["state"], "running", "state")
    w = js["reasons"][0]
    eq((w["code"], w["worker"]), ("running", "w1"), "held by a worker")
    check("since" in w and "running on worker w1" in w["text"], w)
    # All the worker's slots are busy.
    busy = s.submit("--", "true")
    eq(codes(s, busy), ["busy"], "all workers busy")
    # A dependency, and its state.
    dep = s.submit("--after", long, "--", "true")
    js = explain(s, dep)
    eq(js["state"], "waiting", "waiting")
    d = [x for x in js["reasons"] if x["code"] == "dependency"]
    eq((d[0]["dep"], d[0]["dep_state"], d[0]["kind"]), (long, "running",
                                                        "ok"), "dep")
    check("waiting on %s" % long in d[0]["text"], d)
    # A delay, until when.
    dl = s.submit("--delay", "1h", "--", "true")
    w = explain(s, dl)["reasons"][0]
    eq(w["code"], "delayed", "delayed")
    check(w["until"] > time.time() * 1000 + 3500 * 1000, w)
    # A paused queue.
    p = s.submit("-q", "other", "--", "true")
    s("pause", "other").ok()
    check("paused" in codes(s, p), "paused: %r" % codes(s, p))
    r = s("explain", p).ok()
    check("queue other is paused" in r.out, r.out)
    s("resume", "other").ok()
    # No worker serves the queue.
    nq = s.submit("-q", "nobody", "--", "true")
    eq(codes(s, nq), ["no-worker"], "no worker")
    check("no connected worker serves queue nobody" in
          s("explain", nq).out, "text")
    # Done and failed, and why.
    s("cancel", long).ok()
    f = s.submit("--", "sh", "-c", "exit 9")
    s("wait", f)
    w = explain(s, f)["reasons"][0]
    eq((w["code"], w["exit"]), ("failed", 9), "failed and its exit")
    check("exit status 9" in w["text"], w)
    eq(explain(s, long)["reasons"][0]["code"], "canceled", "canceled")
    # Backing off after a failure.
    r2 = s.submit("-r", "3", "--", "sh", "-c", "exit 1")
    wait_until(lambda: "backoff" in codes(s, r2), 10, "backing off")
    w = [x for x in explain(s, r2)["reasons"] if x["code"] == "backoff"][0]
    check(w["until"] >= time.time() * 1000 - 1000, w)
    check("backing off after" in w["text"], w)
    # Bad input.
    s("explain", "99999").fails(2, "no job 99999")
    s("explain", "x").fails(2, "bad job id")
    s("explain").fails(2, "one job id")


def test_explain_array_task_and_cap(ctx):
    b, s = setup(ctx, workers=1, slots=4)
    # At most one task of the array runs at once, with slots to spare.
    aid = s.submit("--array", "1-3%1", "--", "sleep", "30")
    wait_until(lambda: state_of(s, "%s_1" % aid) == "running", 10,
               "the first task running")
    js = explain(s, "%s_2" % aid)
    eq(js["state"], "queued", "the next task is queued")
    eq([w["code"] for w in js["reasons"]], ["array-limit"], "held by its cap")
    eq((js["reasons"][0]["max"], js["reasons"][0]["running"]), (1, 1),
       "the cap and what runs")
    s("cancel", aid).ok()
    first = s.submit("-q", "nobody", "--", "true")
    aid = s.submit("--array", "1-4%2", "--after", first, "--", "true")
    js = explain(s, "%s_3" % aid)
    eq(js["state"], "waiting", "an untaken task waits with its array")
    check("dependency" in [w["code"] for w in js["reasons"]], js)
    js = explain(s, aid)
    eq(js["reasons"][0]["code"], "array", "the array's counts")
    check("dependency" in [w["code"] for w in js["reasons"]], js)


# ---------------------------------------------------------------------------
# simq wait on a terminal

def run_on_pty(argv, env, timeout):
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                         env=env)
    os.close(slave)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rl, _, _ = select.select([master], [], [], 0.2)
        if rl:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    p.wait(10)
    return p.returncode, buf.decode("utf-8", "replace")


def test_wait_shows_failures_on_a_terminal(ctx):
    b, s = setup(ctx, workers=1, slots=2)
    aid = s.submit("--array", "1-14", "--", "sh", "-c",
                   "sleep 0.2; " + FAILING % 7)
    rc, text = run_on_pty([simq_path(ctx), "wait", aid],
                          s.env({"NO_COLOR": "1"}), 30 * ctx.slow)
    eq(rc, 1, "some failed")
    for t in ("%s_7" % aid, "%s_14" % aid):
        check(re.search(r"simq: %s failed: exit status 4" % t, text),
              "%s shown as it failed: %r" % (t, text[-800:]))
    # The live line comes before the bar's end (the last "took").
    check(text.find("%s_7 failed" % aid) < text.rfind("took"),
          "shown while waiting: %r" % text[-800:])
    check("the first failed tasks of array %s:" % aid in text, text[-800:])
    check(re.search(r"simq:   %s_7: exit status 4" % aid, text), text)
    # Piped: the summary as before, and nothing more.
    r = s("wait", aid)
    eq(r.rc, 1, "piped: exit 1")
    eq(r.out, "", "nothing on stdout")
    check("failed: exit status 4" not in r.err and
          "first failed tasks" not in r.err, "no listing piped: %r" % r.err)
    check(re.search(r"simq: 12 of 14 done, 2 failed in \d+s\n", r.err), r)
    # --failures asks for it off a terminal.
    r = s("wait", "--failures", aid)
    check("the first failed tasks of array %s:" % aid in r.err and
          "%s_14: exit status 4" % aid in r.err, r.err)
