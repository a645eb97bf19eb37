"""
The job model end to end through the protocol, with the test acting as
the worker: priorities, queue order, arrays, dependencies, retries,
delays, cancel, retry, pause, output, WAIT and parked TAKEs.
"""

import os
import threading
import time

from harness import TestFailure, check, eq, wait_until


def state(c, jid):
    return c.status1(jid)["state"]


def wait_state(c, jid, want, timeout=5):
    wait_until(lambda: state(c, jid) == want, timeout,
               "%s to be %s (is %s)" % (jid, want, state(c, jid)))


def test_priority_then_fifo(ctx):
    b = ctx.broker
    c = b.client()
    spec = [(0, "a"), (5, "b"), (0, "c"), (-3, "d"), (5, "e"), (10, "f"),
            (0, "g"), (-3, "h")]
    ids = {name: c.submit([name], pri=p) for p, name in spec}
    w = b.worker("w")
    got = [w.take1().argv[0] for _ in spec]
    eq(got, ["f", "b", "e", "a", "c", "g", "d", "h"],
       "order: higher priority first, then oldest first")
    eq(w.take(5)[0], [], "nothing left")
    # One TAKE of many returns them in the same order.
    for p, name in spec:
        c.submit([name], pri=p)
    jobs, _ = w.take(100)
    eq([j.argv[0] for j in jobs], ["f", "b", "e", "a", "c", "g", "d", "h"],
       "order within one TAKE")
    eq(len({j["id"] for j in jobs}), len(spec), "distinct jobs")
    # Each taken job is running with attempt 1, leased to w.
    for name, jid in ids.items():
        it = c.status1(jid)
        eq((it["state"], it["attempts"], it["worker"]),
           ("running", "1", "w"), "status of %s" % name)


def test_worker_queue_order_is_strict(ctx):
    b = ctx.broker
    c = b.client()
    lo = [c.submit(["lo", str(i)], q="low", pri=-100) for i in range(3)]
    hi = [c.submit(["hi", str(i)], q="high", pri=100) for i in range(3)]
    w = b.worker("w")
    # Queues are served strictly in the order given, whatever the
    # priorities.
    jobs, _ = w.take(4, 0, "low,high")
    eq([int(j["id"]) for j in jobs], lo + hi[:1], "low first, then high")
    eq([j["q"] for j in jobs], ["low"] * 3 + ["high"], "queues")
    more = [c.submit(["lo", "x"], q="low", pri=-100)]
    jobs, _ = w.take(10, 0, "high,low")
    eq([int(j["id"]) for j in jobs], hi[1:] + more, "high first, then low")
    # A queue not named is never served.
    c.submit(["other"], q="other")
    eq(w.take(10, 0, "low,high")[0], [], "unnamed queue not served")


def test_array_max_running_and_counts(ctx):
    b = ctx.broker
    c = b.client()
    aid = c.submit(["./sim", "--seed", "{}", "x{}y", "{}{}"],
                   array="1-10:2%2", name="sweep")
    it = c.status1(aid)
    eq((it.kind, it["tasks"], it["state"], it["queued"], it["running"]),
       ("array", "5", "queued", "5", "0"), "array status at submit")
    w = b.worker("w")
    jobs, _ = w.take(10)
    eq([j["id"] for j in jobs], ["%d_1" % aid, "%d_3" % aid],
       "at most 2 running (%2), in index order")
    for j in jobs:
        idx = j["index"]
        eq(j.argv, ["./sim", "--seed", idx, "x%sy" % idx, idx + idx],
           "{} substituted")
        eq(j["attempt"], "1", "attempt")
        eq(j["name"], "sweep", "name")
    eq(w.take(10)[0], [], "the cap holds")
    it = c.status1(aid)
    eq((it["state"], it["running"], it["queued"], it["done"]),
       ("running", "2", "3", "0"), "array counts while running")
    eq(c.status1("%d_3" % aid)["state"], "running", "task state")
    # Finishing one lets one more start.
    w.finish_job(jobs[0]).expect_ok("done")
    nxt, _ = w.take(10)
    eq([j["id"] for j in nxt], ["%d_5" % aid], "the next task")
    # A failure.
    w.finish_job(jobs[1], exit=3).expect_ok("failed")
    it = c.status1("%d_3" % aid)
    eq((it["state"], it["exit"]), ("failed", "3"), "task 3 failed")
    rest, _ = w.take(10)
    eq([j["id"] for j in rest], ["%d_7" % aid], "the cap counts running only")
    for j in nxt + rest:
        w.finish_job(j).expect_ok("done")
    last = w.take1()
    eq(last["id"], "%d_9" % aid, "last task")
    it = c.status1(aid)
    eq((it["done"], it["failed"], it["running"], it["state"]),
       ("3", "1", "1", "running"), "counts")
    w.finish_job(last).expect_ok("done")
    it = c.status1(aid)
    eq((it["state"], it["done"], it["failed"]), ("failed", "4", "1"),
       "an array with a failed task is failed when all are finished")
    check("finished" in it, "finished time of a finished array: %r" % it)
    # RETRY of the array re-queues only the failed task.
    c.request("RETRY %d" % aid).expect_ok("1")
    it = c.status1(aid)
    eq((it["state"], it["queued"], it["done"]), ("queued", "1", "4"),
       "after RETRY")
    again = w.take1()
    eq((again["id"], again["attempt"]), ("%d_3" % aid, "2"),
       "the failed task runs again with a new attempt")
    eq(w.take(5)[0], [], "only the failed task was re-queued")
    w.finish_job(again).expect_ok("done")
    eq(c.status1(aid)["state"], "done", "array done")
    # The queue's counts follow the tasks.
    q = c.request("QUEUES").expect_items(1)[0]
    eq((q["done"], q["failed"], q["queued"], q["running"]),
       ("5", "0", "0", "0"), "queue counts")


def test_array_cancel_and_task_retry(ctx):
    b = ctx.broker
    c = b.client()
    aid = c.submit(["t", "{}"], array="0-99")
    w = b.worker("w")
    jobs, _ = w.take(3)
    eq([j["index"] for j in jobs], ["0", "1", "2"], "first tasks")
    w.finish_job(jobs[0]).expect_ok("done")
    w.request("FAIL %s %s no%%20such%%20file" %
              (jobs[1]["id"], jobs[1]["attempt"])).expect_ok("failed")
    eq(c.status1(jobs[1]["id"])["reason"], "no such file", "FAIL reason")
    # RETRY of one task.
    c.request("RETRY %s" % jobs[1]["id"]).expect_ok("1")
    eq(state(c, jobs[1]["id"]), "queued", "retried task")
    # CANCEL of the array: every unfinished task, running ones included.
    r = c.request("CANCEL %d" % aid).expect_ok()
    eq(int(r.words[0]), 99, "tasks canceled (all but the done one)")
    it = c.status1(aid)
    eq((it["state"], it["canceled"], it["done"], it["queued"],
        it["running"]), ("canceled", "99", "1", "0", "0"), "array canceled")
    drops = w.heartbeat(jobs[2])
    eq([(d["id"], d["reason"]) for d in drops],
       [(jobs[2]["id"], "canceled")], "the running task is dropped")
    w.finish_job(jobs[2]).expect_err("stale")
    eq(w.take(5)[0], [], "no task left to take")
    eq(state(c, "%d_50" % aid), "canceled", "a task never taken")
    # RETRY of the array brings back the canceled tasks.
    r = c.request("RETRY %d" % aid).expect_ok()
    eq(int(r.words[0]), 99, "tasks re-queued")
    eq(c.status1(aid)["queued"], "99", "queued again")
    jobs, _ = w.take(200)
    eq(len(jobs), 99, "all re-queued tasks can be taken")
    eq(sorted(int(j["index"]) for j in jobs), list(range(1, 100)),
       "the done task is not re-run")


def test_dependencies(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    a = c.submit(["a"])
    arr = c.submit(["arr", "{}"], array="1-3")
    on_job = c.submit(["on-job"], after=a)
    on_arr = c.submit(["on-array"], after=arr)
    on_task = c.submit(["on-task"], after="%d_2" % arr)
    on_both = c.submit(["on-both"], after="%d,%d_3" % (a, arr))
    for j in (on_job, on_arr, on_task, on_both):
        it = c.status1(j)
        eq(it["state"], "waiting", "dependent waits")
        check("after" in it, "after= shown while waiting: %r" % it)
    # Take the work in order: a, then the tasks.
    ja = w.take1()
    eq(ja.argv, ["a"], "a first")
    tasks, _ = w.take(3)
    eq([t["id"] for t in tasks], ["%d_%d" % (arr, i) for i in (1, 2, 3)],
       "tasks")
    eq(w.take(5)[0], [], "dependents are not ready")
    w.finish_job(ja).expect_ok("done")
    wait_state(c, on_job, "queued")
    eq(state(c, on_both), "waiting", "on-both still waits for task 3")
    w.finish_job(tasks[1]).expect_ok("done")    # task 2
    wait_state(c, on_task, "queued")
    eq(state(c, on_arr), "waiting", "on-array waits for every task")
    w.finish_job(tasks[2]).expect_ok("done")    # task 3
    wait_state(c, on_both, "queued")
    eq(state(c, on_arr), "waiting", "on-array waits for task 1")
    w.finish_job(tasks[0]).expect_ok("done")
    wait_state(c, on_arr, "queued")
    check("after" not in c.status1(on_arr), "no after= once satisfied")
    # A dependency already done counts as satisfied.
    eq(state(c, c.submit(["x"], after=a)), "queued", "after a done job")
    eq(state(c, c.submit(["x"], after="%d_1" % arr)), "queued",
       "after a done task")


def test_failed_dependency_fails_dependents(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    root = c.submit(["root"])
    d1 = c.submit(["d1"], after=root)
    d2 = c.submit(["d2"], after=d1)
    d3 = c.submit(["d3"], after="%d,%d" % (d1, d2))
    other = c.submit(["other"])
    j = w.take1()
    eq(j.argv, ["root"], "root")
    w.finish_job(j, exit=2).expect_ok("failed")
    for jid, deps in ((d1, [root]), (d2, [d1]), (d3, [d1, d2])):
        it = c.status1(jid)
        eq(it["state"], "failed", "dependent %d" % jid)
        reason = it.get("reason", "")
        check(any(reason == "dependency %d failed" % d for d in deps),
              "the reason names the failed dependency (one of %r): %r" %
              (deps, it))
    eq(state(c, other), "queued", "an unrelated job is untouched")
    # A dependency already failed fails the new job at once.
    late = c.submit(["late"], after=d2)
    it = c.status1(late)
    eq(it["state"], "failed", "after a failed job")
    check(str(d2) in it["reason"], "reason: %r" % it)
    # A canceled dependency fails its dependents too.
    x = c.submit(["x"])
    y = c.submit(["y"], after=x)
    z = c.submit(["z"], after=y)
    c.request("CANCEL %d" % x).expect_ok("1")
    for jid, dep in ((y, x), (z, y)):
        it = c.status1(jid)
        eq(it["state"], "failed", "dependent of a canceled job")
        check(str(dep) in it["reason"], "reason names %d: %r" % (dep, it))
    # A failed task fails what depends on it and on its array.
    arr = c.submit(["t", "{}"], array="1-2", q="arr")
    on_t1 = c.submit(["on-t1"], after="%d_1" % arr)
    on_t2 = c.submit(["on-t2"], after="%d_2" % arr)
    on_arr = c.submit(["on-arr"], after=arr)
    t1 = w.take1(queues="arr")
    eq(t1["id"], "%d_1" % arr, "task 1")
    w.finish_job(t1, exit=1).expect_ok("failed")
    it = c.status1(on_t1)
    eq(it["state"], "failed", "after a failed task")
    check("%d_1" % arr in it["reason"], "reason names the task: %r" % it)
    eq(state(c, on_t2), "waiting", "after the other task: still waiting")
    t2 = w.take1(queues="arr")
    w.finish_job(t2).expect_ok("done")
    wait_state(c, on_t2, "queued")
    it = c.status1(on_arr)
    eq(it["state"], "failed", "after an array with a failed task")
    check(str(arr) in it["reason"], "reason names the array: %r" % it)
    # A long chain fails all the way down (no recursion limit).
    head = c.submit(["head"])
    frames = []
    body = b""
    prev = head
    first_chain = int(c.stats()["next_id"])
    n = 3000
    from harness import Client, submit_line
    for i in range(n):
        frames.append(Client.frame(submit_line(["c", str(i)], after=prev)))
        prev = first_chain + i
    replies = c.pipeline(frames)
    eq([r.one_id() for r in replies], list(range(first_chain,
                                                 first_chain + n)), "ids")
    c.request("CANCEL %d" % head).expect_ok("1")
    it = c.status1(first_chain + n - 1)
    eq(it["state"], "failed", "the end of a %d-job chain" % n)


def test_retries_with_backoff(ctx):
    b = ctx.start_broker(["--retry-backoff", "200ms"])
    c = b.client()
    w = b.worker("w")
    jid = c.submit(["flaky"], retries=2)
    j = w.take1()
    eq(j["attempt"], "1", "first attempt")
    w.finish_job(j, exit=1).expect_ok("waiting")
    tf = time.monotonic()
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it["exit"], it["reason"]),
       ("waiting", "1", "1", "exit status 1"), "waiting for a retry")
    check("due" in it, "due= while backing off: %r" % it)
    eq(w.take(1)[0], [], "not during the backoff")
    j = w.take1(wait=3000)
    dt = time.monotonic() - tf
    eq(j["attempt"], "2", "second attempt")
    check(0.18 <= dt < 1.0 * ctx.slow, "first backoff is 200ms: the retry "
          "came after %.3fs" % dt)
    w.finish_job(j, signal_=9).expect_ok("waiting")
    tf = time.monotonic()
    eq(c.status1(jid)["reason"], "killed by signal 9", "reason")
    j = w.take1(wait=3000)
    dt = time.monotonic() - tf
    eq(j["attempt"], "3", "third attempt")
    check(0.38 <= dt < 1.5 * ctx.slow, "second backoff doubles to 400ms: "
          "the retry came after %.3fs" % dt)
    w.finish_job(j, exit=1, timedout=1).expect_ok("failed")
    it = c.status1(jid)
    eq((it["state"], it["attempts"], it["reason"], it.get("timedout")),
       ("failed", "3", "timed out", "1"), "out of retries")
    # RETRY restores the budget.
    c.request("RETRY %d" % jid).expect_ok("1")
    j = w.take1()
    eq(j["attempt"], "4", "attempt after RETRY")
    w.finish_job(j, exit=1).expect_ok("waiting")
    # A RELEASE does not count against the retries.
    j = w.take1(wait=3000)
    eq(j["attempt"], "5", "attempt")
    w.request("RELEASE %s %s" % (j["id"], j["attempt"])).expect_ok("queued")
    j = w.take1()
    eq(j["attempt"], "6", "released job is taken again at once")
    w.finish_job(j, exit=1).expect_ok("waiting")
    j = w.take1(wait=3000)
    w.finish_job(j, exit=0).expect_ok("done")
    eq(c.status1(jid)["state"], "done", "done at last")


def test_delay(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    t0 = time.monotonic()
    jid = c.submit(["later"], delay=600)
    it = c.status1(jid)
    eq(it["state"], "waiting", "delayed job waits")
    check("due" in it and int(it["due"]) >= int(it["submitted"]) + 500,
          "due: %r" % it)
    now = c.submit(["now"])
    eq(w.take1()["id"], str(now), "the undelayed job first")
    eq(w.take(1)[0], [], "the delayed one is not ready")
    j = w.take1(wait=5000)
    dt = time.monotonic() - t0
    eq(j["id"], str(jid), "delayed job")
    check(0.55 <= dt < 3, "delay of 600ms took %.3fs" % dt)
    # A delay and a dependency: both must pass.
    a = c.submit(["a"])
    d = c.submit(["d"], after=a, delay=300)
    ja = w.take1()
    w.finish_job(ja).expect_ok("done")
    ja2 = w.take1(wait=3000)
    eq(ja2["id"], str(d), "delayed dependent")


def test_cancel_queued_and_running(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    q = c.submit(["queued"])
    r1 = c.submit(["run1"])
    r2 = c.submit(["run2"])
    c.request("CANCEL %d" % q).expect_ok("1")
    it = c.status1(q)
    eq(it["state"], "canceled", "canceled")
    check("reason" in it, "cancel reason: %r" % it)
    jobs, _ = w.take(5)
    eq([j.argv[0] for j in jobs], ["run1", "run2"], "the canceled job is "
       "never handed out")
    c.request("CANCEL %d" % r1).expect_ok("1")
    eq(state(c, r1), "canceled", "running job canceled")
    # The worker learns it on its next HEARTBEAT ...
    drops = w.heartbeat(jobs[0], jobs[1])
    eq([(d["id"], d["attempt"], d["reason"]) for d in drops],
       [(str(r1), "1", "canceled")], "drop on HEARTBEAT")
    # ... and a later FINISH is stale and changes nothing.
    w.finish_job(jobs[0]).expect_err("stale")
    eq(state(c, r1), "canceled", "still canceled")
    # Drops on TAKE come first.
    c.request("CANCEL %d" % r2).expect_ok("1")
    c.submit(["next"])
    jobs2, drops = w.take(5)
    eq([(d["id"], d["reason"]) for d in drops], [(str(r2), "canceled")],
       "drop on TAKE")
    eq([j.argv[0] for j in jobs2], ["next"], "and the new job")
    w.request("FAIL %d 1 x" % r2).expect_err("stale")
    w.request("RELEASE %d 1" % r2).expect_err("stale")
    # A pending drop ends a parked TAKE at once.
    c.request("CANCEL %s" % jobs2[0]["id"]).expect_ok("1")
    # (it was delivered above? no: this cancel is new)
    t0 = time.monotonic()
    jobs3, drops = w.take(1, 5000)
    check(time.monotonic() - t0 < 1, "a drop must not wait")
    eq([d["id"] for d in drops], [jobs2[0]["id"]], "drop")
    # A parked TAKE woken by a cancel from another connection.
    j4 = c.submit(["j4"])
    got = w.take1()
    eq(got["id"], str(j4), "j4")
    res = {}

    def parked():
        t = time.monotonic()
        res["r"] = w.take(1, 8000)
        res["dt"] = time.monotonic() - t
    th = threading.Thread(target=parked)
    th.start()
    time.sleep(0.3)
    c.request("CANCEL %d" % j4).expect_ok("1")
    th.join(10)
    check("r" in res, "parked TAKE did not return")
    eq([d["id"] for d in res["r"][1]], [str(j4)], "drop ends the wait")
    check(res["dt"] < 2, "drop delivered after %.2fs" % res["dt"])
    # Canceling finished jobs changes nothing.
    done = c.submit(["done"])
    jd = w.take1()
    w.finish_job(jd).expect_ok("done")
    c.request("CANCEL %d" % done).expect_ok("0")
    eq(state(c, done), "done", "done stays done")


def test_retry_failed_jobs(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    f = c.submit(["f"], retries=0)
    ok = c.submit(["ok"])
    jobs, _ = w.take(2)
    w.finish_job(jobs[0], exit=7).expect_ok("failed")
    w.finish_job(jobs[1]).expect_ok("done")
    q = c.submit(["still-queued"])
    c.request("RETRY %d %d %d" % (f, ok, q)).expect_ok("1")
    eq(state(c, ok), "done", "done is left alone")
    eq(state(c, q), "queued", "queued is left alone")
    it = c.status1(f)
    eq(it["state"], "queued", "failed job re-queued")
    j = w.take1()
    eq((j["id"], j["attempt"]), (str(f), "2"), "retried attempt")
    w.finish_job(j).expect_ok("done")
    it = c.status1(f)
    eq((it["state"], it["exit"]), ("done", "0"), "the new result counts")
    # A retried dependency re-queues the dependent that failed because
    # of it (the reply's second word counts them), and a dependent
    # submitted after the retry waits for it too.
    g = c.submit(["g"], q="g")
    h = c.submit(["h"], after=g)
    jg = w.take1(queues="g")
    w.finish_job(jg, exit=1).expect_ok("failed")
    eq(state(c, h), "failed", "dependent failed")
    c.request("RETRY %d" % g).expect_ok("1", "1")
    eq(state(c, h), "waiting", "the failed dependent waits again")
    k = c.submit(["k"], after=g)
    eq(state(c, k), "waiting", "waits for the retried dependency")
    jg = w.take1(queues="g")
    eq(jg["id"], str(g), "g again")
    w.finish_job(jg).expect_ok("done")
    wait_state(c, k, "queued")
    wait_state(c, h, "queued")


def test_pause_resume(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    running = c.submit(["r"], q="p")
    jr = w.take1(queues="p")
    c.request("PAUSE p").expect_ok()
    jid = c.submit(["x"], q="p")
    eq(state(c, jid), "queued", "a paused queue accepts jobs")
    eq(w.take(5, 0, "p")[0], [], "a paused queue hands nothing out")
    # Running jobs are not affected.
    w.heartbeat(jr)
    w.finish_job(jr).expect_ok("done")
    eq(state(c, running), "done", "running job finished")
    # Other queues are served.
    o = c.submit(["o"], q="other")
    eq(w.take1(queues="p,other")["id"], str(o), "other queue")
    # RESUME wakes a parked TAKE.
    res = {}

    def parked():
        t = time.monotonic()
        res["r"] = w.take(1, 8000, "p")
        res["dt"] = time.monotonic() - t
    th = threading.Thread(target=parked)
    th.start()
    time.sleep(0.3)
    c.request("RESUME p").expect_ok()
    th.join(10)
    check("r" in res, "parked TAKE did not return")
    eq([j["id"] for j in res["r"][0]], [str(jid)], "job after RESUME")
    check(res["dt"] < 2, "RESUME took %.2fs to reach a parked TAKE" %
          res["dt"])
    # PAUSE survives a restart.
    c.request("PAUSE p").expect_ok()
    c.submit(["y"], q="p")
    c.close()
    w.close()
    b.restart()
    c = b.client()
    qs = {q["name"]: q for q in c.request("QUEUES").expect_items()}
    eq(qs["p"]["paused"], "1", "paused after restart")
    w = b.worker("w")
    eq(w.take(5, 0, "p")[0], [], "paused after restart")
    c.request("RESUME p").expect_ok()
    eq(len(w.take(5, 0, "p")[0]), 1, "resumed")


def test_output_round_trip(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w", host="node 1")
    jid = c.submit(["x"])
    j = w.take1()
    out = bytes(range(256)) * 4 + b"\r\n\r\nEND\0"
    err = b"\0\0\r\n\n\r" + os.urandom(5000)
    res = b'{"x": 1}\r\n' + b"\xff" * 100
    r = w.finish_job(j, out=out, err=err, res=res, start=1763700000000,
                     end=1763700004200, utime=4100000, stime=20000,
                     maxrss=51200, outpath="/logs/x%20y.out")
    r.expect_ok("done")
    eq(c.request("OUTPUT %d stdout" % jid).data, out, "stdout bytes")
    eq(c.request("OUTPUT %d stderr" % jid).data, err, "stderr bytes")
    eq(c.request("OUTPUT %d result" % jid).data, res, "result bytes")
    it = c.status1(jid)
    eq((it["exit"], it["maxrss"], it["utime"], it["stime"], it["outpath"],
        it["worker"], it["host"]),
       ("0", "51200", "4100000", "20000", "/logs/x y.out", "w", "node 1"),
       "result fields")
    check("finished" in it and "started" in it, "times: %r" % it)
    # The largest tails and payload.
    jid2 = c.submit(["y"])
    j = w.take1()
    big_o, big_e, big_r = (os.urandom(65536), os.urandom(65536),
                           os.urandom(65536))
    w.finish_job(j, exit=1, out=big_o, err=big_e, res=big_r) \
        .expect_ok("failed")
    eq(c.request("OUTPUT %d stdout" % jid2).data, big_o, "64 KiB stdout")
    eq(c.request("OUTPUT %d stderr" % jid2).data, big_e, "64 KiB stderr")
    eq(c.request("OUTPUT %d result" % jid2).data, big_r, "64 KiB result")
    # Only one stream.
    jid3 = c.submit(["z"])
    j = w.take1()
    w.finish_job(j, res=b"\r\n").expect_ok("done")
    eq(c.request("OUTPUT %d stdout" % jid3).data, b"", "no stdout")
    eq(c.request("OUTPUT %d result" % jid3).data, b"\r\n", "result")
    # Everything survives a restart.
    c.close()
    w.close()
    b.restart()
    c = b.client()
    eq(c.request("OUTPUT %d stdout" % jid).data, out, "stdout after restart")
    eq(c.request("OUTPUT %d stderr" % jid2).data, big_e,
       "stderr after restart")
    eq(c.request("OUTPUT %d result" % jid3).data, b"\r\n",
       "result after restart")
    eq(c.status1(jid)["outpath"], "/logs/x y.out", "outpath after restart")


def test_wait_returns_when_jobs_finish(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w")
    a = c.submit(["a"])
    bb = c.submit(["b"])
    ja = w.take1()
    jb = w.take1()
    waiter = b.client()
    res = {}

    def wait():
        t = time.monotonic()
        res["r"] = waiter.request("WAIT 20000 %d %d" % (a, bb))
        res["dt"] = time.monotonic() - t
    th = threading.Thread(target=wait)
    th.start()
    time.sleep(0.3)
    w.finish_job(ja).expect_ok("done")
    time.sleep(0.3)
    check("r" not in res, "WAIT returned while a job still runs: %r" %
          res.get("r"))
    w.finish_job(jb, exit=1).expect_ok("failed")
    th.join(10)
    check("r" in res, "WAIT did not return")
    items = res["r"].expect_items(2)
    eq([i["state"] for i in items], ["done", "failed"], "WAIT states")
    check(0.5 <= res["dt"] < 3, "WAIT returned after %.2fs" % res["dt"])
    # A WAIT on an array returns when all its tasks are finished.
    arr = c.submit(["t"], array="1-3")
    th = threading.Thread(target=lambda: res.update(
        a=waiter.request("WAIT 20000 %d" % arr)))
    th.start()
    jobs, _ = w.take(3)
    for j in jobs[:2]:
        w.finish_job(j).expect_ok("done")
    time.sleep(0.2)
    check("a" not in res, "WAIT on an array returned early")
    c.request("CANCEL %s" % jobs[2]["id"]).expect_ok("1")
    th.join(10)
    eq(res["a"].expect_items(1)[0]["state"], "canceled", "array WAIT")
    # The connection is usable after a WAIT.
    waiter.request("PING").expect_ok()


def test_take_wakes_on_submit(ctx):
    b = ctx.broker
    w = b.worker("w", lease=30000)
    c = b.client()
    res = {}

    def take():
        t = time.monotonic()
        res["r"] = w.take(1, 9000)
        res["dt"] = time.monotonic() - t
    for round_ in range(3):
        res.clear()
        th = threading.Thread(target=take)
        th.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        jid = c.submit(["x", str(round_)])
        th.join(12)
        check("r" in res, "parked TAKE never returned")
        latency = time.monotonic() - t0
        eq([j["id"] for j in res["r"][0]], [str(jid)], "job from the "
           "parked TAKE")
        check(latency < 0.5 * ctx.slow, "the parked TAKE answered %.3fs "
              "after the submit (its wait was 9s)" % latency)
    # A parked TAKE on one queue is not woken by another queue.
    res.clear()
    th = threading.Thread(target=lambda: res.update(
        r=w.take(1, 1500, "mine")))
    th.start()
    time.sleep(0.2)
    c.submit(["y"], q="theirs")
    time.sleep(0.5)
    check("r" not in res, "woken by another queue's job: %r" % res.get("r"))
    th.join(10)
    eq(res["r"], ([], []), "ITEMS 0 at the end of the wait")
    # BATCH wakes a parked TAKE too; so do delays as they end.
    res.clear()
    th = threading.Thread(target=take)
    th.start()
    time.sleep(0.2)
    c.request("BATCH 2", b"z\n").expect_ok()
    th.join(12)
    eq(len(res["r"][0]), 1, "job from BATCH")
    check(res["dt"] < 1 * ctx.slow, "woken by BATCH after %.2fs" % res["dt"])


def test_parked_take_and_wait_end_on_the_next_request(ctx):
    """PROTOCOL.md: a parked TAKE or WAIT is answered with what there is
    as soon as the client sends another request, which then runs."""
    b = ctx.broker
    w = b.worker("w", lease=30000)
    c = b.client()
    jid = c.submit(["x"], q="other")
    t0 = time.monotonic()
    w.send(b"TAKE 1 60000 default\r\n")
    time.sleep(0.3)
    w.send(b"HEARTBEAT 999:1\r\n")
    r = w.read_reply()
    dt = time.monotonic() - t0
    eq(r.expect_items(), [], "the parked TAKE ends with ITEMS 0")
    check(dt < 2, "the parked TAKE ended %.2fs after the next request" % dt)
    eq([(d.kind, d["id"]) for d in w.read_reply().expect_items()],
       [("drop", "999")], "then the HEARTBEAT runs")
    # Pipelined: TAKE that would wait, then a FINISH of a held job.
    j = w.take1(queues="other")
    t0 = time.monotonic()
    w.send(b"TAKE 1 60000 default\r\nFINISH %s 1 exit=0 0\r\n\r\n" %
           j["id"].encode())
    eq(w.read_reply().expect_items(), [], "TAKE")
    w.read_reply().expect_ok("done")
    check(time.monotonic() - t0 < 2, "slow")
    eq(c.status1(jid)["state"], "done", "the FINISH ran")
    # A parked WAIT, ended by a PING.
    k = c.submit(["y"])
    t0 = time.monotonic()
    c.send(b"WAIT 60000 %d\r\n" % k)
    time.sleep(0.3)
    c.send(b"PING\r\n")
    eq(c.read_reply().expect_items(1)[0]["state"], "queued", "WAIT")
    c.read_reply().expect_ok()
    check(time.monotonic() - t0 < 2, "the parked WAIT ended late")
    # Without another request, TAKE waits for its WAIT-MS.
    t0 = time.monotonic()
    eq(w.take(1, 700, "empty"), ([], []), "nothing")
    dt = time.monotonic() - t0
    check(0.65 <= dt < 3, "TAKE 1 700 returned after %.2fs" % dt)
    t0 = time.monotonic()
    eq(w.take(1, 0, "empty"), ([], []), "nothing")
    check(time.monotonic() - t0 < 0.5, "TAKE 1 0 must not wait")


def test_finish_outcomes(ctx):
    b = ctx.broker
    c = b.client()
    w = b.worker("w", host="h")
    cases = [
        ({"exit": 0}, "done", {"exit": "0"}, None),
        ({"exit": 0, "timedout": 1}, "failed", {"timedout": "1"},
         "timed out"),
        ({"signal_": 15}, "failed", {"signal": "15"}, "killed by signal 15"),
        ({"exit": 3}, "failed", {"exit": "3"}, "exit status 3"),
        ({"exit": 255}, "failed", {"exit": "255"}, "exit status 255"),
    ]
    for kw, want, keys, reason in cases:
        jid = c.submit(["x"])
        j = w.take1()
        w.finish_job(j, **kw).expect_ok(want)
        it = c.status1(jid)
        eq(it["state"], want, "state after FINISH %r" % kw)
        for k, v in keys.items():
            eq(it.get(k), v, "%s after FINISH %r" % (k, kw))
        eq(it.get("reason"), reason, "reason after FINISH %r" % kw)
        eq((it["worker"], it["host"]), ("w", "h"), "worker and host")
        check("finished" in it and "started" in it, "times: %r" % it)
    jid = c.submit(["x"])
    j = w.take1()
    w.request("FAIL %s %s exec%%20./sim:%%20No%%20such%%20file" %
              (j["id"], j["attempt"])).expect_ok("failed")
    it = c.status1(jid)
    eq((it["state"], it["reason"]), ("failed", "exec ./sim: No such file"),
       "FAIL")
    check("exit" not in it, "no exit status after FAIL: %r" % it)
    # Names at their limits.
    q = "Q" * 128
    jid = c.submit(["x"], q=q, name="n" * 128)
    eq(c.status1(jid)["q"], q, "a 128-byte queue name")
    eq(w.take1(queues=q)["id"], str(jid), "taken from it")
