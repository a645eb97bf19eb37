"""
simq(1), the command-line client, against a real simqd and workers (the
real simq-worker when it was built next to simqd, else clientlib's
FakeWorker): every subcommand, its human and JSON output, its exit status,
and its errors (unreachable broker, unknown ids, malformed durations and
array specs, conflicting flags).
"""

import json
import os
import pty
import re
import select
import subprocess
import time

import harness
from harness import TestFailure, check, eq, wait_until
from clientlib import Simq, simq_path, start_workers, wait_workers

STATES = ["waiting", "queued", "running", "done", "failed", "canceled"]
JOB_FIELDS = ["id", "kind", "state", "queue", "priority", "attempts",
              "retries", "exit_code", "signal", "timed_out", "name",
              "submitted", "started", "finished", "runtime", "worker",
              "host", "reason", "after", "due", "output_path", "max_rss",
              "cpu_time", "command"]
COMMANDS = ["submit", "status", "wait", "output", "result", "cancel",
            "retry", "list", "workers", "queues", "pause", "resume",
            "stats", "explain"]


def setup(ctx, workers=0, slots=4, **kw):
    b = ctx.broker
    s = Simq(ctx, b)
    ws = []
    if workers:
        ws = start_workers(ctx, b, workers, slots=slots, **kw)
        wait_workers(s, workers)
    return b, s, ws


def next_id(b):
    with b.client() as c:
        return int(c.stats()["next_id"])


def job_json(s, jid):
    r = s("status", "--json", jid)
    check(r.rc in (0, 1), "status --json %s: %r" % (jid, r))
    jobs = r.json()["jobs"]
    eq(len(jobs), 1, "jobs in status --json %s" % jid)
    return jobs[0]


def check_job_shape(j):
    for k in JOB_FIELDS:
        check(k in j, "job JSON lacks %r: %r" % (k, j))
    check(isinstance(j["id"], str), "id is a string: %r" % j)
    check(j["state"] in STATES, "state: %r" % j)
    check(isinstance(j["queue"], str), "queue: %r" % j)
    check(isinstance(j["command"], list), "command: %r" % j)
    check(isinstance(j["after"], list), "after: %r" % j)
    check(isinstance(j["timed_out"], bool), "timed_out: %r" % j)
    if j["kind"] == "array":
        check(j["attempts"] is None, "an array has no attempts: %r" % j)
        eq(sorted(j["counts"]), sorted(STATES), "array counts")
        check(isinstance(j["tasks"], int), "tasks: %r" % j)
    else:
        check(isinstance(j["attempts"], int), "attempts: %r" % j)
    check(j["exit_code"] is None or isinstance(j["exit_code"], int),
          "exit_code: %r" % j)
    for k in ("submitted", "started", "finished", "due"):
        check(j[k] is None or re.match(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", j[k]),
            "%s is RFC 3339: %r" % (k, j))


def wait_state(s, jid, state, timeout=15):
    wait_until(lambda: job_json(s, jid)["state"] == state, timeout,
               "job %s to be %s" % (jid, state), 0.05)


# ---------------------------------------------------------------------------
# Usage, help and connection errors: no broker needed.

def test_help_matches_commands(ctx):
    s = Simq(ctx, server="127.0.0.1:1")
    r = s("--help").ok()
    check(r.out.startswith("usage: simq "), "simq --help: %r" % r)
    for c in COMMANDS:
        check(re.search(r"^  %s " % c, r.out, re.M),
              "simq --help lists %s: %r" % (c, r))
        h = s(c, "--help").ok()
        check(h.out.startswith("usage: simq %s" % c),
              "simq %s --help: %r" % (c, h))
        check("--json" in h.out and "--server" in h.out,
              "simq %s --help shows the common options" % c)
        eq(h.err, "", "stderr of --help")
        eq(s("help", c).out, h.out, "simq help %s" % c)
    # The man page names every command and option of the help texts.
    man = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "..", "..", "man", "simq.1")
    if os.path.exists(man):
        text = open(man).read()
        for c in COMMANDS:
            check(re.search(r"^\.It Cm %s\b" % c, text, re.M),
                  "man/simq.1 documents %s" % c)
            for opt in re.findall(r"--([a-z][a-z-]+)",
                                  s(c, "--help").out):
                check(("Fl \\-" + opt.replace("-", "\\-")) in text or
                      ("Fl -" + opt) in text,
                      "man/simq.1 documents --%s of %s" % (opt, c))


def test_usage_errors(ctx):
    s = Simq(ctx, server="127.0.0.1:1")
    r = s()
    eq(r.rc, 2, "simq alone")
    check("usage: simq" in r.err, "usage on stderr: %r" % r)
    s("frobnicate").fails(2, "unknown command 'frobnicate'")
    s("st").fails(2, "ambiguous")			# status, stats
    eq(s("que", "--help").rc, 0, "a unique prefix is enough")
    s("status", "--bogus").fails(2, "unknown option '--bogus'")
    s("submit", "-z", "--", "true").fails(2, "unknown option '-z'")
    s("submit", "-q").fails(2, "needs a value")
    s("wait").fails(2, "needs the ids")
    s("output").fails(2, "needs one job id")
    s("output", "1", "2").fails(2)
    s("cancel").fails(2)
    s("pause").fails(2, "one queue name")
    s("pause", "bad/name").fails(2, "bad queue name 'bad/name'")
    s("list", "17").fails(2, "takes no ids")
    s("list", "--state", "sleeping").fails(2, "bad --state 'sleeping'")
    for bad in ("x", "0", "-1", "17_", "_3", "17_x", "01", "1.5"):
        s("status", "--", bad).fails(2, "bad job id '%s'" % bad)
        s("wait", "--", bad).fails(2, "bad job id")
    s("status", "--watch", "--json").fails(2, "cannot be used together")


def test_unreachable_broker(ctx):
    port = harness.free_port()
    addr = "127.0.0.1:%d" % port
    s = Simq(ctx, server=addr)
    for cmd in (["status"], ["submit", "--", "true"], ["wait", "1"],
                ["list"], ["workers"], ["queues"], ["cancel", "1"],
                ["result", "1"], ["pause", "q"], ["status", "--json"]):
        r = s(*cmd).fails(2, "cannot reach the broker at %s" % addr,
                          "connection refused", "is simqd running?")
        if "--json" in cmd:
            eq(r.json()["error"]["exit_status"], 2, "--json: one document "
               "saying what went wrong")
        else:
            eq(r.out, "", "nothing on stdout when the broker is "
               "unreachable")
        eq(len(r.err.strip().splitlines()), 1, "one line: %r" % r)
    # -s wins over SIMQ_SERVER.
    s2 = Simq(ctx, server="127.0.0.1:1")
    s2("-s", addr, "status").fails(2, addr)
    s2("status", "-s", addr).fails(2, addr)
    s2("status", "--server=" + addr).fails(2, addr)
    # Without either, the default address.
    r = Simq(ctx)("status", env={"SIMQ_SERVER": None})
    if r.rc != 0:
        r.fails(2, "127.0.0.1:7733")
    Simq(ctx, server="127.0.0.1:99999")("status").fails(
        2, "bad broker address '127.0.0.1:99999'")
    Simq(ctx, server="no.such.host.invalid:7733")("status").fails(
        2, "cannot reach the broker at no.such.host.invalid:7733")


# ---------------------------------------------------------------------------
# Submitting.

def test_submit_prints_id_and_options_reach_the_job(ctx):
    b, s, _ = setup(ctx)
    d = ctx.mkdtemp("cwd")
    r = s("submit", "--", "echo", "hello").ok()
    check(re.match(r"^[1-9][0-9]*\n$", r.out), "id alone: %r" % r)
    check(r.err == "" or (r.err.startswith("simq: warning: no worker") and
          len(r.err.splitlines()) == 1),
          "submit is quiet on stderr but for the queue no worker serves: "
          "%r" % r)
    jid = r.out.strip()
    jid2 = s.submit("--no-check", "--export", "NONE", "-q", "sims", "-p",
                    "-5", "-t", "1h30m", "-r", "3",
                    "--name", "my sweep", "-e", "A=1", "-e", "B=x y",
                    "--after", jid, "--delay", "10m", "-o", "logs/%A.out",
                    "./sim", "--seed", "{}", "a b", "", "50%", cwd=d)
    with b.client() as c:
        it = c.status1(jid2)
    eq(it["q"], "sims", "queue")
    eq(it["pri"], "-5", "priority")
    eq(it["retries"], "3", "retries")
    eq(it["name"], "my sweep", "name")
    eq(it.argv, ["./sim", "--seed", "{}", "a b", "", "50%"], "argv")
    eq(it["state"], "waiting", "waiting for its dependency and delay")
    j = job_json(s, jid2)
    check_job_shape(j)
    eq((j["id"], j["kind"], j["queue"], j["priority"], j["attempts"],
        j["retries"], j["exit_code"], j["name"], j["after"]),
       (jid2, "job", "sims", -5, 0, 3, None, "my sweep", [jid]),
       "status --json of the submitted job")
    check(j["due"] is not None, "a delayed job has a due time: %r" % j)
    # The TAKE item shows what the worker gets: cwd, env, timeout.
    s("cancel", jid)
    with b.client() as c:
        c.request("RESUME sims")
    s2 = s.submit("--export", "NONE", "-q", "w", "-t", "90", "-e", "A=1",
                  "-e", "B=x y",
                  "-o", "o/%A_%a", "--", "env", cwd=d)
    w = b.worker("t")
    job = w.take1(queues="w")
    eq(job["id"], s2, "taken")
    eq(job["cwd"], os.path.realpath(d) if os.path.realpath(d) == d else
       job["cwd"], "cwd")
    check(job["cwd"] in (d, os.path.realpath(d)), "cwd is where simq "
          "ran: %r vs %r" % (job["cwd"], d))
    eq(job["timeout"], "90000", "timeout in ms")
    eq(sorted(job.multi["env"]), ["A=1", "B=x y"], "env")
    eq(job["output"], "o/%A_%a", "output pattern")
    # -C: relative to here, made absolute; -e NAME copies it from here.
    s3 = s.submit("--no-check", "--export", "NONE", "-q", "w", "-C",
                  "sub/dir", "-e", "SIMQ_T_X", "--",
                  "true", cwd=d, env={"SIMQ_T_X": "from here"})
    job = w.take1(queues="w")
    eq(job["id"], s3, "taken")
    eq(job["cwd"], os.path.join(d, "sub/dir"), "-C made absolute")
    eq(job.multi["env"], ["SIMQ_T_X=from here"], "-e NAME")
    s("submit", "-e", "SIMQ_T_UNSET", "--", "true",
      env={"SIMQ_T_UNSET": None}).fails(2, "SIMQ_T_UNSET is not set")


def test_submit_bad_options(ctx):
    b, s, _ = setup(ctx)
    before = next_id(b)
    bad = [
        (["-t", "5x"], "bad --timeout '5x': use a duration like 90, 45s"),
        (["-t", ""], "bad --timeout ''"),
        (["-t", "1m1h"], "bad --timeout '1m1h'"),
        (["-t", "-5"], "bad --timeout '-5'"),
        (["--delay", "soon"], "bad --delay 'soon'"),
        (["--array", "1-x"], "bad --array spec '1-x': use "
                             "A-B[:STEP][%MAX]"),
        (["--array", "5-1"], "bad --array spec '5-1'"),
        (["--array", "1-10:0"], "bad --array spec"),
        (["--array", ""], "bad --array spec"),
        (["-p", "high"], "bad --priority 'high'"),
        (["-p", "10000000000"], "bad --priority"),
        (["-r", "1001"], "bad --retries '1001': use a number from 0 to "
                         "1000"),
        (["-r", "-1"], "bad --retries"),
        (["-q", "no/slash"], "bad queue name 'no/slash'"),
        (["-q", ""], "bad queue name"),
        (["--after", "1,x"], "bad --after '1,x'"),
        (["--after", ""], "bad --after"),
        (["-e", "=x"], "bad -e '=x'"),
        (["--name", ""], "--name needs a name"),
    ]
    for opts, msg in bad:
        s("submit", *(opts + ["--", "true"])).fails(2, msg)
    # Conflicts and missing pieces.
    f = os.path.join(ctx.mkdtemp("b"), "jobs.txt")
    with open(f, "w") as fh:
        fh.write("true\n")
    s("submit", "--array", "1-3", "--batch", f).fails(
        2, "--array and --batch cannot be used together")
    s("submit", "--batch", f, "--", "true").fails(2, "not both")
    s("submit").fails(2, "needs a command")
    s("submit", "-q", "x").fails(2, "needs a command")
    s("submit", "--batch", "/nonexistent/jobs").fails(
        2, "cannot read the batch file /nonexistent/jobs")
    eq(next_id(b), before, "no refused submit reached the broker")
    # A dependency on a job that does not exist: the broker says so.
    r = s("submit", "--after", "999999", "--", "true").fails(2, "999999")
    eq(r.out, "", "no id printed")
    # The command may follow the options without "--".
    r = s("submit", "-q", "x", "echo", "-n", "hi").ok()
    with b.client() as c:
        eq(c.status1(r.out.strip()).argv, ["echo", "-n", "hi"],
           "options after the command belong to it")


def test_submit_batch_stdin_with_quoting(ctx):
    b, s, _ = setup(ctx)
    text = ("# sweep\n"
            "./sim --seed 1 --label 'a b'\n"
            "\n"
            "   ./sim --seed 2 --label \"c \\\"d\\\"\"  # note\n"
            "./sim --seed 3 --label a\\ b\\'c \\\n"
            "   --more ''\n"
            "sh -c 'echo $HOME | wc -c; exit 1'\n"
            "printf '%s\\n' h\u00e9\n")
    r = s("submit", "--no-check", "-q", "bq", "-p", "2", "--batch", "-",
          input=text).ok()
    ids = r.lines()
    eq(len(ids), 5, "one id per command: %r" % r)
    eq([int(i) for i in ids], list(range(int(ids[0]), int(ids[0]) + 5)),
       "ids in order")
    want = [["./sim", "--seed", "1", "--label", "a b"],
            ["./sim", "--seed", "2", "--label", 'c "d"'],
            ["./sim", "--seed", "3", "--label", "a b'c", "--more", ""],
            ["sh", "-c", "echo $HOME | wc -c; exit 1"],
            ["printf", "%s\\n", "h\xe9"]]
    with b.client() as c:
        for jid, argv in zip(ids, want):
            it = c.status1(jid)
            eq(it.argv, argv, "argv of batch job %s" % jid)
            eq((it["q"], it["pri"]), ("bq", "2"), "options of the batch")
    # --json: the ids as a list.
    r = s("submit", "--no-check", "--json", "--batch", "-",
          input="a\nb\n").ok()
    got = r.json()["ids"]
    eq(len(got), 2, "ids in --json: %r" % r)
    eq(int(got[1]), int(got[0]) + 1, "consecutive")
    # Errors name the line and submit nothing.
    before = next_id(b)
    for text, msg in [("ok\nsim 'unterminated\n", "line 2: unterminated"),
                      ("sim > out.txt\n", "line 1: '>' is shell syntax"),
                      ("a\nb\nc | d\n", "line 3: '|'"),
                      ("FOO=1 ./sim\n", "would set a variable"),
                      ("echo \"$X\"\n", "'$' inside double quotes"),
                      ("\n# nothing\n\n", "holds no command"),
                      ("", "holds no command")]:
        s("submit", "--batch", "-", input=text).fails(2, msg)
    eq(next_id(b), before, "a bad batch submits nothing")


def test_big_batch_and_list_paging(ctx):
    b, s, _ = setup(ctx)
    n = 2500
    text = "".join("./sim --seed %d\n" % i for i in range(n))
    r = s("submit", "--no-check", "-q", "big", "--batch", "-",
          input=text).ok()
    ids = r.lines()
    eq(len(ids), n, "ids")
    s.submit("-q", "other", "--", "true")
    r = s("list", "--json", "-q", "big").ok()
    jobs = r.json()["jobs"]
    eq(len(jobs), n, "list follows the broker's pages")
    eq([j["id"] for j in jobs], ids[::-1], "newest first")
    r = s("list", "--json", "-r", "-q", "big").ok()
    eq([j["id"] for j in r.json()["jobs"]], ids, "--reverse: in id order")
    eq(jobs[-8]["command"], ["./sim", "--seed", "7"], "command")
    check_job_shape(jobs[0])
    eq(len(s("list", "--json", "-n", "10").json()["jobs"]), 10, "-n 10")
    eq(len(s("list", "--json", "--limit", "1500", "-q",
             "big").json()["jobs"]), 1500, "--limit 1500")
    r = s("list", "-q", "big", "-n", "3").ok()
    lines = r.lines()
    eq(len(lines), 4, "header and 3 rows: %r" % r)
    check(lines[0].split()[:2] == ["ID", "STATE"], "header: %r" % r)
    check("./sim --seed %d" % (n - 1) in lines[1], "command shown: %r" % r)
    eq(s("list", "--json", "-q", "nosuchqueue").ok().json(), {"jobs": []},
       "an unknown queue lists nothing")
    eq(len(s("list", "--json", "--state", "queued").json()["jobs"]), n + 1,
       "--state")


# ---------------------------------------------------------------------------
# Running with workers.

def test_wait_output_result(ctx):
    b, s, _ = setup(ctx, workers=1)
    r = s("submit", "--wait", "--", "sh", "-c",
          "echo out; echo err >&2; printf 'r\\0x' > \"$SIMQ_RESULT\"").ok()
    jid = r.out.strip()
    check(re.match(r"^\d+$", jid), "--wait prints the id first: %r" % r)
    eq(s("output", jid).ok().outb, b"out\n", "stdout")
    eq(s("output", "--stderr", jid).ok().outb, b"err\n", "stderr")
    eq(s("result", jid).ok().outb, b"r\0x", "result: raw bytes")
    eq(s("output", "--json", jid).ok().json(),
       {"id": jid, "stream": "stdout", "data": "out\n"}, "output --json")
    eq(s("result", "--json", jid).ok().json(),
       {"results": [{"id": jid, "result": "r\u0000x", "state": "done"}]},
       "result --json")
    j = job_json(s, jid)
    check_job_shape(j)
    eq((j["state"], j["exit_code"], j["attempts"], j["signal"]),
       ("done", 0, 1, None), "a done job")
    check(j["started"] and j["finished"] and j["host"] and j["worker"],
          "times and host: %r" % j)
    check(isinstance(j["runtime"], (int, float)), "runtime: %r" % j)
    # A failing job: wait and submit --wait exit 1 and say why.
    r = s("submit", "--wait", "--", "sh", "-c", "exit 3")
    eq(r.rc, 1, "submit --wait of a failing job: %r" % r)
    fid = r.out.strip()
    check("job %s failed" % fid in r.err, "says which failed: %r" % r)
    r = s("wait", fid)
    eq(r.rc, 1, "wait on a failed job: %r" % r)
    eq(r.out, "", "wait prints nothing without --json")
    r = s("status", fid)
    eq(r.rc, 1, "status of a failed job exits 1: %r" % r)
    check(re.search(r"\bfailed\b", r.out) and re.search(r"\b3\b", r.out),
          "state and exit in the table: %r" % r)
    j = s("wait", "--json", jid, fid)
    eq(j.rc, 1, "one failed of two")
    got = j.json()["jobs"]
    eq([(x["id"], x["state"], x["exit_code"]) for x in got],
       [(jid, "done", 0), (fid, "failed", 3)], "wait --json")
    eq(s("wait", jid).rc, 0, "wait on a done job")
    # submit --wait --json: one document with the id and the jobs.
    r = s("submit", "--wait", "--json", "--", "true").ok()
    d = r.json()
    eq(d["jobs"][0]["id"], d["id"], "submit --wait --json")
    eq(d["jobs"][0]["state"], "done", "state")
    # Errors: unknown ids, unfinished jobs, arrays.
    s("output", "999999").fails(2, "no job 999999")
    s("result", "999999").fails(2, "no job 999999")
    s("wait", jid, "999999").fails(2, "no job 999999")
    r = s("status", jid, "999999")
    r.fails(2, "no job 999999")
    check(jid in r.out, "known ids are still shown: %r" % r)
    slow = s.submit("--", "sleep", "30")
    wait_state(s, slow, "running")
    s("output", slow).fails(1, "has not finished", "running",
                            "simq wait %s" % slow)
    s("result", slow).fails(1, "has not finished")
    s("cancel", slow).ok()
    aid = s.submit("--array", "1-2", "--", "true")
    s("output", aid).fails(2, "is an array", "%s_1" % aid)


def test_array_progress_retry_only_failed(ctx):
    b, s, _ = setup(ctx, workers=2)
    d = ctx.mkdtemp("arr")
    # Odd tasks fail until the flag file exists.
    script = ("i=$SIMQ_ARRAY_INDEX; echo $((i*i)) > \"$SIMQ_RESULT\"; "
              "[ $((i % 2)) = 0 ] || [ -e flag ]")
    aid = s.submit("--array", "1-10", "--name", "squares", "--", "sh",
                   "-c", script, cwd=d)
    r = s("wait", aid)
    eq(r.rc, 1, "some tasks failed: %r" % r)
    check("array %s: 5 of 10 tasks failed" % aid in r.err,
          "the failures are counted: %r" % r)
    j = job_json(s, aid)
    check_job_shape(j)
    eq((j["kind"], j["state"], j["tasks"], j["counts"]["done"],
        j["counts"]["failed"], j["name"]),
       ("array", "failed", 10, 5, 5, "squares"), "array status")
    t = job_json(s, "%s_3" % aid)
    eq((t["kind"], t["state"], t["exit_code"], t["array"], t["index"]),
       ("task", "failed", 1, aid, 3), "a failed task")
    eq(t["command"], ["sh", "-c", script], "task command")
    # Every task's result, in index order; failed ones have none, and
    # are named on stderr.
    r = s("result", aid)
    eq((r.rc, r.out), (1, "".join("%d\n" % (i * i) for i in
                                  range(2, 11, 2))), "results: %r" % r)
    check("5 of 10 have no result" in r.err, "failed ones named: %r" % r)
    res = s("result", "--json", aid).json()["results"]
    eq([x["id"] for x in res], ["%s_%d" % (aid, i) for i in range(1, 11)],
       "result ids")
    # The human table shows the array's progress.
    r = s("status", aid)
    eq(r.rc, 1, "status of a failed array")
    check("5/10 done, 5 failed" in r.out, "tasks column: %r" % r)
    # retry re-queues only the failed tasks.
    open(os.path.join(d, "flag"), "w").close()
    r = s("retry", aid).ok()
    eq(r.out.strip(), "re-queued 5 jobs", "retry: %r" % r)
    eq(s("wait", aid).rc, 0, "all done after the retry")
    j = job_json(s, aid)
    eq((j["state"], j["counts"]["done"]), ("done", 10), "after retry")
    eq(job_json(s, "%s_2" % aid)["attempts"], 1, "done tasks not re-run")
    eq(job_json(s, "%s_3" % aid)["attempts"], 2, "failed ones re-ran")
    r = s("retry", "--json", aid).ok()
    eq(r.json(), {"requeued": 0, "dependents": 0}, "nothing left to retry")
    s("retry", "999999").fails(2, "no job 999999")


def test_status_overview_json_and_table(ctx):
    b, s, ws = setup(ctx, workers=2, slots=2)
    s.submit("-q", "idle", "--", "true")
    s("pause", "idle").ok()
    slow = s.submit("--", "sleep", "30")
    wait_state(s, slow, "running")
    r = s("status", "--json").ok()
    d = r.json()
    eq(sorted(d), ["paused", "queues", "workers"], "top-level keys")
    eq(sorted(d["queues"]), ["default", "idle"], "queues")
    for name, counts in d["queues"].items():
        eq(sorted(counts), sorted(STATES), "counts by state of %s" % name)
        for v in counts.values():
            check(isinstance(v, int), "counts are numbers: %r" % d)
    eq(d["queues"]["default"]["running"], 1, "one running")
    eq(d["queues"]["idle"]["queued"], 1, "one queued")
    eq(d["paused"], ["idle"], "paused")
    eq(len(d["workers"]), 2, "two workers")
    for w in d["workers"]:
        for k in ("name", "host", "running", "slots", "connected",
                  "queues"):
            check(k in w, "worker JSON has %r: %r" % (k, w))
        check(isinstance(w["running"], list), "running is a list")
    running = [j for w in d["workers"] for j in w["running"]]
    eq(running, [slow], "the worker runs the slow job")
    # The human overview: queue table, worker table.
    r = s("status").ok()
    check(re.search(r"^QUEUE\s+STATE\s+WAITING\s+QUEUED\s+RUNNING\s+DONE"
                    r"\s+FAILED\s+CANCELED$", r.out, re.M),
          "queue header: %r" % r)
    check(re.search(r"^idle\s+paused\s+0\s+1\s", r.out, re.M),
          "paused queue row: %r" % r)
    check(re.search(r"^WORKER\s+HOST\s+STATE\s+BUSY", r.out, re.M),
          "worker header: %r" % r)
    check(re.search(r"\b%s\b" % slow, r.out), "what workers run: %r" % r)
    check("\033[" not in r.out, "no colour when stdout is not a tty")
    # workers and queues alone.
    w = s("workers", "--json").ok().json()["workers"]
    eq(sorted(x["name"] for x in w), sorted(x["name"] for x in
                                            d["workers"]), "workers")
    qd = s("queues", "--json").ok().json()
    eq(sorted(qd["queues"]), ["default", "idle"], "queues --json")
    eq(qd["paused"], ["idle"], "queues --json: paused")
    # The same shape as status --json's.
    eq(qd["queues"], d["queues"], "queues in queues --json and status "
       "--json")
    check(re.search(r"^default\s+active", s("queues").ok().out, re.M),
          "queues table")
    s("cancel", slow).ok()


def test_pause_resume(ctx):
    b, s, _ = setup(ctx, workers=1, queues="pq")
    # A queue is made by its first job: a name the broker does not know
    # is an error that lists the queues it does.
    s("pause", "pq").fails(2, "no queue pq", "the broker has none")
    s.submit("-q", "other", "--", "true")
    s("pause", "defualt").fails(2, "no queue defualt", "the queues are: "
                                "other")
    s("resume", "pq").fails(2, "no queue pq")
    # Held by a delay so that the worker cannot take it before the pause.
    jid = s.submit("-q", "pq", "--delay", "1s", "--", "true")
    eq(s("pause", "--json", "pq").ok().json(),
       {"queue": "pq", "paused": True}, "pause --json")
    eq(s("pause", "pq").ok().out, "", "pause is quiet")
    time.sleep(1.5)
    eq(job_json(s, jid)["state"], "queued", "a paused queue hands out "
       "nothing")
    s("resume", "pq").ok()
    eq(s("wait", "-t", "20s", jid).rc, 0, "runs once resumed")


def test_cancel(ctx):
    b, s, _ = setup(ctx, workers=1)
    slow = s.submit("--", "sleep", "60")
    wait_state(s, slow, "running")
    queued = s.submit("-q", "nobody", "--", "true")
    dep = s.submit("-q", "nobody", "--after", queued, "--", "true")
    r = s("cancel", slow, queued).ok()
    eq(r.out.strip(), "canceled 2 jobs", "cancel: %r" % r)
    wait_state(s, slow, "canceled")
    r = s("wait", slow)
    eq(r.rc, 1, "a canceled job is not done: %r" % r)
    j = job_json(s, dep)
    eq(j["state"], "failed", "a job after a canceled one fails")
    check(j["reason"], "with a reason: %r" % j)
    eq(s("status", queued).rc, 1, "status of a canceled job")
    got = s("list", "--json", "--state", "canceled").ok().json()["jobs"]
    eq(sorted(x["id"] for x in got), sorted([slow, queued]),
       "list --state canceled")
    eq(s("cancel", "--json", slow).ok().json(), {"canceled": 0},
       "canceling a finished job changes nothing")
    # Unknown ids: nothing is changed.
    other = s.submit("-q", "nobody", "--", "true")
    s("cancel", other, "999999").fails(2, "no job 999999")
    eq(job_json(s, other)["state"], "queued", "all or nothing")
    # A whole array.
    aid = s.submit("-q", "nobody", "--array", "1-100", "--", "true")
    r = s("cancel", aid).ok()
    eq(r.out.strip(), "canceled 100 jobs", "array cancel: %r" % r)


def test_timeout_retries_and_after(ctx):
    b, s, _ = setup(ctx, workers=1)
    t = s.submit("-t", "1s", "--", "sleep", "30")
    r = s("wait", "-t", "30s", t)
    eq(r.rc, 1, "a timed-out job failed: %r" % r)
    j = job_json(s, t)
    eq((j["state"], j["timed_out"], j["exit_code"]),
       ("failed", True, None), "timed out: %r" % j)
    d = ctx.mkdtemp("retry")
    # Fails on the first attempt only.
    rid = s.submit("-r", "2", "--", "sh", "-c",
                   "[ -e once ] || { touch once; exit 1; }", cwd=d)
    eq(s("wait", "-t", "60s", rid).rc, 0, "a retry succeeded")
    eq(job_json(s, rid)["attempts"], 2, "two attempts")
    # --after: the dependent runs after its dependency is done.
    a = s.submit("--", "sh", "-c", "sleep 0.3; date +%s%N > a", cwd=d)
    c = s.submit("--after", a, "--", "sh", "-c",
                 "test -e a && date +%s%N > c", cwd=d)
    eq(s("wait", a, c).rc, 0, "both done")


def test_wait_timeout_and_watch(ctx):
    b, s, _ = setup(ctx)
    jid = s.submit("-q", "nobody", "--", "true")
    t0 = time.monotonic()
    r = s("wait", "-t", "1s", jid)
    r.fails(2, "gave up after 1s")
    check(time.monotonic() - t0 < 10, "wait -t returned promptly")
    s("wait", "-t", "bad", jid).fails(2, "bad --timeout 'bad'")
    s("status", "-i", "0", jid).fails(2, "bad --interval")
    # --watch with ids ends when they have finished.
    p = subprocess.Popen([simq_path(ctx), "status", "--watch", "-i",
                          "200ms", jid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=s.env())
    time.sleep(0.6)
    check(p.poll() is None, "--watch keeps going while the job waits")
    s("cancel", jid).ok()
    out, err = p.communicate(timeout=10 * ctx.slow)
    eq(p.returncode, 1, "--watch ends with the job (canceled): %r" % err)
    check(out.decode().count("STATE") >= 2, "refreshed: %r" % out)
    check("canceled" in out.decode(), "final state shown")


def test_progress_bar_only_on_a_terminal(ctx):
    b, s, _ = setup(ctx, workers=1, slots=4)
    aid = s.submit("--array", "1-8", "--", "sh", "-c", "sleep 0.2")
    master, slave = pty.openpty()
    p = subprocess.Popen([simq_path(ctx), "wait", aid], stdin=slave,
                         stdout=subprocess.PIPE, stderr=slave, env=s.env(
                             {"NO_COLOR": "1", "LC_ALL": "C"}))
    os.close(slave)
    buf = b""
    deadline = time.monotonic() + 30 * ctx.slow
    while time.monotonic() < deadline:
        rl, _, _ = select.select([master], [], [], 0.2)
        if rl:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    out, _ = p.communicate(timeout=10)
    eq(p.returncode, 0, "all done")
    eq(out, b"", "nothing on stdout")
    text = buf.decode("utf-8", "replace")
    check("8/8 done" in text and "0 failed" in text and "took" in text,
          "final bar: %r" % text[-300:])
    check(re.search(r"\[[#x>.]+\]", text), "an ASCII bar: %r" % text[-300:])
    check("\033[3" not in text, "no colour with NO_COLOR")
    check("running" in text and "/s" in text, "running, rate: %r" %
          text[-300:])
    # Piped: no bar.
    r = s("wait", aid).ok()
    eq(r.out, "", "nothing on stdout when piped")
    check(re.match(r"^simq: 8 of 8 done, 0 failed in \d+s\n$", r.err),
          "one summary line on stderr when piped: %r" % r)


def test_token(ctx):
    d = ctx.mkdtemp("tok")
    tf = os.path.join(d, "token")
    with open(tf, "w") as f:
        f.write("s3cret w0rd\n")
    b = ctx.start_broker(["--token-file", tf])
    s = Simq(ctx, b)
    s("status").fails(2, "refused the token", "SIMQ_TOKEN")
    s("submit", "--", "true").fails(2, "refused the token")
    Simq(ctx, b, token="wrong")("status").fails(2, "refused the token")
    good = Simq(ctx, b, token="s3cret w0rd")
    good("status").ok()
    jid = good.submit("--", "true")
    s("--token-file", tf, "status", jid).ok()
    s("status", "--token-file", tf, "--json").ok().json()
    s("--token-file", os.path.join(d, "nope"), "status").fails(
        2, "cannot read the token file")
    # The flag wins over the environment.
    Simq(ctx, b, token="wrong")("--token-file", tf, "queues").ok()


def test_json_is_valid_for_any_bytes(ctx):
    b, s, _ = setup(ctx)
    weird = ["tab\there", "nl\nx", "quote\"back\\slash", "ctl\x01\x7f",
             "h\xe9llo \u2028", "\U0001F600"]
    raw = b"\xff\xfe bad \xc0\xaf"
    jid = s.submit("--no-check", "--name", "n\x1bame", "--", *weird,
                   os.fsdecode(raw))
    r = s("status", "--json", jid).ok()
    r.outb.decode("utf-8")			# strictly valid UTF-8
    j = r.json()["jobs"][0]
    eq(j["command"][:len(weird)], weird, "strings round-trip")
    eq(j["command"][-1], "\ufffd\ufffd bad \ufffd\ufffd",
       "invalid UTF-8 becomes U+FFFD")
    eq(j["name"], "n\x1bame", "control characters escaped")
    check("\\u001b" in r.out, "escaped as \\u001b")
    # The table never prints control characters.
    r = s("status", jid).ok()
    check("\x1b" not in r.out and "\x01" not in r.out,
          "no control characters in tables: %r" % r.out)
    r = s("list", "--json").ok().json()
    check(any(x["id"] == jid for x in r["jobs"]), "list --json")


def test_stats_and_long_status(ctx):
    b, s, _ = setup(ctx, workers=1)
    d = s("stats", "--json").ok().json()
    for k in ("version", "uptime", "next_id", "jobs", "fsync", "server"):
        check(k in d, "stats has %s: %r" % (k, d))
    check(isinstance(d["next_id"], int), "numbers are numbers")
    check(re.search(r"^next_id\s+\d+$", s("stats").ok().out, re.M),
          "stats table")
    jid = s.submit("--name", "lng", "--", "sh", "-c", "exit 4")
    s("wait", jid)
    r = s("status", "-l", jid)
    eq(r.rc, 1, "failed")
    for w in ("job %s" % jid, "failed", "command", "sh -c 'exit 4'",
              "name", "lng", "attempts", "started", "exit", "4",
              "reason"):
        check(w in r.out, "status -l shows %r: %r" % (w, r.out))


def test_wait_survives_a_broker_restart(ctx):
    b, s, _ = setup(ctx)
    jid = s.submit("-q", "nobody", "--", "true")
    p = subprocess.Popen([simq_path(ctx), "wait", jid],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=s.env())
    time.sleep(0.5)
    b.stop()
    time.sleep(0.5)
    check(p.poll() is None, "wait keeps trying while the broker is down")
    b.start()
    time.sleep(0.2)
    s("cancel", jid).ok()
    out, err = p.communicate(timeout=30 * ctx.slow)
    err = err.decode()
    eq(p.returncode, 1, "wait ends with the job (canceled): %r" % err)
    check("trying again" in err and "reconnected" in err,
          "says it lost and found the broker: %r" % err)
