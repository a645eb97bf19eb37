"""
Durability and failure: kill -9 at random moments during pipelined
submits, restarts with leased jobs, SIGTERM with clients connected, full
disks (real and injected), corrupt and torn journals, compaction.
"""

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

from harness import (Broker, Client, ConnectionClosed, TestFailure, check,
                     eq, ids_of_list, run_simqd, submit_line, tail,
                     wait_until)


# ---------------------------------------------------------------------------
# Load generators

class Loader:
    """One connection that pipelines SUBMITs and BATCHes (every command
    unique: 'job TAG') from one thread and reads replies in another, until
    stopped or the connection dies.  .acked maps id -> tag for every job
    acknowledged; .sent_tags holds every tag ever sent."""

    INFLIGHT = 16

    def __init__(self, port, prefix, rng, batch_ratio=0.3, opts=None,
                 timeout=30, pause=0):
        self.c = Client(port, timeout=timeout)
        self.prefix = prefix
        self.rng = random.Random(rng.random())
        self.batch_ratio = batch_ratio
        self.opts = opts or {}
        self.pause = pause
        self.sent = []
        self.sent_tags = set()
        self.acked = {}
        self.errors = []
        self.server_errors = 0
        self.stop = threading.Event()
        self.sem = threading.Semaphore(self.INFLIGHT)
        self.n = 0
        self.ts = threading.Thread(target=self.sender, daemon=True)
        self.tr = threading.Thread(target=self.reader, daemon=True)

    def start(self):
        self.ts.start()
        self.tr.start()
        return self

    def frame(self):
        if self.rng.random() < self.batch_ratio:
            k = self.rng.randint(1, 12)
            tags = ["%s-%d" % (self.prefix, self.n + i) for i in range(k)]
            self.n += k
            body = "".join("job %s\n" % t for t in tags).encode()
            opts = " ".join("%s=%s" % kv for kv in self.opts.items())
            line = "BATCH %s%d" % (opts + " " if opts else "", len(body))
            return ("BATCH", tags), Client.frame(line, body)
        tag = "%s-%d" % (self.prefix, self.n)
        self.n += 1
        return ("SUBMIT", [tag]), Client.frame(
            submit_line(["job", tag], **self.opts))

    def sender(self):
        try:
            while not self.stop.is_set():
                if not self.sem.acquire(timeout=0.05):
                    continue
                what, data = self.frame()
                self.sent.append(what)
                self.sent_tags.update(what[1])
                self.c.sock.sendall(data)
                if self.pause:
                    time.sleep(self.pause)
        except OSError:
            pass

    def reader(self):
        i = 0
        try:
            while True:
                r = self.c.read_reply()
                kind, tags = self.sent[i]
                i += 1
                self.sem.release()
                if r.kind == "ERR" and r.code == "server":
                    self.server_errors += 1
                    continue
                if kind == "SUBMIT":
                    self.acked[r.one_id()] = tags[0]
                else:
                    r.expect_ok()
                    first, n = int(r.words[0]), int(r.words[1])
                    if n != len(tags):
                        raise TestFailure("BATCH of %d acknowledged as %d" %
                                          (len(tags), n))
                    for k in range(n):
                        self.acked[first + k] = tags[k]
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass
        except Exception as e:  # noqa: reported by finish()
            if not isinstance(e, OSError):
                self.errors.append(repr(e))
        finally:
            self.stop.set()

    def finish(self, timeout=20):
        self.stop.set()
        self.tr.join(timeout)
        self.ts.join(timeout)
        self.c.close()
        if self.tr.is_alive():
            raise TestFailure("a loader's reader did not stop")
        if self.errors:
            raise TestFailure("loader %s: %s" % (self.prefix, self.errors[0]))


def list_jobs(c, after=0):
    """{id: item} of every job with id > after."""
    out = {}
    while True:
        items = c.request("LIST after=%d limit=100000" % after).expect_items()
        for it in items:
            jid = int(it["id"])
            if jid in out:
                raise TestFailure("LIST shows id %d twice" % jid)
            out[jid] = it
        if len(items) < 100000:
            return out
        after = int(items[-1]["id"])


def verify_acked(c, acked, sent_tags, after, what):
    """Every acknowledged job is there once with its command; no job has a
    command never sent; no command is there twice.  Returns the jobs."""
    jobs = list_jobs(c, after)
    seen = {}
    for jid, it in jobs.items():
        if it.kind != "job" or it.argv is None or len(it.argv) != 2 or \
                it.argv[0] != "job":
            raise TestFailure("%s: unexpected item %r" % (what, it))
        tag = it.argv[1]
        if tag not in sent_tags:
            raise TestFailure("%s: job %d has a command never sent: %r" %
                              (what, jid, it))
        if tag in seen:
            raise TestFailure("%s: command %s is there twice: ids %d and %d"
                              % (what, tag, seen[tag], jid))
        seen[tag] = jid
    missing = [(jid, tag) for jid, tag in acked.items()
               if jid not in jobs or jobs[jid].argv[1] != tag]
    if missing:
        jid, tag = missing[0]
        raise TestFailure("%s: %d acknowledged jobs lost or changed, e.g. id "
                          "%d (%s): %r" % (what, len(missing), jid, tag,
                                           jobs.get(jid)))
    return jobs


def check_ok(b, what):
    rc, out = b.run_check()
    if rc != 0 or "OK" not in out.split():
        raise TestFailure("%s: simqd --check exited %d:\n%s" %
                          (what, rc, tail(out)))
    return out


# ---------------------------------------------------------------------------

def test_kill9_during_pipelined_submits(ctx):
    seed = int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    b = ctx.broker
    rounds = 24
    total = 0           # jobs known to be there
    prev_max = 0
    all_acked = {}
    all_tags = set()
    for rnd in range(rounds):
        what = "round %d (seed %d)" % (rnd, seed)
        nclients = rng.randint(1, 4)
        loaders = [Loader(b.port, "r%dc%d" % (rnd, k), rng,
                          batch_ratio=rng.choice([0, 0.2, 0.5, 1.0]))
                   for k in range(nclients)]
        for ld in loaders:
            ld.start()
        time.sleep(rng.uniform(0.005, 0.2))
        b.kill9()
        acked = {}
        tags = set()
        for ld in loaders:
            ld.finish()
            for jid, tag in ld.acked.items():
                if jid in acked or jid in all_acked:
                    raise TestFailure("%s: id %d acknowledged twice" %
                                      (what, jid))
                acked[jid] = tag
            tags |= ld.sent_tags
            eq(ld.server_errors, 0, "%s: ERR server replies" % what)
        check(not acked or min(acked) > prev_max,
              "%s: an id acknowledged in this round (%d) is not above "
              "every earlier id (%d)" % (what, min(acked or [0]), prev_max))
        check_ok(b, what)
        b.start()
        c = b.client()
        jobs = verify_acked(c, acked, tags, prev_max, what)
        total += len(jobs)
        eq(int(c.stats()["jobs"]), total, "%s: jobs in STATS (earlier "
           "rounds' jobs must all still be there)" % what)
        top = max([prev_max] + list(jobs) + list(acked))
        probe = c.submit(["job", "probe-%d" % rnd])
        check(probe > top, "%s: id %d after the restart is not above %d" %
              (what, probe, top))
        tags.add("probe-%d" % rnd)
        acked[probe] = "probe-%d" % rnd
        total += 1
        prev_max = probe
        all_acked.update(acked)
        all_tags |= tags
        c.close()
    # Once more, everything, after a clean restart.
    b.restart()
    c = b.client()
    jobs = verify_acked(c, all_acked, all_tags, 0, "at the end")
    eq(len(jobs), total, "jobs at the end")
    check(len(all_acked) > 100, "the rounds acknowledged only %d jobs: "
          "the test did not test much" % len(all_acked))


test_kill9_during_pipelined_submits.timeout = 150


def test_kill9_while_workers_take_and_finish(ctx):
    """kill -9 of the broker at random moments while real workers take
    (with jobs leased ahead: the jobs are short) and finish jobs at full
    speed, their leases sent before their commit (every other start holds
    each commit with a lease for a while, so many kills land between a
    lease sent and its record on disk): no acknowledged job lost, none
    done twice, no attempt of a job run twice under one number, every
    job's outcome its last attempt's, from the worker that ran it (a stale
    result is refused)."""
    from workerlib import WorkerProc
    seed = int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    b = ctx.start_broker(["--reconnect-grace", "2s"])
    runs = os.path.join(ctx.mkdtemp("runs"), "runs")
    open(runs, "w").close()
    job = ["sh", "-c", 'echo "$SIMQ_JOB_ID $SIMQ_ATTEMPT $SIMQ_WORKER" >> ' +
           runs]
    for k in range(2):
        WorkerProc(ctx, b, name="kw%d" % k, slots=2, lease=4000)
    acked = []
    stop = threading.Event()

    def submitter():
        c = None
        while not stop.is_set():
            try:
                if c is None:
                    c = Client(b.port, timeout=5)
                acked.append(c.submit(job))
            except Exception:
                c = None
                time.sleep(0.02)
    t = threading.Thread(target=submitter, daemon=True)
    t.start()
    rounds = 20
    early = 0
    for rnd in range(rounds):
        time.sleep(rng.uniform(0.05, 0.4))
        try:
            with Client(b.port, timeout=1) as s:
                early += int(s.stats()["early_leases"])
        except Exception:
            pass
        b.kill9()
        time.sleep(rng.uniform(0, 0.1))
        b.start(["--commit-delay", str(rng.choice((5, 20, 50)))]
                if rnd % 2 == 0 else [])
    time.sleep(0.5)
    stop.set()
    t.join(10)
    c = b.client()
    what = "after %d kill -9 rounds (seed %d)" % (rounds, seed)
    check(len(acked) > 50, "%s: only %d jobs acknowledged" %
          (what, len(acked)))
    check(early > 0, "%s: no lease went before its commit" % what)
    eq(len(set(acked)), len(acked), "%s: an id acknowledged twice" % what)

    def all_done():
        return all(it["state"] == "done" for it in
                   c.status(*acked[-200:])) and \
            all(c.status1(j)["state"] == "done" for j in acked[:-200])
    wait_until(all_done, 60 * ctx.slow, "%s: every acknowledged job done"
               % what, interval=0.2)
    seen = {}
    with open(runs) as f:
        for line in f:
            jid, att, wname = line.split()
            key = (int(jid), int(att))
            check(key not in seen, "%s: job %s attempt %s ran twice" %
                  (what, jid, att))
            seen[key] = wname
    for i in range(0, len(acked), 200):
        for it in c.status(*acked[i:i + 200]):
            jid = int(it["id"])
            ran = [a for (j, a) in seen if j == jid]
            check(ran, "%s: job %d done but never ran" % (what, jid))
            eq(int(it["attempts"]), max(ran), "%s: job %d's outcome is "
               "its last attempt's" % (what, jid))
            eq(it.get("worker"), seen[(jid, max(ran))], "%s: job %d's "
               "result is from the worker that ran that attempt" %
               (what, jid))
    check_ok(b, what)


test_kill9_while_workers_take_and_finish.timeout = 180


def test_restart_with_leased_jobs(ctx):
    b = ctx.broker
    c = b.client()
    ids = [c.submit(["x", str(i)]) for i in range(4)]
    arr = c.submit(["t", "{}"], array="1-3", q="arrq")
    w = b.worker("node3:9", lease=30000, host="node3")
    jobs, _ = w.take(5, 0, "default,arrq")
    eq(len(jobs), 5, "took 5")
    # One finished, one released before the crash.
    w.finish_job(jobs[0], out=b"hi").expect_ok("done")
    w.request("RELEASE %s %s" % (jobs[1]["id"], jobs[1]["attempt"])) \
        .expect_ok("queued")
    held = jobs[2:]
    c.close()
    w.close()
    b.kill9()
    b.start()
    c = b.client()
    for j in held:
        it = c.status1(j["id"])
        eq((it["state"], it["attempts"], it.get("worker"), it.get("host")),
           ("running", j["attempt"], "node3:9", "node3"),
           "leased job %s after a restart" % j["id"])
    eq(c.status1(jobs[0]["id"])["state"], "done", "finished job")
    eq(c.request("OUTPUT %s stdout" % jobs[0]["id"]).data, b"hi", "output")
    it = c.status1(jobs[1]["id"])
    eq((it["state"], it["attempts"]), ("queued", "1"), "released job")
    ws = {x["name"]: x for x in c.request("WORKERS").expect_items()}
    check("node3:9" in ws and ws["node3:9"]["connected"] == "0",
          "the worker is known, disconnected: %r" % ws)
    eq(ws["node3:9"].get("njobs"), "3", "its jobs")
    # Nothing re-runs them: another worker gets only the released job.
    o = b.worker("other")
    got, _ = o.take(10)
    eq([g["id"] for g in got], [jobs[1]["id"]], "only the released job "
       "is handed out; the leased ones are not re-run")
    # After a crash its next attempt skips the one a commit lost with the
    # crash might have handed out (simqd(8), DURABILITY).
    eq(got[0]["attempt"], "3", "released job's next attempt")
    # The worker comes back and finishes them.
    w = b.worker("node3:9", lease=30000)
    eq(w.heartbeat(*held), [], "no drops for the leased jobs")
    for j in held:
        w.finish_job(j).expect_ok("done")
    for j in held:
        it = c.status1(j["id"])
        eq((it["state"], it["attempts"]), ("done", j["attempt"]),
           "finished by the original attempt")
    # And through a clean restart as well.
    k = c.submit(["k"])
    jk = w.take1()
    c.close()
    w.close()
    o.close()
    b.restart()
    c = b.client()
    it = c.status1(k)
    eq((it["state"], it["attempts"]), ("running", "1"), "after SIGTERM")
    w = b.worker("node3:9")
    w.finish_job(jk).expect_ok("done")
    it = c.status1(arr)
    eq((it["state"], it["done"], it["queued"]), ("queued", "1", "2"),
       "array after its first task finished across a restart")


def test_sigterm_with_clients_and_parked_takes(ctx):
    b = ctx.broker
    c = b.client()
    ids = [c.submit(["x", str(i)], q="busy") for i in range(3)]
    w0 = b.worker("w0")
    running = w0.take1(queues="busy")
    parked = []
    for i in range(3):
        w = b.worker("p%d" % i)
        w.send(b"TAKE 4 20000 idle\r\n")
        parked.append(w)
    waiter = b.client()
    waiter.send(b"WAIT 20000 %d\r\n" % ids[1])
    idle = [b.client() for _ in range(5)]
    half = b.client()
    half.send(b"SUBMIT -- part")      # an incomplete line
    time.sleep(0.3)
    t0 = time.monotonic()
    b.stop(timeout=5 * ctx.slow)
    dt = time.monotonic() - t0
    check(dt < 2 * ctx.slow, "SIGTERM took %.2fs" % dt)
    # Every connection is closed (a parked one may get its reply first).
    for conn in parked + [waiter] + idle + [half]:
        conn.settimeout(5)
        try:
            while True:
                conn.read_reply()
        except ConnectionClosed:
            pass
        except OSError:
            pass
    b.start()
    c = b.client()
    for jid in ids:
        check(c.status1(jid)["state"] in ("queued", "running"),
              "job %d after restart" % jid)
    eq(c.status1(running["id"])["state"], "running", "leased job")
    eq(c.status1(running["id"])["attempts"], "1", "attempts")
    eq(len(list_jobs(c)), 3, "no job from the incomplete line")


def fill_until_server_error(b, ctx, rng, limit_s=60):
    """Pipelines submits until a reply is ERR server; returns acked ids and
    every tag sent."""
    loaders = [Loader(b.port, "f%d" % k, rng, batch_ratio=0.3)
               for k in range(2)]
    for ld in loaders:
        ld.start()
    deadline = time.monotonic() + limit_s * ctx.slow
    while time.monotonic() < deadline:
        if any(ld.server_errors for ld in loaders):
            break
        if not b.running():
            # Its last replies may still be on their way to the readers,
            # which stop at the end of the connection.
            for ld in loaders:
                ld.tr.join(10 * ctx.slow)
            break
        time.sleep(0.02)
    got_err = any(ld.server_errors for ld in loaders)
    rc = b.wait_exit(20 * ctx.slow) if got_err else None
    acked, tags = {}, set()
    for ld in loaders:
        ld.finish()
        acked.update(ld.acked)
        tags |= ld.sent_tags
    check(got_err, "no ERR server within %ds (broker running: %s)" %
          (limit_s * ctx.slow, b.running()))
    return acked, tags, rc


def test_injected_enospc(ctx):
    rng = random.Random(7)
    for limit in ("100K", "1M"):
        b = ctx.start_broker(["--fail-writes-after", limit])
        c = b.client()
        pre = c.submit(["job", "pre"])
        c.close()
        acked, tags, rc = fill_until_server_error(b, ctx, rng)
        check(rc != 0, "the broker must exit non-zero after a write error "
              "(exit %r)" % rc)
        check("write" in b.current_log() or "journal" in b.current_log(),
              "the log should say why: %s" % tail(b.current_log()))
        out = check_ok(b, "after injected ENOSPC")
        acked[pre] = "pre"
        tags.add("pre")
        b.args = []
        b.start()
        c = b.client()
        verify_acked(c, acked, tags, 0, "after injected ENOSPC (%s)" % limit)
        # The broker works again.
        c.submit(["after"])
        c.close()
        b.stop()


test_injected_enospc.timeout = 120


def pipeliner(port, prefix, chunks=200, rcvbuf=4096):
    """A connection with a small receive buffer (so that replies it does
    not read back up into the broker's send queue) and a thread that
    pipelines SUBMITs on it without reading, until the broker stops taking
    them, or it has sent chunks times 100.  Returns (socket, thread, tags
    sent in order)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tags = []

    def send():
        try:
            for k in range(chunks):
                chunk = []
                for i in range(100):
                    tag = "%s-%d" % (prefix, len(tags))
                    tags.append(tag)
                    chunk.append(Client.frame(submit_line(["job", tag])))
                s.sendall(b"".join(chunk))
        except OSError:
            pass
    t = threading.Thread(target=send, daemon=True)
    t.start()
    return s, t, tags


def test_enospc_replies_reach_a_pipelining_client(ctx):
    """A journal write fails while a client pipelines SUBMITs and reads
    nothing: when it starts reading, it gets every reply the broker sent
    it (OK ID lines, then ERR server for the failed pass), then EOF, not a
    reset that throws away the replies still queued.  Another client that
    never reads holds the exit a bounded time only."""
    b = ctx.start_broker(["--fail-writes-after", "400K"])
    # First the one that never reads: its replies fill its receive buffer
    # and wait in the broker's send queue.
    stuck, tstuck, stuck_tags = pipeliner(b.port, "s", chunks=20)
    tstuck.join(20 * ctx.slow)
    c = b.client()
    wait_until(lambda: int(c.stats()["submitted"]) >= 2000, 20 * ctx.slow,
               "the 2000 SUBMITs of the client that never reads")
    c.close()
    # Then the one that reads, late: the failed pass is its.
    s, ts, tags = pipeliner(b.port, "r")
    deadline = time.monotonic() + 60 * ctx.slow
    while "journal: write failed" not in b.current_log():
        check(time.monotonic() < deadline, "no journal write failure "
              "within %ds: %s" % (60 * ctx.slow, tail(b.current_log())))
        check(b.running(), "simqd exited before the write failure: %s" %
              tail(b.current_log()))
        time.sleep(0.005)
    t_fail = time.monotonic()
    # Now read it all.
    s.settimeout(20 * ctx.slow)
    data = bytearray()
    how = "EOF"
    while True:
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            how = "a reset"
            break
        except socket.timeout:
            how = "a timeout"
            break
        if not chunk:
            break
        data += chunk
    rc = b.wait_exit(20 * ctx.slow)
    t_exit = time.monotonic()
    ts.join(10 * ctx.slow)
    s.close()
    stuck.close()
    tstuck.join(10 * ctx.slow)
    check(rc != 0, "the broker must exit non-zero after a write error "
          "(exit %r)" % rc)
    text = data.decode("utf-8", "replace")
    lines = text.split("\r\n")
    check(lines[-1] == "", "the replies end in a partial line after %s: "
          "%r" % (how, lines[-1][:80]))
    lines = lines[:-1]
    oks = [ln for ln in lines if ln.startswith("OK ")]
    errs = [ln for ln in lines[len(oks):]]
    check(len(errs) > 0, "no ERR server among %d replies (%d OK), ended "
          "by %s" % (len(lines), len(oks), how))
    for ln in errs:
        check(ln.startswith("ERR server journal write failed: ") and
              ln.endswith("; the broker is exiting"),
              "after %d OK, expected only ERR server lines, got %r" %
              (len(oks), ln))
    check(how == "EOF", "the connection ended by %s after %d OK and %d "
          "ERR server" % (how, len(oks), len(errs)))
    check(len(lines) <= len(tags), "%d replies to %d requests" %
          (len(lines), len(tags)))
    # The client that never read held the exit for the bound, no more.
    check(t_exit - t_fail < 10 * ctx.slow, "simqd took %.1fs to exit after "
          "the write failure" % (t_exit - t_fail))
    check_ok(b, "after injected ENOSPC")
    b.args = []
    b.start()
    c = b.client()
    acked = {int(ln.split()[1]): tags[i] for i, ln in enumerate(oks)}
    verify_acked(c, acked, set(tags) | set(stuck_tags), 0,
                 "after injected ENOSPC with a pipelining client")
    c.close()
    b.stop()


test_enospc_replies_reach_a_pipelining_client.timeout = 120


def test_full_disk_tmpfs(ctx):
    if os.geteuid() != 0:
        from harness import Skip
        raise Skip("needs root to mount a tmpfs")
    mnt = ctx.mkdtemp("tmpfs")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        mnt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if p.returncode != 0:
        from harness import Skip
        raise Skip("mount -t tmpfs failed: %s" % p.stdout.decode().strip())
    mounted = [True]

    def umount():
        if mounted[0]:
            subprocess.run(["umount", "-l", mnt])
            mounted[0] = False
    ctx.cleanups.append(umount)
    datadir = os.path.join(mnt, "d")
    b = Broker(ctx, datadir=datadir)
    try:
        b.start()
    except TestFailure as e:
        raise TestFailure("simqd cannot even start on a 1 MiB tmpfs: %s" % e)
    rng = random.Random(11)
    acked, tags, rc = fill_until_server_error(b, ctx, rng)
    check(rc != 0, "the broker must exit non-zero on a full disk (exit %r)"
          % rc)
    copy = os.path.join(ctx.mkdtemp("copy"), "d")
    shutil.copytree(datadir, copy)
    umount()
    out = check_ok(Broker(ctx, datadir=copy), "the copied data dir")
    b2 = Broker(ctx, datadir=copy).start()
    c = b2.client()
    verify_acked(c, acked, tags, 0, "after a full disk")
    check(len(acked) > 1000, "only %d jobs acknowledged on 1 MiB" %
          len(acked))
    c.submit(["after"])


test_full_disk_tmpfs.timeout = 120


# ---------------------------------------------------------------------------
# Journal files

def segment_records(path):
    """[(offset, total length, type)] of a segment's frames, up to the
    first that does not parse."""
    data = open(path, "rb").read()
    out = []
    off = 0
    while off + 9 <= len(data):
        n, crc = struct.unpack_from("<II", data, off)
        if n < 1 or off + 8 + n > len(data):
            break
        out.append((off, 8 + n, data[off + 8]))
        off += 8 + n
    return out


def submit_one_by_one(c, n, prefix="j"):
    return [c.submit(["job", "%s%d" % (prefix, i)]) for i in range(n)]


def test_corrupt_journal_middle(ctx):
    b = ctx.broker
    c = b.client()
    ids = submit_one_by_one(c, 60)
    c.close()
    b.stop()
    segs = b.segments()
    last = os.path.join(b.journal_dir(), segs[-1])
    recs = segment_records(last)
    subs = [r for r in recs if r[2] == 16]      # REC_SUBMIT
    eq(len(subs), 60, "one SUBMIT record per job in %s" % segs[-1])
    # Flip a byte in the payload of the 30th submit.
    off, ln, _ = subs[29]
    with open(last, "r+b") as f:
        f.seek(off + ln - 3)
        byte = f.read(1)
        f.seek(off + ln - 3)
        f.write(bytes([byte[0] ^ 0x5a]))
    saved = open(last, "rb").read()
    # Refuses to start, and says --force.
    p = b.spawn()
    rc = b.wait_exit(20 * ctx.slow)
    check(rc != 0, "simqd started on a corrupt journal")
    log = b.current_log()
    check("--force" in log, "the message must mention --force:\n%s" %
          tail(log))
    eq(open(last, "rb").read(), saved, "a refused start changed the file")
    # --check reports it.
    rc, out = b.run_check()
    check(rc != 0, "--check must fail on corruption:\n%s" % out)
    check("CORRUPT" in out.upper() and segs[-1] in out,
          "--check names the corrupt segment:\n%s" % out)
    eq(open(last, "rb").read(), saved, "--check changed the file")
    # --force starts and keeps the records before the corruption.
    b.start(["--force"])
    check("CORRUPT" in b.current_log().upper(), "the forced cut is logged")
    c = b.client()
    items = c.status(*ids)
    eq([i.kind for i in items[:29]], ["job"] * 29, "jobs before the damage")
    eq([i.argv[1] for i in items[:29]], ["j%d" % i for i in range(29)],
       "their commands")
    eq([i.kind for i in items[29:]], ["missing"] * 31,
       "jobs from the damaged record on are cut")
    new = c.submit(["job", "new"])
    c.close()
    b.restart()
    c = b.client()
    eq(c.status1(new).argv, ["job", "new"], "a job after the forced start")
    eq(len(list_jobs(c)), 30, "jobs after the forced start")
    check_ok(b, "after --force")


def test_corrupt_journal_older_segment(ctx):
    b = ctx.broker
    c = b.client()
    first = submit_one_by_one(c, 20, "a")
    c.close()
    b.restart()           # a new segment per start
    c = b.client()
    second = submit_one_by_one(c, 20, "b")
    c.close()
    b.stop()
    segs = b.segments()
    check(len(segs) >= 2, "segments: %r" % segs)
    # The first segment holding submits.
    for name in segs:
        path = os.path.join(b.journal_dir(), name)
        subs = [r for r in segment_records(path) if r[2] == 16]
        if subs:
            break
    off, ln, _ = subs[10]
    with open(path, "r+b") as f:
        f.seek(off + 4)          # the CRC
        crc = f.read(1)
        f.seek(off + 4)
        f.write(bytes([crc[0] ^ 0xff]))
    b.spawn()
    rc = b.wait_exit(20 * ctx.slow)
    check(rc != 0, "simqd started with a corrupt older segment")
    check("--force" in b.current_log(), "mentions --force:\n%s" %
          tail(b.current_log()))
    rc, out = b.run_check()
    check(rc != 0, "--check must fail:\n%s" % out)
    b.start(["--force"])
    c = b.client()
    items = c.status(*(first + second))
    eq([i.kind for i in items], ["job"] * 10 + ["missing"] * 30,
       "everything from the bad record on is cut, later segments too")


def test_torn_tail(ctx):
    b = ctx.broker
    c = b.client()
    ids = submit_one_by_one(c, 40)
    c.close()
    b.kill9()
    segs = b.segments()
    last = os.path.join(b.journal_dir(), segs[-1])
    recs = segment_records(last)
    off, ln, typ = recs[-1]
    eq(typ, 16, "the last record is the last SUBMIT")
    size = os.path.getsize(last)
    eq(off + ln, size, "the segment ends with the last record")
    cut = off + ln // 2
    os.truncate(last, cut)
    # --check says OK (a torn tail is not corruption) and changes nothing.
    out = check_ok(b, "torn tail")
    eq(os.path.getsize(last), cut, "--check must not truncate")
    b.start()
    log = b.current_log()
    check("torn" in log.lower(), "the cut is logged:\n%s" % tail(log))
    c = b.client()
    items = c.status(*ids)
    eq([i.kind for i in items], ["job"] * 39 + ["missing"],
       "every record before the torn one is kept")
    eq(items[38].argv, ["job", "j38"], "the last whole record")
    # The tail was cut on disk: new records after a restart replay fine.
    new = c.submit(["job", "new"])
    c.close()
    b.kill9()
    check_ok(b, "after the torn start")
    b.start()
    c = b.client()
    eq(c.status1(new).argv, ["job", "new"], "the new job")
    eq(len(list_jobs(c)), 40, "jobs")
    # A tail torn inside the frame header (a few bytes of a record).
    c.close()
    b.kill9()
    segs = b.segments()
    last = os.path.join(b.journal_dir(), segs[-1])
    with open(last, "ab") as f:
        f.write(b"\x40\x00")
    b.start()
    c = b.client()
    eq(len(list_jobs(c)), 40, "jobs after a 2-byte tail")


def test_compaction(ctx):
    b = ctx.start_broker(["--compact-min", "64K", "--retention", "1s",
                          "--retry-backoff", "1ms",
                          "--retry-backoff-max", "1ms"])
    c = b.client()
    w = b.worker("w", lease=60000)
    # Live state of every kind, kept throughout.
    keep_q = c.submit(["keep", "queued"], pri=3, name="kq")
    keep_wait = c.submit(["keep", "waiting"], after=keep_q)
    keep_arr = c.submit(["keep", "{}"], array="1-5%2", q="arrq")
    keep_paused = c.submit(["keep", "p"], q="paused")
    c.request("PAUSE paused").expect_ok()
    running = w.take(2, 0, "arrq")[0]
    eq(len(running), 2, "array tasks running")
    # Churn: many jobs submitted and finished.
    churn_ids = []
    for rnd in range(12):
        body = "".join("churn %d %d %s\n" % (rnd, i, "x" * 40)
                       for i in range(100)).encode()
        r = c.request("BATCH q=churn %d" % len(body), body).expect_ok()
        churn_ids.append(int(r.words[0]))
        jobs, _ = w.take(100, 0, "churn")
        eq(len(jobs), 100, "churn jobs taken")
        frames = [Client.frame(
            "FINISH %s %s exit=0 out=20 err=0 res=0 20" % (j["id"],
                                                         j["attempt"]),
            b"o" * 20) for j in jobs]
        for r in w.pipeline(frames):
            r.expect_ok("done")
    peak = int(c.stats()["journal_bytes"])
    check(peak > 64 * 1024 or int(c.stats()["snapshots"]) > 0,
          "the churn did not pass the threshold: %r" % c.stats())
    # Once the finished jobs are past their retention, more journal makes
    # the broker compact down to the live state.  The journal grows by
    # the failed attempts of one job (retried every 1 ms), each with 20 KB
    # of output: 20 KB more journal per attempt, never more than 20 KB of
    # live output.
    # A child writes the snapshot while the broker goes on: the attempts
    # stop once it has started, so that the journal after it holds the
    # snapshot alone.
    time.sleep(1.5)
    snaps0 = int(c.stats()["snapshots"])
    started0 = b.log().count("compacting the journal")
    junk = c.submit(["junk"], q="junk", retries=1000)
    out = b"j" * 20000
    st = None
    for i in range(100):
        j = w.take1(wait=2000, queues="junk")
        w.finish_job(j, exit=1, out=out).expect_ok("waiting")
        if b.log().count("compacting the journal") > started0:
            break
    wait_until(lambda: int(c.stats()["snapshots"]) > snaps0, 10,
               "the compaction to end")
    st = c.stats()
    check(int(st["snapshots"]) > snaps0, "no compaction after %d attempts "
          "of 20 KB output: %r" % (i + 1, st))
    check(int(st["journal_bytes"]) < 40 * 1024, "the journal is still %s "
          "bytes after compacting a live state of about 22 KB" %
          st["journal_bytes"])
    eq(c.request("OUTPUT %d stdout" % junk).data, out, "the last output")
    junk_running = w.take1(wait=2000, queues="junk")
    check(int(st["journal_bytes"]) < peak, "journal_bytes did not shrink")
    disk = b.journal_size()
    check(disk < 64 * 1024, "the files on disk hold %d bytes (segments %r)"
          % (disk, b.segments()))
    check(c.status1(churn_ids[0]).kind == "missing",
          "finished jobs past their retention are forgotten")
    # The live state survives the compaction and a restart unchanged.

    def snapshot_state():
        items = ids_of_list(c)
        lines = sorted(" ".join(x for x in it.line.split(" ")
                                if not x.startswith("due="))
                       for it in items)
        # Empty queues are not state: only those with jobs or paused.
        qs = sorted(q.line for q in c.request("QUEUES").expect_items()
                    if q["paused"] == "1" or any(
                        q[k] != "0" for k in ("waiting", "queued",
                                              "running", "done", "failed",
                                              "canceled")))
        tasks = [t.line for t in c.status(*["%d_%d" % (keep_arr, i)
                                            for i in range(1, 6)])]
        return lines, qs, tasks, c.stats()["next_id"]
    before = snapshot_state()
    c.close()
    w.close()
    b.kill9()
    check_ok(b, "after compaction")
    b.start()
    c = b.client()
    after = snapshot_state()
    for k, name in enumerate(("LIST", "QUEUES", "task status")):
        eq(after[k], before[k], "%s after compaction and restart" % name)
    # Ids resume above the reservation for early leases (at most 1024).
    check(int(before[3]) <= int(after[3]) <= int(before[3]) + 1024,
          "next_id %s after compaction and restart, %s before" % (after[3],
                                                                 before[3]))
    # And it still works: the waiting job runs after its dependency.
    w = b.worker("w", lease=60000)
    eq(w.heartbeat(junk_running, *running), [],
       "leases survived compaction")
    j = w.take1()
    eq(j["id"], str(keep_q), "the queued job")
    w.finish_job(j).expect_ok("done")
    wait_until(lambda: c.status1(keep_wait)["state"] == "queued", 5,
               "the dependent to be queued")
    eq(c.status1(keep_paused)["state"], "queued", "paused queue's job")


test_compaction.timeout = 120
