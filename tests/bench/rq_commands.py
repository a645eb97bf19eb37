#!/usr/bin/python3
"""The same 1,000 command jobs through simq and through RQ+Redis, side by
side, in the same run (issue 12; the brief's "How fast and how big").

Each job runs /bin/true as a command:

  simq   one broker (simqd, its defaults: fsync always, every submit and
         every lease durable before its reply) and one simq-worker -j 2.
         A round is `simq submit --array 1-1000 --wait -- /bin/true` (one
         request for the 1,000 tasks, then waiting for the last) and
         `simq submit --batch FILE --wait` with 1,000 lines of /bin/true
         (1,000 separate jobs in one request), each timed from just
         before the CLI starts to its exit: the submit, every task run by
         the worker (fork and exec of /bin/true, its exit status and
         output sent back, the record made durable), and the wait.
  RQ     Debian's python3-rq on a redis-server of its own (no
         persistence: --save "" --appendonly no, as tests/bench/python.py
         runs it: RQ's side does not wait for a disk at all) and two
         workers, twice: two SimpleWorkers (each runs the job in its own
         process) and two forking Workers (each forks a work horse per
         job, RQ's default).  The job is a Python function,
         rq_commands.true_job, that runs subprocess.run(["/bin/true"]);
         the 1,000 jobs are enqueued with one enqueue_many (one Redis
         pipeline), and the round ends when the queue's FinishedJobRegistry
         counts them all (polled every 2 ms).

Both sides are started once and warmed up (20 jobs), then the rounds
alternate: simq array, simq batch, RQ SimpleWorkers, RQ Workers, three
times; the medians are shown, with the ratio to simq's array.  The brokers
and their data live in a temporary directory on a real disk under
SIMQ_BENCH_DIR (default /var/tmp), removed at the end.  Loopback only.
Run with Debian's /usr/bin/python3.  SIMQ_BENCH_RQ_JOBS changes 1,000,
SIMQ_BENCH_RQ_ROUNDS changes 3.  Without python3-rq or redis-server it
says so and exits 0 (`make deps` installs them).
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from peers import free_port, stop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def true_job():
    """The RQ job: /bin/true as a command, as simq runs it."""
    subprocess.run(["/bin/true"], check=True)


def wait_port(port, what, proc):
    for _ in range(1000):
        if proc.poll() is not None:
            sys.exit("rq bench: %s exited (%d)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.01)
    sys.exit("rq bench: %s did not start" % what)


class Simq:
    def __init__(self, top, log):
        self.top = top
        port = free_port()
        self.addr = "127.0.0.1:%d" % port
        self.procs = [subprocess.Popen(
            [os.path.join(ROOT, "bin/simqd"), "-d",
             os.path.join(top, "simq-data"), "-p", str(port)],
            stdout=log, stderr=log)]
        wait_port(port, "simqd", self.procs[0])
        self.procs.append(subprocess.Popen(
            [os.path.join(ROOT, "bin/simq-worker"), "-s", self.addr,
             "-j", "2", "-w", os.path.join(top, "simq-work")],
            stdout=log, stderr=log))
        self.batch = os.path.join(top, "batch")

    def cli(self, *args):
        subprocess.run([os.path.join(ROOT, "bin/simq"), "-s", self.addr]
                       + list(args), check=True, cwd=self.top,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def array(self, n):
        t = time.monotonic()
        self.cli("submit", "--array", "1-%d" % n, "--wait", "--",
                 "/bin/true")
        return time.monotonic() - t

    def batch_of(self, n):
        with open(self.batch, "w") as f:
            f.write("/bin/true\n" * n)
        t = time.monotonic()
        self.cli("submit", "--batch", self.batch, "--wait")
        return time.monotonic() - t


class RQ:
    def __init__(self, top, log):
        import redis
        import rq
        self.rq = rq
        port = free_port()
        d = os.path.join(top, "redis")
        os.mkdir(d)
        self.procs = [subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", d],
            stdout=log, stderr=log)]
        wait_port(port, "redis-server", self.procs[0])
        self.conn = redis.Redis(port=port)
        url = "redis://127.0.0.1:%d" % port
        env = dict(os.environ)
        env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
        # Two queues on the one Redis: two SimpleWorkers serve one, two
        # forking Workers the other, so that a round has its two alone.
        # Debian's rq (its /usr/bin/python3), not one first on PATH.
        rq_cli = "/usr/bin/rq" if os.access("/usr/bin/rq", os.X_OK) else "rq"
        for queue, cls in (("simple", "rq.worker.SimpleWorker"),
                           ("fork", "rq.worker.Worker")):
            for _ in range(2):
                self.procs.append(subprocess.Popen(
                    [rq_cli, "worker", "-u",
                     url, "-w", cls, queue], stdout=log, stderr=log,
                    cwd=top, env=env))

    def run(self, queue, n):
        rq = self.rq
        q = rq.Queue(queue, connection=self.conn)
        fin = rq.registry.FinishedJobRegistry(queue=q)
        failed = rq.registry.FailedJobRegistry(queue=q)
        base, fbase = fin.count, failed.count
        t = time.monotonic()
        q.enqueue_many([rq.Queue.prepare_data("rq_commands.true_job")
                        for _ in range(n)])
        while fin.count < base + n:
            if failed.count > fbase:
                sys.exit("rq bench: an RQ job failed")
            time.sleep(0.002)
        return time.monotonic() - t


def main():
    n = int(os.environ.get("SIMQ_BENCH_RQ_JOBS", "1000"))
    rounds = int(os.environ.get("SIMQ_BENCH_RQ_ROUNDS", "3"))
    try:
        import redis  # noqa: F401
        import rq  # noqa: F401
    except ImportError:
        print("rq bench: python3-rq is not installed (make deps); skipped")
        return
    if shutil.which("redis-server") is None:
        print("rq bench: redis-server is not installed (make deps); skipped")
        return
    for f in ("bin/simqd", "bin/simq-worker", "bin/simq"):
        if not os.access(os.path.join(ROOT, f), os.X_OK):
            sys.exit("rq bench: %s is missing; run 'make bench'" % f)
    top = tempfile.mkdtemp(prefix="simq-bench-rq-",
                           dir=os.environ.get("SIMQ_BENCH_DIR", "/var/tmp"))
    log = open(os.path.join(top, "log"), "ab")
    procs = []
    try:
        s = Simq(top, log)
        procs += s.procs
        r = RQ(top, log)
        procs += r.procs
        print("RQ+Redis against simq, %d /bin/true command jobs (%s)"
              % (n, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
        print("  %s %s, RQ %s, redis-server %s; load average before: %s"
              % (sys.executable, sys.version.split()[0], rq.__version__,
                 subprocess.run(["redis-server", "--version"],
                                capture_output=True, text=True)
                 .stdout.split()[2].replace("v=", ""),
                 " ".join(open("/proc/loadavg").read().split()[:3])))
        s.array(20)                             # warm up both sides
        r.run("simple", 20)
        r.run("fork", 20)
        sides = (("simq, --array, one worker -j 2, fsync always",
                  s.array),
                 ("simq, --batch of %d jobs, same worker" % n, s.batch_of),
                 ("RQ, two SimpleWorkers, Redis without persistence",
                  lambda k: r.run("simple", k)),
                 ("RQ, two forking Workers, same Redis",
                  lambda k: r.run("fork", k)))
        times = {name: [] for name, _ in sides}
        for i in range(rounds):
            for name, fn in sides:
                times[name].append(fn(n))
            print("  round %d/%d: %s" % (i + 1, rounds, "  ".join(
                "%.0f/s" % (n / times[name][-1]) for name, _ in sides)))
        ref = n / statistics.median(times[sides[0][0]])
        print()
        print("  %-52s %9s  %s" % ("%d jobs running /bin/true" % n,
                                   "jobs/s", "simq --array is"))
        for name, _ in sides:
            rate = n / statistics.median(times[name])
            runs = " ".join("%.0f" % (n / t) for t in times[name])
            print("  %-52s %9.0f  %s  (runs %s)"
                  % (name, rate, "-" if name == sides[0][0]
                     else "%.1fx" % (ref / rate), runs))
        worst = max(statistics.median(times[name]) for name, _ in sides[2:])
        best = min(statistics.median(times[name]) for name, _ in sides[2:])
        lo = (n / statistics.median(times[sides[0][0]])) / (n / best)
        hi = (n / statistics.median(times[sides[0][0]])) / (n / worst)
        print("  simq against RQ: %.1fx-%.1fx (goal 10x: %s); load "
              "average after: %s"
              % (lo, hi, "met" if lo >= 10 else "missed by %.0f%%"
                 % ((10 - lo) * 10),
                 " ".join(open("/proc/loadavg").read().split()[:3])))
    finally:
        stop(procs)
        log.close()
        if not os.environ.get("SIMQ_BENCH_KEEP"):
            shutil.rmtree(top, ignore_errors=True)
        else:
            print("rq bench: kept %s" % top)


if __name__ == "__main__":
    main()
