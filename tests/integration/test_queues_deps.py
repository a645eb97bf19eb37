"""
Queues that exist only while they are used, and dependencies on every kind
of target (a job, an array, one task of an array) ending every way (done,
failed, canceled), live and across a restart.
"""

import time

from harness import check, eq, wait_until
from clientlib import Simq, start_workers, wait_workers

QUEUES_MAX = 4096


def queue_names(c):
    return sorted(q["name"] for q in c.request("QUEUES").expect_items())


def test_pause_unknown_queue(ctx):
    """PAUSE and RESUME of a queue that does not exist make nothing: a
    typo must not leave a queue behind, journaled for ever."""
    b = ctx.broker
    c = b.client()
    c.request("PAUSE defualt").expect_err("not-found")
    c.request("RESUME junk").expect_err("not-found")
    frames = [c.frame("PAUSE junk%d" % i) for i in range(QUEUES_MAX + 4)]
    for r in c.pipeline(frames):
        r.expect_err("not-found")
    eq(int(c.stats()["queues"]), 0, "queues after the junk")
    eq(queue_names(c), [], "QUEUES")
    c.close()
    b.restart()
    c = b.client()
    eq(int(c.stats()["queues"]), 0, "queues after a restart")
    c.submit(["x"])
    eq(queue_names(c), ["default"], "the first job makes its queue")
    # A paused queue stays while paused, even when its jobs are gone.
    c.request("PAUSE default").expect_ok()
    c.request("CANCEL 1").expect_ok("1")
    eq(queue_names(c), ["default"], "paused queue kept")


def test_queue_limit_and_forgetting(ctx):
    """4,096 queues may exist at once; once their jobs are past their
    retention they are forgotten (live, and after a restart), so names
    cannot pile up until every new queue is refused."""
    b = ctx.start_broker(["--retention", "1s"])
    c = b.client()
    frames = [c.frame("SUBMIT q=q%d -- x" % i) for i in range(QUEUES_MAX + 4)]
    replies = c.pipeline(frames)
    oks = [r for r in replies if r.kind == "OK"]
    eq(len(oks), QUEUES_MAX, "queues made before the limit")
    for r in replies[QUEUES_MAX:]:
        r.expect_err("limit")
    c.request("SUBMIT q=one-more -- x").expect_err("limit")
    c.request("SUBMIT q=q5 -- x").expect_ok()   # an existing queue is fine
    # Paused with a job, then emptied: kept while paused.
    c.request("PAUSE q7").expect_ok()
    ids = [int(r.words[0]) for r in oks] + [QUEUES_MAX + 1]
    frames = [c.frame("CANCEL %d" % i) for i in ids]
    for r in c.pipeline(frames):
        r.expect_ok("1")
    wait_until(lambda: int(c.stats()["queues"]) == 1, 10,
               "the canceled jobs' queues to be forgotten after retention "
               "(%s left)" % c.stats()["queues"])
    eq(queue_names(c), ["q7"], "the paused queue is kept")
    c.request("SUBMIT q=one-more -- x").expect_ok()
    c.close()
    b.restart()
    c = b.client()
    eq(queue_names(c), ["one-more", "q7"], "queues after a restart")
    c.request("RESUME q7").expect_ok()
    eq(queue_names(c), ["one-more"], "resumed and empty: forgotten")
    c.close()
    b.restart()
    c = b.client()
    eq(queue_names(c), ["one-more"], "not back after a restart")
    c.request("SUBMIT q=another -- x").expect_ok()


test_queue_limit_and_forgetting.timeout = 120


# The dependency matrix.  Each case has its own queues: "tN" for the
# target, "aN" for the dependent.

KINDS = ("job", "array", "task", "pending-task")
ENDS = ("done", "failed", "canceled")


def start_target(c, w, n, kind):
    """Submits the target and starts what runs of it; returns (id to
    depend on, running attempts, id to cancel)."""
    q = "t%d" % n
    if kind == "job":
        jid = c.submit(["t"], q=q)
        return str(jid), w.take(1, 0, q)[0], str(jid)
    aid = c.submit(["t", "{}"], q=q, array="1-3")
    if kind == "array":
        return str(aid), w.take(3, 0, q)[0], str(aid)
    if kind == "task":
        # The task is running, so it has a record: the case of the bug.
        return "%d_1" % aid, w.take(1, 0, q)[0], "%d_1" % aid
    # No task taken: 3 has no record when the dependent arrives.
    return "%d_3" % aid, [], str(aid)


def end_target(c, w, n, kind, end, running, cancel_id):
    q = "t%d" % n
    if end == "canceled":
        check(int(c.request("CANCEL %s" % cancel_id).expect_ok().words[0])
              >= 1, "canceled something")
        return
    if kind == "pending-task":
        running = w.take(3, 0, q)[0]
    eq(len(running), 1 if kind in ("job", "task") else 3, "running")
    for j in running:
        # failed: the job, the task, the array's first task, task 3.
        fail = end == "failed" and (
            kind in ("job", "task") or
            (kind == "array" and j["id"].endswith("_1")) or
            (kind == "pending-task" and j["id"].endswith("_3")))
        w.finish_job(j, exit=1 if fail else 0).expect_ok()


def expect_dependent(c, dep, target, end, what):
    it = c.status1(dep)
    if end == "done":
        eq(it["state"], "queued", "%s: the dependent is released" % what)
    else:
        eq((it["state"], it["reason"]),
           ("failed", "dependency %s %s" % (target, end)),
           "%s: the dependent fails with its dependency" % what)


def test_dependency_matrix(ctx):
    """A dependency on a job, an array, a running task and a task with no
    record yet, ending done, failed or canceled, with or without a restart
    between the dependent's submit and the target's end: the dependent is
    released or failed, and stays so after another restart."""
    b = ctx.broker
    n = 0
    for restart in (False, True):
        for kind in KINDS:
            for end in ENDS:
                n += 1
                what = "%s %s%s" % (kind, end,
                                    " across a restart" if restart else "")
                c = b.client()
                w = b.worker("w")
                target, running, cancel_id = start_target(c, w, n, kind)
                dep = c.submit(["after"], q="a%d" % n, after=target)
                eq(c.status1(dep)["state"], "waiting",
                   "%s: the dependent waits" % what)
                if restart:
                    c.close()
                    w.close()
                    b.restart()
                    c = b.client()
                    w = b.worker("w")
                end_target(c, w, n, kind, end, running, cancel_id)
                expect_dependent(c, dep, target, end, what)
                c.close()
                w.close()
    # Every outcome is kept by the journal.
    b.restart()
    c = b.client()
    n = 0
    for restart in (False, True):
        for kind in KINDS:
            for end in ENDS:
                n += 1
                deps = c.request("LIST q=a%d" % n).expect_items(1)
                eq(deps[0]["state"], "queued" if end == "done" else "failed",
                   "case %d (%s %s) after the last restart" % (n, kind, end))


test_dependency_matrix.timeout = 120


def test_after_array_task_with_real_worker(ctx):
    """The reproduction: a job after one task of a running array runs
    once that task is done, and `simq wait` on it returns."""
    b = ctx.broker
    s = Simq(ctx, b)
    start_workers(ctx, b, 1, slots=4)
    wait_workers(s, 1)
    x = s.submit("--array", "1-4", "--", "sh", "-c", "sleep 0.5")

    def task1():
        return s("status", "--json", "%s_1" % x).json()["jobs"][0]["state"]
    wait_until(lambda: task1() == "running", 10, "task 1 to run")
    dep = s.submit("--after", "%s_1" % x, "--", "echo", "after-task")
    t0 = time.time()
    r = s("wait", "-t", "20s", dep)
    eq(r.rc, 0, "simq wait on the dependent: %r" % r)
    check(time.time() - t0 < 15, "it ran in time")
    eq(s("output", dep).ok().out, "after-task\n", "its output")
