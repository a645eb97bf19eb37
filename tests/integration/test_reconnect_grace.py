"""
A worker whose connection ends (its process killed, its host gone) and
that does not come back within --reconnect-grace loses its jobs then, not
at the end of its lease; a silent worker keeps them until the lease ends;
a job leased in a TAKE reply that the worker never received goes back as
soon as the worker reconnects and lists what it holds.
"""

import time

from harness import check, eq, wait_until
from workerlib import WorkerProc, marker, procs_with, wait_procs


def sh(script):
    return ["sh", "-c", script]


def test_killed_worker_jobs_rerun_within_the_grace(ctx):
    b = ctx.start_broker(["--reconnect-grace", "2s"])
    c = b.client()
    m = marker()
    # A long lease: without the grace its jobs would wait 60 s.
    a = WorkerProc(ctx, b, name="doomed", slots=2, lease=60000)
    ids = [c.submit(sh("sleep 1000"), env="SIMQ_TEST_MARK=" + m)
           for _ in range(2)]
    wait_procs(ctx, m, 2)
    a.kill9()
    t0 = time.monotonic()
    # The shepherds see their worker gone and end the jobs' processes.
    wait_until(lambda: not procs_with(m), 5 * ctx.slow, "old attempts gone")
    WorkerProc(ctx, b, name="rescuer", slots=2, lease=60000)

    def rerun():
        its = [c.status1(j) for j in ids]
        return all(it["state"] == "running" and it["attempts"] == "2" and
                   it["worker"] == "rescuer" for it in its)
    wait_until(rerun, 10 * ctx.slow, "jobs re-run by the other worker")
    took = time.monotonic() - t0
    check(took <= 3.0 * ctx.slow, "re-run %.1fs after the kill; the grace "
          "is 2 s (+1 s allowed)" % took)
    check(took >= 1.5, "re-run %.1fs after the kill, before the grace "
          "ended" % took)
    eq(c.stats()["lost"], "2", "both counted as lost")


def test_killed_worker_back_within_the_grace_keeps_its_jobs(ctx):
    b = ctx.start_broker(["--reconnect-grace", "3s"])
    c = b.client()
    w = b.worker("flaky", lease=60000)
    jid = c.submit(["x"])
    j = w.take1()
    w.close()
    time.sleep(1)
    w = b.worker("flaky", lease=60000)
    eq(w.heartbeat(j), [], "no drops after a reconnect within the grace")
    time.sleep(3)
    eq(c.status1(jid)["state"], "running", "still its job past the grace")
    w.finish_job(j).expect_ok("done")
    eq(c.status1(jid)["attempts"], "1", "one attempt")


def test_silent_worker_keeps_its_jobs_until_the_lease_ends(ctx):
    b = ctx.start_broker(["--reconnect-grace", "1s"])
    c = b.client()
    w = b.worker("frozen", lease=3000)
    jid = c.submit(["x"])
    w.take1()
    # Connected but silent: the grace does not apply.
    time.sleep(2)
    eq(c.status1(jid)["state"], "running", "kept past the grace")
    wait_until(lambda: c.status1(jid)["state"] == "queued", 5 * ctx.slow,
               "re-queued at the end of the lease")


def test_job_in_a_lost_take_reply_is_requeued_on_reconnect(ctx):
    b = ctx.start_broker(["--reconnect-grace", "30s"])
    c = b.client()
    kept, lost = c.submit(["kept"]), c.submit(["lost"])
    w = b.worker("node", lease=60000)
    jobs, _ = w.take(2)
    eq([x["id"] for x in jobs], [str(kept), str(lost)], "took both")
    w.close()
    # Back; it says it holds only the first (the reply leasing the second
    # never reached it), and that this is all it holds.
    w = b.worker("node", lease=60000)
    r = w.request("HEARTBEAT %s:1 all=1" % kept)
    eq(r.expect_items(), [], "no drops")
    eq(c.status1(lost)["state"], "queued", "the unreceived job is back")
    eq(c.status1(kept)["state"], "running", "the listed one is kept")
    o = b.worker("other")
    eq([(x["id"], x["attempt"]) for x in o.take(2)[0]], [(str(lost), "2")],
       "the other worker gets it, as a new attempt")
    eq(c.stats()["lost"], "0", "not counted as lost: it never ran")
    # Later heartbeats on the same connection change nothing.
    eq(w.request("HEARTBEAT all=1").expect_items(), [], "no drops")
    eq(c.status1(kept)["state"], "running", "still kept")


def test_real_worker_lists_all_it_holds_after_a_reconnect(ctx):
    """A real simq-worker says all=1 after registering, even when it
    holds nothing: a job leased to its name that it never received goes
    back at once."""
    b = ctx.start_broker(["--reconnect-grace", "30s"])
    c = b.client()
    jid = c.submit(["true"])
    ghost = b.worker("ghost", lease=60000)
    ghost.take1()
    ghost.close()
    WorkerProc(ctx, b, name="ghost", slots=1, lease=60000)
    wait_until(lambda: c.status1(jid)["state"] == "done", 5 * ctx.slow,
               "job run after the real worker reconnected")
    eq(c.status1(jid)["attempts"], "2", "a second attempt")
