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
    eq(c.status1(o)["unfit"], "workers", "a queue no worker serves")
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
