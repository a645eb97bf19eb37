"""
Edges: running out of file descriptors, QUIT in a pipeline, clients that
reset with replies pending, many waiters, timers across restarts, array
index extremes, the largest requests, many small segments.
"""

import socket
import struct
import threading
import time

from harness import (Broker, Client, TestFailure, check, check_counts, eq,
                     proc_cpu_ticks, wait_until)
from test_durability import check_ok, list_jobs


def test_out_of_file_descriptors(ctx):
    b = Broker(ctx, ["--segment-size", "4096", "--compact-min", "8K"],
               nofile=48).start()
    first = b.client()
    first.request("PING").expect_ok()
    # More connections than descriptors: the extra ones wait in the
    # backlog.
    extra = []
    for i in range(80):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        extra.append(s)
    time.sleep(0.5)
    check(b.running(), "simqd died when out of descriptors")
    # It does not spin while it cannot accept.
    t0 = proc_cpu_ticks(b.pid)
    time.sleep(1.0)
    used = proc_cpu_ticks(b.pid) - t0
    check(used <= 10, "simqd used %d ticks in 1 s while out of descriptors"
          % used)
    # The journal must still work: new segments, compaction.
    ids = []
    for i in range(300):
        r = first.request("SUBMIT -- job %d %s" % (i, "x" * 30))
        if r.kind != "OK":
            raise TestFailure("submit %d while out of descriptors: %r" %
                              (i, r))
        ids.append(r.one_id())
    check(b.running(), "simqd died")
    first.request("PING").expect_ok()
    # Freeing descriptors lets the waiting connections in (those closed
    # while waiting are accepted and closed too).
    for s in extra[:70]:
        s.close()
    s = extra[-1]
    s.settimeout(10)
    s.sendall(b"PING\r\n")
    eq(s.recv(100), b"OK\r\n", "a connection that waited in the backlog")
    for s in extra[70:]:
        s.close()
    eq(len(list_jobs(first)), 300, "jobs")
    first.close()
    b.stop()
    b.nofile = None
    b.start()
    eq(len(list_jobs(b.client())), 300, "jobs after a restart")


def test_quit_in_a_pipeline(ctx):
    b = ctx.broker
    c = b.client()
    c.send(b"PING\r\nSUBMIT -- a\r\nQUIT\r\nSUBMIT -- b\r\nPING\r\n")
    c.read_reply().expect_ok()
    c.read_reply().one_id()
    c.read_reply().expect_ok()
    check(c.at_eof(5), "the connection must close after QUIT's reply")
    d = b.client()
    jobs = list_jobs(d)
    eq([j.argv for j in jobs.values()], [["a"]],
       "nothing after QUIT is run")


def test_client_resets_with_replies_pending(ctx):
    b = ctx.broker
    c = b.client()
    for i in range(10):
        c.submit(["x"] + ["y" * 100] * 10)
    for round_ in range(5):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(b"LIST\r\n" * 3000)
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()           # RST with megabytes of replies unread
    time.sleep(0.3)
    c.request("PING").expect_ok()
    wait_until(lambda: c.stats()["connections"] == "1", 5,
               "the reset connections to be gone")
    check(b.running(), "simqd died")


def test_many_waiters_wake_together(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    waiters = [b.client() for _ in range(100)]
    for w in waiters:
        w.send(b"WAIT 30000 %d\r\n" % jid)
    time.sleep(0.3)
    wk = b.worker("w")
    j = wk.take1()
    t0 = time.monotonic()
    wk.finish_job(j).expect_ok("done")
    for w in waiters:
        eq(w.read_reply().expect_items(1)[0]["state"], "done", "WAIT")
    check(time.monotonic() - t0 < 2 * ctx.slow, "100 WAITs took %.2fs to "
          "wake" % (time.monotonic() - t0))


def test_delay_and_backoff_survive_restart(ctx):
    b = ctx.start_broker(["--retry-backoff", "1500ms"])
    c = b.client()
    w = b.worker("w")
    t_sub = time.monotonic()
    delayed = c.submit(["delayed"], delay=1500, q="d")
    flaky = c.submit(["flaky"], retries=1, q="f")
    j = w.take1(queues="f")
    w.finish_job(j, exit=1).expect_ok("waiting")
    t_fail = time.monotonic()
    time.sleep(0.8)
    c.close()
    w.close()
    t_kill = time.monotonic()
    b.kill9()
    b.start()
    # Were the timers restarted by the restart, they would end 1.5 s
    # after it; kept, they end 1.5 s after they began (or at once if that
    # passed during the restart).
    late = (t_kill - t_sub) + (time.monotonic() - t_kill) + 1.0
    c = b.client()
    eq(c.status1(delayed)["state"], "waiting", "delayed job after restart")
    eq(c.status1(flaky)["state"], "waiting", "backing-off job")
    w = b.worker("w")
    jd = w.take1(wait=5000, queues="d")
    dt = time.monotonic() - t_sub
    check(1.4 <= dt < late, "the delay of 1.5 s ended %.2fs after the "
          "submit (a restart must neither reset nor drop it)" % dt)
    jf = w.take1(wait=5000, queues="f")
    dt = time.monotonic() - t_fail
    check(1.4 <= dt < late, "the backoff of 1.5 s ended %.2fs after the "
          "failure" % dt)
    # 3, not 2: after a crash the next attempt of a waiting job skips the
    # one a lease sent before its commit might have held (simqd(8)).
    eq(jf["attempt"], "3", "retry attempt")


def test_array_index_extremes_and_huge_arrays(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    one = c.submit(["x", "{}"], array="4294967294", q="a")
    j = w.take1(queues="a")
    eq((j["id"], j["index"], j.argv), ("%d_4294967294" % one, "4294967294",
                                       ["x", "4294967294"]), "max index")
    w.finish_job(j).expect_ok("done")
    eq(c.status1(one)["state"], "done", "array of the max index")
    c.request("SUBMIT array=4294967295 -- x").expect_err("bad-request")
    sparse = c.submit(["y", "{}"], array="0-4294967294:1000000000", q="b")
    eq(c.status1(sparse)["tasks"], "5", "sparse array")
    jobs, _ = w.take(10, 0, "b")
    eq([x["index"] for x in jobs], ["0", "1000000000", "2000000000",
                                    "3000000000", "4000000000"], "indices")
    # Four billion tasks: one record, one round trip.
    t0 = time.monotonic()
    huge = c.submit(["z", "{}"], array="0-4294967294", q="h")
    check(time.monotonic() - t0 < 1 * ctx.slow, "a huge array took %.2fs" %
          (time.monotonic() - t0))
    it = c.status1(huge)
    eq((it["tasks"], it["queued"]), ("4294967295", "4294967295"), "counts")
    q = {x["name"]: x for x in c.request("QUEUES").expect_items()}["h"]
    eq(q["queued"], "4294967295", "queue count")
    eq(c.status1("%d_4294967294" % huge)["state"], "queued", "last task")
    jobs, _ = w.take(3, 0, "h")
    eq([x["index"] for x in jobs], ["0", "1", "2"], "first tasks")
    r = c.request("CANCEL %d" % huge).expect_ok()
    eq(r.words[0], "4294967295", "tasks canceled (OK N counts them all)")
    eq(c.status1(huge)["canceled"], "4294967295", "canceled count")
    r = c.request("RETRY %d" % huge).expect_ok()
    eq(r.words[0], "4294967295", "tasks re-queued")
    check_counts(c, "after the huge array")
    c.close()
    w.close()
    b.kill9()
    b.start()
    c = b.client()
    it = c.status1(huge)
    eq((it["tasks"], it["queued"]), ("4294967295", "4294967295"),
       "after a restart")
    check_counts(c, "after a restart")


def test_largest_requests(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    # 1024 jobs in one TAKE.
    body = b"".join(b"j %d\n" % i for i in range(1100))
    first = int(c.request("BATCH %d" % len(body), body).words[0])
    jobs, _ = w.take(1024)
    eq(len(jobs), 1024, "TAKE 1024")
    eq([int(j["id"]) for j in jobs], list(range(first, first + 1024)),
       "in order")
    # A HEARTBEAT of 4095 jobs (the most words on a line).
    words = ["%s:%s" % (j["id"], j["attempt"]) for j in jobs]
    words += ["%d:1" % (10 ** 9 + i) for i in range(4095 - len(words))]
    r = w.request("HEARTBEAT " + " ".join(words))
    drops = r.expect_items()
    eq(len(drops), 4095 - 1024, "drops for the unknown ids")
    # 256 env entries and 1024 dependencies are allowed, one more is not.
    env = ["K%d=v" % i for i in range(256)]
    jid = c.submit(["e"], env=env)
    c.request(" ".join(["SUBMIT"] + ["env=K%d=v" % i for i in range(257)] +
                       ["--", "e"])).expect_err("bad-request")
    deps = ",".join(str(first + i) for i in range(1024))
    d = c.submit(["d"], after=deps)
    eq(c.status1(d)["state"], "waiting", "1024 dependencies")
    deps2 = ",".join(str(first + i) for i in range(1025))
    c.request("SUBMIT after=%s -- d" % deps2).expect_err("bad-request")
    for j in jobs:
        w.send(Client.frame("FINISH %s %s exit=0 0" % (j["id"],
                                                      j["attempt"]), b""))
    for j in jobs:
        w.read_reply().expect_ok("done")
    wait_until(lambda: c.status1(d)["state"] == "queued", 5,
               "all 1024 dependencies done")
    rest, _ = w.take(1024)
    ev = [x for x in rest if x["id"] == str(jid)]
    eq(len(ev), 1, "the job with 256 env entries")
    eq(ev[0].multi["env"], env, "256 env entries in order")


def test_many_small_segments(ctx):
    b = ctx.start_broker(["--segment-size", "4096"])
    c = b.client()
    ids = [c.submit(["job", "s%d" % i, "x" * 50]) for i in range(400)]
    w = b.worker("w")
    jobs, _ = w.take(100)
    for j in jobs[:50]:
        w.finish_job(j, out=b"o" * 100).expect_ok("done")
    n = len(b.segments())
    check(n >= 5, "only %d segments of at most 4 KiB for %d bytes" %
          (n, b.journal_size()))
    before = sorted(i.line for i in list_jobs(c).values())
    c.close()
    w.close()
    b.kill9()
    check_ok(b, "many segments")
    b.start()
    c = b.client()
    after = sorted(i.line for i in list_jobs(c).values())
    eq(after, before, "state after a restart from many segments")
    check_counts(c, "many segments")
