"""
Limits: no client can stop, starve or confuse the broker.  Descriptors
(HTTP and protocol connections share one budget), memory (input held in
all, stalled requests, live jobs, bodies announced far past every limit),
one loop pass (a BATCH is bounded, pipelined work is spread over passes),
worker names held by a live worker, wrong tokens, and replies that stay
one line whatever they quote.
"""

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

from harness import (Broker, Client, check, eq, free_port, proc_cpu_ticks,
                     wait_until)
from workerlib import WorkerProc


def http_get(port, path, timeout=10):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def input_bytes(metrics):
    """simq_input_bytes of a /metrics text (it counts the head of the
    request that asked for it)."""
    for l in metrics.decode().splitlines():
        if l.startswith("simq_input_bytes "):
            return int(l.split()[1])
    raise AssertionError("no simq_input_bytes in %r" % metrics[:200])


def idle_conns(port, n):
    """n TCP connections to port that send nothing (connect only: the
    kernel completes them in the backlog whether or not simqd accepts)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def test_http_connections_cannot_exhaust_descriptors(ctx):
    hp = free_port()
    b = Broker(ctx, ["--http", str(hp), "--segment-size", "4096"],
               nofile=200).start()
    socks = idle_conns(hp, 320)
    try:
        time.sleep(1)
        check(b.running(), "simqd exited with 320 idle HTTP connections")
        # The accept loop does not spin on EMFILE.
        t0 = proc_cpu_ticks(b.pid)
        time.sleep(1)
        used = proc_cpu_ticks(b.pid) - t0
        check(used < 30 * ctx.slow, "simqd used %d ticks in 1 s with idle "
              "HTTP connections: it spins" % used)
        # The protocol listener still accepts, and the journal can still
        # open segment after segment (4 KiB each).
        c = b.client()
        c.request("PING").expect_ok()
        first = None
        for i in range(300):
            jid = c.submit(["x" * 40, str(i)])
            first = first or jid
        check(len(b.segments()) > 3, "segments: %r" % b.segments())
        eq(c.status1(jid)["state"], "queued", "the last job")
        check("connection limit reached" in b.log(), "the limit is logged")
    finally:
        for s in socks:
            s.close()
    # Once they are gone, the view answers again.
    wait_until(lambda: http_get(hp, "/api/status")[0] == 200, 20 * ctx.slow,
               "the HTTP view to answer again")
    check(b.running(), "simqd runs")
    b.restart()
    eq(b.client().status1(jid)["state"], "queued", "acknowledged job kept")


test_http_connections_cannot_exhaust_descriptors.timeout = 120


def test_idle_http_connection_times_out(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")   # never ends
    s.settimeout(20 * ctx.slow)
    t0 = time.monotonic()
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    took = time.monotonic() - t0
    check(got.startswith(b"HTTP/1.1 408"), "reply: %r" % got[:80])
    check(8 <= took <= 15 * ctx.slow, "closed after %.1f s" % took)
    # A proper request still works, and HEAD sends no body.
    code, body = http_get(hp, "/api/status")
    eq(code, 200, "GET")
    eq(json.loads(body)["workers"], [], "workers")
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"HEAD /metrics HTTP/1.0\r\n\r\n")
    s.settimeout(10)
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\n"),
          "HEAD: %r" % got[-80:])


test_idle_http_connection_times_out.timeout = 90


def test_http_pending_task_is_found(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    a = c.submit(["x", "{}"], array="1-4", q="sims", pri="3")
    eq(c.status1("%d_3" % a)["state"], "queued", "STATUS of the task")
    code, body = http_get(hp, "/api/jobs/%d_3" % a)
    eq(code, 200, "/api/jobs/%d_3" % a)
    j = json.loads(body)
    eq((j["id"], j["kind"], j["state"], j["queue"], j["priority"],
        j["attempts"]), ("%d_3" % a, "task", "queued", "sims", 3, 0),
       "the task")
    eq(http_get(hp, "/api/jobs/%d_5" % a)[0], 404, "not a task of it")
    c.request("CANCEL %d" % a).expect_ok()
    code, body = http_get(hp, "/api/jobs/%d_3" % a)
    eq((code, json.loads(body)["state"]), (200, "canceled"), "canceled")
    eq(c.status1("%d_3" % a)["state"], "canceled", "STATUS agrees")


def test_body_far_past_every_limit_closes_at_once(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    w = b.worker("w1")
    job = w.take1()
    t0 = time.monotonic()
    w.send("FINISH %s %s exit=0 99999999999\r\n" % (job["id"],
                                                   job["attempt"]))
    w.read_reply().expect_err("body-too-large")
    check(w.at_eof(5), "the connection must be closed")
    check(time.monotonic() - t0 < 2 * ctx.slow, "answered at once")
    # A body just past its command's limit is still swallowed in step.
    d = b.client()
    n = (2 << 20) + 1
    d.send(b"BATCH %d\r\n" % n + b"x" * n + b"\r\nPING\r\n")
    d.read_reply().expect_err("body-too-large")
    d.read_reply().expect_ok()
    eq(c.status1(jid)["state"], "running", "the job is untouched")


def test_half_sent_request_times_out(ctx):
    b = ctx.start_broker(["--stall-timeout", "1s"])
    c = b.client()
    c.send(b"BATCH 1000\r\n" + b"x\n" * 10)
    t0 = time.monotonic()
    c.read_reply().expect_err("limit")
    check(c.at_eof(5), "closed after the error")
    took = time.monotonic() - t0
    check(0.8 <= took <= 5 * ctx.slow, "closed after %.1f s" % took)
    # A line that never ends, too.
    d = b.client()
    d.send(b"SUBMIT -- sleep")
    d.read_reply().expect_err("limit")
    # An idle connection between requests is left alone.
    e = b.client()
    time.sleep(2)
    e.request("PING").expect_ok()
    check("a request left half-sent" in b.log(), "logged")
    rc, _ = (0, None)
    eq(e.request("LIST").expect_items(), [], "nothing was submitted")


def test_input_held_in_all_is_bounded(ctx):
    hp = free_port()
    b = ctx.start_broker(["--input-max", "4M", "--stall-timeout", "60s",
                          "--http", str(hp)])
    body = 2 << 20
    part = 3 << 19      # 1.5 MiB of the 2 MiB body
    line = b"x" * 255 + b"\n"
    stalled = []
    for i in range(2):
        s = b.client()
        s.send(b"BATCH %d\r\n" % body + line * (part // 256))
        stalled.append(s)
    time.sleep(0.5)
    # The third holds more than a line when the total passes the limit:
    # refused, closed.
    third = b.client()
    err = []

    def send():
        try:
            third.send(b"BATCH %d\r\n" % body + line * (part // 256))
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        third.read_reply().expect_err("limit")
    except (ConnectionResetError, BrokenPipeError):
        pass    # the close may overtake the reply: the log says it
    t.join(10)
    wait_until(lambda: "refused a request of more than" in b.log(),
               5 * ctx.slow, "the refusal in the log")
    # Everyone else goes on: line-sized requests always are read.
    c = b.client()
    c.request("PING").expect_ok()
    jid = c.submit(["x"])
    eq(c.status1(jid)["state"], "queued", "a small request runs")
    # The stalled ones finish their bodies and are served.
    for s in stalled:
        s.send(line * ((body - part) // 256) + b"\r\n")
        eq(int(s.read_reply().expect_ok().words[1]), body // 256,
           "jobs of a completed batch")
    # Nothing is held any more, and the count says so.
    n = input_bytes(http_get(hp, "/metrics")[1])
    check(n < 1000, "input bytes after everything completed: %d" % n)


def test_live_jobs_are_bounded(ctx):
    b = ctx.start_broker(["--max-jobs", "5", "--retention", "1s"])
    c = b.client()
    ids = [c.submit(["x"]) for _ in range(3)]
    c.request("BATCH 6", b"a\nb\nc\n").expect_err("limit")
    r = c.request("BATCH 4", b"a\nb\n").expect_ok()
    c.request("SUBMIT -- y").expect_err("limit")
    c.request("SUBMIT array=1-100 -- y").expect_err("limit")
    eq(len(c.request("LIST").expect_items()), 5, "nothing half-made")
    # Finished jobs count until they expire; then there is room.
    c.request("CANCEL %s %d %d" % (" ".join(map(str, ids)),
                                   int(r.words[0]), int(r.words[0]) + 1)) \
        .expect_ok()
    wait_until(lambda: c.request("SUBMIT -- z").ok, 10 * ctx.slow,
               "room after the finished jobs expired")


def test_big_batches_do_not_hold_the_loop(ctx):
    import subprocess
    b = ctx.start_broker(["--fsync", "none"])
    simq = os.path.join(os.path.dirname(ctx.simqd), "simq")
    f = ctx.newfile("batch")
    n = 500000 if ctx.sanitized else 1500000
    with open(f, "w") as fh:
        for i in range(n):
            fh.write("job %d\n" % i)
    lat = []
    done = threading.Event()

    def ping():
        p = b.client()
        while not done.is_set():
            t0 = time.monotonic()
            p.request("PING").expect_ok()
            lat.append(time.monotonic() - t0)
            time.sleep(0.002)
    t = threading.Thread(target=ping, daemon=True)
    t.start()
    time.sleep(0.1)
    p = subprocess.run([simq, "-s", "127.0.0.1:%d" % b.port, "submit",
                        "--no-check", "--batch", f], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=100)
    done.set()
    t.join(10)
    eq(p.returncode, 0, "simq submit --batch: %r" % p.stderr)
    eq(len(p.stdout.split()), n, "ids")
    lat.sort()
    check(len(lat) > 10, "pings: %d" % len(lat))
    worst = lat[-1]
    check(worst < 0.2 * ctx.slow, "a PING waited %.0f ms while %d jobs "
          "were submitted (median %.1f ms)" % (
              worst * 1000, n, lat[len(lat) // 2] * 1000))


test_big_batches_do_not_hold_the_loop.timeout = 120


def test_cli_splits_a_big_batch(ctx):
    import subprocess
    b = ctx.broker
    simq = os.path.join(os.path.dirname(ctx.simqd), "simq")
    f = ctx.newfile("batch")
    with open(f, "w") as fh:
        for i in range(25001):
            fh.write("echo %d\n" % i)
    p = subprocess.run([simq, "-s", "127.0.0.1:%d" % b.port, "submit",
                        "--batch", f], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "simq submit --batch: %r" % p.stderr)
    ids = p.stdout.decode().split()
    eq(len(ids), 25001, "ids")
    c = b.client()
    eq(c.status1(ids[-1]).argv, ["echo", "25000"], "the last command")
    eq(c.status1(ids[12345]).argv, ["echo", "12345"], "one in the middle")


def test_worker_name_held_by_a_live_worker(ctx):
    b = ctx.start_broker()
    c = b.client()
    jid = c.submit(["x"])
    w1 = b.worker("w", host="n1", pid=100)
    job = w1.take1()
    # Another process with the name is refused, and says whose it is.
    w2 = b.client()
    r = w2.request("WORKER w host=n2 pid=200").expect_err("bad-state")
    check("name w is in use by pid 100 on host n1" in r.line, r.line)
    check("refused WORKER w" in b.log(), "logged")
    # The holder is undisturbed.
    eq(w1.heartbeat(job), [], "w1 keeps its job")
    w1.request("PING").expect_ok()
    # The same process from a new connection takes it over (its old one
    # died and this end may not know yet).
    w3 = b.worker("w", host="n1", pid=100)
    eq(w3.heartbeat(job), [], "the job is still w's")
    w3.finish_job(job).expect_ok("done")
    # A connection that is gone frees the name.
    w3.close()
    wait_until(lambda: "worker w disconnected" in b.log(), 5, "the close")
    b.worker("w", host="n2", pid=200)
    # A holder silent for longer than its lease has lost it.
    w5 = b.worker("v", host="n1", pid=1, lease=1000)
    w5.request("PING").expect_ok()
    b.client().request("WORKER v host=n2 pid=2").expect_err("bad-state")
    time.sleep(1.3)
    b.worker("v", host="n2", pid=2)
    eq(c.status1(jid)["state"], "done", "job")


def test_two_simq_workers_with_one_name(ctx):
    b = ctx.start_broker()
    c = b.client()
    w1 = WorkerProc(ctx, b, name="twin")
    w1.wait_registered(c)
    w2 = WorkerProc(ctx, b, name="twin")
    rc = w2.wait_exit(10 * ctx.slow)
    eq(rc, 2, "the second worker's exit status")
    want = "name twin is in use by pid %d on host %s" % (
        w1.pid, socket.gethostname())
    check(want in w2.log(), "the second worker says %r:\n%s" %
          (want, w2.log()))
    # The first one never lost its registration.
    time.sleep(0.5)
    check(w1.running(), "the first worker runs")
    check("reconnected" not in b.log() and "detaching" not in b.log(),
          "no takeover:\n%s" % b.log())
    jid = c.submit(["true"])
    wait_until(lambda: c.status1(jid)["state"] == "done", 10 * ctx.slow,
               "the job to run on the first worker")


def test_wrong_tokens_slow_down(ctx):
    tok = ctx.newfile("token")
    open(tok, "w").write("s3cret\n")
    hp = free_port()
    b = ctx.start_broker(["--token-file", tok, "--http", str(hp)])
    took = []
    for i in range(6):
        d = b.client()
        t0 = time.monotonic()
        d.request("HELLO 1 guess%d" % i).expect_err("auth")
        took.append(time.monotonic() - t0)
        check(d.at_eof(15), "closed after ERR auth")
        d.close()
    check(took[0] < 0.09, "the first failure is answered at once: %r" % took)
    check(took[5] >= 1.5, "failures must slow down: %r" % took)
    # ... without holding the loop: others are served meanwhile, and the
    # right token works.
    held = b.client()
    held.send("HELLO 1 again\r\n")
    c = b.client()
    t0 = time.monotonic()
    c.request("PING").expect_ok()
    c.request("HELLO 1 s3cret").expect_ok("simq", "1")
    check(time.monotonic() - t0 < 0.5 * ctx.slow, "served meanwhile")
    held.read_reply().expect_err("auth")
    lines = [l for l in b.log().splitlines() if "wrong or missing" in l]
    check(1 <= len(lines) <= 2, "the log line is rate-limited: %r" % lines)
    # HTTP guesses from the address are slowed down too.
    t0 = time.monotonic()
    eq(http_get(hp, "/api/status", timeout=30)[0], 401, "no token")
    check(time.monotonic() - t0 >= 1.5, "an HTTP guess is delayed too")
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % hp)
    req.add_header("Authorization", "Bearer s3cret")
    with urllib.request.urlopen(req, timeout=10) as r:
        n = input_bytes(r.read())
        check(n < 1000, "input bytes held: %d" % n)


test_wrong_tokens_slow_down.timeout = 90


def test_error_replies_are_one_line(ctx):
    b = ctx.broker
    c = b.client()
    c.submit(["x"])
    w = b.worker("w1")
    job = w.take1()
    # The value echoed holds CR LF once decoded: the reply must not.
    w.send("FINISH %s %s exit=0 outpath=%%0D%%0AOK%%20done%%00 0\r\n\r\n"
           "PING\r\n" % (job["id"], job["attempt"]))
    r = w.read_reply().expect_err("bad-request")
    check("outpath=%0D%0AOK%20done%00" in r.line, r.line)
    w.read_reply().expect_ok()          # PING's, not a split-off half
    for line in ("WORKER w2 host=a%0D%0Ab%00", "SUBMIT q=%0D%0A -- x",
                 "STATUS %0D%0A", "HELLO 1%0D%0AOK"):
        w.send(line + "\r\nPING\r\n")
        r = w.read_reply()
        check(r.kind == "ERR", "%r: %r" % (line, r))
        check("\r" not in r.line and "\0" not in r.line, repr(r.line))
        w.read_reply().expect_ok()


def test_finish_values_are_checked(ctx):
    b = ctx.broker
    c = b.client()
    c.submit(["x"])
    w = b.worker("w1")
    job = w.take1()
    i, a = job["id"], job["attempt"]
    for extra in ("start=18446744073709551615", "end=253402300800000",
                  "start=2000 end=1000", "signal=99", "signal=0",
                  "exit=0 exit=1", "start=1 start=1", "out=0 out=0",
                  "outpath=a outpath=b", "utime=18446744073709551615",
                  "maxrss=18446744073709551615"):
        kv = extra if extra.startswith(("exit", "signal")) else \
            "exit=0 " + extra
        w.request("FINISH %s %s %s 0" % (i, a, kv), b"") \
            .expect_err("bad-request")
        eq(c.status1(i)["state"], "running", "%s: refused, nothing ended"
           % extra)
    w.request("WORKER w1 host=a%00b").expect_err("bad-request")
    w.request("FINISH %s %s signal=64 start=1000 end=2000 0" % (i, a), b"") \
        .expect_ok("failed")
    st = c.status1(i)
    eq((st["signal"], st["started"]), ("64", "1000"), "kept")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def test_clients_that_never_read(ctx):
    b = ctx.start_broker()
    c = b.client()
    for i in range(8):
        c.submit(["x" * 100, str(i)], name="n%d" % i)
    probe = b.client()
    req = b"STATS\r\nSTATUS 1 2 3 4 5 6 7 8\r\n" * 256
    socks = []
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", b.port))
        s.setblocking(False)
        socks.append(s)
    lat = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.send(req)
            except (BlockingIOError, OSError):
                pass
        t0 = time.monotonic()
        probe.request("PING").expect_ok()
        lat.append(time.monotonic() - t0)
    rss = rss_kib(b.pid)
    for s in socks:
        s.close()
    lat.sort()
    # (Under ASan the allocator's quarantine holds freed memory: RSS says
    # nothing about the broker's own use there.)
    check(ctx.sanitized or rss < 100 * 1024,
          "RSS %d MiB with 150 clients that never read" % (rss // 1024))
    check(lat[-1] < 0.3 * ctx.slow, "a PING waited %.0f ms (median %.1f "
          "ms) beside 150 clients that never read" % (
              lat[-1] * 1000, lat[len(lat) // 2] * 1000))
    c.request("PING").expect_ok()
