#!/usr/bin/env python3
"""
run.py: simq's pilot workers on a real Slurm (make check-slurm).

    python3 tests/slurm/run.py [--bin bin] [--keep]

Starts a one-node Slurm cluster in a temporary folder, loopback only:
munged with a key of its own, slurmctld and slurmd with their config,
state, spool and logs there (Debian's slurm-wlm; make check-slurm
installs it), with proctrack/linuxproc: like the cgroup tracking most
sites use, it signals every process of a job, the worker's jobs too.  Then a simqd, a sweep of 200 tasks, and two pilot workers
from examples/slurm/pilot.sbatch started by `sbatch --array=1-2`.  It
checks that the pilots drain the sweep, that `scancel` of the pilot
running a long job hands that job back and the other pilot re-runs it,
and that the last pilot gives its allocation back once idle.  Prints TAP
and the figures (time from a pilot's start to its first job); stops every
process it started, also on failure.  Needs root (slurmd does).
Exit status: 0 if every test passed.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TASKS = 200
NODE = "simqnode"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel",
           "sinfo")


class Failed(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failed("timed out after %.0fs waiting for %s" %
                         (timeout, what))
        time.sleep(0.2)


class Run:
    def __init__(self, args):
        self.bin = os.path.abspath(args.bin)
        self.keep = args.keep
        self.tmp = tempfile.mkdtemp(prefix="simq-slurm.")
        os.chmod(self.tmp, 0o755)
        self.procs = []		# (name, Popen)
        self.n = 0
        self.failed = 0
        self.figures = []
        self.conf = os.path.join(self.tmp, "slurm.conf")
        self.env = dict(os.environ)
        self.env["SLURM_CONF"] = self.conf
        for k in list(self.env):
            if k.startswith("SLURM_") and k != "SLURM_CONF":
                del self.env[k]
        self.jobs = []		# Slurm job ids to cancel at the end

    # TAP
    def ok(self, cond, name, why=""):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name))
            for line in str(why).splitlines():
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def note(self, s):
        print("# " + s)
        sys.stdout.flush()

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    # Processes
    def start(self, name, argv, env=None):
        log = open(self.path("log", name + ".out"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, env=env or self.env,
                             start_new_session=True, cwd=self.tmp)
        log.close()
        self.procs.append((name, p))
        return p

    def cmd(self, argv, timeout=30, check=True):
        r = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           cwd=self.tmp)
        out = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            raise Failed("%s: exit %d: %s%s" % (
                " ".join(argv), r.returncode, out.strip(),
                r.stderr.decode(errors="replace").strip()))
        return out

    def simq(self, *args):
        return self.cmd([os.path.join(self.bin, "simq"), "-s",
                         self.server] + list(args))

    def status(self, jid):
        return json.loads(self.simq("--json", "status", jid))["jobs"][0]

    def logtail(self, name, n=15):
        try:
            with open(self.path("log", name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError as e:
            return str(e)

    # The cluster
    def write_conf(self):
        for d in ("log", "state", "spool", "munge", "work", "out"):
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.path("munge"), 0o711)
        key = self.path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(128))
        os.chmod(key, 0o600)
        self.ctld_port = free_port()
        self.slurmd_port = free_port()
        conf = """\
# A one-node cluster for simq's tests, loopback only.
ClusterName=simqtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={tmp}/munge/socket
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/log/slurmctld.log
SlurmdLogFile={tmp}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SchedulerType=sched/builtin
ReturnToService=2
MinJobAge=30
KillWait=30
InactiveLimit=0
SlurmdParameters=config_overrides
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""".format(ctld=self.ctld_port, slurmd=self.slurmd_port, tmp=self.tmp,
           node=NODE, host=socket.gethostname())
        with open(self.conf, "w") as f:
            f.write(conf)

    def start_cluster(self):
        m = self.path("munge")
        self.start("munged", ["munged", "-F", "--force",
                              "--socket=%s/socket" % m,
                              "--key-file=%s/munge.key" % m,
                              "--log-file=%s/munged.log" % m,
                              "--pid-file=%s/munged.pid" % m,
                              "--seed-file=%s/munged.seed" % m])
        wait_for(lambda: os.path.exists(self.path("munge", "socket")), 15,
                 "munged's socket")
        self.ok(True, "munged runs with a key of its own")
        self.start("slurmctld", ["slurmctld", "-D", "-i", "-f", self.conf])
        self.start("slurmd", ["slurmd", "-D", "-N", NODE, "-f", self.conf])

        def idle():
            for name, p in self.procs:
                if p.poll() is not None:
                    raise Failed("%s exited %d:\n%s" % (
                        name, p.returncode, self.logtail(name + ".out")))
            r = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"],
                               env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10)
            return r.returncode == 0 and r.stdout.strip() == b"idle"
        t0 = time.monotonic()
        wait_for(idle, 60, "the node to be idle in sinfo")
        self.ok(True, "slurmctld and slurmd: node %s idle (%.1fs)" %
                (NODE, time.monotonic() - t0))

    def start_broker(self):
        port = free_port()
        self.server = "127.0.0.1:%d" % port
        self.start("simqd", [os.path.join(self.bin, "simqd"), "-d",
                             self.path("simq-data"), "-p", str(port)])

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False
        wait_for(up, 15, "simqd to accept connections")

    # The test proper
    def pilots(self):
        env = dict(self.env)
        env["SIMQ_SERVER"] = self.server
        env["SIMQ_WORKER"] = os.path.join(self.bin, "simq-worker")
        env["SIMQ_IDLE_TIMEOUT"] = "15s"
        r = subprocess.run(
            ["sbatch", "--parsable", "--array=1-2", "-c", "1", "-t", "10",
             "--mem=400M",
             "-o", self.path("log", "pilot-%A_%a.log"), "-D", self.tmp,
             os.path.join(ROOT, "examples", "slurm", "pilot.sbatch"),
             "-w", self.path("work"), "-v"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=30)
        out = r.stdout.decode().strip()
        if r.returncode != 0:
            raise Failed("sbatch: %s" % out)
        self.array = out.split(";")[0]
        self.jobs.append(self.array)
        self.ok(True, "sbatch --array=1-2 examples/slurm/pilot.sbatch: "
                "job %s" % self.array)

    def pilot_logs(self):
        logs = {}
        for fn in os.listdir(self.path("log")):
            if fn.startswith("pilot-"):
                with open(self.path("log", fn), errors="replace") as f:
                    logs[fn] = f.read()
        return logs

    def pilot_starts(self):
        """{slurm job id: start time (s)} from the pilots' first line."""
        starts = {}
        for text in self.pilot_logs().values():
            for line in text.splitlines():
                if line.startswith("simq-pilot: slurm-"):
                    w = line.split()
                    starts[w[1][6:]] = float(w[-1])
        return starts

    def sweep(self):
        cmd = ('echo "${SIMQ_PILOT#slurm-} $(date +%%s.%%N)" > %s/{}' %
               self.path("out"))
        # A pilot takes only jobs whose timeout fits in what is left of
        # its allocation (10 min).
        self.sweep_id = self.simq("submit", "--array", "1-%d" % TASKS,
                                  "-t", "1m", "--", "sh", "-c",
                                  cmd).strip()
        t0 = time.monotonic()
        self.pilots()

        def done():
            s = self.status(self.sweep_id)
            return s["counts"]["done"] == TASKS and s
        try:
            wait_for(done, 180, "the sweep to be done")
        except Failed as e:
            s = self.status(self.sweep_id)
            self.ok(False, "the pilots drain a sweep of %d tasks" % TASKS,
                    "%s; counts %r\n%s" % (e, s["counts"], "\n".join(
                        v[-1500:] for v in self.pilot_logs().values())))
            raise
        took = time.monotonic() - t0
        ran = {}
        first = {}
        for fn in os.listdir(self.path("out")):
            with open(self.path("out", fn)) as f:
                w = f.read().split()
            ran[w[0]] = ran.get(w[0], 0) + 1
            first[w[0]] = min(first.get(w[0], 1e18), float(w[1]))
        self.ok(len(os.listdir(self.path("out"))) == TASKS,
                "the pilots drain a sweep of %d tasks (%.1fs; tasks per "
                "Slurm job: %s)" % (TASKS, took, ", ".join(
                    "%s: %d" % kv for kv in sorted(ran.items()))))
        left = [int(x) for v in self.pilot_logs().values()
                for x in re.findall(r"Slurm job \d+ ends in (\d+) s", v)]
        self.ok(len(left) == 2 and all(500 < x <= 600 for x in left),
                "each pilot read its end from Slurm (seconds left: %s of "
                "sbatch -t 10)" % left, "\n".join(self.pilot_logs().values())
                [-2000:])
        offers = re.findall(r"starting: .*?, (\d+ CPUs?, \d+ GPUs, \d+ MiB)",
                            "\n".join(self.pilot_logs().values()))
        self.ok(offers == ["1 CPU, 0 GPUs, 400 MiB"] * 2,
                "each pilot offers what Slurm gave it (-c 1 --mem=400M): "
                "%s" % offers)
        starts = self.pilot_starts()
        alloc = self.allocations()
        for jid in sorted(first):
            if jid in starts and jid in alloc:
                self.figures.append(
                    "pilot %s: %.0f ms from slurmctld allocating it to its "
                    "first job taken (%.0f ms to the script's start, then "
                    "%.0f ms)" % (jid, (first[jid] - alloc[jid]) * 1000,
                                  (starts[jid] - alloc[jid]) * 1000,
                                  (first[jid] - starts[jid]) * 1000))

    def allocations(self):
        """{array task "A_T": when slurmctld allocated it (s)}."""
        alloc = {}
        with open(self.path("log", "slurmctld.log"), errors="replace") as f:
            for line in f:
                m = re.match(r"\[(\d+-\d+-\d+T\d+:\d+:\d+)(\.\d+)?\] "
                             r"sched: Allocate JobId=(\d+_\d+)\(", line)
                if m:
                    alloc[m.group(3)] = time.mktime(time.strptime(
                        m.group(1), "%Y-%m-%dT%H:%M:%S")) + \
                        float(m.group(2) or 0)
        return alloc

    def scancel_one(self):
        marker = self.path("out-long")
        os.makedirs(marker)
        cmd = ('echo "${SIMQ_PILOT#slurm-}" > %s/attempt.$SIMQ_ATTEMPT; '
               '[ "$SIMQ_ATTEMPT" -gt 1 ] || exec sleep 300' % marker)
        jid = self.simq("submit", "--name", "long", "-t", "5m", "--", "sh",
                        "-c", cmd).strip()
        s = wait_for(lambda: (lambda s: s["state"] == "running" and
                              os.path.exists(marker + "/attempt.1") and s)(
            self.status(jid)), 30, "the long job to run")
        worker = s["worker"]
        with open(marker + "/attempt.1") as f:
            victim = f.read().strip()
        self.ok(worker.endswith(":slurm-" + victim),
                "the long job runs on pilot %s (Slurm job %s)" %
                (worker, victim), "worker %r" % worker)
        t0 = time.monotonic()
        self.cmd(["scancel", victim])
        s = wait_for(lambda: (lambda s: s["state"] == "done" and s)(
            self.status(jid)), 60, "the long job to be done on the other "
            "pilot")
        took = time.monotonic() - t0
        with open(marker + "/attempt.2") as f:
            other = f.read().strip()
        self.ok(s["attempts"] == 2 and other != victim and
                s["worker"] != worker,
                "scancel of Slurm job %s mid-job: the job is handed back "
                "and re-run on pilot %s, done %.1fs after scancel" %
                (victim, s["worker"], took),
                "attempts %r, attempt 2 in Slurm job %s on %r" %
                (s["attempts"], other, s["worker"]))
        self.figures.append("scancel to the job done on the other pilot: "
                            "%.1f s" % took)

        def gone(j):
            return self.cmd(["squeue", "-h", "-j", j, "-o", "%i"],
                            check=False).strip() == ""
        wait_for(lambda: gone(victim), 40, "Slurm job %s to end" % victim)
        log = "\n".join(v for v in self.pilot_logs().values()
                        if "slurm-%s " % victim in v)
        # linuxproc signals every process of the job: the job may die of
        # its SIGTERM just before the worker hears its own.
        self.ok("got SIGTERM: stopping" in log and
                "handing it back" in log and "OK queued" in log and
                "no jobs left; exiting" in log,
                "the cancelled pilot handed its job back and exited",
                log[-2000:])
        # The other pilot, idle, gives its allocation back by itself.
        t0 = time.monotonic()
        wait_for(lambda: gone(other), 60, "the idle pilot %s to end" % other)
        log = "\n".join(v for v in self.pilot_logs().values()
                        if "slurm-%s " % other in v)
        self.ok("idle for 15000 ms; exiting" in log,
                "the other pilot exits once idle for 15s (%.1fs after the "
                "job)" % (time.monotonic() - t0), log[-2000:])

    # Teardown: every process we started, and everything our cluster
    # started (slurmstepd, pilots, jobs: their environment names our
    # slurm.conf).
    def ours(self):
        pids = []
        needle = ("SLURM_CONF=" + self.conf).encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                pass
        return pids

    def teardown(self):
        for j in self.jobs:
            subprocess.run(["scancel", j], env=self.env,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        deadline = time.monotonic() + 15
        while self.jobs and time.monotonic() < deadline:
            r = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10)
            if r.returncode != 0 or not r.stdout.strip():
                break
            time.sleep(0.3)
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for pid in self.ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        left = self.ours()
        if left:
            self.note("processes left running: %r" % left)
        if self.keep or self.failed:
            self.note("logs kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("1..0 # SKIP slurmd needs root")
        return 0
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        print("1..1\nnot ok 1 - Slurm and munge are installed\n"
              "#   missing: %s (make check-slurm installs them)" %
              " ".join(missing))
        return 1
    t0 = time.monotonic()
    r = Run(args)
    try:
        r.write_conf()
        r.start_cluster()
        r.start_broker()
        r.sweep()
        r.scancel_one()
    except (Failed, subprocess.SubprocessError, OSError, KeyError,
            ValueError) as e:
        r.ok(False, "the Slurm run went on to its end", e)
        r.note("slurmctld: " + r.logtail("slurmctld.log", 5))
        r.note("slurmd: " + r.logtail("slurmd.log", 5))
    finally:
        r.teardown()
    for f in r.figures:
        r.note(f)
    r.note("run time %.1fs" % (time.monotonic() - t0))
    print("1..%d" % r.n)
    print("%d passed, %d failed" % (r.n - r.failed, r.failed))
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
