"""
simq(1) as a new user meets it (issue 9), against a real simqd and
workers: what environment a job gets (--export), the mistakes caught at
submit time, a queue no worker serves, results of failed tasks, what
status -l and --json tell, list's order and filters, wait's summary and
Ctrl-C, tables at 80 columns, the worker summary after a kill -9, and the
small things (one-line usage errors, "did you mean", one JSON document
on errors, a task outside its array's spec).
"""

import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import time

import harness
from harness import check, eq, wait_until
from clientlib import Simq, simq_path, start_workers, wait_workers, \
    worker_path


def setup(ctx, workers=0, slots=4, **kw):
    b = ctx.broker
    s = Simq(ctx, b)
    if workers:
        start_workers(ctx, b, workers, slots=slots, **kw)
        wait_workers(s, workers)
    return b, s


def job(s, jid):
    r = s("status", "--json", jid)
    check(r.rc in (0, 1), "status --json %s: %r" % (jid, r))
    return r.json()["jobs"][0]


def wait_state(s, jid, state, timeout=20):
    wait_until(lambda: job(s, jid)["state"] == state, timeout * s.ctx.slow,
               "job %s to be %s" % (jid, state), 0.05)


def script(d, name, body, mode=0o755):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(p, mode)
    return p


def on_pty(ctx, argv, env, cols=80, until=None, timeout=30,
           keep_slave=False):
    """Runs argv with stdout and stderr on a terminal of cols columns;
    returns (process, what the terminal got).  until(text) -> True ends
    the reading early (the process is left running).  keep_slave keeps
    the terminal's other end open here (p.slave), so that what the
    process writes as it dies is not lost when it closes its end."""
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols,
                                                        0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                         env=env)
    if keep_slave:
        p.slave = slave
    else:
        os.close(slave)
    buf = b""
    deadline = time.monotonic() + timeout * ctx.slow
    while time.monotonic() < deadline:
        rl, _, _ = select.select([master], [], [], 0.1)
        if rl:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if until and until(buf.decode("utf-8", "replace")):
                break
        elif p.poll() is not None:
            break
    if until is None:
        p.wait(timeout=10)
        os.close(master)
    else:
        p.master = master
    return p, buf.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Submission

def test_export_all_is_the_default(ctx):
    b, s = setup(ctx, workers=1)
    d = ctx.mkdtemp("exp")
    env = {"OMP_NUM_THREADS": "3", "PYTHONPATH": "/opt/mine",
           "SIMQ_TOKEN": None, "DISPLAY": ":7", "SSH_CONNECTION": "x y",
           "SIMQ_EXPORT": None}
    show = ["sh", "-c", "echo OMP=$OMP_NUM_THREADS PP=$PYTHONPATH "
            "DISP=${DISPLAY-unset} SSH=${SSH_CONNECTION-unset}"]
    jid = s.submit("--", *show, env=env, cwd=d)
    s("wait", jid).ok()
    out = s("output", jid).ok().out
    eq(out.strip(), "OMP=3 PP=/opt/mine DISP=unset SSH=unset",
       "the submitter's environment, less the host's")
    # NONE: the worker's environment and -e only (and the worker sets
    # OMP_NUM_THREADS to the job's CPUs, 1, where the job does not).
    jid = s.submit("--export", "NONE", "-e", "A=1", "--",
                   "sh", "-c", "echo A=$A OMP=${OMP_NUM_THREADS-unset}",
                   env=env, cwd=d)
    s("wait", jid).ok()
    eq(s("output", jid).ok().out.strip(), "A=1 OMP=1", "--export NONE")
    # A list: those only; NAME=VALUE sets one.
    jid = s.submit("--export", "PYTHONPATH,B=2", "--",
                   "sh", "-c", "echo PP=$PYTHONPATH B=$B "
                   "OMP=${OMP_NUM_THREADS-unset}", env=env, cwd=d)
    s("wait", jid).ok()
    eq(s("output", jid).ok().out.strip(), "PP=/opt/mine B=2 OMP=1",
       "--export PYTHONPATH,B=2")
    # SIMQ_EXPORT sets the default.
    e2 = dict(env, SIMQ_EXPORT="NONE")
    jid = s.submit("--", "sh", "-c", "echo OMP=${OMP_NUM_THREADS-unset}",
                   env=e2, cwd=d)
    s("wait", jid).ok()
    eq(s("output", jid).ok().out.strip(), "OMP=1", "SIMQ_EXPORT=NONE")
    s("submit", "--export", "", "--", "true").fails(2, "--export")
    s("submit", "--export", "ALL,NONE", "--", "true").fails(2, "ALL and NONE")


def test_the_token_never_goes_into_a_job(ctx):
    d = ctx.mkdtemp("tok")
    tf = os.path.join(d, "token")
    with open(tf, "w") as f:
        f.write("s3cret-w0rd\n")
    os.chmod(tf, 0o600)
    b = ctx.start_broker(["--token-file", tf])
    s = Simq(ctx, b, token="s3cret-w0rd")
    # ALL leaves SIMQ_TOKEN out of the job's record ...
    jid = s.submit("--no-check", "--", "true")
    r = s("status", "-l", jid).ok()
    check("s3cret" not in r.out, "the token in status -l: %r" % r)
    check("s3cret" not in json.dumps(job(s, jid)), "token in --json")
    # ... and -e SIMQ_TOKEN is refused.
    s("submit", "-e", "SIMQ_TOKEN", "--", "true").fails(2, "SIMQ_TOKEN",
                                                       "record")
    s("submit", "--export", "SIMQ_TOKEN=x", "--", "true").fails(
        2, "SIMQ_TOKEN")
    b.stop()
    journal = b""
    for root, _, files in os.walk(b.datadir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                journal += fh.read()
    check(b"s3cret" not in journal, "the token is in the journal")


def test_mistakes_caught_at_submit(ctx):
    b, s = setup(ctx)
    d = ctx.mkdtemp("chk")
    script(d, "sim.sh", "echo hi\n")
    script(d, "noexec.sh", "echo hi\n", mode=0o644)
    s("submit", "--", "./nosuch.sh", cwd=d).fails(
        2, "./nosuch.sh", "No such file", "--no-check")
    s("submit", "--", "./noexec.sh", cwd=d).fails(
        2, "no execute permission", "chmod +x")
    s("submit", "--", "sim.sh", cwd=d).fails(
        2, "not on PATH", "did you mean ./sim.sh?")
    s("submit", "--", "no-such-program-here", cwd=d).fails(
        2, "not found on PATH")
    s("submit", "-C", "/nonexistent", "--", "true").fails(
        2, "-C /nonexistent", "--no-check")
    # With -C, the program is looked for there.
    s.submit("-C", d, "--", "./sim.sh")
    # --no-check submits what exists only on the workers.
    jid = s.submit("--no-check", "--", "./nosuch.sh", cwd=d)
    jid2 = s.submit("--no-check", "-C", "/nonexistent", "--", "true")
    # A batch: every bad line is named, and nothing is submitted.
    before = int(b.client().stats()["next_id"])
    bf = os.path.join(d, "batch")
    with open(bf, "w") as f:
        f.write("./sim.sh 1\n./nosuch.sh 2\n'unterminated\n./sim.sh 3\n"
                "sim.sh 4\n")
    r = s("submit", "--batch", bf, cwd=d)
    r.fails(2, "line 2", "line 3", "line 5", "nothing was submitted")
    check("line 1:" not in r.err and "line 4:" not in r.err,
          "only the bad lines: %r" % r)
    eq(int(b.client().stats()["next_id"]), before, "nothing submitted")
    # The exec failure on a worker does not send the user to an empty
    # stderr.
    start_workers(ctx, b, 1)
    wait_workers(s, 1)
    r = s("wait", jid)
    eq(r.rc, 1, "the job failed: %r" % r)
    check("never started" in r.err and "output --stderr" not in r.err,
          "wait's note: %r" % r)
    r = s("output", "--stderr", jid)
    eq(r.out, "", "stderr is empty")
    check("never started" in r.err, "output says why it is empty: %r" % r)
    r = s("status", "-l", jid)
    check("never started" in r.out, "status -l: %r" % r)
    eq(s("wait", jid2).rc, 1, "-C /nonexistent fails on the worker")


def test_a_queue_no_worker_serves(ctx):
    b, s = setup(ctx, workers=1)
    r = s("submit", "-q", "defualt", "--", "true").ok()
    jid = r.out.strip()
    check("no connected worker serves queue defualt" in r.err and
          "did you mean default?" in r.err, "the warning: %r" % r)
    r = s("submit", "--", "true").ok()
    eq(r.err, "", "no warning for a served queue")
    r = s("status", jid)
    check("no connected worker serves queue defualt" in r.out,
          "status of the job: %r" % r)
    check("no connected worker serves queue defualt" in s("status").out,
          "the overview")
    # wait: on a terminal, in the progress line; off one, once.
    r = s("wait", "-t", "1", jid)
    check("no connected worker serves queue defualt" in r.err,
          "wait off a terminal: %r" % r)
    p, text = on_pty(ctx, [simq_path(ctx), "wait", jid], s.env(),
                     until=lambda t: "no worker serves queue defualt" in t,
                     timeout=15)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    os.close(p.master)
    check("no worker serves queue defualt" in text, "the progress line: "
          "%r" % text[-400:])


# ---------------------------------------------------------------------------
# Reading results

def test_result_of_failed_tasks(ctx):
    b, s = setup(ctx, workers=1)
    aid = s.submit("--array", "1-4", "--", "sh", "-c",
                   "echo r{} > $SIMQ_RESULT; [ {} != 3 ]")
    eq(s("wait", aid).rc, 1, "task 3 failed")
    r = s("result", aid)
    eq(r.rc, 1, "exit 1 when a task failed: %r" % r)
    eq(r.out, "r1\nr2\nr4\n", "the results of the tasks that did not fail")
    check("1 of 4" in r.err and "%s_3" % aid in r.err, "the note: %r" % r)
    r = s("result", "--with-id", aid)
    eq(r.rc, 1, "--with-id")
    eq(r.out, "%s_1\tr1\n%s_2\tr2\n%s_4\tr4\n" % (aid, aid, aid),
       "lines tagged with ids")
    r = s("result", "%s_3" % aid)
    r.fails(1, "%s_3 did not succeed" % aid)
    eq(r.out, "r3\n", "one failed task asked for: what it left")
    # Every task failed: not an empty success.
    aid = s.submit("--array", "1-2", "--", "false")
    s("wait", aid)
    r = s("result", aid)
    eq((r.rc, r.out), (1, ""), "all failed: %r" % r)
    check("2 of 2" in r.err, "note: %r" % r)
    r = s("result", "--json", aid)
    eq([x["state"] for x in r.json()["results"]], ["failed", "failed"],
       "states in --json")


def test_status_long_and_json_say_how_it_runs(ctx):
    b, s = setup(ctx, workers=1)
    d = ctx.mkdtemp("st")
    jid = s.submit("-t", "90s", "-e", "FOO=bar", "--export", "NONE",
                   "-o", os.path.join(d, "%A.out"), "--", "sh", "-c",
                   "echo x; echo y >&2", cwd=d)
    s("wait", jid).ok()
    j = job(s, jid)
    eq(j["cwd"], d, "cwd")
    eq(j["env"], {"FOO": "bar"}, "env")
    eq(j["timeout"], 90, "timeout in seconds")
    eq(j["stderr_path"], os.path.join(d, "%s.err" % jid), "stderr path")
    eq(j["output_path"], os.path.join(d, "%s.out" % jid), "stdout path")
    r = s("status", "-l", jid).ok()
    for want in ("directory  " + d, "timeout    1m30s", "env        FOO=bar",
                 "stderr     " + os.path.join(d, "%s.err" % jid)):
        check(want in r.out, "status -l shows %r: %r" % (want, r.out))
    # A timed-out job's reason names its limit.
    jid = s.submit("-t", "1", "--", "sleep", "30")
    eq(s("wait", jid).rc, 1, "timed out")
    r = s("wait", jid)
    check("limit of 1s" in r.err, "wait's reason: %r" % r)
    check("limit of 1s" in s("status", "-l", jid).out, "status -l reason")


def test_list_newest_first_since_and_name(ctx):
    b, s = setup(ctx)
    ids = [s.submit("--name", "sweep-%d" % i, "--", "true")
           for i in range(5)]
    s.submit("--name", "other", "--", "true")
    lines = s("list").ok().lines()[1:]
    eq([l.split()[0] for l in lines], [str(int(ids[-1]) + 1)] +
       ids[::-1], "newest first")
    got = [l.split()[0] for l in s("list", "-n", "3").ok().lines()[1:]]
    eq(got, [str(int(ids[-1]) + 1), ids[4], ids[3]], "-n 3: the newest")
    got = [l.split()[0] for l in s("list", "-r", "-n", "2").ok().lines()[1:]]
    eq(got, ids[:2], "--reverse: oldest first")
    got = [x["id"] for x in s("list", "--json", "--name", "sweep-*", "-n",
                             "2").ok().json()["jobs"]]
    eq(got, [ids[4], ids[3]], "--name with a prefix, -n after the filter")
    got = [x["id"] for x in s("list", "--json", "--name", "other").ok()
           .json()["jobs"]]
    eq(got, [str(int(ids[-1]) + 1)], "--name")
    time.sleep(1.5)
    late = s.submit("--", "true")
    got = [x["id"] for x in s("list", "--json", "--since", "1s").ok()
           .json()["jobs"]]
    eq(got, [late], "--since 1s")


def test_wait_summary_and_ctrl_c(ctx):
    b, s = setup(ctx, workers=1)
    aid = s.submit("--array", "1-3", "--", "true")
    r = s("wait", aid).ok()
    eq(r.out, "", "nothing on stdout")
    check(re.match(r"^simq: 3 of 3 done, 0 failed in \d", r.err) and
          len(r.err.splitlines()) == 1, "one summary line: %r" % r)
    eq(s("wait", "-q", aid).ok().err, "", "-q: no summary")
    # Ctrl-C on a terminal ends the bar's line.
    slow = s.submit("--", "sleep", "30")
    p, text = on_pty(ctx, [simq_path(ctx), "wait", slow], s.env(
        {"NO_COLOR": "1"}), until=lambda t: "ETA" in t, timeout=15,
        keep_slave=True)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    rest = b""
    while True:
        rl, _, _ = select.select([p.master], [], [], 2 * ctx.slow)
        if not rl:
            break
        try:
            c = os.read(p.master, 4096)
        except OSError:
            break
        if not c:
            break
        rest += c
    os.close(p.master)
    os.close(p.slave)
    eq(p.returncode, -signal.SIGINT, "died of SIGINT")
    check(rest.replace(b"^C", b"").endswith(b"\n") or
          rest.replace(b"^C", b"").endswith(b"\r\n"),
          "the line was ended: %r %r" % (text[-200:], rest))


# ---------------------------------------------------------------------------
# Tables and views

def test_tables_fit_80_columns(ctx):
    b, s = setup(ctx, workers=1)
    aid = s.submit("--array", "1-1000%2", "--name",
                   "a-rather-long-name-for-a-sweep-of-simulations", "--",
                   "sleep", "5", "--and", "many", "words", "after", "it")
    s.submit("--name", "another-long-name-of-a-job", "--", "true")
    wait_until(lambda: job(s, aid)["counts"]["running"] == 2, 20 * ctx.slow,
               "two tasks running")
    for args in (["list"], ["status", aid, "1", "2"]):
        p, text = on_pty(ctx, [simq_path(ctx)] + args, s.env(
            {"NO_COLOR": "1"}), cols=80)
        lines = [l for l in text.replace("\r", "").split("\n") if l]
        check(len(lines) >= 2, "a table: %r" % text)
        for l in lines:
            check(len(l) <= 80, "simq %s: a line of %d columns: %r" %
                  (" ".join(args), len(l), l))
        check(any(l.startswith(aid + " ") for l in lines),
              "the array's row: %r" % text)
    s("cancel", aid)


def test_workers_after_kill_9(ctx):
    wp = worker_path(ctx)
    if wp is None:
        return      # needs the real worker
    b, s = setup(ctx)
    procs = []
    for name, slots, lease in (("big", 16, "2s"), ("small", 7, None)):
        cmd = [wp, "-s", "%s:%d" % (b.host, b.port), "-j", str(slots),
               "--name", name, "-w", ctx.mkdtemp("wd-" + name)]
        if lease:
            cmd += ["--lease", lease]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             env=harness.sanitizer_env())
        procs.append(p)
        ctx.cleanups.append(lambda p=p: (p.poll() is None and p.kill(),
                                         p.wait()))
        wait_workers(s, len(procs))
    # Both idle: SEEN is "now" for a worker waiting for work.
    time.sleep(2.5)
    r = s("workers").ok()
    for name in ("big", "small"):
        m = re.search(r"^%s\s.*\s(now|\S+ ago)\s+-$" % name, r.out, re.M)
        check(m and m.group(1) == "now", "idle %s is seen now: %r" %
              (name, r.out))
    check(all(w["idle"] for w in s("workers", "--json").ok().json()
              ["workers"]), "idle in --json")
    # Only big can take them all at once: fill big first.
    aid = s.submit("--array", "1-8", "--", "sleep", "60")
    wait_until(lambda: job(s, aid)["counts"]["running"] == 8,
               20 * ctx.slow, "8 running")
    big = [w for w in s("workers", "--json").ok().json()["workers"]
           if w["name"] == "big"][0]
    procs[0].kill()
    procs[0].wait()
    wait_until(lambda: not [w for w in s("workers", "--json").ok().json()
                            ["workers"] if w["name"] == "big"][0]
               ["connected"], 10 * ctx.slow, "big lost")
    r = s("workers").ok()
    summary = r.lines()[-1]
    m = re.search(r"(\d+) of (\d+) slots busy", summary)
    check(m and int(m.group(1)) <= int(m.group(2)),
          "no more busy than there are slots: %r" % summary)
    if big["running"]:
        check("held by lost workers" in summary,
              "the lost worker's jobs said apart: %r" % summary)
    # Once its leases ran out, the lost worker is gone from the list.
    wait_until(lambda: "big" not in [w["name"] for w in s(
        "workers", "--json").ok().json()["workers"]], 20 * ctx.slow,
        "the lost worker to be forgotten")
    s("cancel", aid)


# ---------------------------------------------------------------------------
# Small things

def test_small_things(ctx):
    b, s = setup(ctx)
    s("stat").fails(2, "ambiguous", "status", "stats")
    s("sumbit").fails(2, "did you mean submit?")
    s("status", "--lnog").fails(2, "did you mean --long?")
    # A usage error is one line.
    for args in (["wait"], ["submit"], ["submit", "-q"], ["cancel"],
                 ["status", "--bogus"], ["output"], ["list", "3"]):
        r = s(*args)
        r.fails(2)
        eq(len(r.err.strip().splitlines()), 1, "one line: %r" % r)
    # -w is submit's --wait; status's --watch has no short form.
    s("status", "-w").fails(2, "unknown option '-w'")
    # --json on an error: one JSON document.
    for args in (["submit", "--json", "--", "./nosuch"],
                 ["status", "--json", "99"], ["result", "--json", "99"],
                 ["wait", "--json", "99"], ["output", "--json", "99"],
                 ["cancel", "--json", "99"]):
        r = s(*args)
        check(r.rc != 0, "an error: %r" % r)
        r.json()
    eq(s("submit", "--json", "--", "./nosuch").json()["error"]
       ["exit_status"], 2, "the error document")
    # A task outside its array's spec.
    aid = s.submit("--array", "1-10:3", "--", "true")
    s("status", "%s_2" % aid).fails(
        2, "array %s has no task 2" % aid, "1-10:3", "1, 4, 7, 10")
    # queues: the same shape in status --json and queues --json.
    eq(s("queues", "--json").ok().json()["queues"],
       s("status", "--json").ok().json()["queues"], "queues")


def test_simqd_warns_of_a_readable_token(ctx):
    d = ctx.mkdtemp("tokw")
    tf = os.path.join(d, "token")
    with open(tf, "w") as f:
        f.write("abc\n")
    os.chmod(tf, 0o644)
    b = ctx.start_broker(["--token-file", tf])
    check("can be read by others" in b.current_log(),
          "the warning: %r" % harness.tail(b.current_log()))
    b.stop()
    os.chmod(tf, 0o600)
    b2 = ctx.start_broker(["--token-file", tf])
    check("can be read by others" not in b2.current_log(),
          "no warning for mode 600")
