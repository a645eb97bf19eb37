"""
Leases: a silent worker loses its jobs to a new attempt; a stale attempt's
report is refused; a worker that reconnects in time keeps its jobs;
--max-lost fails a job whose workers keep getting lost.
"""

import threading
import time

from harness import check, eq, wait_until


def test_silent_worker_loses_its_job(ctx):
    b = ctx.broker
    c = b.client()
    w1 = b.worker("w1", lease=1000)
    eq(w1.lease, 1000, "lease granted")
    jid = c.submit(["x"])
    j = w1.take1()
    eq(j["attempt"], "1", "attempt")
    t0 = time.monotonic()
    # A second worker parks a TAKE: the re-queued job must reach it.
    w2 = b.worker("w2", lease=30000)
    res = {}

    def take():
        res["j"] = w2.take(1, 8000)
        res["t"] = time.monotonic()
    th = threading.Thread(target=take)
    th.start()
    th.join(10 * ctx.slow)
    check("j" in res, "the parked TAKE did not return")
    jobs, _ = res["j"]
    eq(len(jobs), 1, "w2 got the lost job (and did not wait 8 s for it)")
    dt = res["t"] - t0
    check(0.9 <= dt < 3 * ctx.slow, "the lease of 1 s ran out after %.2fs" %
          dt)
    eq((jobs[0]["id"], jobs[0]["attempt"]), (str(jid), "2"),
       "the next attempt has a higher number")
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it["worker"]), ("running", "2", "w2"),
       "status")
    eq(c.stats()["lost"], "1", "STATS lost")
    # The old attempt's reports are refused and change nothing.
    w1.finish_job(j).expect_err("stale")
    w1.request("FAIL %d 1 late" % jid).expect_err("stale")
    w1.request("RELEASE %d 1" % jid).expect_err("stale")
    eq(c.status1(jid)["state"], "running", "unchanged by stale reports")
    drops = w1.heartbeat(j)
    eq([(d["id"], d["attempt"]) for d in drops], [(str(jid), "1")],
       "the old worker is told to drop attempt 1")
    check(drops[0]["reason"] in ("lease-expired", "stale"),
          "drop reason: %r" % drops[0])
    # Its heartbeat did not steal the lease back.
    w2.finish_job(jobs[0]).expect_ok("done")
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it["worker"]), ("done", "2", "w2"),
       "the current attempt's result counts")


def test_heartbeats_keep_the_lease_and_nothing_else_does(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("hb", lease=1000)
    a = c.submit(["a"])
    bb = c.submit(["b"])
    ja = w.take1()
    jb = w.take1()
    # Heartbeat only a for 2.5 s, and send other requests besides.
    # The reply may carry a drop of any job of the worker's that must
    # stop: b's, once its lease is gone; never a's.
    t_end = time.monotonic() + 2.5
    dropped = []
    while time.monotonic() < t_end:
        for d in w.heartbeat(ja):
            dropped.append((d["id"], d["attempt"], d["reason"]))
        w.request("PING").expect_ok()
        time.sleep(0.2)
    eq(dropped, [(str(bb), "1", "lease-expired")],
       "drops while heartbeating a only")
    it = c.status1(a)
    eq((it["state"], it["attempts"]), ("running", "1"),
       "heartbeats keep the lease")
    it = c.status1(bb)
    check(it["state"] == "queued" and it["attempts"] == "1",
          "a job left out of HEARTBEAT loses its lease: %r" % it)
    check("lost" in it.get("reason", ""), "reason says the worker was "
          "lost: %r" % it)
    drops = w.heartbeat(ja, jb)
    eq([(d["id"], d["reason"]) for d in drops], [(str(bb), "stale")],
       "a listed job that is no longer this attempt's")
    w.finish_job(ja).expect_ok("done")
    w.finish_job(jb).expect_err("stale")
    jb2 = w.take1()
    eq((jb2["id"], jb2["attempt"]), (str(bb), "2"), "second attempt")


def test_reconnect_within_lease_keeps_jobs(ctx):
    b = ctx.broker
    c = b.client()
    ids = [c.submit(["x", str(i)]) for i in range(3)]
    w = b.worker("node1:77", lease=2000)
    jobs, _ = w.take(3)
    eq(len(jobs), 3, "took 3")
    w.close()
    time.sleep(0.5)
    ws = {x["name"]: x for x in c.request("WORKERS").expect_items()}
    check("node1:77" in ws, "a disconnected worker holding leases is "
          "listed: %r" % ws)
    eq((ws["node1:77"]["connected"], ws["node1:77"].get("njobs")),
       ("0", "3"), "disconnected, holding 3 jobs")
    # Back under the same name, within the lease.
    w = b.worker("node1:77", lease=2000)
    eq(w.heartbeat(*jobs), [], "no drops after a reconnect in time")
    # Keep it alive past the original lease.
    for _ in range(6):
        time.sleep(0.4)
        eq(w.heartbeat(*jobs), [], "no drops")
    for j in jobs:
        w.finish_job(j).expect_ok("done")
    for jid in ids:
        it = c.status1(jid)
        eq((it["state"], it["attempts"], it["worker"]),
           ("done", "1", "node1:77"), "finished by its first attempt")
    eq(c.stats()["lost"], "0", "nothing lost")
    ws = {x["name"]: x for x in c.request("WORKERS").expect_items()}
    eq(ws["node1:77"]["njobs"], "0", "no job held")


def test_reconnect_takes_over_the_old_connection(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    old = b.worker("dup", lease=5000)
    j = old.take1()
    new = b.worker("dup", lease=5000)
    # The old connection is detached (closed, or refused as a worker).
    try:
        r = old.request("HEARTBEAT %s:1" % j["id"])
        r.expect_err("bad-state")
    except Exception as e:
        check("closed" in str(e) or "reset" in str(e).lower(),
              "the old connection should be closed or refused: %r" % e)
    eq(new.heartbeat(j), [], "the new connection holds the job")
    new.finish_job(j).expect_ok("done")
    eq(c.status1(jid)["attempts"], "1", "one attempt")


def test_max_lost_fails_the_job(ctx):
    b = ctx.start_broker(["--max-lost", "1"])
    c = b.client()
    jid = c.submit(["x"], retries=5)
    for attempt in (1, 2):
        w = b.worker("w%d" % attempt, lease=1000)
        j = w.take1(wait=5000)
        eq(j["attempt"], str(attempt), "attempt")
        w.close()
        if attempt == 1:
            wait_until(lambda: c.status1(jid)["state"] == "queued",
                       5 * ctx.slow, "the first loss to re-queue the job")
    wait_until(lambda: c.status1(jid)["state"] == "failed", 5 * ctx.slow,
               "the second loss to fail the job")
    it = c.status1(jid)
    eq(it["attempts"], "2", "attempts")
    check("lost" in it["reason"] and "2" in it["reason"],
          "the reason says the worker was lost twice: %r" % it)
    eq(c.stats()["lost"], "2", "STATS lost")
    # A RETRY restores the budget for losses as well.
    c.request("RETRY %d" % jid).expect_ok("1")
    w = b.worker("w3", lease=1000)
    j = w.take1()
    eq(j["attempt"], "3", "attempt after RETRY")
    w.close()
    wait_until(lambda: c.status1(jid)["state"] == "queued", 5 * ctx.slow,
               "a loss after RETRY to re-queue, not fail")


test_max_lost_fails_the_job.timeout = 90


def test_lost_worker_with_a_delayed_lease_journaled(ctx):
    """A lease that ran out is journaled: after a restart the job is still
    queued with its higher attempt number next time."""
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    w = b.worker("gone", lease=1000)
    w.take1()
    w.close()
    wait_until(lambda: c.status1(jid)["state"] == "queued", 5 * ctx.slow,
               "the lease to run out")
    c.close()
    b.kill9()
    b.start()
    c = b.client()
    it = c.status1(jid)
    eq((it["state"], it["attempts"]), ("queued", "1"), "after restart")
    w = b.worker("new")
    j = w.take1()
    # 3, not 2: after a crash the next attempt skips the one a lost commit
    # might have handed out early.
    eq(j["attempt"], "3", "the next attempt after a restart")
    old = b.worker("gone")
    old.request("FINISH %d 1 exit=0 0" % jid, b"").expect_err("stale")


def test_closed_connection_with_a_parked_take_gets_no_job(ctx):
    """A worker that dies while its TAKE waits (its connection closes)
    must not be handed the next job: that job would sit 'running' until the
    lease runs out."""
    b = ctx.broker
    w = b.worker("dies")
    w.send(b"TAKE 1 20000 default\r\n")
    time.sleep(0.2)
    w.close()
    time.sleep(0.2)
    c = b.client()
    jid = c.submit(["x"])
    time.sleep(0.3)
    it = c.status1(jid)
    eq(it["state"], "queued", "a job submitted after the worker's "
       "connection closed (%r)" % it)
    other = b.worker("alive")
    eq(other.take1()["id"], str(jid), "a live worker gets it at once")


def test_cancel_while_the_worker_is_away(ctx):
    b = ctx.broker
    c = b.client()
    a = c.submit(["a"])
    bb = c.submit(["b"])
    w = b.worker("away", lease=30000)
    ja, jb = w.take(2)[0]
    w.close()
    c.request("CANCEL %d" % a).expect_ok("1")
    w = b.worker("away", lease=30000)
    drops = w.heartbeat(ja, jb)
    eq([(d["id"], d["reason"]) for d in drops], [(str(a), "canceled")],
       "the returning worker is told to drop the canceled job")
    w.finish_job(ja).expect_err("stale")
    w.finish_job(jb).expect_ok("done")
    eq(w.take(5), ([], []), "no stale drop is repeated later")
