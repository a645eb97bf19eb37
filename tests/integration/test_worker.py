"""
simq-worker end to end: a real simqd, real simq-worker processes, real
jobs.  What a job sees (exit codes, signals, output and its bounds, the
result file, its environment, {} substitution, its directory), what
happens to its processes (timeouts, cancels, leftovers, a worker killed
with -9), and what the broker hears when things go wrong (a broker
restarted under running jobs, a frozen worker whose lease ran out), and
the worker's life cycle (drain, stop, burst, reconnect, no polling).

Jobs that must be found later carry env=SIMQ_TEST_MARK=<unique>: every
process of the job inherits it, so procs_with() finds them all.
"""

import os
import signal
import socket
import subprocess
import time

from harness import TestFailure, check, eq, wait_until, proc_cpu_ticks
from workerlib import (WorkerProc, marker, procs_with, wait_no_procs,
                       wait_procs, wait_job, output, run_simq_worker)


def sh(script):
    return ["sh", "-c", script]


# ---------------------------------------------------------------------------
# What a job sees

def test_exit_codes_and_signals(ctx):
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, slots=4)
    ok = c.submit(["true"])
    seven = c.submit(sh("exit 7"))
    killed = c.submit(sh("kill -USR1 $$"))
    missing = c.submit(["/nonexistent/prog", "x"])
    notexec = c.submit(["/etc/passwd"])
    badcwd = c.submit(["true"], cwd="/nonexistent/dir")
    it = wait_job(ctx, c, ok)
    eq((it["state"], it["exit"], it.get("signal")), ("done", "0", None),
       "exit 0")
    for k in ("started", "finished", "utime", "stime", "maxrss", "outpath",
              "worker", "host"):
        check(k in it, "%s reported: %r" % (k, it))
    check(int(it["finished"]) >= int(it["started"]), "end after start")
    check(int(it["maxrss"]) > 0, "peak memory measured: %r" % it)
    it = wait_job(ctx, c, seven)
    eq((it["state"], it["exit"]), ("failed", "7"), "exit 7")
    it = wait_job(ctx, c, killed)
    eq((it["state"], it.get("signal"), it.get("exit")),
       ("failed", str(signal.SIGUSR1), None), "killed by SIGUSR1")
    it = wait_job(ctx, c, missing)
    eq(it["state"], "failed", "a missing program fails")
    eq(it["reason"], "exec /nonexistent/prog: No such file or directory",
       "the reason names the program and the error")
    it = wait_job(ctx, c, notexec)
    eq(it["reason"], "exec /etc/passwd: Permission denied", "not executable")
    it = wait_job(ctx, c, badcwd)
    eq(it["reason"], "cwd /nonexistent/dir: No such file or directory",
       "a missing directory fails the attempt, with a reason")


def test_output_capture_bounds_and_files(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b)
    # 588895 bytes of stdout, a little stderr, and no stdin.
    jid = c.submit(sh("seq 1 100000; echo oops >&2; cat; echo end >&2"))
    it = wait_job(ctx, c, jid)
    eq(it["state"], "done", "state")
    full = "".join("%d\n" % i for i in range(1, 100001)).encode()
    got = output(c, jid, "stdout")
    eq(len(got), 65536, "the stdout tail is bounded to 64 KiB")
    eq(got, full[-65536:], "the stdout tail is the last 64 KiB")
    eq(output(c, jid, "stderr"), b"oops\nend\n", "stderr, stdin /dev/null")
    # The whole output stays on the node, where the job record says.
    path = it["outpath"]
    check(path.startswith(w.workdir + "/"), "outpath in the work dir: %s" %
          path)
    with open(path, "rb") as f:
        eq(f.read(), full, "the full stdout on disk")
    errpath = path[:-4] + ".err" if path.endswith(".out") else path + ".err"
    with open(errpath, "rb") as f:
        eq(f.read(), b"oops\nend\n", "the full stderr next to it")
    # output= patterns: %A %a %j, relative to the job's directory, with
    # missing directories made.
    d = ctx.mkdtemp("pat")
    aid = c.submit(sh("echo out {}; echo err {} >&2"), array="1-3", cwd=d,
                   output="logs/%A_%a.out")
    one = c.submit(sh("echo single"), output=d + "/x-%j-%a.log")
    wait_job(ctx, c, aid)
    for i in (1, 2, 3):
        it = c.status1("%d_%d" % (aid, i))
        want = os.path.join(d, "logs", "%d_%d.out" % (aid, i))
        eq(it["outpath"], want, "outpath of task %d" % i)
        with open(want) as f:
            eq(f.read(), "out %d\n" % i, "task %d stdout file" % i)
        with open(want[:-4] + ".err") as f:
            eq(f.read(), "err %d\n" % i, "task %d stderr file" % i)
    it = wait_job(ctx, c, one)
    eq(it["outpath"], d + "/x-%d-.log" % one, "%j, and %a of a plain job")
    with open(d + "/x-%d-.log" % one) as f:
        eq(f.read(), "single\n", "stdout file of a pattern")
    # A stream the job never wrote to leaves no file: a sweep of silent
    # jobs does not fill the disk with empty files.
    check(not os.path.exists(d + "/x-%d-.log.err" % one),
          "no stderr file for a job that wrote nothing there")
    quiet = c.submit(["true"])
    it = wait_job(ctx, c, quiet)
    eq(it["state"], "done", "state")
    check(not os.path.exists(it["outpath"]), "no files for a silent job")


def test_result_file(ctx):
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b)
    small = c.submit(sh('printf "answer=42\\n\\001\\377" > "$SIMQ_RESULT"'))
    big = c.submit(sh('head -c 100000 /dev/zero | tr "\\000" x '
                      '> "$SIMQ_RESULT"'))
    none = c.submit(["true"])
    failed = c.submit(sh('echo partial > "$SIMQ_RESULT"; exit 1'))
    wait_job(ctx, c, small)
    eq(output(c, small, "result"), b"answer=42\n\x01\xff",
       "the result file's bytes become the result")
    wait_job(ctx, c, big)
    eq(output(c, big, "result"), b"x" * 65536,
       "a result is bounded to its first 64 KiB")
    wait_job(ctx, c, none)
    eq(output(c, none, "result"), b"", "no result file, empty result")
    eq(wait_job(ctx, c, failed)["state"], "failed", "state")
    eq(output(c, failed, "result"), b"partial\n", "a failed job's result")


def env_of(c, jid):
    raw = output(c, jid, "result")
    env = {}
    for kv in raw.split(b"\0"):
        if kv:
            k, _, v = kv.decode().partition("=")
            env[k] = v
    return env


def test_environment_substitution_and_directory(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, args=["-q", "sims,default"])
    d = ctx.mkdtemp("cwd")
    dump = 'env -0 > "$SIMQ_RESULT"; pwd; echo "$@"'
    jid = c.submit(sh(dump) + ["arg0", "a b", "{}"], q="sims", cwd=d,
                   env=["FOO=bar baz", "PATH=/usr/bin:/bin",
                        "SIMQ_JOB_ID=spoofed"], name="sweep")
    aid = c.submit(sh(dump) + ["arg0", "x{}y", "{}{}"], array="5-7:2")
    it = wait_job(ctx, c, jid)
    eq(it["state"], "done", "state")
    env = env_of(c, jid)
    eq(env.get("SIMQ_JOB_ID"), str(jid), "SIMQ_JOB_ID (not spoofable)")
    eq(env.get("SIMQ_QUEUE"), "sims", "SIMQ_QUEUE")
    eq(env.get("SIMQ_ATTEMPT"), "1", "SIMQ_ATTEMPT")
    eq(env.get("SIMQ_RESULT"), os.path.join(w.workdir, "%d.1.result" % jid),
       "SIMQ_RESULT is a file in the work dir")
    eq(env.get("SIMQ_WORKER"), w.name, "SIMQ_WORKER")
    eq(env.get("SIMQ_JOB_NAME"), "sweep", "SIMQ_JOB_NAME")
    eq(env.get("SIMQ_SERVER"), "127.0.0.1:%d" % b.port, "SIMQ_SERVER")
    eq(env.get("FOO"), "bar baz", "env= additions")
    eq(env.get("PATH"), "/usr/bin:/bin", "env= overrides the worker's")
    check("SIMQ_ARRAY_ID" not in env and "SIMQ_ARRAY_INDEX" not in env,
          "no array variables for a plain job")
    check("HOME" in env or "LANG" in env, "the worker's environment "
          "is passed on: %r" % sorted(env))
    eq(output(c, jid, "stdout").decode(), "%s\na b {}\n" % d,
       "the job runs in its cwd, {} is literal outside arrays")
    wait_job(ctx, c, aid)
    for i in (5, 7):
        tid = "%d_%d" % (aid, i)
        eq(c.status1(tid)["state"], "done", "task %s" % tid)
        env = env_of(c, tid)
        eq((env.get("SIMQ_JOB_ID"), env.get("SIMQ_ARRAY_ID"),
            env.get("SIMQ_ARRAY_INDEX"), env.get("SIMQ_QUEUE")),
           (tid, str(aid), str(i), "default"), "task variables")
        eq(output(c, tid, "stdout").decode(),
           "%s\nx%dy %d%d\n" % (w.cwd or os.getcwd(), i, i, i),
           "{} substituted; no cwd= runs in the worker's directory")


def test_job_start_descriptors_and_pipes(ctx):
    """What the shepherd sets up once or ahead (its stdin, the next job's
    pipes) and how it hears a job end (its exit, not its pipes' ends)
    must not show: stdin is /dev/null whatever the worker's is, a job
    sees no descriptor but 0, 1 and 2, jobs in a row never share a pipe,
    a job that closes its output still ends when it exits, and output a
    left-behind process writes before it is killed is kept."""
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=1, start=False)
    # The worker's own stdin: a pipe with bytes in it, never a job's.
    r, wr = os.pipe()
    os.write(wr, b"the worker's stdin\n")
    with open(w.logpath, "ab") as lf:
        w.proc = subprocess.Popen(w.cmd, stdin=r, stdout=lf, stderr=lf,
                                  env=w.env)
    os.close(r)
    ctx.cleanups.append(lambda: os.close(wr))
    stdin = c.submit(sh("cat; readlink /proc/self/fd/0"))
    fds = c.submit(sh("ls /proc/$$/fd"))
    # One slot: these run one after another on one shepherd.
    seq = [c.submit(sh("echo %d; echo e%d >&2" % (i, i))) for i in range(20)]
    closed = c.submit(sh("exec >&- 2>&-; sleep 0.3; exit 3"))
    late = c.submit(sh("(echo late; sleep 1000) & sleep 0.3; echo early"))
    it = wait_job(ctx, c, stdin)
    eq((it["state"], output(c, stdin)), ("done", b"/dev/null\n"),
       "a job's stdin is /dev/null, not the worker's")
    wait_job(ctx, c, fds)
    eq(sorted(output(c, fds).split()), [b"0", b"1", b"2"],
       "a job holds only its stdin, stdout and stderr")
    for i, jid in enumerate(seq):
        eq(wait_job(ctx, c, jid)["state"], "done", "job %d" % i)
        eq((output(c, jid), output(c, jid, "stderr")),
           (b"%d\n" % i, b"e%d\n" % i), "job %d's own output" % i)
    it = wait_job(ctx, c, closed)
    eq((it["state"], it["exit"]), ("failed", "3"),
       "a job that closed its output ends with its exit")
    it = wait_job(ctx, c, late)
    eq((it["state"], output(c, late)), ("done", b"late\nearly\n"),
       "the output of a process left behind is kept up to its end")


def test_relative_directories(ctx):
    b = ctx.broker
    c = b.client()
    d = ctx.mkdtemp("rel")
    for sub in ("a", "b"):
        os.mkdir(os.path.join(d, sub))
    # One slot: the same shepherd runs all three, one after another.
    w = WorkerProc(ctx, b, slots=1, cwd=d, args=["-w", "work"])
    ids = [c.submit(["pwd"], cwd="a"), c.submit(["pwd"], cwd="b"),
           c.submit(["pwd"], cwd="a", output="out/%j.txt"),
           c.submit(["pwd"])]
    want = [d + "/a", d + "/b", d + "/a", d]
    for jid, wd in zip(ids, want):
        eq(wait_job(ctx, c, jid)["state"], "done", "job %d" % jid)
        eq(output(c, jid).decode(), wd + "\n",
           "a relative cwd= is relative to the worker's directory")
    eq(c.status1(ids[2])["outpath"], d + "/a/out/%d.txt" % ids[2],
       "an output pattern is relative to the job's directory")
    eq(c.status1(ids[0])["outpath"],
       os.path.join(d, "work", "%d.1.out" % ids[0]),
       "a relative -w is relative to where the worker started")
    check(w.running(), "worker runs")


# ---------------------------------------------------------------------------
# What happens to a job's processes

def test_timeout_kills_the_whole_tree(ctx):
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, args=["--grace", "1s"])
    m1, m2 = marker(), marker()
    t0 = time.monotonic()
    jid = c.submit(sh("sleep 1000 & sleep 1000 & wait"), timeout=700,
                   env="SIMQ_TEST_MARK=" + m1)
    # This one ignores SIGTERM (and so do its children): SIGKILL after
    # the grace period.
    stubborn = c.submit(sh("trap '' TERM; sleep 1000 & sleep 1000; wait"),
                        timeout=700, env="SIMQ_TEST_MARK=" + m2)
    wait_procs(ctx, m1, 3)
    it = wait_job(ctx, c, jid)
    eq((it["state"], it.get("timedout"), it.get("signal")),
       ("failed", "1", str(signal.SIGTERM)), "timed out, SIGTERM")
    check(time.monotonic() - t0 >= 0.7, "not before the timeout")
    wait_no_procs(ctx, m1, what="the timed-out job's children")
    it = wait_job(ctx, c, stubborn)
    eq((it["state"], it.get("timedout"), it.get("signal")),
       ("failed", "1", str(signal.SIGKILL)), "SIGKILL after the grace")
    ran = (int(it["finished"]) - int(it["started"])) / 1000.0
    check(1.6 <= ran < 10, "killed after timeout + grace (%.2fs)" % ran)
    wait_no_procs(ctx, m2, what="the stubborn job's children")


def test_leftover_processes_are_killed(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b)
    m = marker()
    # Background children, one in its own session (setsid), one that
    # double-forks: none may outlive the job, which exits 0 at once.
    jid = c.submit(sh("sleep 1000 & setsid sleep 1000 & "
                      "(sh -c 'sleep 1000 &' &) ; sleep 0.3; exit 0"),
                   env="SIMQ_TEST_MARK=" + m)
    it = wait_job(ctx, c, jid)
    eq((it["state"], it["exit"]), ("done", "0"), "the job itself is done")
    wait_no_procs(ctx, m, what="processes the job left behind")
    w.wait_log("left behind")


def test_cancel_kills_a_running_job(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, lease=30000, args=["--grace", "1s"])
    m = marker()
    jid = c.submit(sh("sleep 1000 & sleep 1000"), env="SIMQ_TEST_MARK=" + m)
    wait_procs(ctx, m, 2)
    t0 = time.monotonic()
    c.request("CANCEL %d" % jid).expect_ok("1")
    # The worker's parked TAKE ends with the drop at once: no waiting
    # for a heartbeat (the lease is 30 s).
    wait_no_procs(ctx, m, timeout=2, what="the canceled job's processes")
    check(time.monotonic() - t0 < 2 * ctx.slow, "killed promptly")
    w.wait_log("canceled")
    # Its result is discarded: the job stays canceled, and the worker
    # takes the next one.
    nxt = c.submit(["true"])
    eq(wait_job(ctx, c, nxt)["state"], "done", "the next job runs")
    it = c.status1(jid)
    eq(it["state"], "canceled", "still canceled")
    check("exit" not in it and "signal" not in it, "no result: %r" % it)


def test_job_that_kills_its_shepherd(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b)
    m = marker()
    jid = c.submit(sh("sleep 1000 & kill -9 $PPID; sleep 1000"),
                   env="SIMQ_TEST_MARK=" + m)
    # A dead shepherd counts like a lost worker (the worker cannot tell
    # who killed it): the job runs again, up to simqd's --max-lost (5).
    it = wait_job(ctx, c, jid, timeout=30)
    eq((it["state"], it["attempts"]), ("failed", "6"), "state")
    eq(it.get("reason"), "its worker was lost 6 times (the last time its "
       "shepherd process died)", "reason")
    wait_no_procs(ctx, m, what="the processes of a job whose shepherd died")
    check(w.running(), "the worker survives")
    # The slot gets a new shepherd.
    jids = [c.submit(["true"]) for _ in range(3)]
    for j in jids:
        eq(wait_job(ctx, c, j)["state"], "done", "later jobs run")


def test_memory_limit_and_slots(ctx):
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, slots=2, args=["-m", "200M"])
    lim = c.submit(sh("ulimit -v"))
    eq(wait_job(ctx, c, lim)["state"], "done", "state")
    eq(output(c, lim).decode().strip(), str(200 * 1024),
       "RLIMIT_AS is the -m limit (in KiB for ulimit -v)")
    # -j 2: six jobs of 0.4 s never run more than two at a time, by the
    # worker's clock (started and ended: a job leased ahead starts the
    # moment a slot frees, before the broker records the end before it).
    ids = [c.submit(["sleep", "0.4"]) for _ in range(6)]
    spans = []
    for jid in ids:
        it = wait_job(ctx, c, jid)
        spans.append((int(it["started"]), int(it["ended"])))
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    eq(most, 2, "jobs running at once with -j 2")


# ---------------------------------------------------------------------------
# When things go wrong

def test_kill9_worker_mid_job(ctx):
    b = ctx.broker
    c = b.client()
    lease = 2000
    d = ctx.mkdtemp("runs")
    m = marker()
    a = WorkerProc(ctx, b, name="a", lease=lease)
    jid = c.submit(sh('sleep 1000 & sleep 1.5; echo "$SIMQ_WORKER" >> %s/ran'
                      % d), env="SIMQ_TEST_MARK=" + m)
    wait_procs(ctx, m, 2)
    a.kill9()
    t0 = time.monotonic()
    # Its shepherd kills the job at once: nothing runs on for a job the
    # broker will give to another node.
    wait_no_procs(ctx, m, timeout=2, what="the dead worker's job")
    bw = WorkerProc(ctx, b, name="b", lease=lease)
    it = wait_job(ctx, c, jid, timeout=lease / 1000.0 + 5)
    took = time.monotonic() - t0
    eq((it["state"], it["attempts"], it["worker"]), ("done", "2", "b"),
       "run again on the other worker")
    check(took < (lease / 1000.0 + 1.5 + 2) * ctx.slow,
          "within the lease time (%.1fs)" % took)
    with open(os.path.join(d, "ran")) as f:
        eq(f.read(), "b\n", "completed once, by b")
    check(bw.running(), "b runs on")


def test_broker_restart_while_jobs_run(ctx):
    b = ctx.broker
    c = b.client()
    d = ctx.mkdtemp("runs")
    w = WorkerProc(ctx, b, slots=4, lease=3000)
    script = ('echo start >> %s/$SIMQ_JOB_ID; sleep $0; '
              'echo end >> %s/$SIMQ_JOB_ID; echo out-$SIMQ_JOB_ID' % (d, d))
    short = c.submit(sh(script) + ["0.3"])	# ends while the broker is down
    long_ = [c.submit(sh(script) + ["2"]) for _ in range(2)]
    wait_until(lambda: all(os.path.exists(os.path.join(d, str(j)))
                           for j in [short] + long_), 5 * ctx.slow,
               "the jobs to start")
    c.close()
    b.kill9()
    time.sleep(0.8)
    b.start()
    c = b.client()
    for jid in [short] + long_:
        it = wait_job(ctx, c, jid, timeout=10)
        eq((it["state"], it["attempts"], it["worker"]), ("done", "1", w.name),
           "job %d: done, once, by the same worker" % jid)
        with open(os.path.join(d, str(jid))) as f:
            eq(f.read(), "start\nend\n", "job %d ran once" % jid)
        eq(output(c, jid).decode(), "out-%d\n" % jid, "its output arrived")
    w.wait_log("reconnected")
    check(w.running(), "the worker survived the broker's restart")


def test_frozen_worker_is_fenced_off(ctx):
    b = ctx.broker
    c = b.client()
    lease = 2000
    # One slot: a frozen worker with a TAKE parked would be handed the
    # re-queued job again (its connection is alive).
    a = WorkerProc(ctx, b, name="a", slots=1, lease=lease)
    jid = c.submit(sh('if [ "$SIMQ_WORKER" = b ]; then sleep 2; '
                      'else sleep 0.5; fi; echo "from $SIMQ_WORKER"'))
    wait_job(ctx, c, jid, states=("running",))
    a.signal(signal.SIGSTOP)
    try:
        # a's job ends while a is frozen; a cannot report it.  Its lease
        # runs out and b gets the job.
        bw = WorkerProc(ctx, b, name="b", lease=lease)
        wait_until(lambda: c.status1(jid).get("worker") == "b",
                   (lease / 1000.0 + 5) * ctx.slow, "b to take the job")
        eq(c.status1(jid)["attempts"], "2", "a second attempt")
    finally:
        a.signal(signal.SIGCONT)
    # a wakes up with a finished job whose attempt is no longer current:
    # the broker tells it so (a drop, or ERR stale to its FINISH), and
    # its result is discarded.
    wait_until(lambda: "refused the result" in a.log() or
               "discarding its result" in a.log() or
               "result will be discarded" in a.log(),
               5 * ctx.slow, "worker a to be fenced off")
    it = wait_job(ctx, c, jid)
    eq((it["state"], it["worker"], it["attempts"]), ("done", "b", "2"),
       "b's attempt is the outcome")
    eq(output(c, jid), b"from b\n", "b's output, not a's")
    check(a.running() and bw.running(), "both workers run on")


def test_heartbeats_keep_long_jobs(ctx):
    b = ctx.broker
    c = b.client()
    WorkerProc(ctx, b, lease=1000)
    jid = c.submit(["sleep", "2.5"])
    it = wait_job(ctx, c, jid)
    eq((it["state"], it["attempts"]), ("done", "1"),
       "a job longer than the lease is kept by heartbeats")


def test_worker_waits_for_the_broker(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["true"])
    c.close()
    b.stop()
    w = WorkerProc(ctx, b)
    time.sleep(0.7)
    check(w.running(), "the worker waits for a broker that is not there")
    b.start()
    c = b.client()
    eq(wait_job(ctx, c, jid)["state"], "done", "runs once it is back")
    w.wait_registered(c)


# ---------------------------------------------------------------------------
# Life cycle

def test_drain_on_sigterm(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=2, lease=30000)
    first = [c.submit(["sleep", "1"]) for _ in range(2)]
    for jid in first:
        wait_job(ctx, c, jid, states=("running",))
    rest = [c.submit(["true"]) for _ in range(3)]
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(5), 0, "exit status after draining")
    for jid in first:
        eq(c.status1(jid)["state"], "done", "running jobs finish")
    for jid in rest:
        eq(c.status1(jid)["state"], "queued", "no new jobs are taken")
    check("draining" in w.log(), "says it drains")
    # With nothing running, SIGTERM exits at once.
    idle = WorkerProc(ctx, b, args=["-q", "empty"])
    idle.wait_registered(c)
    idle.signal(signal.SIGINT)
    eq(idle.wait_exit(3), 0, "an idle worker exits at once (SIGINT too)")
    eq(c.status1(rest[0])["state"], "queued", "and takes nothing")


def test_second_sigterm_hands_jobs_back(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=2, lease=30000, args=["--grace", "500ms"])
    m = marker()
    ids = [c.submit(sh("trap '' TERM; sleep 1000"), env="SIMQ_TEST_MARK=" + m,
                    retries=0) for _ in range(2)]
    wait_procs(ctx, m, 4)
    w.signal(signal.SIGTERM)
    w.wait_log("draining")
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(5), 0, "exit status after stopping")
    wait_no_procs(ctx, m, what="the stopped jobs")
    for jid in ids:
        it = c.status1(jid)
        eq(it["state"], "queued", "handed back, ready for another worker")
    # Another worker picks them up at once (no lease to wait for).
    t0 = time.monotonic()
    w2 = WorkerProc(ctx, b, slots=2, lease=30000)
    for jid in ids:
        wait_job(ctx, c, jid, states=("running",), timeout=3)
    check(time.monotonic() - t0 < 3 * ctx.slow, "re-run promptly")
    check(w2.running(), "w2 runs")


def test_burst(ctx):
    b = ctx.broker
    c = b.client()
    # Nothing to do: exits at once.
    w = WorkerProc(ctx, b, args=["--burst"])
    eq(w.wait_exit(5), 0, "burst with empty queues")
    # A few jobs and a chain of dependencies: all done, then exit.
    ids = [c.submit(["sleep", "0.2"]) for _ in range(5)]
    a = c.submit(["true"])
    bb = c.submit(["sleep", "0.2"], after=a)
    cc = c.submit(["true"], after=bb)
    w = WorkerProc(ctx, b, slots=2, args=["--burst"])
    eq(w.wait_exit(15), 0, "burst exit status")
    for jid in ids + [a, bb, cc]:
        eq(c.status1(jid)["state"], "done", "job %d done before exit" % jid)
    check("burst" in w.log(), "says why it exits")


def test_idle_worker_does_not_poll(ctx):
    b = ctx.broker
    c = b.client()
    # Defaults: the name is HOST:PID, one slot per CPU it may use.
    w = WorkerProc(ctx, b, name=False, slots=None, lease=1000,
                   args=["-q", "b,default"])
    it = w.wait_registered(c)
    eq((it["slots"], it["pid"], it["host"], it["queues"]),
       (str(len(os.sched_getaffinity(0))), str(w.pid),
        socket.gethostname(), "b,default"), "what the worker registers")
    time.sleep(0.3)
    t0 = proc_cpu_ticks(w.pid)
    b0 = proc_cpu_ticks(b.pid)
    time.sleep(2)
    used = proc_cpu_ticks(w.pid) - t0
    check(used <= 1, "an idle worker used %d CPU ticks in 2 s" % used)
    check(proc_cpu_ticks(b.pid) - b0 <= 2, "and made the broker busy")
    # Dispatch is immediate: the parked TAKE gets the job.
    t = time.monotonic()
    jid = c.submit(["true"])
    wait_job(ctx, c, jid)
    check(time.monotonic() - t < 1 * ctx.slow, "dispatch without polling")


def test_token_and_usage(ctx):
    d = ctx.mkdtemp("tok")
    tf = os.path.join(d, "token")
    with open(tf, "w") as f:
        f.write("s3cret\n")
    b = ctx.start_broker(["--token-file", tf])
    c = b.client()
    c.request("HELLO 1 s3cret").expect_ok("simq", "1")
    jid = c.submit(["true"])
    w = WorkerProc(ctx, b, env={"SIMQ_TOKEN": "s3cret"})
    eq(wait_job(ctx, c, jid)["state"], "done", "the token from SIMQ_TOKEN")
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(), 0, "exit")
    bad = os.path.join(d, "bad")
    with open(bad, "w") as f:
        f.write("wrong\n")
    rc, out, err = run_simq_worker(ctx, ["-s", "127.0.0.1:%d" % b.port,
                                         "-w", os.path.join(d, "w"),
                                         "--token-file", bad])
    eq(rc, 2, "a wrong token is a usage error")
    check("auth" in err, "says why: %r" % err[-300:])
    # The server from SIMQ_SERVER when there is no -s.
    jid = c.submit(["true"])
    w = WorkerProc(ctx, None, env={"SIMQ_SERVER": "127.0.0.1:%d" % b.port,
                                   "SIMQ_TOKEN": "s3cret"})
    eq(wait_job(ctx, c, jid)["state"], "done", "SIMQ_SERVER")
    # Usage.
    rc, out, err = run_simq_worker(ctx, ["--help"])
    eq(rc, 0, "--help exit status")
    for opt in ("-s HOST:PORT", "-q QUEUE", "-j N", "--burst", "--name",
                "--workdir", "--mem-limit", "--grace", "--token-file"):
        check(opt in out, "--help mentions %s" % opt)
    for args in (["-j", "0"], ["-q", "bad queue"], ["--name", "a b"],
                 ["-s", "host:99999"], ["-m", "lots"], ["extra"],
                 ["--no-such-option"]):
        rc, out, err = run_simq_worker(ctx, args)
        eq(rc, 2, "exit status of simq-worker %s" % " ".join(args))
        check("usage:" in err, "usage on stderr for %s" % args)


def test_burst_gives_up_on_an_unreachable_broker(ctx):
    # Nobody listens on the port: connections are refused.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.monotonic()
    rc, out, err = run_simq_worker(ctx, [
        "--burst", "-s", "127.0.0.1:%d" % port, "--connect-timeout", "1s",
        "-w", os.path.join(ctx.mkdtemp("work"), "w")], timeout=20)
    took = time.monotonic() - t0
    eq(rc, 3, "exit status: %s" % err)
    check("cannot reach the broker 127.0.0.1:%d for 1000 ms (Connection "
          "refused); giving up (--burst)" % port in err, "message: %s" % err)
    check(0.9 <= took <= 5 * ctx.slow, "gave up after %.1fs" % took)
    # A listener that never answers (it accepts into its backlog only):
    # connected, never registered; the same bound holds.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    port = s.getsockname()[1]
    try:
        t0 = time.monotonic()
        rc, out, err = run_simq_worker(ctx, [
            "--burst", "-s", "127.0.0.1:%d" % port, "--connect-timeout",
            "1s", "-w", os.path.join(ctx.mkdtemp("work"), "w")], timeout=20)
        took = time.monotonic() - t0
    finally:
        s.close()
    eq(rc, 3, "exit status against a mute broker: %s" % err)
    check("giving up (--burst)" in err, "message: %s" % err)
    check(took <= 5 * ctx.slow, "gave up after %.1fs" % took)
    # Without --burst the worker keeps trying (the default daemon mode).
    w = WorkerProc(ctx, None, server="127.0.0.1:%d" % port,
                   args=["--connect-timeout", "1s"])
    time.sleep(2)
    check(w.running(), "a worker without --burst keeps trying")


def test_jobs_leased_ahead_start_at_once_and_go_back_on_drain(ctx):
    b = ctx.broker
    c = b.client()
    w = WorkerProc(ctx, b, slots=1, lease=30000)
    # A short job first: the worker then leases ahead while its slot is
    # busy.
    eq(wait_job(ctx, c, c.submit(["true"]))["state"], "done", "short job")
    m = marker()
    ids = [c.submit(sh("exec sleep 0.6"), env="SIMQ_TEST_MARK=" + m)
           for _ in range(4)]
    wait_job(ctx, c, ids[0], states=("running",))
    wait_until(lambda: sum(c.status1(j)["state"] == "running"
                           for j in ids) == 4, 5 * ctx.slow,
               "one running and three leased ahead")
    check(len(procs_with(m)) <= 1, "one slot: one job process at a time")
    # The next one starts the moment the first ends.
    first = wait_job(ctx, c, ids[0])
    second = wait_job(ctx, c, ids[1], states=("running", "done"))
    wait_until(lambda: "ended" in c.status1(ids[1]), 5 * ctx.slow,
               "the second job ends")
    second = c.status1(ids[1])
    check(0 <= int(second["started"]) - int(first["ended"]) < 200,
          "the job leased ahead started %s ms after the slot freed" %
          (int(second["started"]) - int(first["ended"])))
    # Draining hands the jobs leased ahead back at once.
    w.signal(signal.SIGTERM)
    wait_until(lambda: sum(c.status1(j)["state"] == "queued"
                           for j in ids[2:]) >= 1, 3 * ctx.slow,
               "a job leased ahead back in its queue")
    eq(w.wait_exit(5), 0, "exit status after draining")
    states = [c.status1(j)["state"] for j in ids]
    eq(states.count("queued") + states.count("done"), 4, "states %r" % states)
    check(states.count("queued") >= 1, "handed back: %r" % states)
    for j in ids:
        if c.status1(j)["state"] == "queued":
            eq(c.status1(j).get("reason"), None, "released, not failed")
