"""
Leases sent before their record is durable (simqd(8), DURABILITY): a TAKE
reply leaves before the commit that holds its lease.  simqd's test hook
--commit-delay MS holds a commit that has a lease for MS before writing
it, so a kill -9 lands, every time, after the worker got its lease and
before the lease (and maybe the job's SUBMIT) is on disk.
"""

import os
import signal
import socket
import time

from harness import Broker, Client, check, eq, submit_line, wait_until
from test_durability import check_ok
from workerlib import WorkerProc, marker, procs_with, wait_no_procs

DELAY = ["--commit-delay", "4000"]


def runs_of(path):
    """[(id, attempt)] from the lines the jobs appended."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(int(x) for x in line.split()[:2]) for line in f
                if line.strip()]


def test_crash_before_the_lease_is_durable_reattaches(ctx):
    """The SUBMIT is durable, the lease is not: after the restart the
    worker that holds the forgotten attempt re-attaches it, and the job
    runs once, finishes once, under that attempt."""
    b = Broker(ctx, ["--reconnect-grace", "10s"])
    b.start(DELAY)
    runs = ctx.newfile("runs")
    c = b.client()
    w = WorkerProc(ctx, b, name="rw", slots=1, lease=30000)
    w.wait_registered(c)
    time.sleep(0.3)		# its TAKE parked, nothing held up
    # The SUBMIT commits alone (no lease in it); the job is queued a
    # second later, and the parked TAKE gets it then.
    jid = int(c.submit(["sh", "-c", 'echo "$SIMQ_JOB_ID $SIMQ_ATTEMPT" >> %s;'
                        ' sleep 2' % runs], delay=1000))
    c.close()
    wait_until(lambda: runs_of(runs), 5 * ctx.slow,
               "the job to start from its early lease")
    eq(runs_of(runs), [(jid, 1)], "the job started under attempt 1")
    b.kill9()		# well inside the commit's delay
    b.start()
    c = b.client()
    it = c.status1(jid)
    eq(it["state"] in ("queued", "running"), True,
       "the lease was not on disk: %r" % it)
    wait_until(lambda: c.status1(jid)["state"] == "done", 15 * ctx.slow,
               "the re-attached job to finish")
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it.get("worker")), ("done", "1", "rw"),
       "finished once, by the attempt that ran")
    time.sleep(0.5)
    eq(runs_of(runs), [(jid, 1)], "the job ran once")
    check("re-attached" in b.current_log(),
          "the broker logs the re-attach:\n%s" % b.current_log())
    eq(c.stats()["reattached"], "1", "counted")
    # The next job gets the next attempt numbers afresh, and a new id.
    k = int(c.submit(["true"]))
    check(k > jid, "id %d after %d" % (k, jid))
    c.close()
    check_ok(b, "after the re-attach")


test_crash_before_the_lease_is_durable_reattaches.timeout = 90


def test_crash_before_the_submit_is_durable_kills_the_job(ctx):
    """The SUBMIT and its lease in one commit, lost with the crash (the
    client never got its ack): the worker is told to kill the job and
    reports nothing, and the job's id is never given to another job."""
    b = Broker(ctx, ["--reconnect-grace", "10s"])
    b.start(DELAY)
    runs = ctx.newfile("runs")
    mark = marker()
    w = WorkerProc(ctx, b, name="kw", slots=1, lease=30000)
    c = b.client()
    w.wait_registered(c)
    time.sleep(0.2)		# its TAKE parked
    c.close()
    s = socket.create_connection(("127.0.0.1", b.port))
    s.sendall((submit_line(["sh", "-c", 'echo "$SIMQ_JOB_ID $SIMQ_ATTEMPT"'
                            ' >> %s; sleep 60' % runs],
                           env="SIMQ_TEST_MARK=" + mark) + "\r\n").encode())
    wait_until(lambda: runs_of(runs), 5 * ctx.slow,
               "the job to start from its early lease")
    (jid, att), = runs_of(runs)
    eq(att, 1, "its first attempt")
    s.settimeout(0.2)
    try:
        got = s.recv(100)
    except socket.timeout:
        got = b""
    eq(got, b"", "no ack before the commit")
    b.kill9()
    s.close()
    b.start()
    c = b.client()
    wait_no_procs(ctx, mark, timeout=15,
                  what="the job whose SUBMIT was lost")
    w.wait_log("the broker says stop (unknown)")
    eq(c.status1(jid).line.split()[0], "missing", "the job is unknown")
    # Its id is never reused, now or after another crash.
    k = int(c.submit(["true"]))
    check(k > jid, "the next id %d is above the lost job's %d" % (k, jid))
    c.close()
    b.kill9()
    b.start()
    c = b.client()
    k2 = int(c.submit(["true"]))
    check(k2 > k, "after another crash: %d after %d" % (k2, k))
    time.sleep(0.5)
    check("FINISH %d" % jid not in b.current_log(), "no report")
    eq(runs_of(runs), [(jid, 1)], "it ran once and was not run again")
    c.close()


test_crash_before_the_submit_is_durable_kills_the_job.timeout = 90


def test_two_crashes_in_a_row_never_reuse_an_attempt(ctx):
    """Two crashes in a row, each after an early lease, with neither
    worker back in between: the attempts stay distinct (1, 2, 3), and the
    results of the forgotten attempts are refused."""
    b = Broker(ctx, ["--reconnect-grace", "30s"])
    b.start(DELAY)
    c = b.client()
    jid = c.submit(["x"])
    c.close()
    got = []
    for life in range(2):
        w = b.worker("gone%d" % life, lease=60000)
        j = w.take1(wait=5000)
        check(j is not None, "life %d: a lease" % life)
        eq(int(j["id"]), jid, "the job")
        got.append((w, j))
        b.kill9()
        b.start(DELAY if life == 0 else ())
    eq([j["attempt"] for _, j in got], ["1", "2"], "attempts so far")
    c = b.client()
    it = c.status1(jid)
    eq((it["state"], it["attempts"]), ("queued", "0"),
       "neither lease reached the disk")
    w3 = b.worker("third", lease=60000)
    j3 = w3.take1()
    eq(j3["attempt"], "3", "the next attempt skips both forgotten ones")
    # The workers of the forgotten attempts come back: told to drop them,
    # and their results are refused.
    for life, (w, j) in enumerate(got):
        w = b.worker("gone%d" % life, lease=60000)
        drops = w.heartbeat(j)
        eq([(d["id"], d["attempt"], d["reason"]) for d in drops],
           [(str(jid), j["attempt"], "stale")],
           "life %d's attempt dropped" % life)
        w.finish_job(j).expect_err("stale")
    w3.finish_job(j3).expect_ok("done")
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it.get("worker")),
       ("done", "3", "third"), "the third attempt's result")
    check_ok(b, "after two crashes")


test_two_crashes_in_a_row_never_reuse_an_attempt.timeout = 90


def test_leases_go_before_their_commit(ctx):
    """A TAKE reply leaves before its commit (the worker has its job while
    the commit is held); the SUBMIT ack waits for it."""
    b = ctx.start_broker(["--commit-delay", "1500"])
    w = b.worker("w", lease=30000)
    w.send(b"TAKE 1 10000 default\r\n")
    time.sleep(0.2)
    c = b.client()
    t0 = time.monotonic()
    c.send((submit_line(["x"]) + "\r\n").encode())
    r = w.read_reply()
    t_lease = time.monotonic() - t0
    r2 = c.read_reply()
    t_ack = time.monotonic() - t0
    eq(len(r.expect_items()), 1, "the lease")
    eq(r2.ok, True, "the ack")
    check(t_lease < 1.0, "the lease came after %.2fs" % t_lease)
    check(t_ack >= 1.4, "the ack came after %.2fs, before the commit" %
          t_ack)
    # A FINISH's reply, and a TAKE reply behind it on one connection,
    # wait for their commit.
    j = r.items[0]
    k = c.submit(["y"])
    t0 = time.monotonic()
    w.send(Client.frame("FINISH %s %s exit=0 out=0 err=0 res=0 0" %
                        (j["id"], j["attempt"]), b"") +
           b"TAKE 1 0 default\r\n")
    w.read_reply()
    r3 = w.read_reply()
    t = time.monotonic() - t0
    eq([int(x["id"]) for x in r3.items], [k], "the next job")
    check(t >= 1.4, "the TAKE reply behind a FINISH came after %.2fs" % t)
    eq(int(c.stats()["early_leases"]) >= 1, True, "counted")


def run_short_jobs(ctx, b, n, slots=2, args=()):
    """n /bin/true jobs through one simq-worker -j slots, from one BATCH;
    returns the broker's STATS once all are done."""
    c = b.client()
    WorkerProc(ctx, b, slots=slots, lease=30000, verbose=False,
               args=args).wait_registered(c)
    body = b"/bin/true\n" * n
    first = c.request("BATCH %d" % len(body), body).expect_ok()
    check(first.words[1] == str(n), "batch of %d: %r" % (n, first))
    wait_until(lambda: int(c.stats()["finished"]) >= n, timeout=120,
               what="%d jobs done" % n)
    return c.stats()


def test_leases_go_early_at_full_speed(ctx):
    """Short jobs through -j 2 under fsync always: the worker sends its
    TAKE ahead of the FINISH of the job whose slot it fills (ending=), so
    the TAKE's reply leaves before that FINISH's commit.  Nearly every
    lease goes early; behind the FINISH, only about a third did."""
    n = 1000
    st = run_short_jobs(ctx, ctx.broker, n)
    early = int(st["early_leases"])
    check(early >= n * 0.85, "%d of %d leases went before their commit "
          "(fsyncs %s)" % (early, n, st["fsyncs"]))


def test_take_ending_counts_the_lease_as_free(ctx):
    """TAKE ending=ID:ATTEMPT counts what that lease holds as free, is
    answered at once, and its reply, leases alone, goes before the commit
    of the FINISH behind it, which still waits for the disk."""
    b = ctx.start_broker(["--commit-delay", "1500"])
    w = b.worker("w", lease=30000, cpus=2)
    c = b.client()
    a = c.submit(["a"], cpus=2)
    k = c.submit(["k"], cpus=2)
    r = w.request("TAKE 1 0 default cpus=2")
    j = r.expect_items(1)[0]
    eq(int(j["id"]), a, "the first job")
    # Without ending=, the broker counts a's 2 CPUs as held.
    eq(w.request("TAKE 1 0 default cpus=2").expect_items(), [],
       "nothing fits while a is held")
    t0 = time.monotonic()
    w.send(("TAKE 1 10000 default cpus=2 ending=%s:%s\r\n" %
            (j["id"], j["attempt"])).encode() +
           Client.frame("FINISH %s %s exit=0 out=0 err=0 res=0 0" %
                        (j["id"], j["attempt"]), b""))
    r2 = w.read_reply()
    t_take = time.monotonic() - t0
    r3 = w.read_reply()
    t_fin = time.monotonic() - t0
    eq([int(x["id"]) for x in r2.expect_items()], [k], "k fits now")
    eq(r3.words, ["done"], "the FINISH")
    check(t_take < 1.0, "the TAKE reply came after %.2fs" % t_take)
    check(t_fin >= 1.4, "the FINISH reply came after %.2fs, before its "
          "commit" % t_fin)
    # ending= naming no lease of this worker (stale, unknown, or twice)
    # frees nothing; an ending= TAKE with nothing to give is answered at
    # once; a malformed one is refused.
    c.submit(["m"], cpus=2)
    t0 = time.monotonic()
    eq(w.request("TAKE 1 10000 default cpus=2 ending=%s:%s,99999:1,%s:%s" %
                 (j["id"], j["attempt"], j["id"], j["attempt"]))
       .expect_items(), [], "a's lease is over: k holds the CPUs")
    check(time.monotonic() - t0 < 1.0, "answered at once")
    # Nor does another worker's lease.
    w2 = b.worker("w2", lease=30000, cpus=2)
    (m,) = w2.request("TAKE 1 0 default cpus=2").expect_items(1)
    c.submit(["n"], cpus=2)
    eq(w.request("TAKE 1 0 default cpus=2 ending=%s:%s" %
                 (m["id"], m["attempt"])).expect_items(), [],
       "w2's lease frees nothing of w's")
    for bad in ("ending=", "ending=x:1", "ending=1", "ending=1:1,"):
        w.request("TAKE 1 0 default " + bad).expect_err("bad-request")
