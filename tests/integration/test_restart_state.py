"""
State across crashes: kill -9 in the middle of mixed work (submits, takes,
finishes, cancels, releases) with frequent segment rotation and
compaction; what was acknowledged must be what the broker recovers, and
the per-queue counts must agree with the jobs.
"""

import random
import threading
import time

from harness import (Client, ConnectionClosed, TestFailure, check,
                     check_counts, eq, wait_until)
from test_durability import Loader, check_ok, list_jobs


class WorkerLoop:
    """A worker that takes jobs and reports on them, pipelining its
    reports, recording what the broker acknowledged."""

    def __init__(self, port, name, rng, timeout=30):
        self.w = Client(port, timeout=timeout)
        self.w.request("WORKER %s lease=600000" % name).expect_ok()
        self.rng = random.Random(rng.random())
        self.done = {}          # id -> (attempt, out)
        self.failed = {}        # id -> attempt
        self.released = set()
        self.held = {}          # id -> attempt: taken, never reported
        self.stale = set()
        self.errors = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def run(self):
        try:
            while not self.stop.is_set():
                r = self.w.request("TAKE 8 0 default")
                if r.kind != "ITEMS":
                    raise TestFailure("TAKE: %r" % r)
                jobs = [i for i in r.items if i.kind == "job"]
                if not jobs:
                    time.sleep(0.005)
                    continue
                frames, plan = [], []
                for j in jobs:
                    x = self.rng.random()
                    jid, att = j["id"], j["attempt"]
                    if x < 0.65:
                        out = ("out-%s-%s\r\n\0" % (jid, att)).encode()
                        frames.append(Client.frame(
                            "FINISH %s %s exit=0 out=%d err=0 res=0 %d" %
                            (jid, att, len(out), len(out)), out))
                        plan.append(("done", jid, att, out))
                    elif x < 0.8:
                        frames.append(Client.frame(
                            "FINISH %s %s exit=1 0" % (jid, att), b""))
                        plan.append(("failed", jid, att, None))
                    elif x < 0.9:
                        frames.append(Client.frame("RELEASE %s %s" %
                                                   (jid, att)))
                        plan.append(("queued", jid, att, None))
                    else:
                        self.held[jid] = att
                self.w.send(b"".join(frames))
                for what, jid, att, out in plan:
                    r = self.w.read_reply()
                    if r.kind == "ERR" and r.code == "stale":
                        self.stale.add(jid)
                        continue
                    r.expect_ok(what)
                    if what == "done":
                        self.done[jid] = (att, out)
                    elif what == "failed":
                        self.failed[jid] = att
                    else:
                        self.released.add(jid)
        except (ConnectionClosed, OSError):
            pass
        except Exception as e:
            self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        self.t.join(20)
        self.w.close()
        if self.t.is_alive():
            raise TestFailure("the worker loop did not stop")
        if self.errors:
            raise TestFailure("worker loop: %s" % self.errors[0])


class Canceler:
    def __init__(self, port, loader, rng, timeout=30):
        self.c = Client(port, timeout=timeout)
        self.loader = loader
        self.rng = random.Random(rng.random())
        self.canceled = set()   # ids whose CANCEL answered OK 1
        self.inflight = None    # a CANCEL sent, not yet answered
        self.errors = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def run(self):
        try:
            while not self.stop.is_set():
                ids = list(self.loader.acked)
                if ids:
                    jid = self.rng.choice(ids)
                    self.inflight = str(jid)
                    r = self.c.request("CANCEL %d" % jid)
                    self.inflight = None
                    r.expect_ok()
                    if r.words[0] == "1":
                        self.canceled.add(str(jid))
                time.sleep(0.005)
        except (ConnectionClosed, OSError):
            pass
        except Exception as e:
            self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        self.t.join(20)
        self.c.close()
        if self.errors:
            raise TestFailure("canceler: %s" % self.errors[0])


def test_kill9_during_mixed_work(ctx):
    seed = int(time.time() * 1000) % 1000000
    rng = random.Random(seed)
    b = ctx.start_broker(["--compact-min", "16K", "--segment-size", "16K"])
    acked = {}
    tags = set()
    done, failed, canceled, held = {}, {}, set(), {}
    forgotten = {}      # job id -> attempt numbers of forgotten leases
    # A CANCEL cut off by the crash may or may not have been committed.
    maybe_canceled = set()
    snapshots = 0
    for rnd in range(10):
        what = "round %d (seed %d)" % (rnd, seed)
        ld = Loader(b.port, "m%d" % rnd, rng, batch_ratio=0.3,
                    pause=0.001).start()
        wl = WorkerLoop(b.port, "w%d" % rnd, rng).start()
        cn = Canceler(b.port, ld, rng).start()
        time.sleep(rng.uniform(0.1, 0.6))
        try:
            snapshots += int(Client(b.port, timeout=5).stats()["snapshots"])
        except Exception:
            pass
        b.kill9()
        for x in (ld, wl, cn):
            x.finish()
        acked.update(ld.acked)
        tags |= ld.sent_tags
        both = set(wl.done) & cn.canceled
        check(not both, "%s: job %s acknowledged both done and canceled" %
              (what, sorted(both)[:3]))
        done.update(wl.done)
        failed.update(wl.failed)
        canceled |= cn.canceled
        if cn.inflight is not None:
            maybe_canceled.add(cn.inflight)
        held.update(wl.held)
        check_ok(b, what)
        b.start()
        c = b.client()
        jobs = {str(k): v for k, v in list_jobs(c).items()}
        for jid, tag in acked.items():
            it = jobs.get(str(jid))
            if it is None or it.argv != ["job", tag]:
                raise TestFailure("%s: acknowledged job %d (%s) is %r" %
                                  (what, jid, tag, it))
        for it in jobs.values():
            check(it.argv[1] in tags, "%s: a job never sent: %r" %
                  (what, it))
        eq(len({it.argv[1] for it in jobs.values()}), len(jobs),
           "%s: distinct commands" % what)
        for jid, (att, out) in done.items():
            it = jobs[jid]
            eq((it["state"], it["attempts"]), ("done", att),
               "%s: job %s acknowledged done" % (what, jid))
        for jid in rng.sample(sorted(done), min(30, len(done))):
            eq(c.request("OUTPUT %s stdout" % jid).data, done[jid][1],
               "%s: output of %s" % (what, jid))
        for jid, att in failed.items():
            eq(jobs[jid]["state"], "failed", "%s: job %s acknowledged "
               "failed" % (what, jid))
        for jid in canceled:
            eq(jobs[jid]["state"], "canceled", "%s: job %s acknowledged "
               "canceled" % (what, jid))
        for jid, att in list(held.items()):
            it = jobs[jid]
            if jid in canceled or (jid in maybe_canceled and
                                   it["state"] == "canceled"):
                continue
            # A lease may go out before its record is durable (simqd(8),
            # "early leases"): the crash then forgets it, the job is
            # queued as before it, and its next attempt skips the
            # forgotten number, which must never be handed out again.
            if it["state"] == "queued" and \
                    int(it["attempts"]) == int(att) - 1:
                forgotten.setdefault(jid, set()).add(att)
                del held[jid]
                continue
            eq((it["state"], it["attempts"]), ("running", att),
               "%s: job %s leased at the crash" % (what, jid))
        for jid, (att, _) in done.items():
            check(att not in forgotten.get(jid, ()),
                  "%s: job %s done with attempt %s, the number of a lease "
                  "the crash forgot" % (what, jid, att))
        check_counts(c, what)
        snapshots += int(c.stats()["snapshots"])
        c.close()
    check(len(done) > 50 and len(canceled) > 5,
          "too little happened: %d done, %d canceled" % (len(done),
                                                          len(canceled)))
    check(len(b.segments()) >= 1, "segments")
    check(snapshots > 0 or "compacted" in b.log(),
          "no compaction happened in 10 rounds: the test exercised less "
          "than it should")


test_kill9_during_mixed_work.timeout = 120


def test_array_cap_and_drops_survive_restart(ctx):
    b = ctx.broker
    c = b.client()
    aid = c.submit(["t", "{}"], array="1-6%2")
    other = c.submit(["other"], q="o")
    w = b.worker("w", lease=600000)
    jobs, _ = w.take(10)
    eq(len(jobs), 2, "the cap")
    jo = w.take1(queues="o")
    c.request("CANCEL %s" % jo["id"]).expect_ok("1")
    c.close()
    w.close()
    b.kill9()
    b.start()
    c = b.client()
    it = c.status1(aid)
    eq((it["running"], it["queued"]), ("2", "4"), "array counts")
    w = b.worker("w", lease=600000)
    eq(w.take(10)[0], [], "the cap holds after a restart")
    # The canceled job's worker is told when it comes back.
    drops = w.heartbeat(jo, *jobs)
    eq([(d["id"], d["reason"]) for d in drops], [(jo["id"], "canceled")],
       "drop of the job canceled before the crash")
    w.finish_job(jo).expect_err("stale")
    w.finish_job(jobs[0]).expect_ok("done")
    eq([j["index"] for j in w.take(10)[0]], ["3"], "one more task")
    check_counts(c, "after restart")


def test_counts_stay_consistent(ctx):
    counts_scenario(ctx, [])


def test_counts_stay_consistent_with_compaction(ctx):
    """The same with a snapshot every few KiB: arrays partly taken, cut
    blocks, retried tasks and failed dependencies must all come back from
    snapshots exactly."""
    counts_scenario(ctx, ["--compact-min", "4K", "--segment-size", "4096"])


def counts_scenario(ctx, args):
    b = ctx.start_broker(["--retry-backoff", "100ms"] + args)
    c = b.client()
    w = b.worker("w", lease=600000)
    rng = random.Random(5)
    ids = []
    for i in range(40):
        opts = {}
        if i % 7 == 3:
            opts["array"] = "1-%d" % rng.randint(1, 20)
        if i % 5 == 1 and ids:
            opts["after"] = rng.choice(ids)
        if i % 4 == 2:
            opts["q"] = "q%d" % (i % 3)
        if i % 6 == 0:
            opts["retries"] = 1
        ids.append(c.submit(["j", str(i)], **opts))
    check_counts(c, "after submits")
    for step in range(60):
        jobs, _ = w.take(rng.randint(1, 5), 0, "default,q0,q1,q2")
        for j in jobs:
            x = rng.random()
            if x < 0.6:
                w.finish_job(j).expect_ok("done")
            elif x < 0.8:
                w.finish_job(j, exit=1).expect_ok()
            else:
                c.request("CANCEL %s" % j["id"]).expect_ok("1")
        if step % 10 == 5:
            c.request("RETRY %s" % " ".join(map(str, ids))).expect_ok()
        if step % 15 == 7:
            c.request("CANCEL %d" % rng.choice(ids)).expect_ok()
        check_counts(c, "step %d" % step)
    # Let every retry backoff (100 ms) end, so that time alone changes
    # nothing across the restart.
    time.sleep(0.5)
    check_counts(c, "before the restart")
    before = sorted(i.line for i in c.request("LIST").expect_items())
    c.close()
    w.close()
    b.kill9()
    b.start()
    c = b.client()
    check_counts(c, "after kill -9")
    after = sorted(i.line for i in c.request("LIST").expect_items())
    strip = lambda ls: [" ".join(x for x in l.split(" ")
                                 if not x.startswith("due=")) for l in ls]
    eq(strip(after), strip(before), "LIST after a restart")
    if args:
        check("compacted" in b.log(), "no compaction happened")
    # Array tasks one by one, too.
    for it in c.request("LIST").expect_items():
        if it.kind == "array":
            n = int(it["tasks"])
            tasks = c.status(*["%s_%d" % (it["id"], i)
                               for i in range(1, n + 1)])
            got = {}
            for t in tasks:
                got[t["state"]] = got.get(t["state"], 0) + 1
            want = {k: int(it[k]) for k in ("waiting", "queued", "running",
                                             "done", "failed", "canceled")
                    if it[k] != "0"}
            eq(got, want, "task states of array %s" % it["id"])
