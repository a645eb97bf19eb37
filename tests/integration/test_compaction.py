"""
Compaction in a child process: kill -9 of the broker while its child
writes the snapshot, kill -9 of the child itself, a disk that fills up
under the child.  At every moment the journal is either the old snapshot
with every segment after it or the new snapshot with the segments the
broker wrote meanwhile: a restart finds every acknowledged change and the
same state.

--compact-child-delay (a hidden test hook) makes the child pause half of
it before its switch-over and half after, so that random moments fall
before, during and after the rename.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

from harness import (Broker, check, eq, ids_of_list, mount_tmpfs, tail,
                     wait_until)
from test_durability import check_ok

DELAY_MS = 300
ARGS = ["--compact-min", "200K", "--compact-child-delay", str(DELAY_MS),
        "--retry-backoff", "1ms", "--retry-backoff-max", "1ms"]
OUT = b"j" * 20000


def started(b):
    return b.current_log().count("compacting the journal")


def ended(b):
    log = b.current_log()
    return log.count("compacted the journal") + \
        log.count("compaction failed")


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def snapshot_children(datadir):
    """Compaction children (by name) of any broker of datadir, alive."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % p) as f:
                if f.read().strip() != "simqd-snapshot":
                    continue
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if datadir.encode() not in f.read():
                    continue
            with open("/proc/%s/stat" % p) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue
        except OSError:
            continue
        out.append(int(p))
    return out


def state(c):
    """What a restart must give back: every job, array and task as LIST
    shows it (without due times, which are relative), the queues that
    hold something, and the next id."""
    items = ids_of_list(c)
    jobs = sorted(" ".join(x for x in it.line.split(" ")
                           if not x.startswith("due="))
                  for it in items)
    qs = sorted(q.line for q in c.request("QUEUES").expect_items()
                if q["paused"] == "1" or any(
                    q[k] != "0" for k in ("waiting", "queued", "running",
                                          "done", "failed", "canceled")))
    return jobs, qs, c.stats()["next_id"]


class Scene:
    """A live state of every kind: queued, waiting on a dependency,
    running under worker w, done with output, an array, a paused queue;
    and the junk job, whose failed attempts of 20 KB output each grow the
    journal by 20 KB with no more than 20 KB of live output."""

    def __init__(self, b):
        self.b = b
        c = b.client()
        w = b.worker("w", lease=60000)
        q = c.submit(["keep", "queued"], pri=3, name="kq")
        c.submit(["keep", "waiting"], after=q)
        c.submit(["keep", "{}"], array="1-5%2", q="arrq")
        c.submit(["keep", "p"], q="paused")
        c.request("PAUSE paused").expect_ok()
        self.running = w.take(2, 0, "arrq")[0]
        eq(len(self.running), 2, "array tasks running")
        d = c.submit(["keep", "done"], q="fin")
        w.finish_job(w.take1(0, "fin"), out=b"output").expect_ok("done")
        self.done = d
        self.junk = c.submit(["junk"], q="junk", retries=1000)
        c.close()
        w.close()
        self.acked = []

    def connect(self):
        """A client and worker w again, its running jobs reattached."""
        c = self.b.client()
        w = self.b.worker("w", lease=60000)
        eq(w.heartbeat(*self.running), [], "the leases are still held")
        return c, w

    def grow_until_compacting(self, c, w, what):
        """Failed attempts of the junk job until a child is at work;
        then a few acknowledged submits, which go to the new segment."""
        wait_until(lambda: ended(self.b) == started(self.b), 20,
                   "%s: an earlier compaction to end" % what)
        n0 = started(self.b)
        for i in range(200):
            j = w.take1(wait=2000, queues="junk")
            w.finish_job(j, exit=1, out=OUT).expect_ok("waiting")
            if started(self.b) > n0:
                break
        check(started(self.b) > n0, "%s: no compaction after %d attempts "
              "of 20 KB output:\n%s" % (what, i + 1,
                                        tail(self.b.current_log())))
        for k in range(5):
            self.acked.append(c.submit(["after", what, str(k)], q="late"))
        # The junk job's 1 ms backoff is over: it is queued, as after a
        # restart.
        wait_until(lambda: c.status1(self.junk)["state"] == "queued", 5,
                   "%s: the junk job queued" % what)


def kill_times(rng, n):
    """n moments after the state was taken, shuffled: half of them early
    (the child still before its switch-over), the others spread over the
    rest of its life and past it."""
    early = [rng.uniform(0, 0.05) for _ in range(n // 2)]
    late = [rng.uniform(0.1, DELAY_MS * 1.4 / 1000) for _ in range(n - n // 2)]
    t = early + late
    rng.shuffle(t)
    return t


def restart_and_compare(b, before, what):
    check_ok(b, what)
    b.start()
    c = b.client()
    after = state(c)
    for k, name in enumerate(("LIST", "QUEUES")):
        eq(after[k], before[k], "%s: %s after the restart" % (what, name))
    # After a crash ids resume above the reservation the broker had made
    # for leases sent before their commit: at most 1024 above.
    check(int(before[2]) <= int(after[2]) <= int(before[2]) + 1024,
          "%s: next_id %s after the restart, %s before" % (what, after[2],
                                                          before[2]))
    c.close()


def test_kill9_broker_during_compaction(ctx):
    """kill -9 of the broker at random moments while its child writes the
    snapshot: the child dies with it, and the restart (which waits for
    the journal's lock the child held) finds the state as it was."""
    seed = int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    b = ctx.start_broker(ARGS)
    sc = Scene(b)
    rounds = 12
    times = kill_times(rng, rounds)
    for rnd in range(rounds):
        what = "round %d (seed %d)" % (rnd, seed)
        c, w = sc.connect()
        sc.grow_until_compacting(c, w, what)
        before = state(c)
        time.sleep(times[rnd])
        b.kill9()
        c.close()
        w.close()
        wait_until(lambda: not snapshot_children(b.datadir), 5,
                   "%s: the compaction child to die with the broker" % what)
        restart_and_compare(b, before, what)
    c = b.client()
    for jid in sc.acked:
        eq(c.status1(jid)["state"], "queued", "acknowledged job %d" % jid)


test_kill9_broker_during_compaction.timeout = 180


def test_kill9_compaction_child(ctx):
    """kill -9 of the compaction child at random moments: the broker goes
    on (logging that the compaction failed, or that it was done if the
    child was past its switch-over), the state is unchanged, and so it is
    after a kill -9 of the broker and a restart."""
    seed = int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    b = ctx.start_broker(ARGS)
    sc = Scene(b)
    failed = done = 0
    rounds = 12
    times = kill_times(rng, rounds)
    for rnd in range(rounds):
        what = "round %d (seed %d)" % (rnd, seed)
        c, w = sc.connect()
        sc.grow_until_compacting(c, w, what)
        # The compactions before this one are over (the one a restart
        # may start included): this one is the only one running.
        n0 = b.current_log().count("compaction failed")
        e0 = ended(b)
        before = state(c)
        kids = children_of(b.pid)
        check(kids, "%s: no compaction child" % what)
        time.sleep(times[rnd])
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: ended(b) > e0, 10,
                   "%s: the broker to hear of its child's end" % what)
        c.request("PING").expect_ok()
        eq(state(c), before, "%s: the state after the child's kill" % what)
        if b.current_log().count("compaction failed") > n0:
            failed += 1
            check("Interrupted" in b.current_log(), "%s: the log says the "
                  "child was killed:\n%s" % (what, tail(b.current_log())))
        else:
            done += 1
        check(not [f for f in os.listdir(b.journal_dir())
                   if f.endswith(".tmp")],
              "%s: the killed child's file is removed: %r" %
              (what, os.listdir(b.journal_dir())))
        c.close()
        w.close()
        b.kill9()
        restart_and_compare(b, before, what)
    check(failed > 0, "no kill landed before the switch-over in %d rounds "
          "(seed %d)" % (rounds, seed))


test_kill9_compaction_child.timeout = 180


def test_sigterm_during_compaction(ctx):
    """SIGTERM while a child writes the snapshot: the broker stops the
    child, shuts down cleanly, and leaves no temporary file; a restart
    gives the state back."""
    b = ctx.start_broker(ARGS)
    sc = Scene(b)
    for rnd, wait in enumerate((0.01, DELAY_MS * 0.75 / 1000)):
        what = "round %d" % rnd
        c, w = sc.connect()
        sc.grow_until_compacting(c, w, what)
        before = state(c)
        time.sleep(wait)
        c.close()
        w.close()
        t0 = time.monotonic()
        b.stop()
        check(time.monotonic() - t0 < 2, "%s: the stop waited for the "
              "child" % what)
        check(not snapshot_children(b.datadir), "%s: the child outlived "
              "the broker" % what)
        check(not [f for f in os.listdir(b.journal_dir())
                   if f.endswith(".tmp")],
              "%s: a temporary file is left: %r" %
              (what, os.listdir(b.journal_dir())))
        restart_and_compare(b, before, what)


def test_full_disk_during_compaction(ctx):
    """A real full disk (a small tmpfs) under the compaction child: the
    child fails with ENOSPC and removes its file, the broker logs it and
    goes on serving from the old journal, and nothing acknowledged is
    lost."""
    mnt, umount = mount_tmpfs(ctx, "2m")
    datadir = os.path.join(mnt, "d")
    b = Broker(ctx, ["--compact-min", "400K", "--compact-child-delay",
                     str(DELAY_MS)], datadir=datadir)
    b.start()
    c = b.client()
    # About 350 KB of live jobs, below the floor.
    acked = {}
    for k in range(35):
        body = "".join("job %d-%d %s\n" % (k, i, "x" * 80)
                       for i in range(100)).encode()
        r = c.request("BATCH %d" % len(body), body).expect_ok()
        first, n = int(r.words[0]), int(r.words[1])
        for i in range(n):
            acked[first + i] = ["job", "%d-%d" % (k, i), "x" * 80]
    eq(started(b), 0, "no compaction yet")
    # Fill the disk but for about 150 KB: the broker's own appends fit,
    # a snapshot of the live jobs does not.
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - 150 * 1024))
    # Cross the floor.
    k = 0
    while started(b) == 0:
        body = "".join("job more%d-%d\n" % (k, i) for i in range(50)).encode()
        r = c.request("BATCH %d" % len(body), body).expect_ok()
        first, n = int(r.words[0]), int(r.words[1])
        for i in range(n):
            acked[first + i] = ["job", "more%d-%d" % (k, i)]
        k += 1
        check(k < 200, "no compaction:\n%s" % tail(b.current_log()))
    wait_until(lambda: ended(b) > 0, 10, "the compaction to end")
    log = b.current_log()
    check("compaction failed: No space left on device" in log,
          "the log says why the compaction failed:\n%s" % tail(log))
    check(b.running(), "the broker goes on")
    check(not [f for f in os.listdir(b.journal_dir()) if f.endswith(".tmp")],
          "the child removed its file: %r" % os.listdir(b.journal_dir()))
    # It still acknowledges what fits.
    late = c.submit(["job", "late"])
    acked[late] = ["job", "late"]
    items = {int(it["id"]): it for it in ids_of_list(c)}
    for jid, tag in acked.items():
        check(jid in items and items[jid].argv == tag,
              "job %d (%s) after the failed compaction: %r" %
              (jid, tag, items.get(jid)))
    c.close()
    b.kill9()
    os.unlink(filler)
    check_ok(b, "after the failed compaction")
    b.start()
    c = b.client()
    items = {int(it["id"]): it for it in ids_of_list(c)}
    for jid, tag in acked.items():
        check(jid in items and items[jid].argv == tag,
              "job %d (%s) after the restart: %r" %
              (jid, tag, items.get(jid)))
    # With room again, a compaction succeeds (at the start, since the
    # journal is past its floor).
    wait_until(lambda: "compacted the journal" in b.current_log(), 10,
               "a compaction with room on the disk")
    b.stop()
    umount()


test_full_disk_during_compaction.timeout = 120


def test_start_after_kill9_is_not_fooled_by_an_old_listener(ctx):
    """After a kill -9 that lands just after a compaction's fork, the
    child, not yet past closing what it inherited, holds the broker's
    listening socket until it dies: connections to the port then complete
    into that socket's backlog and are reset when it goes.  A restart
    (Broker.start) must hand out connections to the broker it started,
    not to that socket: here the test holds a listener on the port, as
    the child would, and lets it go after half a second.  (The restarted
    broker, finding the port taken, exits, and the harness tries another
    port.)"""
    b = ctx.broker
    c = b.client()
    jid = c.submit(["keep"])
    c.close()
    b.kill9()
    old = socket.socket()
    old.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    old.bind((b.host, b.port))
    old.listen(16)
    t = threading.Timer(0.5, old.close)
    t.start()
    try:
        b.start()
        c = b.client()
        eq(c.status1(jid)["state"], "queued", "the job after the restart")
    finally:
        t.cancel()
        old.close()
    check(b.running(), "the broker is running")


# What a compaction child holds from its fork until it has closed what it
# inherited: the data directory's lock, the journal's lock (its directory)
# and the listening socket; held by this stand-in until it exits.
HOLDER = r"""
import fcntl, os, socket, sys, time
datadir, host, port, secs = sys.argv[1:5]
lock = open(os.path.join(datadir, "lock"), "a")
fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
jdir = os.open(os.path.join(datadir, "journal"), os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(jdir, fcntl.LOCK_EX | fcntl.LOCK_NB)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
s.listen(16)
print("held", flush=True)
time.sleep(float(secs))
"""


def test_start_waits_for_an_orphaned_childs_locks(ctx):
    """A kill -9 of the broker just after a compaction's fork leaves the
    child holding, until the kernel has killed it in turn, what it shares
    with the broker: the data directory's lock, the journal's lock and the
    listening socket.  A start meanwhile waits for the locks (up to 5 s)
    and then listens on its port, rather than exit with "in use by another
    simqd".  A process holding the same three things for half a second
    after the kill stands in for the child."""
    b = ctx.broker
    c = b.client()
    jid = c.submit(["keep"])
    c.close()
    port = b.port
    b.kill9()
    h = subprocess.Popen([sys.executable, "-c", HOLDER, b.datadir, b.host,
                          str(port), "0.5"], stdout=subprocess.PIPE)
    try:
        eq(h.stdout.readline(), b"held\n", "the stand-in holds the locks")
        b.start()
        c = b.client()
        eq(c.status1(jid)["state"], "queued", "the job after the restart")
    finally:
        h.kill()
        h.wait()
    log = b.current_log()
    check("%s is locked; waiting" % os.path.join(b.datadir, "lock") in log,
          "the broker says it waits for the lock:\n%s" % tail(log))
    eq(b.port, port, "the restarted broker's port")
