#!/usr/bin/env python3
"""Benchmarks of the Python package (python/), against the brief's
targets ("How fast and how big", "From Python"):

  1. 1,000 no-op Python function tasks through one simq-worker -j 2,
     with simq.Executor.map (chunksize 1: one job, one process each).
     Beside it, the ceiling without warm runners: the same tasks' command,
     `python3 -m simq.task CALL`, run two at a time in a plain loop.
     Target: 1,000 tasks/s (needs warm runners, which are not there yet).
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


def ceiling(n, word):
    """n runs of the task command, two at a time: what the machine gives
    without warm runners."""
    cmd = [sys.executable, "-m", "simq.task", word]
    env = dict(os.environ, SIMQ_RESULT=os.devnull)
    t = time.monotonic()
    running = []
    for _ in range(n):
        if len(running) == 2:
            running.pop(0).wait()
        running.append(subprocess.Popen(cmd, env=env))
    for p in running:
        p.wait()
    return n / (time.monotonic() - t)


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
        from simq import _task_codec
        from simq.executor import dumps_call
        word = _task_codec.encode_call(dumps_call(
            False, [(me.noop, (1,), {})]))
        with simq.Executor(server=addr) as ex:
            list(ex.map(me.noop, range(20)))          # warm up
            rates = []
            for _ in range(2):
                c = ceiling(n // 4, word)
                t = time.monotonic()
                out = list(ex.map(me.noop, range(n)))
                r = n / (time.monotonic() - t)
                assert out == list(range(n))
                rates.append((c, r))
            for c, r in rates:
                print("  %d no-op tasks: %.0f tasks/s (python3 -m simq.task"
                      " two at a time, no simq: %.0f/s; %.0f%%)"
                      % (n, r, c, 100 * r / c))
            print("  target 1,000 tasks/s: %s (warm runners not there yet)"
                  % ("met" if max(r for _, r in rates) >= 1000
                     else "not met"))
            import mandelbrot
            sims, pools = [], []
            for _ in range(2):
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
