"""
simq submit --each-line FILE -- CMD {}: an array with one task per line
of FILE, {} and SIMQ_ENTRY being the line, the lines stored once with the
array (EACHLINE).  Empty lines, lines as long as allowed and longer, a
million lines, and the lines through a broker restart.
"""

import os
import time

from harness import check, eq, enc
from clientlib import Simq
from workerlib import WorkerProc, wait_job, output

ECHO = ['sh', '-c', 'printf "%s|%s|%s" "$1" "$SIMQ_ENTRY" '
        '"$SIMQ_ARRAY_INDEX" > "$SIMQ_RESULT"', 'sh', '{}']


def _file(ctx, data):
    path = os.path.join(ctx.mkdtemp("lines"), "list")
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_each_line_tasks(ctx):
    b = ctx.broker
    c = b.client()
    simq = Simq(ctx, b)
    lines = [b"alpha", b"", b"two words", b"  spaced  ", b"%25 {} 100%",
             "\u00fcn\u00efcode".encode(), b"", b"crlf", b"tail"]
    data = b"\n".join(lines[:7]) + b"\n" + b"crlf\r\n" + b"tail"
    jid = simq.submit("--each-line", _file(ctx, data), "--", *ECHO)
    it = c.status1(jid)
    eq(it.int("tasks"), len(lines), "one task per line, empty ones too")
    # Its tasks' commands, as STATUS shows them before any runs.
    t3 = c.status1("%s_3" % jid)
    eq(t3.argv[-1], "two words", "{} is the line")
    eq(c.status1("%s_2" % jid).argv[-1], "", "an empty line is an empty {}")
    WorkerProc(ctx, b, slots=4)
    eq(wait_job(ctx, c, jid)["state"], "done", "every task ran")
    for i, line in enumerate(lines, 1):
        got = output(c, "%s_%d" % (jid, i), "result")
        eq(got, b"%s|%s|%d" % (line, line, i),
           "task %d: {}, SIMQ_ENTRY and SIMQ_ARRAY_INDEX" % i)


def test_each_line_long_lines(ctx):
    b = ctx.broker
    c = b.client()
    simq = Simq(ctx, b)
    # The longest line, of the bytes that encode longest (three each), in
    # two {} and SIMQ_ENTRY.
    longest = (b"% " * 2048)
    eq(len(longest), 4096, "SIMQ_ENTRY_MAX")
    jid = simq.submit("--each-line", _file(ctx, b"short\n" + longest +
                                           b"\n"), "--", "sh", "-c",
                      'printf "%s" "$1$2" > "$SIMQ_RESULT"; '
                      '[ "$SIMQ_ENTRY" = "$1" ]', "sh", "{}", "{}")
    WorkerProc(ctx, b, slots=2)
    eq(wait_job(ctx, c, jid)["state"], "done", "both tasks ran")
    eq(output(c, "%s_2" % jid, "result"), longest + longest,
       "the long line, whole, in both {}")
    # One byte longer: refused, naming the line; nothing is submitted.
    r = simq("submit", "--each-line", _file(ctx, b"a\n" + b"x" * 4097 +
                                            b"\n"), "--", "echo", "{}")
    r.fails(2, "line 2 is 4097 bytes long", "at most 4096")
    r = simq("submit", "--each-line", _file(ctx, b"a\nb\0c\n"), "--",
             "echo", "{}")
    r.fails(2, "line 2 holds a NUL byte")
    r = simq("submit", "--each-line", _file(ctx, b""), "--", "echo", "{}")
    r.fails(2, "has no lines")
    eq(c.request("LIST").expect_items(1)[0]["id"], jid,
       "no array was made by the refused submits")
    # The broker checks too: a line too long, lines without their
    # newline, a body without a command.
    for body, why in ((b"echo {}\n" + b"y" * 4097 + b"\n", "4097 bytes"),
                      (b"echo {}\na", "newline"),
                      (b"\n", "command")):
        r = c.request("EACHLINE %d" % len(body), body)
        check(r.kind == "ERR" and "bad-body" in r.line and why in r.line,
              "EACHLINE refuses it: %r" % r)
    # Too many {} for the longest line: the job item would not fit.
    r = c.request("EACHLINE %d" % (len(b"echo" + b" {}" * 6 + b"\n") +
                                   4097), b"echo" + b" {}" * 6 + b"\n" +
                  b"%" * 4096 + b"\n")
    check(r.kind == "ERR" and "job item" in r.line, repr(r))


def test_each_line_million(ctx):
    b = ctx.broker
    c = b.client()
    simq = Simq(ctx, b)
    n = 1000000
    data = b"".join(b"p%d\n" % i for i in range(1, n + 1))
    path = _file(ctx, data)
    t0 = time.monotonic()
    jid = simq.submit("--each-line", path, "--", "echo", "{}",
                      timeout=120 * ctx.slow)
    took = time.monotonic() - t0
    it = c.status1(jid)
    eq(it.int("tasks"), n, "a million tasks")
    eq(c.status1("%s_1" % jid).argv[-1], "p1", "the first line")
    eq(c.status1("%s_%d" % (jid, n)).argv[-1], "p%d" % n, "the last line")
    eq(c.status1("%s_500000" % jid).argv[-1], "p500000", "the middle one")
    # Stored once: the journal holds about the file, not a record a task.
    size = sum(os.path.getsize(os.path.join(dp, f))
               for dp, _, fs in os.walk(b.datadir) for f in fs)
    check(size < len(data) + 100000,
          "the journal is %d bytes for %d bytes of lines" % (size, len(data)))
    # A restart reads them back.
    b.restart()
    c = b.client()
    eq(c.status1("%s_%d" % (jid, n)).argv[-1], "p%d" % n,
       "the last line after a restart")
    eq(c.status1(jid).int("tasks"), n, "still a million")
    # Some of them run.
    WorkerProc(ctx, b, slots=4)
    eq(wait_job(ctx, c, "%s_3" % jid)["state"], "done", "task 3 ran")
    eq(output(c, "%s_3" % jid), b"p3\n", "with its line")
    c.request("CANCEL %s" % jid)
    print("# submitting 1,000,000 lines (%d bytes) took %.2fs" %
          (len(data), took))
test_each_line_million.timeout = 180


def test_each_line_everywhere_a_command_shows(ctx):
    # STATUS, simq status --tasks and the dashboard's API show a task's
    # command with its line in place of {}, taken or not.
    import json
    from harness import free_port
    from test_dashboard import req
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    simq = Simq(ctx, b)
    jid = simq.submit("--each-line", _file(ctx, b"one\n\nthree four\n"),
                      "--no-check", "--", "./sim", "--p={}")
    doc = json.loads(req(hp, "GET", "/api/jobs/%s_3" % jid)[2])
    eq(doc["command"], ["./sim", "--p=three four"], "the API's command")
    doc = json.loads(req(hp, "GET", "/api/jobs/%s_2" % jid)[2])
    eq(doc["command"], ["./sim", "--p="], "an empty line")
    r = simq("--json", "status", jid, "--tasks").ok()
    cmds = [t["command"] for t in r.json()["tasks"]]
    eq(cmds, [["./sim", "--p=one"], ["./sim", "--p="],
              ["./sim", "--p=three four"]], "simq status --tasks")
    eq(c.status1("%s_1" % jid).argv, ["./sim", "--p=one"], "STATUS")
