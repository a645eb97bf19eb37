"""
simq-worker when its node, not its job, goes wrong: the work directory's
file system fills up under a running job, and a job's shepherd process is
killed from outside.  Real simqd, real simq-worker, real jobs; the full
disk is a small tmpfs (root only, else skipped).
"""

import os
import signal
import subprocess
import time

from harness import Broker, Skip, TestFailure, check, eq, wait_until
from clientlib import Simq
from workerlib import (WorkerProc, marker, procs_with, wait_job, wait_procs,
                       output)


def sh(script):
    return ["sh", "-c", script]


def mount_tmpfs(ctx, size):
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs")
    mnt = ctx.mkdtemp("tmpfs")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", mnt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise Skip("mount -t tmpfs failed: %s" % p.stdout.decode().strip())
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", mnt]))
    return mnt


def fill(path):
    """Writes zeros to path until the file system is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def worker_item(c, name):
    r = c.request("WORKERS")
    for it in r.items:
        if it.get("name") == name:
            return it
    raise TestFailure("worker %s not in WORKERS: %r" % (name, r.items))


def test_full_disk_keeps_the_tail_and_the_job(ctx):
    mnt = mount_tmpfs(ctx, "256k")
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, name="full", args=["-w", os.path.join(mnt, "w")])
    # About 1.3 MB of stdout into 256 KiB: the disk fills while the job
    # writes, through a pipe the job does not control.
    jid = c.submit(sh("seq 1 200000; st=$?; echo tail-of-stderr >&2; "
                      "exit $st"))
    it = wait_job(ctx, c, jid, timeout=20)
    eq((it["state"], it.get("exit"), it.get("signal")), ("done", "0", None),
       "the job is not killed for its output (no SIGPIPE): %r" % it)
    full = "".join("%d\n" % i for i in range(1, 200001)).encode()
    got = output(c, jid, "stdout")
    eq(len(got), 65536, "the stdout tail is sent in full")
    check(got == full[-65536:], "the stdout tail is the last 64 KiB of "
          "what the job wrote (got ...%r)" % got[-40:])
    eq(output(c, jid, "stderr"), b"tail-of-stderr\n",
       "stderr's tail is sent too")
    reason = it.get("reason", "")
    check("No space left on device" in reason and it["outpath"] in reason,
          "status says which file could not be written, and why: %r" % it)
    check(os.path.getsize(it["outpath"]) < len(full),
          "the file on the node is incomplete (that is the point)")
    # The worker says so too: in WORKERS, simq workers and simq status.
    wait_until(lambda: "No space" in worker_item(c, "full").get("outerr",
                                                                  ""),
               5 * ctx.slow, "WORKERS to show the worker's output error")
    simq = Simq(ctx, b)
    r = simq("workers").ok()
    check("No space left on device" in r.out and "full" in r.out,
          "simq workers shows it:\n%s" % r.out)
    r = simq("status").ok()
    check("No space left on device" in r.out, "simq status shows it:\n%s" %
          r.out)
    r = simq("status", "-l", jid).ok()
    check("No space left on device" in r.out, "simq status ID shows it:\n%s"
          % r.out)
    j = simq.run("--json", "workers").ok()
    check("No space left on device" in j.out, "and its JSON: %s" % j.out)

    # A disk that is full before the job starts: the first byte fails.
    for f in os.listdir(os.path.join(mnt, "w")):
        os.unlink(os.path.join(mnt, "w", f))
    fill(os.path.join(mnt, "filler"))
    jid2 = c.submit(sh("echo hello; exit 3"))
    it = wait_job(ctx, c, jid2, timeout=20)
    eq((it["state"], it.get("exit")), ("failed", "3"), "its own exit status")
    eq(output(c, jid2), b"hello\n", "the tail of a job that wrote nothing "
       "to disk")
    check(it.get("reason", "").startswith("exit status 3; output ") and
          "No space left on device" in it["reason"],
          "a failed job's reason keeps its cause first: %r" % it)

    # Space again: the next job that writes output clears the condition.
    os.unlink(os.path.join(mnt, "filler"))
    jid3 = c.submit(sh("echo fine"))
    it = wait_job(ctx, c, jid3, timeout=20)
    eq((it["state"], it.get("reason")), ("done", None), "a normal job again")
    eq(output(c, jid3), b"fine\n", "its output")
    wait_until(lambda: "outerr" not in worker_item(c, "full"),
               5 * ctx.slow, "the output error to clear in WORKERS")
    r = simq("workers").ok()
    check("No space" not in r.out, "simq workers is clear:\n%s" % r.out)
    check(w.running(), "the worker runs on")


test_full_disk_keeps_the_tail_and_the_job.timeout = 90


def shepherd_of(mark):
    """The pid of the simq-shepherd process running the job marked mark."""
    for pid in procs_with(mark):
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%d/comm" % ppid) as f:
                if f.read().strip() == "simq-shepherd":
                    return ppid
        except (OSError, ValueError, IndexError):
            continue
    return None


def test_killed_shepherd_requeues_the_job(ctx):
    b = ctx.broker
    c = b.client()
    d = ctx.mkdtemp("runs")
    w = WorkerProc(ctx, b, slots=1)
    m = marker()
    # The first attempt waits to be killed; the second finishes.
    jid = c.submit(sh('echo "$SIMQ_ATTEMPT" >> %s/ran; '
                      '[ "$SIMQ_ATTEMPT" = 1 ] && sleep 1000; echo second'
                      % d), env="SIMQ_TEST_MARK=" + m)
    wait_procs(ctx, m, 2)
    pid = shepherd_of(m)
    check(pid is not None, "the job runs under a simq-shepherd process")
    os.kill(pid, signal.SIGKILL)
    it = wait_job(ctx, c, jid, timeout=20)
    eq((it["state"], it["attempts"], it.get("exit")), ("done", "2", "0"),
       "a job whose shepherd was killed runs again: %r" % it)
    eq(output(c, jid), b"second\n", "the second attempt's output")
    with open(os.path.join(d, "ran")) as f:
        eq(f.read(), "1\n2\n", "two attempts, one after the other")
    check(w.running(), "the worker survives")
    check("its shepherd process was killed by signal 9" in w.log(),
          "the worker logs what happened")
    st = c.stats()
    check(st.get("lost") not in (None, "0"), "counted as lost: %r" % st)


def test_killed_shepherd_beyond_max_lost(ctx):
    b = Broker(ctx, args=["--max-lost", "1"]).start()
    c = b.client()
    WorkerProc(ctx, b, slots=1)
    m = marker()
    jid = c.submit(["sleep", "1000"], env="SIMQ_TEST_MARK=" + m)
    for attempt in (1, 2):
        wait_until(lambda: c.status1(jid).get("attempts") == str(attempt)
                   and shepherd_of(m) is not None, 10 * ctx.slow,
                   "attempt %d to run" % attempt)
        os.kill(shepherd_of(m), signal.SIGKILL)
    it = wait_job(ctx, c, jid, timeout=20)
    eq((it["state"], it["attempts"]), ("failed", "2"),
       "lost more often than --max-lost 1 allows: %r" % it)
    eq(it.get("reason"), "its worker was lost 2 times (the last time its "
       "shepherd process died)", "the reason says so")


def test_protocol_release_lost_and_outerr(ctx):
    """The wire side of both: RELEASE ... lost=1 counts against
    --max-lost and survives a restart; outerr= in FINISH is the attempt's
    reason, in HEARTBEAT the worker's condition."""
    b = Broker(ctx, args=["--max-lost", "1"]).start()
    c = b.client()
    w = b.worker("p")
    jid = c.submit(["x"])
    j = w.take1()
    w.request("RELEASE %s %s lost=2" % (jid, j["attempt"])) \
        .expect_err("bad-request")
    w.request("RELEASE %s %s junk=1" % (jid, j["attempt"])) \
        .expect_err("bad-request")
    w.request("RELEASE %s %s lost=1" % (jid, j["attempt"])).expect_ok("queued")
    it = c.status1(jid)
    eq(it.get("reason"), "its shepherd process died", "re-queued: %r" % it)
    j = w.take1()
    eq(j["attempt"], "2", "taken again")
    w.request("RELEASE %s 2 lost=1" % jid).expect_ok("failed")
    eq(c.status1(jid).get("reason"), "its worker was lost 2 times (the "
       "last time its shepherd process died)", "beyond --max-lost")
    # Output errors: a done job keeps the note, a failed one its cause
    # first.
    ok = c.submit(["y"])
    bad = c.submit(["z"])
    j1 = w.take1()
    j2 = w.take1()
    w.finish_job(j1, 0, outerr="a%00b").expect_err("bad-request")
    w.finish_job(j1, 0, outerr="x" * 1025).expect_err("bad-request")
    w.finish_job(j1, 0, out=b"tail", outerr="output%20/w/1.out:%20full") \
        .expect_ok("done")
    w.finish_job(j2, 2, outerr="output%20/w/2.out:%20full") \
        .expect_ok("failed")
    eq(c.status1(ok).get("reason"), "output /w/1.out: full", "done: note")
    eq(c.status1(bad).get("reason"), "exit status 2; output /w/2.out: full",
       "failed: its cause, then the note")
    # HEARTBEAT outerr=: shown by WORKERS until cleared; NUL refused.
    w.request("HEARTBEAT outerr=disk%20full").expect_items(0)
    eq(worker_item(c, "p").get("outerr"), "disk full", "WORKERS shows it")
    w.request("HEARTBEAT outerr=a%00b").expect_err("bad-request")
    w.request("HEARTBEAT outerr=").expect_items(0)
    check("outerr" not in worker_item(c, "p"), "cleared")
    c.close()
    w.close()
    b.stop()
    b.start()
    c = b.client()
    eq(c.status1(jid).get("reason"), "its worker was lost 2 times (the "
       "last time its shepherd process died)", "after a restart")
    eq((c.status1(bad)["state"], c.status1(bad).get("reason")),
       ("failed", "exit status 2; output /w/2.out: full"), "after a restart")
