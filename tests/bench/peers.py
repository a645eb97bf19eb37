#!/usr/bin/env python3
"""The peers tests/bench/python.py measures simq against: RQ (two
SimpleWorkers, two forking Workers) and Celery (two prefork processes),
both on a redis-server of their own, Dask distributed's LocalCluster
with two worker processes, and ipyparallel with two engines.  Each runs
on 127.0.0.1 only, in a temporary directory, and is stopped at the end.

    python3 tests/bench/peers.py SYSTEM N

starts SYSTEM (one of SYSTEMS), runs WARMUP no-op tasks untimed, then
times N of them, stops SYSTEM and prints one line of JSON: {"rate":
tasks/s, "version": ...}, or {"unavailable": why} when SYSTEM cannot run
here.  python.py runs each measurement in a process of its own
(run_apart), so that no peer's imports, threads or leftovers touch the
next measurement, and kills what one leaves behind.

Every measurement has the shape of simq's (Executor.map of
tests/bench/pynoop.noop over range(N), results read in order): submit
all N tasks, one task a call, then wait for all N; the clock runs from
before the first submit to the last result at the client.  RQ's clock
stops when its FinishedJobRegistry counts all N, as it always has here,
and its results are read after.  Every result is checked.
"""

import collections
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 20
SYSTEMS = ("rq-simple", "rq-fork", "dask", "ipyparallel", "celery")


class Unavailable(Exception):
    """The system cannot run here; the message says why."""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def need(module, package):
    try:
        return __import__(module)
    except ImportError as e:
        raise Unavailable("%s is not installed (Debian: %s): %s"
                          % (module, package, e))


def stop(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_until(ready, what, timeout=60):
    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            raise RuntimeError("%s not ready after %d s" % (what, timeout))
        time.sleep(0.01)


@contextlib.contextmanager
def redis_server(d):
    """A redis-server on a free loopback port, without persistence, in d;
    yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Unavailable("redis-server is not installed")
    redis = need("redis", "python3-redis")
    port = free_port()
    procs = [subprocess.Popen([exe, "--bind", "127.0.0.1", "--port",
                               str(port), "--save", "", "--appendonly",
                               "no", "--dir", d],
                              stdout=subprocess.DEVNULL)]
    try:
        conn = redis.Redis(host="127.0.0.1", port=port)

        def up():
            try:
                return conn.ping()
            except redis.ConnectionError:
                return False
        wait_until(up, "redis-server")
        conn.close()
        yield "redis://127.0.0.1:%d" % port
    finally:
        stop(procs)


@contextlib.contextmanager
def rq(d, worker_class):
    """RQ with two workers of worker_class; yields run(k)."""
    rq = need("rq", "python3-rq")
    redis = need("redis", "python3-redis")
    import pynoop
    with redis_server(d) as url:
        procs = []
        try:
            for _ in range(2):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "rq.cli", "worker", "-u", url,
                     "-w", worker_class, "-q", "default"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd=d))
            conn = redis.Redis.from_url(url)
            q = rq.Queue("default", connection=conn)
            fin = rq.registry.FinishedJobRegistry(queue=q)

            def run(k):
                base = fin.count
                jobs = q.enqueue_many([rq.Queue.prepare_data(
                    pynoop.noop, (i,)) for i in range(k)])
                while fin.count < base + k:
                    time.sleep(0.002)
                return Later(lambda: [j.return_value() for j in jobs])
            yield run, "RQ " + rq.__version__
        finally:
            stop(procs)


class Later:
    """Results read only when asked for, after the clock has stopped."""

    def __init__(self, read):
        self.read = read


@contextlib.contextmanager
def dask(d):
    """Dask distributed's LocalCluster: two worker processes of one
    thread each, no dashboard; yields run(k)."""
    distributed = need("distributed", "python3-distributed")
    import pynoop
    with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address=None,
            local_directory=d) as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(2)

        def run(k):
            return client.gather(client.map(pynoop.noop, range(k),
                                            pure=False))
        yield run, "Dask " + distributed.__version__


@contextlib.contextmanager
def ipyparallel(d):
    """ipyparallel: a controller and two engines (ipp.Cluster starts
    them as processes), a load-balanced view; yields run(k)."""
    os.environ["IPYTHONDIR"] = os.path.join(d, "ipython")
    ipp = need("ipyparallel", "python3-ipyparallel")
    import pynoop
    cluster = ipp.Cluster(n=2, controller_ip="127.0.0.1",
                          controller_location="127.0.0.1",
                          profile_dir=os.path.join(d, "profile"),
                          log_level=40)
    with cluster as rc:
        rc.wait_for_engines(2, timeout=120)
        view = rc.load_balanced_view()

        def run(k):
            return view.map_async(pynoop.noop, range(k), chunksize=1).get()
        yield run, "ipyparallel " + ipp.__version__


@contextlib.contextmanager
def celery(d):
    """Celery: one worker of two prefork processes, Redis the broker and
    the result backend; the task is celery_noop.noop; yields run(k)."""
    celery = need("celery", "python3-celery")
    with redis_server(d) as url:
        os.environ["SIMQ_BENCH_REDIS_URL"] = url
        import celery_noop
        procs = [subprocess.Popen(
            [sys.executable, "-m", "celery", "-q", "-A", "celery_noop",
             "worker", "--pool", "prefork", "--concurrency", "2",
             "--loglevel", "WARNING"], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(d, "celery.log"), "ab"), cwd=d)]
        try:
            def run(k):
                g = celery.group(celery_noop.noop.s(i) for i in range(k))
                return g.apply_async().get(timeout=600)
            yield run, "Celery " + celery.__version__
        finally:
            gc.collect()    # the results unsubscribe while Redis is up
            stop(procs)
            celery_noop.app.close()


DRIVERS = {
    "rq-simple": lambda d: rq(d, "rq.worker.SimpleWorker"),
    "rq-fork": lambda d: rq(d, "rq.Worker"),
    "dask": dask,
    "ipyparallel": ipyparallel,
    "celery": celery,
}


def measure(system, n):
    """Starts system, runs WARMUP tasks untimed, times n; returns a dict
    for JSON."""
    d = tempfile.mkdtemp(prefix="simq-bench-%s-" % system)
    try:
        with DRIVERS[system](d) as (run, version):
            run(WARMUP)
            t = time.monotonic()
            out = run(n)
            rate = n / (time.monotonic() - t)
            if isinstance(out, Later):
                out = out.read()
            if list(out) != list(range(n)):
                raise RuntimeError("%s: wrong results" % system)
        return {"rate": rate, "version": version}
    except Unavailable as e:
        return {"unavailable": str(e)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_apart(system, n, log, timeout=600):
    """measure(system, n) in a process and session of their own, its
    standard error appended to the file log.  What it leaves behind is
    killed, and said: the processes of that session, and those that made
    a session of their own (ipyparallel's launchers do) but still carry
    the mark it puts in their environment (SIMQ_BENCH_RUN)."""
    mark = "%d.%d" % (os.getpid(), time.monotonic_ns())
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                          system, str(n)], stdout=subprocess.PIPE,
                         stderr=log, start_new_session=True,
                         env=dict(os.environ, SIMQ_BENCH_RUN=mark))
    res = {"error": "interrupted"}
    try:
        out, _ = p.communicate(timeout=timeout)
        res = (json.loads(out.decode().strip().splitlines()[-1])
               if p.returncode == 0 and out.strip() else
               {"error": "exited with status %d" % p.returncode})
    except subprocess.TimeoutExpired:
        res = {"error": "no answer after %d s" % timeout}
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        left = collections.Counter(kill_left(p.pid, mark))
    if left:
        res["error"] = ((res["error"] + ", and " if "error" in res else "")
                        + "left %s behind (killed)" % ", ".join(
                            "%s x%d" % kv for kv in sorted(left.items())))
    return res


def left_behind(sid, mark):
    """[(pid, command)] of the live processes of session sid or whose
    environment holds SIMQ_BENCH_RUN=mark (redis-server writes its title
    over its environment, but stays in the session)."""
    want = ("SIMQ_BENCH_RUN=%s" % mark).encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            state, _, _, session = stat[stat.rindex(")") + 2:].split()[:4]
            if state == "Z":
                continue        # exited; init reaps it
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, ValueError):
            continue            # gone meanwhile
        if int(session) == sid or want in env:
            found.append((int(pid), comm))
    return found


def kill_left(sid, mark, grace=5):
    """Waits up to grace seconds for what left_behind(sid, mark) finds
    to end, kills what is left; returns their commands."""
    end = time.monotonic() + grace
    while left_behind(sid, mark) and time.monotonic() < end:
        time.sleep(0.1)
    left = left_behind(sid, mark)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return [c for _, c in left]


def main():
    """The JSON goes to the standard output as it was; whatever the
    peers print goes to the standard error."""
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [HERE] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    out.write(json.dumps(measure(sys.argv[1], int(sys.argv[2]))) + "\n")
    out.close()


if __name__ == "__main__":
    main()
