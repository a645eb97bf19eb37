"""
Resources per job: what a job asks for (SUBMIT cpus= gpus= mem=), what a
worker offers (WORKER cpus= gpus= mem=) and has free (TAKE cpus= gpus=
mem= time=), and the broker handing out only what fits, still by queue
order and priority; a job no connected worker could ever run says so in
STATUS (unfit=, why=); a large job at the head of a queue is kept room
for.  First through the raw protocol, then with real simq-worker
processes.
"""

import time

from harness import TestFailure, check, eq, wait_until

G = 1 << 30


def ids(jobs):
    return [j["id"] for j in jobs]


def take(w, n, *words, queues="default"):
    r = w.request(" ".join(["TAKE %d 0 %s" % (n, queues)] + list(words)))
    return [i for i in r.expect_items() if i.kind == "job"]


def test_take_fits_free_resources(ctx):
    c = ctx.broker.client()
    w = ctx.broker.worker("w1", cpus=4, gpus=2, mem=8 * G)
    big = c.submit(["big"], cpus=4)
    small = c.submit(["small"])
    gpu = c.submit(["gpu"], gpus=1, mem=G)
    # Two CPUs and no GPU free: the big job does not fit, nor the GPU
    # one; the small one, later, does.
    jobs = take(w, 4, "cpus=2", "gpus=0", "mem=%d" % (8 * G))
    eq(ids(jobs), [str(small)], "jobs fitting cpus=2 gpus=0")
    check("cpus" not in jobs[0], "a one-CPU job's item has no cpus=")
    # The worker says 4 free, but the broker knows it holds the small
    # job (as after a TAKE sent before the reply that leased it came):
    # 3, so the big job waits, and the GPU one fits.
    jobs2 = take(w, 4, "cpus=4", "gpus=1", "mem=%d" % (8 * G))
    eq(ids(jobs2), [str(gpu)], "a TAKE saying more than the offer less "
       "the leases")
    eq((jobs2[0]["gpus"], jobs2[0]["mem"]), ("1", str(G)), "its item")
    w.finish_job(jobs[0]).expect_ok("done")
    w.finish_job(jobs2[0]).expect_ok("done")
    # Four CPUs: the big one.
    jobs = take(w, 4, "cpus=4", "gpus=1", "mem=%d" % (8 * G))
    eq(ids(jobs), [str(big)], "jobs fitting cpus=4 gpus=1")
    eq(jobs[0]["cpus"], "4", "the item says what the job asks for")
    w.finish_job(jobs[0]).expect_ok("done")
    # Not enough memory free.
    gpu = c.submit(["gpu"], gpus=1, mem=G)
    eq(take(w, 4, "cpus=1", "gpus=1", "mem=%d" % (G - 1)), [],
       "a job asking mem=1G with less free")
    jobs = take(w, 4, "cpus=1", "gpus=1", "mem=%d" % G)
    eq(ids(jobs), [str(gpu)], "the GPU job")
    st = c.status1(gpu)
    eq((st["gpus"], st["mem"]), ("1", str(G)), "STATUS of the GPU job")
    w.finish_job(jobs[0]).expect_ok("done")
    # Without gpus= a worker has none; without cpus= no CPU limit but
    # its offer's.
    c.submit(["gpu2"], gpus=1)
    wide = c.submit(["wide"], cpus=64)
    eq(take(w, 4), [], "a 64-CPU job on a worker offering 4")
    v = ctx.broker.worker("v1")
    eq(ids(take(v, 4)), [str(wide)], "TAKE without words, no offer")


def test_take_priority_among_shapes(ctx):
    c = ctx.broker.client()
    w = ctx.broker.worker("w1", cpus=8)
    a = c.submit(["a"], cpus=2)
    b = c.submit(["b"], cpus=1, pri=5)
    d = c.submit(["d"], cpus=2, pri=9)
    e = c.submit(["e"], cpus=1)
    # Priority first, then age, across the shapes that fit.
    eq(ids(take(w, 8, "cpus=8")), [str(d), str(b), str(a), str(e)],
       "order across shapes")


def test_take_words_refused(ctx):
    w = ctx.broker.worker("w1")
    for bad in ("cpus=x", "cpus=1 cpus=2", "gpus=65", "mem=-1",
                "time=1.5", "ahead=9", "cpu=1", "cpus", "mem=%d" %
                ((1 << 50) + 1)):
        w.request("TAKE 4 0 default " + bad).expect_err("bad-request")
    for bad in ("cpus=0", "gpus=x", "mem=1k"):
        ctx.broker.client().request("WORKER w2 " + bad) \
            .expect_err("bad-request")
    c = ctx.broker.client()
    for bad in ({"cpus": 0}, {"cpus": 4097}, {"gpus": 65}, {"mem": "1G"},
                {"cpus": "-1"}):
        r = c.request("SUBMIT " + " ".join("%s=%s" % kv for kv in
                                           bad.items()) + " -- x")
        r.expect_err("bad-request")
    r = c.request("BATCH cpus=0 2", b"x\n").expect_err("bad-request")


def test_take_time_filter(ctx):
    """A worker with a time limit (TAKE time=MS) takes only jobs whose
    timeout fits in it; one without a timeout does not fit."""
    c = ctx.broker.client()
    w = ctx.broker.worker("pilot", cpus=4)
    long_ = c.submit(["long"], timeout=60000)
    short = c.submit(["short"], timeout=5000)
    none = c.submit(["none"])
    eq(ids(take(w, 4, "time=20000")), [str(short)], "time=20s")
    eq(take(w, 4, "time=59999"), [], "time just under the timeout")
    eq(ids(take(w, 4, "time=60000")), [str(long_)], "time=60s")
    st = c.status1(none)
    eq(st["unfit"], "time", "a job without a timeout on a time-limited "
       "worker")
    check("no timeout" in st["why"], "why= says so: %r" % st["why"])
    eq(ids(take(w, 4)), [str(none)], "without time= anything fits")


def test_take_time_counts_down_while_parked(ctx):
    """A parked TAKE's time= is what was left when it was sent: by the
    time a job comes, less is left."""
    c = ctx.broker.client()
    w = ctx.broker.worker("pilot", cpus=4)
    w.send(w.frame("TAKE 4 10000 default time=3000"))
    time.sleep(1.5)
    c.submit(["long"], timeout=2500)
    short = c.submit(["short"], timeout=1000)
    jobs = [i for i in w.read_reply().expect_items() if i.kind == "job"]
    eq(ids(jobs), [str(short)], "jobs fitting ~1.5 s left")


def test_array_and_batch_carry_resources(ctx):
    c = ctx.broker.client()
    w = ctx.broker.worker("w1", cpus=4)
    arr = c.submit(["t", "{}"], array="1-4", cpus=2)
    st = c.status1(arr)
    eq(st["cpus"], "2", "an array's cpus=")
    jobs = take(w, 4, "cpus=4")
    eq(ids(jobs), ["%d_1" % arr, "%d_2" % arr], "two 2-CPU tasks on 4 CPUs")
    for j in jobs:
        w.finish_job(j).expect_ok("done")
    eq(c.status1("%d_3" % arr)["cpus"], "2", "an untaken task's cpus=")
    r = c.request("BATCH cpus=3 mem=1000 q=b 4", b"x\ny\n")
    first = int(r.words[0])
    eq(ids(take(w, 4, "cpus=4", queues="b")), [str(first)],
       "one 3-CPU batch job on 4 CPUs")
    eq(take(w, 4, "cpus=4", queues="b"), [],
       "nothing more while it holds 3 of its 4 CPUs")
    eq(c.status1(first + 1)["mem"], "1000", "a batch job's mem=")


def test_unfit_reported_then_runs(ctx):
    c = ctx.broker.client()
    small = ctx.broker.worker("small", cpus=2, gpus=0, mem=4 * G,
                              queues="default")
    j = c.submit(["x"], cpus=8)
    g = c.submit(["y"], gpus=1)
    o = c.submit(["z"], q="other")
    st = c.status1(j)
    eq(st["unfit"], "cpus", "unfit= of an 8-CPU job on 2-CPU workers")
    check("cpus=8" in st["why"] and "cpus=2" in st["why"],
          "why= names need and offer: %r" % st["why"])
    eq(c.status1(g)["unfit"], "gpus", "unfit= of a GPU job")
    check("unfit" not in c.status1(o), "a queue no worker serves: it "
          "waits for workers, not resources")
    ws = {w["name"]: w for w in c.request("WORKERS").expect_items()}
    eq((ws["small"]["cpus"], ws["small"]["gpus"], ws["small"]["mem"]),
       ("2", "0", str(4 * G)), "WORKERS shows the offer")
    # A job that fits some worker has no reason.
    ok = c.submit(["fits"], cpus=2)
    check("unfit" not in c.status1(ok), "a job that fits has no unfit=")
    eq(ids(take(small, 4, "cpus=2", "gpus=0", "mem=%d" % (4 * G))),
       [str(ok)], "the small worker takes only what fits")
    # A big enough worker connects: the reason goes, and it runs.
    big = ctx.broker.worker("big", cpus=16, gpus=0, mem=64 * G,
                            queues="default")
    check("unfit" not in c.status1(j), "unfit= once a big worker is there")
    eq(ids(take(big, 4, "cpus=16", "gpus=0", "mem=%d" % (64 * G))),
       [str(j)], "the big worker takes the 8-CPU job")
    # Once the big worker has gone, the GPU job is still unfit.
    big.close()
    wait_until(lambda: c.status1(g).get("unfit") == "gpus", 10,
               "unfit=gpus after the big worker left")


def test_finish_oom_gives_the_reason(ctx):
    """FINISH oom=1: the worker's memory limit killed the job; its reason
    says so, with the limit."""
    c = ctx.broker.client()
    w = ctx.broker.worker("w1", mem=8 * G)
    jid = c.submit(["hog"], mem=1000)
    j = take(w, 1, "mem=%d" % (8 * G))[0]
    w.request("FINISH %s %s signal=9 oom=2 out=0 err=0 res=0 0" %
              (j["id"], j["attempt"]), b"").expect_err("bad-request")
    w.finish(j["id"], j["attempt"], signal_=9, oom=1).expect_ok("failed")
    st = c.status1(jid)
    eq(st["reason"], "killed by signal 9; its memory went past its "
       "mem=1000 bytes", "the reason")


def test_reserve_for_head_job(ctx):
    """Once the head of a queue has waited --reserve-after, a worker that
    could run it takes nothing smaller until it fits."""
    b = ctx.start_broker(["--reserve-after", "1s"])
    c = b.client()
    w = b.worker("w1", cpus=4)
    small1 = c.submit(["s1"])
    big = c.submit(["big"], cpus=4)
    small2 = c.submit(["s2"])
    # At once: small1 (head), then big does not fit in 3, small2 does.
    held = take(w, 1, "cpus=4")
    eq(ids(held), [str(small1)], "first TAKE")
    held += take(w, 4, "cpus=3")
    eq(ids(held[1:]), [str(small2)],
       "the big job has not waited long: smaller ones pass it")
    for i in range(3):
        c.submit(["more%d" % i])
    time.sleep(1.2)
    eq(take(w, 4, "cpus=3"), [], "past --reserve-after, nothing smaller")
    # A worker that could never run it is not held back.
    tiny = b.worker("tiny", cpus=2)
    eq(len(take(tiny, 4, "cpus=2")), 2, "a 2-CPU worker still takes")
    for j in held:
        w.finish_job(j).expect_ok("done")
    eq(ids(take(w, 4, "cpus=4")), [str(big)], "the big job, once it fits")


# ---------------------------------------------------------------------------
# With real simq-worker processes.

# A job that says when it started and ended (ns), its resources, and
# sleeps in between.
STAMP = ('echo start $(date +%s%N); echo cpus=$SIMQ_CPUS '
         'omp=$OMP_NUM_THREADS cuda=${CUDA_VISIBLE_DEVICES-unset}; '
         'sleep {t}; echo end $(date +%s%N)')


def stamps(text):
    """(start, end, {key: value}) from a STAMP job's output."""
    d = {}
    start = end = None
    for line in text.decode().splitlines():
        w = line.split()
        if w and w[0] == "start":
            start = int(w[1])
        elif w and w[0] == "end":
            end = int(w[1])
        else:
            for kv in w:
                k, _, v = kv.partition("=")
                d[k] = v
    check(start is not None and end is not None, "stamps in %r" % text)
    return start, end, d


def most_at_once(spans):
    """The largest number of (start, end) spans that overlap."""
    ev = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                key=lambda x: (x[0], x[1]))
    n = best = 0
    for _, d in ev:
        n += d
        best = max(best, n)
    return best


def run_stamped(ctx, c, n, t, **opts):
    from workerlib import output, wait_job
    jids = [c.submit(["sh", "-c", STAMP.replace("{t}", str(t))], **opts)
            for _ in range(n)]
    got = []
    for j in jids:
        st = wait_job(ctx, c, j, timeout=30)
        eq(st["state"], "done", "job %s" % j)
        got.append(stamps(output(c, j)))
    return got


def test_worker_cpus_two_at_once(ctx):
    """A -j 4 worker runs at most two --cpus 2 jobs at once, each with
    SIMQ_CPUS=2 and OMP_NUM_THREADS=2."""
    from workerlib import WorkerProc
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, slots=4).wait_registered(c)
    got = run_stamped(ctx, c, 6, 0.4, cpus=2)
    spans = [(s, e) for s, e, _ in got]
    eq(most_at_once(spans), 2, "--cpus 2 jobs at once on 4 CPUs")
    for _, _, d in got:
        eq((d["cpus"], d["omp"]), ("2", "2"), "SIMQ_CPUS, OMP_NUM_THREADS")
    # A job's own OMP_NUM_THREADS wins; SIMQ_CPUS is the worker's; a
    # plain job has one CPU.
    got = run_stamped(ctx, c, 1, 0, cpus=3, env="OMP_NUM_THREADS=7")
    eq((got[0][2]["cpus"], got[0][2]["omp"]), ("3", "7"), "job's own OMP")
    got = run_stamped(ctx, c, 1, 0)
    eq((got[0][2]["cpus"], got[0][2]["omp"]), ("1", "1"), "a plain job")
    eq(got[0][2]["cuda"], "", "a job without GPUs sees none")


def test_worker_short_jobs_never_overcommit(ctx):
    """Short --cpus 2 jobs, mixed with 1-CPU ones, through -j 2: the
    worker takes for a slot ahead of the report that frees it (TAKE
    ending=), and leases ahead; still no two CPUs' worth too many run at
    once: never two --cpus 2 jobs, nor one beside another job."""
    from workerlib import WorkerProc
    from workerlib import output, wait_job
    b = ctx.broker
    c = b.client()
    shapes = [2, 1, 1, 2, 2, 1, 2, 1, 1, 1, 2, 2, 2, 1, 2, 2] * 2
    jids = [(c.submit(["sh", "-c", STAMP.replace("{t}", "0.02")],
                      cpus=k), k) for k in shapes]
    WorkerProc(ctx, b, slots=2).wait_registered(c)
    spans = []
    for j, k in jids:
        eq(wait_job(ctx, c, j, timeout=60)["state"], "done", "job %s" % j)
        s, e, _ = stamps(output(c, j))
        spans.append((s, e, k))
    ev = sorted([(s, k) for s, _, k in spans] +
                [(e, -k) for _, e, k in spans])
    used = most = 0
    for _, d in ev:
        used += d
        most = max(most, used)
    eq(most <= 2, True, "CPUs in use at most 2 (saw %d)" % most)
    eq(int(c.stats()["early_leases"]) > 0, True, "some leases went early")


def test_worker_gpus_never_shared(ctx):
    """--gpus 0,1 with --gpus 1 jobs: each gets one, and two running at
    once never get the same one."""
    from workerlib import WorkerProc
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=4, args=["--gpus", "0,1"])
    it = w.wait_registered(c)
    eq(it["gpus"], "2", "WORKERS gpus=")
    got = run_stamped(ctx, c, 6, 0.4, gpus=1)
    for _, _, d in got:
        check(d["cuda"] in ("0", "1"), "CUDA_VISIBLE_DEVICES=%r" % d["cuda"])
    eq(most_at_once([(s, e) for s, e, _ in got]), 2,
       "GPU jobs at once on 2 GPUs")
    for i, (s1, e1, d1) in enumerate(got):
        for s2, e2, d2 in got[i + 1:]:
            if s1 < e2 and s2 < e1:
                check(d1["cuda"] != d2["cuda"], "two jobs at once share "
                      "GPU %s" % d1["cuda"])
    got = run_stamped(ctx, c, 1, 0, gpus=2)
    eq(got[0][2]["cuda"], "0,1", "a 2-GPU job")


def test_worker_gpus_auto(ctx):
    """--gpus auto (the default) takes CUDA_VISIBLE_DEVICES; a bad
    --gpus, --cpus or --mem is refused."""
    from workerlib import WorkerProc, run_simq_worker
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=2, env={"CUDA_VISIBLE_DEVICES": "3,5"})
    eq(w.wait_registered(c)["gpus"], "2", "GPUs from CUDA_VISIBLE_DEVICES")
    got = run_stamped(ctx, c, 2, 0.3, gpus=1)
    eq(sorted(d["cuda"] for _, _, d in got), ["3", "5"],
       "the jobs get the GPUs as the worker's environment names them")
    # What CUDA would make of it: Slurm's NoDevFiles is none, and an
    # invalid index hides those after it.
    for cvd, n in (("NoDevFiles", "0"), ("2,-1,3", "1"), ("-1", "0"),
                   ("", "0")):
        v = WorkerProc(ctx, b, slots=1, env={"CUDA_VISIBLE_DEVICES": cvd})
        eq(v.wait_registered(c)["gpus"], n, "CUDA_VISIBLE_DEVICES=%r" % cvd)
        v.signal(15)
        v.wait_exit()
    for args, words in ((["--cpus", "0"], "--cpus"),
                        (["-j", "x"], "--cpus"),
                        (["--gpus", "0,,1"], "--gpus"),
                        (["--gpus", "a b"], "--gpus"),
                        (["--mem", "lots"], "--mem"),
                        (["--mem", "2P"], "--mem")):
        rc, out, err = run_simq_worker(ctx, args + ["-s", "127.0.0.1:1"])
        eq(rc, 2, "simq-worker %s" % " ".join(args))
        check(words in err, "the error names %s: %r" % (words, err))


def test_unfit_job_reported_then_runs(ctx):
    """A job asking for more than any worker has is reported (STATUS
    unfit=, simq status), not silently stuck, and runs once a big enough
    worker connects."""
    from clientlib import Simq
    from workerlib import WorkerProc, wait_job
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, slots=2).wait_registered(c)
    simq = Simq(ctx, b)
    jid = int(simq.run("submit", "--cpus", "4", "--", "true").ok()
              .out.strip())
    gid = int(simq.run("submit", "--gpus", "1", "--", "true").ok()
              .out.strip())
    mid = int(simq.run("submit", "--mem", "1T", "--", "true").ok()
              .out.strip())
    time.sleep(0.5)
    eq(c.status1(jid)["state"], "queued", "the 4-CPU job")
    eq(c.status1(jid)["unfit"], "cpus", "its unfit=")
    eq(c.status1(gid)["unfit"], "gpus", "a GPU job on workers without")
    eq(c.status1(mid)["unfit"], "mem", "a job asking more memory")
    out = simq.run("status", jid).ok().out
    check("stuck" in out and "cpus=4" in out, "simq status says so: %r" %
          out)
    out = simq.run("status", "-l", jid).ok().out
    check("stuck" in out and "cpus 4" in out, "simq status -l: %r" % out)
    WorkerProc(ctx, b, slots=4).wait_registered(c)
    eq(wait_job(ctx, c, jid)["state"], "done", "once a 4-CPU worker is "
       "there")
    check("unfit" not in c.status1(gid) or
          c.status1(gid)["unfit"] == "gpus", "the GPU job still says why")


def test_bad_resource_input(ctx):
    from clientlib import Simq
    simq = Simq(ctx, ctx.broker)
    for args, word in ((["--cpus", "0"], "--cpus"),
                       (["--cpus", "4097"], "--cpus"),
                       (["--cpus", "two"], "--cpus"),
                       (["--gpus", "-1"], "--gpus"),
                       (["--gpus", "65"], "--gpus"),
                       (["--mem", "garbage"], "--mem"),
                       (["--mem", "0"], "--mem"),
                       (["--mem", "4X"], "--mem")):
        simq.run("submit", *(args + ["--", "true"])).fails(2, word)
    # Arrays and batches take them too.
    r = simq.run("submit", "--cpus", "2", "--array", "1-3", "--", "true")
    aid = int(r.ok().out.strip())
    eq(ctx.broker.client().status1(aid)["cpus"], "2", "an array's cpus")
    r = simq.run("submit", "--gpus", "1", "--batch", "-", input="true\n"
                 "false\n")
    first = int(r.ok().out.split()[0])
    eq(ctx.broker.client().status1(first)["gpus"], "1", "a batch's gpus")


def test_large_job_not_starved(ctx):
    """In a stream of small jobs, a 4-CPU job starts within a bounded
    time (--reserve-after, then the small jobs' length), not when the
    stream ends."""
    from workerlib import WorkerProc, wait_job
    b = ctx.start_broker(["--reserve-after", "1s"])
    c = b.client()
    WorkerProc(ctx, b, slots=4).wait_registered(c)
    for _ in range(8):
        c.submit(["sleep", "0.5"])
    big = c.submit(["true"], cpus=4)
    t0 = time.monotonic()
    started = None
    # Keep at least a few small jobs queued for 8 s.
    while time.monotonic() - t0 < 8:
        c.submit(["sleep", "0.5"])
        st = c.status1(big)
        if started is None and st["state"] != "queued":
            started = time.monotonic() - t0
        time.sleep(0.1)
    check(started is not None, "the 4-CPU job never started in 8 s of "
          "small jobs")
    # 1 s of --reserve-after, then 0.5 s for the running ones to end,
    # from when the 8 older ones have started (~0.5 s): 2 s, with slack.
    check(started < 4 * ctx.slow, "the 4-CPU job started after %.1fs" %
          started)
    eq(wait_job(ctx, c, big)["state"], "done", "the 4-CPU job")


def test_mem_enforced(ctx):
    """A job allocating past its --mem is stopped: killed by the cgroup
    v2 limit with a reason where the worker may make cgroups, else its
    allocation fails (RLIMIT_AS)."""
    from workerlib import WorkerProc, wait_job
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=2, args=["--mem", "2G"])
    w.wait_registered(c)
    log = w.wait_log("job memory limits")
    grab = ["python3", "-c", "b = bytearray(400 << 20)\n"
            "for i in range(0, len(b), 4096): b[i] = 1\nprint(len(b))"]
    ok = c.submit(grab, mem=1 << 30)
    bad = c.submit(grab, mem=200 << 20)
    eq(wait_job(ctx, c, ok, timeout=30)["state"], "done",
       "a job within its --mem")
    st = wait_job(ctx, c, bad, timeout=30)
    eq(st["state"], "failed", "a job past its --mem")
    if "cgroup v2 memory.max" in log:
        check("signal" in st and "mem=%d" % (200 << 20) in st["reason"],
              "killed, with a reason: %r" % st)
    else:
        check("RLIMIT_AS" in log, "the worker says which limit: %r" % log)
        check(st.get("exit") == "1", "the allocation failed: %r" % st)
        from harness import Skip
        raise Skip("the worker has no cgroup v2 memory controller here, "
                   "so only the RLIMIT_AS fallback was checked")


def test_version_2_journal_still_read(ctx):
    """A journal written by the version before resources (format 2) is
    read, and jobs with resources are added to it."""
    import os
    from test_journal_files import rewrite_header_version
    b = ctx.broker
    c = b.client()
    old = [c.submit(["old%d" % i]) for i in range(3)]
    c.close()
    b.stop()
    for s in b.segments():
        rewrite_header_version(os.path.join(b.journal_dir(), s), 2)
    b.start()
    c = b.client()
    for j in old:
        eq(c.status1(j)["state"], "queued", "job %s from the v2 journal" % j)
    new = c.submit(["new"], cpus=2)
    c.close()
    b.stop()
    b.start()
    c = b.client()
    eq(c.status1(new)["cpus"], "2", "a job with resources after it")
    eq(c.status1(old[0])["state"], "queued", "and the old ones")


def test_worker_asks_again_when_more_is_free(ctx):
    """A TAKE waiting at the broker says what was free when it was sent;
    once more is free (jobs ended) the worker sends a new one, or a job
    needing what freed would wait for the old TAKE's timeout."""
    from workerlib import WorkerProc, wait_job
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, slots=2).wait_registered(c)
    # A job canceled at once was short: the worker asks for jobs ahead
    # (a TAKE for many), and the next job is taken while the first
    # still dies; its TAKE then says one CPU is free.
    j = c.submit(["sleep", "60"])
    wait_job(ctx, c, j, states=("running",))
    c.request("CANCEL %d" % j).expect_ok("1")
    j = c.submit(["sleep", "60"])
    time.sleep(0.3)
    c.request("CANCEL %d" % j).expect_ok("1")
    big = c.submit(["true"], cpus=2)
    eq(wait_job(ctx, c, big, timeout=10)["state"], "done",
       "a 2-CPU job after two 1-CPU ones were canceled")


def test_explain_resources(ctx):
    """EXPLAIN says why a job waits for resources: no worker could ever
    run it (unfit), or none has them free now (resources)."""
    c = ctx.broker.client()
    w = ctx.broker.worker("w1", cpus=4, slots=4, queues="default")

    def whys(jid):
        items = c.request("EXPLAIN %s" % jid).expect_items()
        return {i["code"]: i for i in items if i.kind == "why"}

    huge = c.submit(["x"], cpus=8)
    got = whys(huge)
    check("unfit" in got, "EXPLAIN of an 8-CPU job: %r" % got)
    eq(got["unfit"]["unfit"], "cpus", "its unfit=")
    check("cpus=8" in got["unfit"]["text"], got["unfit"]["text"])
    three = c.submit(["y"], cpus=3)
    eq(ids(take(w, 1, "cpus=4")), [str(three)], "the 3-CPU job")
    two = c.submit(["z"], cpus=2)
    got = whys(two)
    check("resources" in got, "EXPLAIN of a 2-CPU job with 1 free: %r" %
          got)
    eq(got["resources"]["cpus"], "2", "what it asks for")
    one = c.submit(["o"])
    check("ready" in whys(one), "a 1-CPU job fits: ready")


def test_status_json_and_api_show_resources(ctx):
    """simq status --json and the dashboard's /api/jobs/ID carry what a
    job asks for and, while no connected worker could run it, why, with
    the same keys and values; the job page says both."""
    import json
    from clientlib import Simq
    from harness import free_port
    from test_dashboard import req
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    b.worker("w1", cpus=1, gpus=0, mem=32 << 20)
    simq = Simq(ctx, b)
    jid = simq.run("submit", "--cpus", "2", "--gpus", "1", "--mem", "64M",
                   "--", "true").ok().out.strip()
    plain = simq.run("submit", "--", "true").ok().out.strip()
    keys = ("cpus", "gpus", "mem", "unfit", "why")
    cli = simq.run("status", jid, "--json").ok().json()["jobs"][0]
    api = json.loads(req(hp, "GET", "/api/jobs/%s" % jid)[2])
    eq((cli["cpus"], cli["gpus"], cli["mem"]), (2, 1, 64 << 20),
       "simq status --json of a --cpus 2 --gpus 1 --mem 64M job")
    eq(cli["unfit"], ["cpus", "gpus", "mem"], "its unfit kinds")
    check(cli["why"] is not None and "cpus=2" in cli["why"] and
          "cpus=1" in cli["why"], "why: %r" % cli["why"])
    eq({k: api[k] for k in keys}, {k: cli[k] for k in keys},
       "/api/jobs/ID says the same")
    eq(cli["why"], c.status1(int(jid))["why"], "why= of STATUS")
    p_cli = simq.run("status", plain, "--json").ok().json()["jobs"][0]
    p_api = json.loads(req(hp, "GET", "/api/jobs/%s" % plain)[2])
    eq({k: p_cli[k] for k in keys},
       {"cpus": 1, "gpus": 0, "mem": None, "unfit": None, "why": None},
       "a job asking nothing, one a worker can run")
    eq({k: p_api[k] for k in keys}, {k: p_cli[k] for k in keys},
       "/api/jobs/ID of that job")
    page = req(hp, "GET", "/jobs/%s" % jid)[2].decode()
    check("cpus 2, gpus 1, mem 64.0 MiB" in page, "resources row: %r" %
          page[-2000:])
    check('id="stuck"' in page and "cpus=2" in page, "stuck row")
    check('id="stuck"' not in req(hp, "GET", "/jobs/%s" % plain)[2].decode(),
          "no stuck row for a job that fits")


def test_workers_shows_offer(ctx):
    """simq workers, table and --json, shows each worker's offer and the
    time it had left at its last TAKE."""
    from clientlib import Simq
    b = ctx.broker
    simq = Simq(ctx, b)
    b.worker("v1")
    check("OFFER" not in simq.run("workers").ok().out, "no column when no "
          "worker offers anything")
    w = b.worker("w1", cpus=4, gpus=2, mem=8 * G)
    take(w, 1, "time=3600000")
    ws = {x["name"]: x for x in
          simq.run("workers", "--json").ok().json()["workers"]}
    eq((ws["w1"]["cpus"], ws["w1"]["gpus"], ws["w1"]["mem"]), (4, 2, 8 * G),
       "the offer of w1")
    check(3500 < ws["w1"]["time_left"] <= 3600, "time_left: %r" %
          ws["w1"]["time_left"])
    eq((ws["v1"]["cpus"], ws["v1"]["gpus"], ws["v1"]["mem"],
        ws["v1"]["time_left"]), (None, 0, None, None), "no offer")
    out = simq.run("workers").ok().out
    check("OFFER" in out and "4 cpus, 2 gpus, 8.0 GiB, " in out,
          "the table: %r" % out)
    row = [ln for ln in out.splitlines() if ln.startswith("v1")][0]
    check(" - " in row, "v1 offers nothing: %r" % row)
