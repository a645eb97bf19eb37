#!/usr/bin/env python3
"""Benchmarks of the Python package (python/), against the brief's
targets ("How fast and how big", "From Python"), side by side with the
peers of issue 11, in one run:

  1. 1,000 no-op Python function tasks (tests/bench/pynoop.noop) through
     one simq-worker -j 2 with simq.Executor.map (chunksize 1: one job,
     one process each), forked by the slots' warm runners
     (simq-runner(7)); the same with warm=False (a fresh interpreter per
     task, a quarter of the tasks); and, when installed, RQ with two
     SimpleWorkers and with two forking Workers on a Redis of its own,
     Dask distributed's LocalCluster with two worker processes,
     ipyparallel with two engines, and Celery with two prefork processes
     on Redis (tests/bench/peers.py).  Target: 1,000 tasks/s, ahead of
     every peer.
  2. The seed's Mandelbrot (a 500x400 image in 40 chunks, 1,000
     iterations) through Executor.map, against multiprocessing.Pool(2),
     alternating, the best of three.  Target: within 1.10x.

Every system runs RUNS times (3), the systems taking turns; the table
gives medians.  Each run starts its system afresh on 127.0.0.1 (simq: a
broker and a worker in a temporary directory; a peer: its servers and
two workers, in a process of its own), waits until it answers, runs 20
no-op tasks untimed (the warm-up: starting, connecting, the first
imports), then times the 1,000 from before the first submit until every
result is at the client (RQ: until its registry counts them finished).
The load average (1 minute) is given at the start of every run.

The broker runs with its default durability (fsync always) in a
temporary directory under SIMQ_BENCH_DIR (default /var/tmp).  Run with
Debian's /usr/bin/python3 (the python3 first on PATH may be a slow shim);
the interpreter used is printed.  SIMQ_BENCH_PY_TASKS changes 1,000,
SIMQ_BENCH_PY_RUNS 3, SIMQ_BENCH_PY_PEERS (names from peers.SYSTEMS,
separated by spaces) the peers measured.
"""

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.join(ROOT, "python"), os.path.join(ROOT, "examples"),
     os.path.dirname(os.path.abspath(__file__))])

import peers  # noqa: E402
import simq  # noqa: E402

RUNS = int(os.environ.get("SIMQ_BENCH_PY_RUNS", "3"))
PEERS = os.environ.get("SIMQ_BENCH_PY_PEERS", " ".join(peers.SYSTEMS)).split()
ROWS = {   # the table's rows, in order, and what each measures
    "simq": "simq, one worker -j 2, warm runners",
    "simq-cold": "simq, warm=False: a fresh interpreter each (%d)",
    "rq-simple": "%s, two SimpleWorkers",
    "rq-fork": "%s, two forking Workers",
    "dask": "%s, LocalCluster, 2 processes",
    "ipyparallel": "%s, two engines",
    "celery": "%s, two prefork processes on Redis",
}


@contextlib.contextmanager
def simq_system(top):
    """simqd and one simq-worker -j 2 in top; yields the address."""
    os.makedirs(top)
    port = peers.free_port()
    log = open(os.path.join(top, "log"), "ab")
    procs = [subprocess.Popen([os.path.join(ROOT, "bin/simqd"), "-d",
                               os.path.join(top, "data"), "-p", str(port)],
                              stdout=log, stderr=log)]
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False
        peers.wait_until(up, "simqd")
        addr = "127.0.0.1:%d" % port
        procs.append(subprocess.Popen(
            [os.path.join(ROOT, "bin/simq-worker"), "-s", addr, "-j", "2",
             "-w", os.path.join(top, "w")], stdout=log, stderr=log))
        yield addr
    finally:
        peers.stop(procs)
        log.close()


def timed(ex, n):
    """n no-op tasks through ex after peers.WARMUP untimed; tasks/s."""
    import pynoop             # by reference on the workers
    list(ex.map(pynoop.noop, range(peers.WARMUP)))
    t = time.monotonic()
    out = list(ex.map(pynoop.noop, range(n)))
    r = n / (time.monotonic() - t)
    assert out == list(range(n))
    return r


def simq_run(top, n):
    """One run of simq: warm, then warm=False on a quarter of the tasks,
    then one Mandelbrot through Executor.map and one through
    multiprocessing.Pool(2); returns ({row: tasks/s}, (simq s, pool s))."""
    import mandelbrot
    with simq_system(top) as addr, \
            simq.Executor(server=addr) as ex, \
            simq.Executor(server=addr, warm=False) as cold:
        rates = {"simq": timed(ex, n), "simq-cold": timed(cold, n // 4)}
        t = time.monotonic()
        img = b"".join(ex.map(mandelbrot.rows, *mandelbrot.chunks()))
        s = time.monotonic() - t
    t = time.monotonic()
    img2 = mandelbrot.with_pool(2)
    p = time.monotonic() - t
    assert img == img2
    return rates, (s, p)


def cell(res):
    return "%5.0f" % res["rate"] if "rate" in res else "    -"


def table(n, results, loads, labels):
    """Prints the table; returns {row: median tasks/s}."""
    form = "  %-50s %6s  %-18s %s"
    print(form % ("%d no-op tasks a run" % n, "median", "tasks/s each run",
                  "load at each run"))
    medians = {}
    for row, res in results.items():
        rates = [r["rate"] for r in res if "rate" in r]
        if rates:
            medians[row] = statistics.median(rates)
        print(form % (labels[row], "%.0f" % medians[row] if rates else "-",
                      " ".join(cell(r) for r in res),
                      " ".join("%.2f" % x for x in loads[row])))
        for i, r in enumerate(res):
            why = r.get("unavailable") or r.get("error")
            if why:
                print("      %s: %s" % ("not run" if "unavailable" in r
                                        else "run %d" % (i + 1), why))
    return medians


def main():
    n = int(os.environ.get("SIMQ_BENCH_PY_TASKS", "1000"))
    top = tempfile.mkdtemp(prefix="simq-bench-py-",
                           dir=os.environ.get("SIMQ_BENCH_DIR", "/var/tmp"))
    print("python bench: %s (%s), broker fsync always, %d runs a system "
          "taking turns, medians" % (sys.executable,
                                      sys.version.split()[0], RUNS))
    print("  each run: the system started afresh on 127.0.0.1 and %d "
          "no-op tasks run, untimed;\n  then %d timed, from the first "
          "submit to the last result at the client (RQ: until its\n"
          "  registry counts them all finished)" % (peers.WARMUP, n))
    start = " ".join("%.2f" % x for x in os.getloadavg())
    results = {row: [] for row in ROWS if row in ("simq", "simq-cold")
               or row in PEERS}
    loads = {row: [] for row in results}
    labels = {row: ROWS[row] % (n // 4) if row == "simq-cold" else
              ROWS[row].replace("%s", row) for row in results}
    unavailable = {}
    sims, pools = [], []
    log = open(os.path.join(top, "peers.log"), "ab")
    try:
        for i in range(RUNS):
            load = os.getloadavg()[0]
            rates, (s, p) = simq_run(os.path.join(top, "simq%d" % i), n)
            for row, r in rates.items():
                results[row].append({"rate": r})
                loads[row].append(load)
            sims.append(s)
            pools.append(p)
            for system in PEERS:
                if system in unavailable:
                    continue
                loads[system].append(os.getloadavg()[0])
                res = peers.run_apart(system, n, log)
                results[system].append(res)
                if "unavailable" in res:
                    unavailable[system] = res
                if "version" in res:
                    labels[system] = ROWS[system] % res["version"]
        print("  load average %s at the start, %s at the end" % (
            start, " ".join("%.2f" % x for x in os.getloadavg())))
        medians = table(n, results, loads, labels)
        simq_rate = medians.get("simq", 0)
        measured = [r for r in PEERS if medians.get(r)]
        behind = [r for r in measured if medians[r] >= simq_rate]
        if not measured:
            ahead = "no peer measured"
        elif behind:
            ahead = "no (behind %s)" % ", ".join(behind)
        else:
            ahead = "yes"
        print("  target 1,000 tasks/s: %s; ahead of every peer measured: %s"
              % ("met" if simq_rate >= 1000 else "not met", ahead))
        s, p = min(sims), min(pools)
        print("  mandelbrot 500x400, 40 chunks, 1000 iterations, the best "
              "of %d: Executor.map %.2f s, multiprocessing.Pool(2) %.2f s: "
              "%.2fx (target 1.10x: %s)" % (RUNS, s, p, s / p,
                                            "met" if s / p <= 1.10
                                            else "not met"))
        if any("error" in r for res in results.values() for r in res):
            print("  (the peers' output: %s)" % log.name
                  if os.environ.get("SIMQ_BENCH_KEEP") else
                  "  (SIMQ_BENCH_KEEP=1 keeps the peers' output)")
    finally:
        log.close()
        if not os.environ.get("SIMQ_BENCH_KEEP"):
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
