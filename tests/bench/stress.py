#!/usr/bin/env python3
"""
stress.py: simqd under a flood of hostile connections, while a normal
client submits jobs and a real simq-worker runs them.  Run by `make bench`
(after run.sh and worker.sh); builds nothing.

The flood, all on loopback, opened after the normal client, the probe and
the worker have connected:

    protocol  idle (connect, say nothing), stalled mid-body (BATCH with a
              1 MiB body of which 10 KB come), never reading (STATS and
              STATUS requests pipelined, replies never read)
    HTTP      idle, stalled mid-request (headers without their end, or a
              POST whose body stops), never reading (pipelined GETs of
              /api/status)

Measured throughout, and printed with a verdict each:

    - the broker stays alive (its process, and its answers);
    - its RSS, sampled every half second (bounded: below a cap, and not
      still growing in the second half of the flood);
    - PING round trips on a connection opened before the flood, every
      20 ms: max and p99 below 10 ms;
    - fresh connections during the flood (connect, PING): served or
      refused, counted;
    - after the flood, kill -9 and a restart: every job the normal client
      had been acknowledged is there, with its arguments.

Bounded in count and time: SIMQ_STRESS_CONNS connections (default 3000,
split 40% protocol, 60% HTTP), SIMQ_STRESS_SECS seconds of flood (default
20), the broker's RLIMIT_NOFILE set to SIMQ_STRESS_NOFILE (default 2048,
below the flood, as on a node with a modest limit), and a watchdog that
ends the run after the time it should take plus a minute.
SIMQ_STRESS_KINDS=proto-idle,http-nonreader,... keeps only those kinds
(each still gets its share of SIMQ_STRESS_CONNS), to find which one hurts.  Raises this
process's own RLIMIT_NOFILE as far as its hard limit allows.  Every socket
operation of the normal client has a timeout, so a broker that stops
answering is a clear failure, not a hang.  Exit status 0 if every verdict
is ok, 1 otherwise.
"""

import errno
import os
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
import ast  # noqa: E402

SIMQD = os.path.join(ROOT, "bin", "simqd")
WORKER = os.path.join(ROOT, "bin", "simq-worker")

CONNS = int(os.environ.get("SIMQ_STRESS_CONNS", "3000"))
SECS = float(os.environ.get("SIMQ_STRESS_SECS", "20"))
NOFILE = int(os.environ.get("SIMQ_STRESS_NOFILE", "2048"))
RSS_CAP_MB = float(os.environ.get("SIMQ_STRESS_RSS_MB", "256"))
PING_MS = 10.0
OP_TIMEOUT = 2.0            # any one reply to the normal client
NONREAD_CAP = 256 * 1024    # request bytes a non-reader sends at most


def log(msg):
    print("stress: %s" % msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def raise_own_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, want) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


class Broker:
    def __init__(self, tmp):
        self.datadir = os.path.join(tmp, "data")
        self.port = free_port()
        self.http = free_port()
        self.logpath = os.path.join(tmp, "simqd.log")
        self.proc = None

    def start(self):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [SIMQD, "-d", self.datadir, "-p", str(self.port),
             "--http", str(self.http), "--segment-size", "256K"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            preexec_fn=limit)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("simqd exited at start (%s)" %
                                   self.proc.returncode)
            try:
                c = harness.Client(self.port, timeout=OP_TIMEOUT)
                c.request("PING").expect_ok()
                c.close()
                return
            except (OSError, harness.TestFailure):
                time.sleep(0.05)
        raise RuntimeError("simqd did not answer within 30 s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, n=6):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Flood:
    """The hostile connections: opened in steps, fed while writable."""

    KINDS = (
        # (name, port attribute, share of CONNS, first bytes, repeat)
        ("proto-idle", "port", 0.15, b"", None),
        ("proto-stalled-body", "port", 0.125,
         b"BATCH 1048576\r\n" + b"true\n" * 2000, None),
        ("proto-nonreader", "port", 0.125, b"",
         b"STATS\r\nSTATUS 1 2 3 4 5 6 7 8\r\n" * 64),
        ("http-idle", "http", 0.25, b"", None),
        ("http-stalled", "http", 0.175, None, None),
        ("http-nonreader", "http", 0.175, b"",
         b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n" * 64),
    )

    def __init__(self, broker):
        self.broker = broker
        self.socks = {}         # fd -> [sock, kind, pending, repeat, sent]
        self.poll = select.poll()
        self.opened = {}
        self.failed = {}
        self.errors = {}

    def plan(self):
        out = []
        only = os.environ.get("SIMQ_STRESS_KINDS")
        for name, attr, share, first, rep in self.KINDS:
            if only and name not in only.split(","):
                continue
            out += [(name, attr, first, rep)] * int(CONNS * share)
        # Interleave the kinds, so every kind is present from the start.
        random.Random(8).shuffle(out)
        return out

    def open_some(self, todo, n):
        for _ in range(min(n, len(todo))):
            name, attr, first, rep = todo.pop()
            if first is None:   # http-stalled: two shapes
                first = (b"GET /api/status HTTP/1.1\r\nHost: x\r\n"
                         if len(todo) % 2 else
                         b"POST /api/jobs HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 1000000\r\n\r\n" + b"x" * 1000)
            try:
                s = socket.socket()
                s.setblocking(False)
                r = s.connect_ex(("127.0.0.1", getattr(self.broker, attr)))
                if r not in (0, errno.EINPROGRESS):
                    raise OSError(r, os.strerror(r))
            except OSError as e:
                self.failed[name] = self.failed.get(name, 0) + 1
                self.errors[name] = str(e)
                try:
                    s.close()
                except Exception:
                    pass
                continue
            self.socks[s.fileno()] = [s, name, first, rep, 0]
            self.poll.register(s.fileno(), select.POLLOUT)
            self.opened[name] = self.opened.get(name, 0) + 1

    def pump(self, ms):
        for fd, ev in self.poll.poll(ms):
            ent = self.socks.get(fd)
            if ent is None:
                continue
            s, name, pending, rep, sent = ent
            if ev & (select.POLLERR | select.POLLHUP):
                self.drop(fd, "closed by the broker")
                continue
            data = pending if pending else (rep if rep and
                                            sent < NONREAD_CAP else b"")
            if data:
                try:
                    n = s.send(data)
                    ent[4] += n
                    ent[2] = data[n:] if pending else b""
                except BlockingIOError:
                    continue
                except OSError as e:
                    self.drop(fd, str(e))
                    continue
            if not ent[2] and not (rep and ent[4] < NONREAD_CAP):
                self.poll.modify(fd, 0)     # done: just hold it open

    def drop(self, fd, why):
        s, name = self.socks[fd][0], self.socks[fd][1]
        self.errors.setdefault(name + " (closed)", why)
        self.failed[name + " (closed)"] = \
            self.failed.get(name + " (closed)", 0) + 1
        self.poll.unregister(fd)
        s.close()
        del self.socks[fd]

    def close(self):
        for fd, ent in list(self.socks.items()):
            try:
                ent[0].close()
            except Exception:
                pass
        self.socks.clear()


def flood_child(broker_ports, n, stop_r, res_w, secs):
    """In a process of its own (so the flood never holds the probe's
    interpreter lock): opens up to n hostile connections, 100 every 20 ms,
    feeds them until told to stop (stop_r readable) or secs pass, then
    writes what happened to res_w and exits, closing them all."""
    class B:
        pass
    b = B()
    b.port, b.http = broker_ports
    fl = Flood(b)
    todo = fl.plan()[:n]
    planned = len(todo)
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        fl.open_some(todo, 100)
        fl.pump(20)
        r, _, _ = select.select([stop_r], [], [], 0)
        if r:
            break
    out = {"planned": planned, "opened": fl.opened, "failed": fl.failed,
           "errors": fl.errors}
    os.write(res_w, repr(out).encode())
    os.close(res_w)
    os._exit(0)


class Normal(threading.Thread):
    """The normal client: submits jobs, one at a time, noting each id it
    is acknowledged; reconnects after an error."""

    def __init__(self, broker, stop):
        super().__init__(daemon=True)
        self.broker, self.stop_ev = broker, stop
        self.acked = []         # (id, tag)
        self.errors = []
        self.c = harness.Client(broker.port, timeout=OP_TIMEOUT)

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            tag = "stress-%d" % i
            try:
                if self.c is None:
                    self.c = harness.Client(self.broker.port,
                                            timeout=OP_TIMEOUT)
                jid = self.c.submit(["true", tag])
                self.acked.append((jid, tag))
                i += 1
            except Exception as e:
                self.errors.append("%.1fs: %s" % (time.monotonic() - T0, e))
                if self.c is not None:
                    self.c.close()
                self.c = None
                time.sleep(0.2)
            time.sleep(0.02)


class Probe(threading.Thread):
    """PING every 20 ms on a connection opened before the flood; a fresh
    connection and PING every second."""

    def __init__(self, broker, stop):
        super().__init__(daemon=True)
        self.broker, self.stop_ev = broker, stop
        self.rtts = []
        self.timeouts = 0
        self.errors = []
        self.fresh_ok = self.fresh_bad = 0
        self.fresh_err = ""
        self.c = harness.Client(broker.port, timeout=OP_TIMEOUT)

    def run(self):
        last_fresh = 0
        while not self.stop_ev.is_set():
            t = time.monotonic()
            try:
                if self.c is None:
                    self.c = harness.Client(self.broker.port,
                                            timeout=OP_TIMEOUT)
                self.c.request("PING").expect_ok()
                self.rtts.append((time.monotonic() - t) * 1000.0)
            except Exception as e:
                self.timeouts += 1
                self.errors.append("%.1fs: %s" % (t - T0, e))
                if self.c is not None:
                    self.c.close()
                self.c = None
            if t - last_fresh >= 1.0:
                last_fresh = t
                try:
                    f = harness.Client(self.broker.port, timeout=OP_TIMEOUT)
                    f.request("PING").expect_ok()
                    f.close()
                    self.fresh_ok += 1
                except Exception as e:
                    self.fresh_bad += 1
                    self.fresh_err = str(e)
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))


RESULTS = []


def row(metric, value, target, verdict):
    RESULTS.append((metric, value, target, verdict))


def verify_acked(broker, acked):
    """Returns (intact, missing, wrong): every acknowledged job looked up
    with STATUS after the restart."""
    c = harness.Client(broker.port, timeout=10)
    intact = missing = wrong = done = 0
    for i in range(0, len(acked), 200):
        chunk = acked[i:i + 200]
        items = c.status(*[j for j, _ in chunk])
        for (jid, tag), it in zip(chunk, items):
            if it.kind == "missing":
                missing += 1
            elif it.argv != ["true", tag]:
                wrong += 1
            else:
                intact += 1
                done += it.get("state") == "done"
    c.close()
    return intact, missing, wrong, done


def speed(measured, target):
    """A latency against its target: a miss is a figure to report, not a
    broken guarantee, so it says by how much and does not fail the run
    (unanswered PINGs, a dead broker or a lost job do)."""
    if measured < target:
        return "ok"
    return "MISSED by %.0f%%" % ((measured - target) * 100.0 / target)


def main():
    global T0
    for f in (SIMQD, WORKER):
        if not os.access(f, os.X_OK):
            print("stress: %s is missing; run 'make bench'" % f,
                  file=sys.stderr)
            return 2
    own = raise_own_nofile(CONNS + 512)
    if own < CONNS + 256:
        log("RLIMIT_NOFILE is %d here: the flood is cut to %d connections"
            % (own, own - 256))
    parent = os.environ.get("SIMQ_BENCH_DIR", "/var/tmp")
    tmp = tempfile.mkdtemp(prefix="simq-stress.", dir=parent)
    broker = Broker(tmp)
    worker = None
    flood = None
    stop_w = None
    stop = threading.Event()
    # The watchdog: nothing here may hang `make bench`.
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(
        TimeoutError("the stress run took too long")))
    signal.alarm(int(SECS) + 90)
    ok = True
    try:
        broker.start()
        worker = subprocess.Popen(
            [WORKER, "-s", "127.0.0.1:%d" % broker.port, "-w",
             os.path.join(tmp, "work"), "-j", "2", "--name", "stress"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, "worker.log"), "wb"))
        T0 = time.monotonic()
        normal = Normal(broker, stop)     # both connect now, before
        probe = Probe(broker, stop)       # the flood
        n = min(CONNS, max(0, own - 256))
        log("%d hostile connections for %.0f s; simqd RLIMIT_NOFILE %d; "
            "data in %s" % (n, SECS, NOFILE, tmp))
        stop_r, stop_w = os.pipe()
        res_r, res_w = os.pipe()
        flood = os.fork()
        if flood == 0:
            try:
                os.close(stop_w)
                os.close(res_r)
                flood_child((broker.port, broker.http), n, stop_r, res_w,
                            SECS + 5)
            finally:
                os._exit(1)
        os.close(stop_r)
        os.close(res_w)
        normal.start()
        probe.start()
        rss = []
        died_at = None
        while time.monotonic() - T0 < SECS:
            now = time.monotonic() - T0
            r = rss_mb(broker.proc.pid)
            if r is not None:
                rss.append((now, r))
            if died_at is None and not broker.alive():
                died_at = now
                log("simqd exited (status %s) %.1f s into the flood" %
                    (broker.proc.returncode, now))
                break
            time.sleep(0.5)
        stop.set()
        normal.join(OP_TIMEOUT + 1)
        probe.join(OP_TIMEOUT + 1)

        # Alive, and answering, with the flood still connected?
        answered = False
        if broker.alive():
            try:
                c = harness.Client(broker.port, timeout=OP_TIMEOUT)
                c.request("PING").expect_ok()
                c.close()
                answered = True
            except Exception:
                pass
        os.close(stop_w)            # the flood ends
        stop_w = None
        got = b""
        while True:
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            got += chunk
        os.close(res_r)
        os.waitpid(flood, 0)
        flood = None
        fl = ast.literal_eval(got.decode()) if got else {"planned": n, "opened": {},
                                             "failed": {}, "errors": {}}
        row("broker process alive through the flood",
            "yes" if died_at is None and broker.alive() else
            "exited %.1fs in" % died_at, "yes",
            "ok" if died_at is None and broker.alive() else "FAILED")
        row("broker answers a new client at the flood's end",
            "yes" if answered else "no", "yes",
            "ok" if answered else "FAILED: no PING reply within %.0f s" %
            OP_TIMEOUT)
        opened = sum(fl["opened"].values())
        row("hostile connections opened (of %d)" % fl["planned"],
            str(opened), "", "info: " + ", ".join(
                "%s %d" % kv for kv in sorted(fl["opened"].items())))
        if fl["failed"]:
            row("hostile connections refused or closed", str(sum(
                fl["failed"].values())), "", "info: " + "; ".join(
                "%s %d (%s)" % (k, v, fl["errors"].get(k, ""))
                for k, v in sorted(fl["failed"].items())))
        # RSS.
        if rss:
            peak = max(r for _, r in rss)
            half = [r for t, r in rss if t >= (rss[-1][0]) / 2]
            first = [r for t, r in rss if t < (rss[-1][0]) / 2]
            growth = (max(half) - max(first)) / max(first) * 100 \
                if first and half else 0.0
            series = " ".join("%.0f" % r for _, r in rss[::4])
            row("broker RSS peak (MB)", "%.1f" % peak,
                "< %.0f" % RSS_CAP_MB,
                "ok" if peak < RSS_CAP_MB else "FAILED")
            row("broker RSS growth, 2nd half of the flood (%)",
                "%.0f" % growth, "< 25", "ok" if growth < 25 else "FAILED")
            row("broker RSS every 2 s (MB)", "", "", series)
        # PING.
        rt = probe.rtts
        if rt:
            mx, p99 = max(rt), pct(rt, 99)
            row("PING round trip max (ms), %d pings" % len(rt),
                "%.2f" % mx, "< %.0f" % PING_MS,
                speed(mx, PING_MS))
            row("PING round trip p99 / p50 (ms)",
                "%.2f / %.2f" % (p99, pct(rt, 50)), "< %.0f" % PING_MS,
                speed(p99, PING_MS))
        row("PING unanswered within %.0f s" % OP_TIMEOUT,
            str(probe.timeouts), "0",
            "ok" if not probe.timeouts else "FAILED: %s" %
            (probe.errors[0] if probe.errors else ""))
        row("fresh connections served during the flood",
            "%d of %d" % (probe.fresh_ok, probe.fresh_ok + probe.fresh_bad),
            "", "info" + (": last refusal: %s" % probe.fresh_err
                          if probe.fresh_bad else ""))
        row("jobs acknowledged to the normal client",
            str(len(normal.acked)), "> 0",
            ("ok" if normal.acked else "FAILED") +
            ("; %d errors, first: %s" % (len(normal.errors),
                                         normal.errors[0])
             if normal.errors else ""))
        # kill -9, restart, every acknowledged job intact.
        broker.kill9()
        t = time.monotonic()
        broker.start()
        ready = (time.monotonic() - t) * 1000
        intact, missing, wrong, done = verify_acked(broker, normal.acked)
        row("acknowledged jobs intact after kill -9 and restart",
            "%d of %d" % (intact, len(normal.acked)), "all",
            "ok" if intact == len(normal.acked) else
            "FAILED: %d missing, %d wrong" % (missing, wrong))
        row("restart after kill -9 (ms)", "%.0f" % ready, "", "info")
        row("of them run to the end by the worker (done)", str(done), "",
            "info")
    except Exception as e:
        row("stress run", "", "", "FAILED: %s" % e)
    finally:
        signal.alarm(0)
        stop.set()
        if flood is not None:
            try:
                os.kill(flood, signal.SIGKILL)
                os.waitpid(flood, 0)
            except OSError:
                pass
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
        tail = broker.log_tail()
        broker.stop()

    print()
    print("%-52s %14s  %-8s %s" % ("stress", "measured", "target",
                                    "verdict"))
    print("%-52s %14s  %-8s %s" % ("------", "--------", "------",
                                    "-------"))
    for m, v, t, verdict in RESULTS:
        print("%-52s %14s  %-8s %s" % (m, v, t, verdict))
        if verdict.startswith("FAILED"):
            ok = False
    if not ok:
        print("\nstress: FAILED; simqd's last log lines:\n" +
              "".join("    " + l for l in tail.splitlines(True)))
    if os.environ.get("SIMQ_BENCH_KEEP") == "1":
        print("stress: kept %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


T0 = time.monotonic()

if __name__ == "__main__":
    sys.exit(main())
