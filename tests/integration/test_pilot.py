"""
Pilot workers: a worker with an end (simq-worker --idle-timeout,
--time-limit, SIGTERM in a pilot), against a real simqd and real jobs.
A worker under a time limit takes only jobs whose timeout fits in what it
has left, and hands back what still runs shortly before its end; SIGTERM
(what Slurm sends at the end of an allocation and on scancel) hands the
running jobs back at once, and they re-run on another worker.
tests/slurm/run.py (make check-slurm) does the same under a real Slurm.
"""

import os
import signal
import time

from harness import check, eq, wait_until
from workerlib import (WorkerProc, marker, procs_with, wait_job, wait_no_procs,
                       wait_procs)


def sh(script):
    return ["sh", "-c", script]


def test_time_limit_takes_what_fits_and_hands_back(ctx):
    b = ctx.broker
    c = b.client()
    long_ = c.submit(["true"], timeout=60000)
    # --grace 5s: the worker stops what still runs 6 s before its end
    # (30 s), at 24 s.
    w = WorkerProc(ctx, b, slots=2, lease=30000,
                   args=["--time-limit", "30s", "--grace", "5s"])
    t0 = time.monotonic()
    w.wait_registered(c)
    short = c.submit(sh("sleep 0.5"), timeout=5000)
    eq(wait_job(ctx, c, short)["state"], "done", "a --timeout 5s job runs")
    eq(c.status1(long_)["state"], "queued",
       "a --timeout 1m job is not taken by a worker with 30s left")
    # Fits in the time left (about 28 s), but would run past the stop
    # point (24 s): handed back before the end.
    m = marker()
    late = c.submit(sh("sleep 100"), timeout=26000, retries=0,
                    env="SIMQ_TEST_MARK=" + m)
    wait_job(ctx, c, late, states=("running",))
    wait_procs(ctx, m, 1)
    check(time.monotonic() - t0 < 4, "taken in time to run past the stop "
          "point: the test is too slow")
    eq(w.wait_exit(35), 0, "the worker exits at its time limit")
    took = time.monotonic() - t0
    check(took < 30, "it exits before its end (%.1fs)" % took)
    check(took > 23, "and not long before it (%.1fs)" % took)
    wait_no_procs(ctx, m, what="the handed-back job")
    it = c.status1(late)
    eq(it["state"], "queued", "the running job is handed back, queued")
    check("handing" in w.log() and "time limit" in w.log(),
          "the worker says why:\n" + w.log()[-1500:])
    eq(c.status1(long_)["state"], "queued", "the 1m job was never taken")
    # Another worker, without a limit, runs both.
    WorkerProc(ctx, b, slots=2)
    eq(wait_job(ctx, c, long_)["state"], "done", "the 1m job runs elsewhere")
    wait_job(ctx, c, late, states=("running",))
test_time_limit_takes_what_fits_and_hands_back.timeout = 120


def test_idle_timeout(ctx):
    b = ctx.broker
    c = b.client()
    t0 = time.monotonic()
    w = WorkerProc(ctx, b, args=["--idle-timeout", "1s"])
    eq(w.wait_exit(10), 0, "an idle worker exits after --idle-timeout")
    took = time.monotonic() - t0
    check(0.9 < took < 5 * ctx.slow, "after about 1 s (%.1fs)" % took)
    check("idle for 1000 ms; exiting" in w.log(), "says so")
    # A running job is not idleness: the worker waits for it, then for
    # the idle time again.
    jid = c.submit(["sleep", "2"])
    t0 = time.monotonic()
    w = WorkerProc(ctx, b, args=["--idle-timeout", "1s"])
    eq(w.wait_exit(15), 0, "exits once idle after its job")
    took = time.monotonic() - t0
    eq(c.status1(jid)["state"], "done", "its job ran to its end")
    check(took > 2.9, "not before the job's 2 s and 1 s idle (%.1fs)" % took)


def _sigterm_hands_back(ctx, w, c, b):
    m = marker()
    jid = c.submit(sh("sleep 1000"), timeout=600000, retries=0,
                   env="SIMQ_TEST_MARK=" + m)
    wait_job(ctx, c, jid, states=("running",))
    wait_procs(ctx, m, 1)
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(10), 0, "exit status after SIGTERM")
    check(time.monotonic() - t0 < 3 * ctx.slow,
          "the job is stopped at once, not waited for")
    wait_no_procs(ctx, m, what="the stopped job")
    it = c.status1(jid)
    eq(it["state"], "queued", "handed back, ready for another worker")
    eq(it.int("attempts"), 1, "one attempt so far")
    check("handing them back" in w.log(), "the worker says so")
    # Another worker picks it up at once: no lease to wait for.
    t0 = time.monotonic()
    w2 = WorkerProc(ctx, b, slots=1, lease=30000)
    it = wait_job(ctx, c, jid, states=("running",), timeout=5)
    check(time.monotonic() - t0 < 5 * ctx.slow, "re-run promptly")
    eq(it.get("worker"), w2.name, "on the other worker")
    c.request("CANCEL %s" % jid)


def test_sigterm_under_time_limit_hands_jobs_back(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=1, lease=30000,
                   args=["--time-limit", "1h", "--grace", "500ms"])
    _sigterm_hands_back(ctx, w, c, b)


def _fake_squeue(ctx, script):
    """A directory with an squeue that runs script (and notes its
    arguments in ARGS), to put first on PATH."""
    d = ctx.mkdtemp("bin")
    with open(os.path.join(d, "squeue"), "w") as f:
        f.write("#!/bin/sh\necho \"$@\" > %s/args\n%s\n" % (d, script))
    os.chmod(os.path.join(d, "squeue"), 0o755)
    return d


def test_slurm_time_left(ctx):
    # In a Slurm job the worker's end is the job's: squeue's time left.
    b = ctx.broker
    c = b.client()
    d = _fake_squeue(ctx, "echo 1-02:03:04")
    w = WorkerProc(ctx, b, slots=1, env={
        "SLURM_JOB_ID": "4242", "PATH": d + ":" + os.environ["PATH"]})
    w.wait_registered(c)
    log = w.wait_log("Slurm job 4242 ends in 93784 s")
    with open(os.path.join(d, "args")) as f:
        eq(f.read().split(), ["-h", "-j", "4242", "-o", "%L"],
           "squeue's arguments")
    nolimit = c.submit(["true"])
    fits = c.submit(["true"], timeout=3600000)
    eq(wait_job(ctx, c, fits)["state"], "done", "a job with a timeout runs")
    eq(c.status1(nolimit)["state"], "queued",
       "a job without a timeout does not fit a worker with an end")
    check("time limit 93784000 ms" in log, log)
    # --time-limit 0: no limit, even in a Slurm job.
    w.signal(signal.SIGTERM)
    w.wait_exit(10)
    w = WorkerProc(ctx, b, slots=1, args=["--time-limit", "0"], env={
        "SLURM_JOB_ID": "4242", "PATH": d + ":" + os.environ["PATH"]})
    eq(wait_job(ctx, c, nolimit)["state"], "done",
       "--time-limit 0: jobs without a timeout run too")


def test_sigterm_in_slurm_job_hands_jobs_back(ctx):
    # In a Slurm job (SLURM_JOB_ID set) SIGTERM means the allocation
    # ends, even when its end could not be read (squeue fails, or hangs:
    # the worker gives it 5 s): hand back at once.
    b = ctx.broker
    c = b.client()
    d = _fake_squeue(ctx, "echo 'slurm_load_jobs error: Invalid job id "
                     "specified' >&2; exit 1")
    w = WorkerProc(ctx, b, slots=1, lease=30000, args=["--grace", "500ms"],
                   env={"SLURM_JOB_ID": "999999999",
                        "PATH": d + ":" + os.environ["PATH"]})
    w.wait_log("Invalid job id specified; no time limit")
    _sigterm_hands_back(ctx, w, c, b)


def test_squeue_that_hangs(ctx):
    # An squeue that cannot reach slurmctld retries for a minute: the
    # worker gives it 5 s, kills it, and goes on without a limit.
    b = ctx.broker
    c = b.client()
    m = marker()
    d = _fake_squeue(ctx, "exec sleep 60")
    t0 = time.monotonic()
    w = WorkerProc(ctx, b, slots=1, env={
        "SLURM_JOB_ID": "77", "SIMQ_TEST_MARK": m,
        "PATH": d + ":" + os.environ["PATH"]})
    w.wait_registered(c, timeout=15)
    took = time.monotonic() - t0
    check(4.5 < took < 10 * ctx.slow, "registered after squeue's 5 s "
          "(%.1fs)" % took)
    check("no answer within 5 s; no time limit" in w.log(), w.log())
    # Only the worker itself is left with the mark: squeue was killed.
    wait_until(lambda: procs_with(m) == [w.pid], 3,
               "the hung squeue to be gone")


def test_sigterm_to_jobs_and_worker_hands_back(ctx):
    # A batch system ending an allocation signals every process in it:
    # a job may die of its SIGTERM before the worker hears its own.  It
    # is handed back all the same; a job killed by SIGTERM with no
    # SIGTERM for the worker is reported as it ended.
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=2, lease=30000,
                   args=["--time-limit", "1h", "--grace", "500ms"])
    alone = marker()
    jid = c.submit(["sleep", "1000"], timeout=600000, retries=0,
                   env="SIMQ_TEST_MARK=" + alone)
    pids = wait_procs(ctx, alone, 1)
    os.kill(pids[0], signal.SIGTERM)
    it = wait_job(ctx, c, jid)
    eq((it["state"], it.get("signal")), ("failed", str(signal.SIGTERM)),
       "killed by SIGTERM from outside, the worker going on")
    check("holding its report" in w.log(), "the report was held a moment")
    m = marker()
    ids = [c.submit(["sleep", "1000"], timeout=600000, retries=0,
                    env="SIMQ_TEST_MARK=" + m) for _ in range(2)]
    pids = wait_procs(ctx, m, 2)
    for p in pids:
        os.kill(p, signal.SIGTERM)
    time.sleep(0.2)
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(10), 0, "exit status")
    for i in ids:
        it = c.status1(i)
        eq(it["state"], "queued", "handed back, not failed by the signal")
        eq(it.int("attempts"), 1, "one attempt")
    check("it was the allocation ending" in w.log(), w.log()[-1500:])
