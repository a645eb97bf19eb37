"""
One task of an array canceled or retried before any worker took it, and
ranges of tasks; a queue emptied; the dependency kinds (after-ok,
after-any, after-failed) on jobs, arrays and tasks; a retry that re-queues
the dependents that failed because of it; jobs that call simq with the
worker's credential.  Each live and after a restart, with a real broker
and, where something runs, a real simq-worker.
"""

import glob
import os

from harness import check, check_counts, eq, wait_until
from clientlib import Simq, simq_path
from workerlib import WorkerProc, wait_job


def test_job_calls_simq_with_worker_token(ctx):
    """With a token, a job runs simq (result, submit) against its broker
    with the worker's credential, given at exec time: the secret is in no
    job record and in no journal file."""
    tok = ctx.newfile("token")
    secret = "s3cret-for-jobs"
    with open(tok, "w") as f:
        f.write(secret + "\n")
    os.chmod(tok, 0o600)
    b = ctx.start_broker(["--token-file", tok])
    simq = Simq(ctx, b, token=secret)
    WorkerProc(ctx, b, args=["--token-file", tok])
    first = simq.submit("--", "sh", "-c", "echo 42 > $SIMQ_RESULT")
    out = ctx.newfile("job-out")
    sq = simq_path(ctx)
    jid = simq.submit("--after", first, "--", "sh", "-c",
                      "%s result %s > %s && %s submit -- true" %
                      (sq, first, out, sq))
    r = simq("wait", jid)
    eq(r.rc, 0, "the job that calls simq succeeded: %r %r" %
       (r, simq("status", "-l", jid).out))
    eq(open(out).read().strip(), "42", "simq result from inside a job")
    # The job's own submit made job 3.
    eq(simq("status", "--json", str(int(jid) + 1)).json()["jobs"][0]
       ["state"] in ("queued", "running", "done"), True, "job 3 exists")
    for fn in glob.glob(os.path.join(b.datadir, "**"), recursive=True):
        if os.path.isfile(fn):
            check(secret.encode() not in open(fn, "rb").read(),
                  "the token is in %s" % fn)
    check(secret not in simq("status", "-l", "--json", jid).out,
          "the token shows in the job's status")


def counts(simq, jid):
    j = simq("status", "--json", jid).json()["jobs"][0]
    return {k: v for k, v in j["counts"].items() if v}


def state(simq, jid):
    return simq("status", "--json", jid).json()["jobs"][0]["state"]


def test_cancel_retry_pending_task_of_big_array(ctx):
    """simq cancel 25_25 and simq retry 25_25 of a task no worker has
    taken, and ranges (25_[1-10], to the end), on a million-task array
    that stays a count: one task record per task changed alone, none for
    a range to the end; the same after a restart and after a snapshot."""
    b = ctx.start_broker(["--compact-min", "4K", "--segment-size", "4096"])
    simq = Simq(ctx, b)
    c = b.client()
    aid = simq.submit("--array", "1-1000000", "--", "echo", "{}")
    base = int(c.stats()["jobs"])
    eq(simq("cancel", "%s_25" % aid).ok().out, "canceled 1 job\n",
       "cancel of a pending task")
    eq(state(simq, "%s_25" % aid), "canceled", "task 25")
    eq(state(simq, "%s_24" % aid), "queued", "task 24")
    eq(simq("cancel", "%s_25" % aid).ok().out.startswith("Nothing"), True,
       "a second cancel changes nothing")
    eq(simq("retry", "%s_25" % aid).ok().out, "re-queued 1 job\n",
       "retry of the canceled task")
    eq(state(simq, "%s_25" % aid), "queued", "task 25 after retry")
    eq(simq("cancel", "%s_[1-10,12]" % aid).ok().out, "canceled 11 jobs\n",
       "a range")
    eq(simq("cancel", "%s_999991-1000000" % aid).ok().out,
       "canceled 10 jobs\n", "a range to the end, without brackets")
    eq(simq("cancel", "%s_[500001-1000000]" % aid).ok().out,
       "canceled 499990 jobs\n", "a range to the end")
    want = {"queued": 1000000 - 11 - 500000, "canceled": 500000 + 11}
    eq(counts(simq, aid), want, "the array's counts")
    grown = int(c.stats()["jobs"]) - base
    check(grown <= 12, "%d task records for 12 tasks changed alone and "
          "two ranges to the end" % grown)
    simq("retry", "%s_[999999-1000000]" % aid).ok()
    want = {"queued": want["queued"] + 2, "canceled": want["canceled"] - 2}
    eq(counts(simq, aid), want, "after retrying two of the cut-off rest")
    simq("cancel", "%s_[2000000-3000000]" % aid).fails(2, "no task")
    simq("cancel", "%s_[5-x]" % aid).fails(2, "bad job id")
    # A range of more pending tasks than one may give records to at once.
    simq("cancel", "%s_[100-400000]" % aid).fails(2, "more than")
    eq(counts(simq, aid), want, "refused ranges change nothing")

    def all_states():
        ids = ["%s_%d" % (aid, i) for i in
               (1, 10, 11, 12, 13, 24, 25, 500000, 500001, 999998, 999999,
                1000000)]
        return [t["state"] for t in
                simq("status", "--json", *ids).json()["jobs"]]
    live = all_states()
    C, Q = "canceled", "queued"
    eq(live, [C, C, Q, C, Q, Q, Q, Q, C, C, Q, Q], "task states live")
    c.close()
    b.restart()
    c = b.client()
    eq(all_states(), live, "task states after a restart")
    eq(counts(simq, aid), want, "counts after a restart")
    check_counts(c, "after a restart")
    # Enough journal to compact: the snapshot holds the tasks made out of
    # order, and gives them back.
    for i in range(60):
        simq("submit", "--no-check", "-q", "filler", "--", "x" * 100).ok()
    simq("cancel", "-q", "filler").ok()
    wait_until(lambda: "compacted" in b.log(), 10, "a compaction")
    c.close()
    b.restart()
    c = b.client()
    eq(all_states(), live, "task states after a snapshot")
    eq(counts(simq, aid), want, "counts after a snapshot")
    check_counts(c, "after a snapshot")
    # A range to the end cuts off the rest, and cancels the two retried
    # ones past the cut, which have their records.
    eq(simq("cancel", "%s_[999000-1000000]" % aid).ok().out,
       "canceled 2 jobs\n", "a range over the cut-off rest")
    eq(counts(simq, aid), {"queued": want["queued"] - 2,
                           "canceled": want["canceled"] + 2}, "counts")


def test_canceled_pending_tasks_are_skipped_by_workers(ctx):
    """Tasks canceled before any worker took them do not run; a retried
    one does, and the array ends when the rest has; live and replayed."""
    b = ctx.start_broker()
    simq = Simq(ctx, b)
    aid = simq.submit("--array", "1-8", "--", "sh", "-c", "echo {}")
    simq("cancel", "%s_2" % aid, "%s_[5-6]" % aid).ok()
    simq("cancel", "%s_8" % aid).ok()
    simq("retry", "%s_8" % aid).ok()
    b.restart()
    WorkerProc(ctx, b)
    r = simq("wait", aid)
    eq(r.rc, 1, "wait: some tasks were canceled %r" % r)
    eq(counts(simq, aid), {"done": 5, "canceled": 3}, "counts")
    eq(simq("result", aid).rc in (0, 1), True, "result")
    eq(state(simq, "%s_8" % aid), "done", "retried task 8 ran")
    for i in (2, 5, 6):
        eq(state(simq, "%s_%d" % (aid, i)), "canceled", "task %d" % i)
    simq("retry", "%s_[1-6]" % aid).ok()
    r = simq("wait", aid)
    eq(r.rc, 0, "after retrying the range: %r" % r)
    eq(counts(simq, aid), {"done": 8}, "counts")
    b.restart()
    eq(counts(simq, aid), {"done": 8}, "counts after a restart")


def test_cancel_queue(ctx):
    """simq cancel -q QUEUE [--state STATE] empties a queue: every job and
    task not finished, or those in one state; other queues untouched."""
    b = ctx.start_broker()
    simq = Simq(ctx, b)
    c = b.client()
    w = b.worker("w")
    j1 = simq.submit("--no-check", "-q", "sims", "--", "a")
    j2 = simq.submit("--no-check", "-q", "sims", "--", "b")
    big = simq.submit("--no-check", "-q", "sims", "--array", "1-1000000",
                      "--", "c", "{}")
    other = simq.submit("--no-check", "-q", "other", "--", "d")
    later = simq.submit("--no-check", "-q", "sims", "--after", other, "--",
                        "e")
    jobs, _ = w.take(2, 0, "sims")
    eq([j["id"] for j in jobs], [j1, j2], "taken")
    task = w.take(1, 0, "sims")[0][0]
    eq(task["id"], "%s_1" % big, "a task taken")
    simq("cancel", "-q", "sims", "--state", "bogus").fails(2, "--state")
    simq("cancel", "-q", "nosuch").fails(2, "no queue")
    eq(simq("cancel", "-q", "sims", "--state", "running").ok().out,
       "canceled 3 jobs\n", "the running ones")
    eq(state(simq, later), "waiting", "a waiting job stays")
    eq(counts(simq, big), {"queued": 999999, "canceled": 1}, "array")
    eq(simq("cancel", "-q", "sims", "--state", "queued").ok().out,
       "canceled 999999 jobs\n", "the queued tasks, as a count")
    eq(state(simq, later), "waiting", "a waiting job stays")
    eq(simq("cancel", "-q", "sims").ok().out, "canceled 1 job\n",
       "the rest")
    eq(state(simq, later), "canceled", "the waiting one")
    eq(state(simq, other), "queued", "another queue's job")
    b.restart()
    eq(state(simq, later), "canceled", "after a restart")
    eq(counts(simq, big), {"canceled": 1000000}, "array after a restart")
    eq(state(simq, other), "queued", "another queue's job")


def test_dependency_kinds(ctx):
    """Slurm's kinds: after-ok (--after), after-any, after-failed, on a
    job, an array and a task, submitted before their targets ended and
    resolved after a restart, and submitted after they ended."""
    b = ctx.start_broker()
    simq = Simq(ctx, b)
    simq("submit", "-q", "t", "--", "true").ok()     # makes queue t
    simq("pause", "t").ok()
    ok = simq.submit("-q", "t", "--", "true")
    bad = simq.submit("-q", "t", "--", "false")
    arr = simq.submit("-q", "t", "--array", "1-4", "--", "sh", "-c",
                      "test {} != 2")
    cases = [
        (["--after", ok], "done"),
        (["--after-any", ok], "done"),
        (["--after-failed", ok], "canceled"),
        (["--after", bad], "failed"),
        (["--after-any", bad], "done"),
        (["--after-failed", bad], "done"),
        (["--after", "ok:%s,any:%s" % (ok, bad)], "done"),
        (["--after", "failed:%s" % bad, "--after-any", arr], "done"),
        (["--after", arr], "failed"),
        (["--after-any", arr], "done"),
        (["--after-failed", arr], "done"),
        (["--after", "%s_1" % arr], "done"),
        (["--after-failed", "%s_2" % arr], "done"),
        (["--after-failed", "%s_1" % arr], "canceled"),
        (["--after-any", "%s_2" % arr], "done"),
    ]
    before = [simq.submit(*(a + ["--", "true"])) for a, _ in cases]
    r = simq("status", "-l", before[6])
    check("after" in r.out and "any:%s" % bad in r.out,
          "status -l shows the kinds: %r" % r.out)
    simq("submit", "--after", "bogus:1", "--", "true").fails(2, "ok, any")
    simq("submit", "--after-any", "1_x", "--", "true").fails(2,
                                                             "--after-any")
    b.restart()
    simq("resume", "t").ok()
    WorkerProc(ctx, b, args=["-q", "t,default"])
    simq("wait", *before)
    for (a, want), jid in zip(cases, before):
        eq(state(simq, jid), want, "%s %s (submitted before)" %
           (" ".join(a), jid))
    # An after-any array dependency ran only once every task had ended.
    # Submitted after the targets ended: decided at once, the same way.
    after = [simq.submit(*(a + ["--", "true"])) for a, _ in cases]
    simq("wait", *after)
    for (a, want), jid in zip(cases, after):
        eq(state(simq, jid), want, "%s %s (submitted after)" %
           (" ".join(a), jid))
    b.restart()
    for (a, want), jid in zip(cases, before + after):
        eq(state(simq, jid), want, "%s %s after a restart" %
           (" ".join(a), jid))


def test_after_any_array_waits_for_every_task(ctx):
    """After-any on an array runs when every task has finished, whatever
    its end, and not before."""
    b = ctx.start_broker()
    simq = Simq(ctx, b)
    c = b.client()
    w = b.worker("w")
    arr = simq.submit("--no-check", "--array", "1-3", "--", "x")
    dep = simq.submit("--no-check", "--after-any", arr, "--", "y")
    jobs, _ = w.take(3)
    eq(len(jobs), 3, "the tasks")
    w.finish_job(jobs[0], exit=1).expect_ok()
    c.request("CANCEL %s" % jobs[1]["id"]).expect_ok("1")
    eq(state(simq, dep), "waiting", "one task still runs")
    b.restart()
    eq(state(simq, dep), "waiting", "one task still runs, after a restart")
    w = b.worker("w")
    w.heartbeat()
    w.finish_job(jobs[2]).expect_ok()
    eq(state(simq, dep), "queued", "every task ended")


def test_retry_requeues_failed_dependents(ctx):
    """simq retry of an array whose task failed re-queues the gather job
    that failed because of it, and the chain after it, and says so; the
    same after a restart."""
    b = ctx.start_broker()
    simq = Simq(ctx, b)
    flag = os.path.join(ctx.mkdtemp("flag"), "ok")
    arr = simq.submit("--array", "1-3", "--", "sh", "-c",
                      "test {} != 2 || test -e %s" % flag)
    gather = simq.submit("--after", arr, "--", "true")
    report = simq.submit("--after", gather, "--", "true")
    cleanup = simq.submit("--after-failed", arr, "--", "true")
    w = WorkerProc(ctx, b)
    simq("wait", report, cleanup)
    eq([state(simq, j) for j in (arr, gather, report, cleanup)],
       ["failed", "failed", "failed", "done"], "after the failure")
    w.kill9()
    open(flag, "w").close()
    eq(simq("retry", "%s_2" % arr).ok().out,
       "re-queued 1 job; also re-queued 2 dependents\n", "retry's output")
    eq(simq("--json", "retry", arr).ok().json(),
       {"requeued": 0, "dependents": 0}, "nothing left to retry")
    eq([state(simq, j) for j in (gather, report)], ["waiting", "waiting"],
       "the dependents wait again")
    b.restart()
    eq([state(simq, j) for j in (gather, report)], ["waiting", "waiting"],
       "the dependents wait again after a restart")
    WorkerProc(ctx, b)
    r = simq("wait", report)
    eq(r.rc, 0, "the chain ran: %r" % r)
    eq([state(simq, j) for j in (arr, gather, report, cleanup)],
       ["done", "done", "done", "done"], "at the end")
    # A plain job's retry, and a dependent that fails again because
    # another of its dependencies is still failed.
    bad = simq.submit("--", "sh", "-c", "test -e %s.2" % flag)
    bad2 = simq.submit("--", "false")
    d1 = simq.submit("--after", bad, "--", "true")
    d2 = simq.submit("--after", "%s,%s" % (bad, bad2), "--", "true")
    simq("wait", d1, d2)
    open(flag + ".2", "w").close()
    eq(simq("retry", bad).ok().out,
       "re-queued 1 job; also re-queued 1 dependent\n", "one of two")
    r = simq("wait", d1)
    eq(r.rc, 0, "d1 ran: %r" % r)
    eq(state(simq, d2), "failed", "d2 still failed with bad2")


def test_task_records_count_against_max_jobs(ctx):
    """A task canceled alone gets a record, which --max-jobs counts as it
    counts a submitted job; a range to the end of the array needs none."""
    b = ctx.start_broker(["--max-jobs", "3"])
    simq = Simq(ctx, b)
    aid = simq.submit("--no-check", "--array", "1-100", "--", "x")
    simq.submit("--no-check", "--", "y")
    eq(simq("cancel", "%s_5" % aid).ok().out, "canceled 1 job\n", "one")
    simq("cancel", "%s_6" % aid).fails(2, "--max-jobs")
    eq(state(simq, "%s_6" % aid), "queued", "nothing changed")
    eq(simq("cancel", "%s_[50-100]" % aid).ok().out, "canceled 51 jobs\n",
       "a range to the end")
    eq(counts(simq, aid), {"queued": 48, "canceled": 52}, "counts")
