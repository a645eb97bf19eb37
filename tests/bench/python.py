#!/usr/bin/env python3
"""Benchmarks of the Python package (python/), against the brief's
targets ("How fast and how big", "From Python"):

  1. 1,000 no-op Python function tasks through one simq-worker -j 2,
     with simq.Executor.map (chunksize 1: one job, one process each), the
     tasks forked by the slots' warm runners (simq-runner(7)).  Beside it:
     the same with warm=False (a fresh interpreter per task, a quarter of
     the tasks), and, when python3-rq and redis-server are installed, RQ
     with two SimpleWorkers and with two forking Workers on a Redis of its
     own (enqueue_many, then waiting for the last job to finish).
     Target: 1,000 tasks/s.
  2. The seed's Mandelbrot (a 500x400 image in 40 chunks, 1,000
     iterations) through Executor.map, against multiprocessing.Pool(2),
     same run, alternating.  Target: within 1.10x.

The broker runs with its default durability (fsync always) in a
temporary directory under SIMQ_BENCH_DIR (default /var/tmp).  Run with
Debian's /usr/bin/python3 (the python3 first on PATH may be a slow shim);
the interpreter used is printed.  SIMQ_BENCH_PY_TASKS changes 1,000.
"""

import os
import shutil
import socket
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

import simq  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rq_rate(n, worker_class):
    """n no-op jobs through RQ with two workers of worker_class on a
    fresh redis-server; None if RQ or Redis is missing."""
    redis_server = shutil.which("redis-server")
    try:
        import redis
        import rq
    except ImportError:
        return None
    if redis_server is None:
        return None
    import pynoop
    port = free_port()
    d = tempfile.mkdtemp(prefix="simq-bench-rq-")
    procs = [subprocess.Popen([redis_server, "--port", str(port), "--save",
                               "", "--appendonly", "no", "--dir", d],
                              stdout=subprocess.DEVNULL)]
    try:
        conn = redis.Redis(port=port)
        for _ in range(500):
            try:
                conn.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        url = "redis://127.0.0.1:%d" % port
        for _ in range(2):
            procs.append(subprocess.Popen(
                ["rq", "worker", "-u", url, "-w", worker_class, "-q",
                 "default"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        q = rq.Queue("default", connection=conn)
        fin = rq.registry.FinishedJobRegistry(queue=q)

        def run(k):
            base = fin.count
            jobs = q.enqueue_many([rq.Queue.prepare_data(
                pynoop.noop, (i,)) for i in range(k)])
            while fin.count < base + k:
                time.sleep(0.002)
            return jobs
        run(20)                           # the workers are up
        t = time.monotonic()
        jobs = run(n)
        r = n / (time.monotonic() - t)
        assert jobs[-1].return_value() == n - 1
        return r
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    n = int(os.environ.get("SIMQ_BENCH_PY_TASKS", "1000"))
    top = tempfile.mkdtemp(prefix="simq-bench-py-",
                           dir=os.environ.get("SIMQ_BENCH_DIR", "/var/tmp"))
    port = free_port()
    addr = "127.0.0.1:%d" % port
    log = open(os.path.join(top, "log"), "ab")
    procs = [subprocess.Popen([os.path.join(ROOT, "bin/simqd"), "-d",
                               os.path.join(top, "data"), "-p", str(port)],
                              stdout=log, stderr=log)]
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.01)
        procs.append(subprocess.Popen(
            [os.path.join(ROOT, "bin/simq-worker"), "-s", addr, "-j", "2",
             "-w", os.path.join(top, "w")], stdout=log, stderr=log))
        print("python bench: %s (%s), broker fsync always, one worker -j 2"
              % (sys.executable, sys.version.split()[0]))
        import pynoop as me       # by reference on the workers
        with simq.Executor(server=addr) as ex, \
                simq.Executor(server=addr, warm=False) as cold:
            list(ex.map(me.noop, range(20)))          # warm up
            rates = []
            for _ in range(2):
                t = time.monotonic()
                out = list(cold.map(me.noop, range(n // 4)))
                c = (n // 4) / (time.monotonic() - t)
                t = time.monotonic()
                out = list(ex.map(me.noop, range(n)))
                r = n / (time.monotonic() - t)
                assert out == list(range(n))
                rates.append((c, r))
            for c, r in rates:
                print("  %d no-op tasks: %.0f tasks/s (warm=False, a fresh "
                      "interpreter per task: %.0f/s)" % (n, r, c))
            best = max(r for _, r in rates)
            print("  target 1,000 tasks/s: %s" % ("met" if best >= 1000
                                                   else "not met"))
            for cls, what in (("rq.worker.SimpleWorker", "SimpleWorkers"),
                              ("rq.Worker", "forking Workers")):
                rr = rq_rate(n, cls)
                if rr is None:
                    print("  RQ: not installed (python3-rq, redis-server)")
                    break
                print("  RQ, two %s: %.0f tasks/s (simq %s)"
                      % (what, rr, "ahead" if best > rr else "behind"))
            import mandelbrot
            sims, pools = [], []
            for _ in range(3):          # the best of three: a loaded machine
                t = time.monotonic()
                img = b"".join(ex.map(mandelbrot.rows, *mandelbrot.chunks()))
                sims.append(time.monotonic() - t)
                t = time.monotonic()
                img2 = mandelbrot.with_pool(2)
                pools.append(time.monotonic() - t)
                assert img == img2
            s, p = min(sims), min(pools)
            print("  mandelbrot 500x400, 40 chunks, 1000 iterations: "
                  "Executor.map %.2f s, multiprocessing.Pool(2) %.2f s: "
                  "%.2fx (target 1.10x: %s)" % (s, p, s / p,
                                                "met" if s / p <= 1.10
                                                else "not met"))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not os.environ.get("SIMQ_BENCH_KEEP"):
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
