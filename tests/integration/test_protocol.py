"""
Transcripts: every command of proto/PROTOCOL.md with good and bad
arguments, the exact reply shapes and error codes, and the framing rules
(long lines, oversized and malformed bodies, pipelining, half-close).
"""

import socket
import time

from harness import (Client, TestFailure, check, enc, eq, submit_line,
                     wait_until)

LINE_MAX = 65536
BATCH_MAX = 2 << 20
BATCH_JOBS_MAX = 10000


def next_id(c):
    return int(c.stats()["next_id"])


def test_hello_ping_quit(ctx):
    c = ctx.broker.client()
    c.request("HELLO 1").expect_ok("simq", "1")
    # Without --token-file a token is accepted and ignored.
    c.request("HELLO 1 s3cret").expect_ok("simq", "1")
    r = c.request("HELLO 7").expect_err("version")
    check("1" in r.words[1:], "ERR version must name version 1: %r" % r)
    c.request("HELLO 0").expect_err("version")
    c.request("HELLO 99999999999999999999999").expect_err("version")
    for bad in ("HELLO", "HELLO 1 tok extra"):
        c.request(bad).expect_err("bad-request")
    c.request("PING").expect_ok()
    eq(c.request("PING").line, "OK", "PING reply")
    c.request("PING extra").expect_err("bad-request")
    c.request("QUIT extra").expect_err("bad-request")
    # Verbs are case-insensitive.
    c.request("ping").expect_ok()
    c.request("pInG").expect_ok()
    c.request("hello 1").expect_ok("simq", "1")
    # HELLO is optional: a fresh connection can work without it.
    d = ctx.broker.client()
    d.submit(["true"])
    # QUIT answers OK and closes.
    c.request("QUIT").expect_ok()
    check(c.at_eof(5), "connection still open after QUIT")
    # A CR LF and a bare LF both end a line; tabs separate words.
    d.send(b"PING\n")
    d.read_reply().expect_ok()
    d.send(b"HELLO\t1\r\n")
    d.read_reply().expect_ok("simq", "1")


def test_unknown_command_and_empty_line(ctx):
    c = ctx.broker.client()
    for line in ("FOO", "FOO bar baz", "SUBMITX -- x", "P1NG", "", "   ",
                 "\t", "%50ING"):
        c.request(line).expect_err("unknown-command")
    # Arguments are case-sensitive (only the verb is not): queue names.
    a = c.submit(["x"], q="Q1")
    b = c.submit(["x"], q="q1")
    eq(c.status1(a)["q"], "Q1", "queue name case")
    eq(c.status1(b)["q"], "q1", "queue name case")
    c.request("PING").expect_ok()


def test_submit_transcript(ctx):
    c = ctx.broker.client()
    first = c.request("SUBMIT -- ./sim --seed 3").one_id()
    check(first >= 1, "ids start at 1 or more")
    item = c.status1(first)
    eq(item.kind, "job", "status kind")
    eq(item["id"], str(first), "id")
    eq(item["state"], "queued", "state")
    eq(item["q"], "default", "default queue")
    eq(item["pri"], "0", "default priority")
    eq(item["attempts"], "0", "attempts")
    eq(item.argv, ["./sim", "--seed", "3"], "argv")
    check("submitted" in item, "submitted time missing: %r" % item)
    check(abs(int(item["submitted"]) - time.time() * 1000) < 60000,
          "submitted is not ms since the epoch: %r" % item)
    # Every option at once.
    line = ("SUBMIT q=sims pri=-5 timeout=7200000 retries=3 delay=0 "
            "after=%d name=my%%20job env=PATH=/bin:/usr/bin env=A=b%%20c "
            "cwd=/data output=logs/%%25A_%%25a.out -- ./sim a%%20b %%25 %%"
            % first)
    j2 = c.request(line).one_id()
    eq(j2, first + 1, "ids increase by one")
    item = c.status1(j2)
    eq(item["q"], "sims", "q")
    eq(item["pri"], "-5", "pri")
    eq(item["retries"], "3", "retries")
    eq(item["name"], "my job", "name")
    eq(item["state"], "waiting", "state of a job after a queued one")
    eq(item["after"], str(first), "after")
    eq(item.argv, ["./sim", "a b", "%", ""], "argv decoding")
    # Bad requests: nothing is submitted.
    before = next_id(c)
    queues_before = c.request("QUEUES").expect_items()
    bad = [
        "SUBMIT",                       # no arguments at all
        "SUBMIT --",                    # no command
        "SUBMIT q=x --",
        "SUBMIT ./sim",                 # no --
        "SUBMIT q=x ./sim",
        "SUBMIT pri=01 -- x",           # leading zero
        "SUBMIT pri=+1 -- x",
        "SUBMIT pri=1x -- x",
        "SUBMIT pri=-0 -- x",
        "SUBMIT pri= -- x",
        "SUBMIT pri=1000000001 -- x",
        "SUBMIT pri=-1000000001 -- x",
        "SUBMIT timeout=-1 -- x",
        "SUBMIT timeout=1s -- x",       # milliseconds on the wire
        "SUBMIT timeout=999999999999999999999 -- x",
        "SUBMIT retries=1001 -- x",
        "SUBMIT delay=abc -- x",
        "SUBMIT q=a/b -- x",
        "SUBMIT q=%% -- x",             # empty queue name
        "SUBMIT q=" + "a" * 129 + " -- x",
        "SUBMIT q=a q=b -- x",          # given twice
        "SUBMIT foo=bar -- x",          # unknown option
        "SUBMIT pri -- x",              # not KEY=VALUE
        "SUBMIT name=" + "n" * 129 + " -- x",
        "SUBMIT env=NOEQUALS -- x",
        "SUBMIT env==x -- x",
        "SUBMIT env=A=%00 -- x",        # NUL in an option
        "SUBMIT after=abc -- x",
        "SUBMIT after=1,,2 -- x",
        "SUBMIT after=01 -- x",
        "SUBMIT array=5-1 -- x",
        "SUBMIT array=1-3:0 -- x",
        "SUBMIT array=a-b -- x",
        "SUBMIT array=1-4294967295 -- x",
        "SUBMIT name=%zz -- x",         # bad escape in an option
        "SUBMIT -- x%zz",               # bad escape in an argument
        "SUBMIT -- x%4",
        "SUBMIT -- a%00b",              # NUL in an argument
    ]
    for line in bad:
        r = c.request(line)
        if r.kind != "ERR" or r.code != "bad-request":
            raise TestFailure("%r: expected ERR bad-request, got %r" %
                              (line, r))
    eq(next_id(c), before, "next_id after refused submits")
    # A dependency that does not exist: not-found, and nothing changes
    # (no job, no new queue).
    c.request("SUBMIT after=999999 -- x").expect_err("not-found")
    c.request("SUBMIT q=newq after=%d,999999 -- x" % first) \
        .expect_err("not-found")
    c.request("SUBMIT after=%d_1 -- x" % first).expect_err("not-found")
    eq(next_id(c), before, "next_id after refused submits")
    queues_after = c.request("QUEUES").expect_items()
    eq([q["name"] for q in queues_after], [q["name"] for q in queues_before],
       "queues after refused submits (a refused SUBMIT must change nothing)")
    # Still in step.
    eq(c.submit(["ok"]), before, "the next id after refused submits")


def test_submit_array_transcript(ctx):
    c = ctx.broker.client()
    # The spec's '%' is encoded on the wire as %25.
    aid = c.request("SUBMIT array=1-10:2%252 -- ./sim --seed {}").one_id()
    it = c.status1(aid)
    eq(it.kind, "array", "kind")
    eq(it["tasks"], "5", "tasks of 1-10:2")
    eq(it["state"], "queued", "array state")
    eq(it.argv, ["./sim", "--seed", "{}"], "array argv keeps {}")
    t = c.status("%d_3" % aid, "%d_9" % aid, "%d_2" % aid, "%d_11" % aid)
    eq(t[0].kind, "job", "task 3")
    eq(t[0]["id"], "%d_3" % aid, "task id")
    eq(t[0].argv, ["./sim", "--seed", "3"], "task argv substituted")
    eq(t[1].argv, ["./sim", "--seed", "9"], "task argv substituted")
    eq(t[2].kind, "missing", "task 2 is not in 1-10:2")
    eq(t[3].kind, "missing", "task 11 is not in 1-10:2")
    # One index, and a big array, each one round trip.
    one = c.request("SUBMIT array=7 -- x {}").one_id()
    eq(c.status1(one)["tasks"], "1", "array=7")
    big = c.request("SUBMIT array=0-999999 -- x").one_id()
    eq(c.status1(big)["tasks"], "1000000", "tasks")
    eq(c.status1("%d_999999" % big)["state"], "queued", "last task")
    c.request("SUBMIT array=1-2 array=1-3 -- x").expect_err("bad-request")
    c.request("BATCH array=1-3 4", b"x y\n").expect_err("bad-request")


def test_batch_transcript(ctx):
    c = ctx.broker.client()
    body = b"./sim --seed 1\n./sim --seed 2\n./sim --seed 3\n"
    eq(len(body), 45, "body length")
    r = c.request("BATCH q=sims %d" % len(body), body)
    r.expect_ok()
    first, n = int(r.words[0]), int(r.words[1])
    eq(n, 3, "count")
    items = c.status(first, first + 1, first + 2)
    for i, it in enumerate(items):
        eq(it["q"], "sims", "batch queue")
        eq(it.argv, ["./sim", "--seed", str(i + 1)], "batch argv in order")
    # CR LF lines, blank lines, encoded words, no final newline.
    body = b"a%20b c\r\n\r\n   \nd\te\n%\nlast"
    r = c.request("BATCH pri=2 %d" % len(body), body).expect_ok()
    f2, n2 = int(r.words[0]), int(r.words[1])
    eq(f2, first + 3, "next batch starts after the previous")
    eq(n2, 4, "blank lines are skipped")
    items = c.status(*range(f2, f2 + 4))
    eq([i.argv for i in items], [["a b", "c"], ["d", "e"], [""], ["last"]],
       "batch argv")
    eq({i["pri"] for i in items}, {"2"}, "batch options apply to all")
    # Errors: nothing is submitted.
    before = next_id(c)
    c.request("BATCH 0", b"").expect_err("bad-body")
    c.request("BATCH 3", b"\n\n\n").expect_err("bad-body")
    body = b"ok\nbad%zz\nok\n"
    r = c.request("BATCH %d" % len(body), body).expect_err("bad-body")
    check("2" in r.line, "the error should name line 2: %r" % r)
    c.request("BATCH 6", b"a%00b\n").expect_err("bad-body")
    c.request("BATCH q=bad/q 2", b"x\n").expect_err("bad-request")
    c.request("BATCH after=999999 2", b"x\n").expect_err("not-found")
    # Bad length words: no body is expected after them.
    for line in ("BATCH", "BATCH abc", "BATCH -1", "BATCH 01", "BATCH q=x",
                 "BATCH 99999999999999999999999"):
        c.request(line).expect_err("bad-request")
    eq(next_id(c), before, "next_id after refused batches")
    c.request("PING").expect_ok()


def test_line_too_long_and_boundaries(ctx):
    c = ctx.broker.client()
    c.send(b"SUBMIT -- " + b"a" * 70000 + b"\r\n")
    c.read_reply().expect_err("line-too-long")
    c.request("PING").expect_ok()
    # A line of 70000 bytes split across many sends.
    for i in range(0, 70000, 7000):
        c.send(b"x" * 7000)
        time.sleep(0.001)
    c.send(b"\nPING\n")
    c.read_reply().expect_err("line-too-long")
    c.read_reply().expect_ok()
    # At most 65536 bytes with the terminator: the longest lines pass the
    # framer.  A SUBMIT that long is then refused for its job's TAKE item,
    # which says more than the request (test_files_largest_submit_runs).
    pre = b"SUBMIT -- "
    arg = b"b" * (LINE_MAX - 1 - len(pre))
    c.send(pre + arg + b"\n")          # exactly 65536 with LF
    r = c.read_reply()
    r.expect_err("bad-request")
    check("TAKE item" in r.line, r.line)
    arg2 = b"c" * (LINE_MAX - 2 - len(pre))
    c.send(pre + arg2 + b"\r\n")       # exactly 65536 with CR LF
    r = c.read_reply()
    r.expect_err("bad-request")
    check("TAKE item" in r.line, r.line)
    arg3 = b"d" * (LINE_MAX - 2 - len(pre) - 64)
    c.send(pre + arg3 + b"\r\n")
    jid = c.read_reply().one_id()
    eq(c.status1(jid).argv, [arg3.decode()], "long argument")
    # One byte more is too long.
    c.send(pre + arg + b"b\n")
    c.read_reply().expect_err("line-too-long")
    c.request("PING").expect_ok()
    # A too-long line that would announce a body: no body is expected.
    c.send(b"BATCH " + b"q=x " * 20000 + b"5\r\nPING\r\n")
    c.read_reply().expect_err("line-too-long")
    c.read_reply().expect_ok()
    # Too many words (more than 4096) on a line that fits.
    c.request("SUBMIT -- " + "a " * 5000).expect_err("bad-request")
    c.request("PING").expect_ok()


def test_oversized_batch_body_is_swallowed(ctx):
    c = ctx.broker.client()
    c.settimeout(60 * ctx.slow)
    before = next_id(c)
    n = BATCH_MAX + 1
    line = b"BATCH %d\r\n" % n
    # The body holds lines that would be valid requests if the broker
    # read them as such: it must not.
    chunk = (b"PING\n" * 200000)[:1 << 20]
    c.send(line)
    sent = 0
    while sent < n:
        k = min(len(chunk), n - sent)
        c.send(chunk[:k])
        sent += k
    c.send(b"\r\nPING\r\n")
    r = c.read_reply()
    r.expect_err("body-too-large")
    c.read_reply().expect_ok()
    eq(next_id(c), before, "nothing submitted")
    # Announced far beyond the limit, then sent: still in step.
    c.send(b"BATCH %d\r\n" % (BATCH_MAX + 12345))
    c.send(b"\0" * (BATCH_MAX + 12345) + b"\r\n")
    c.read_reply().expect_err("body-too-large")
    c.request("PING").expect_ok()
    # A FINISH body over its limit (2 x 64 KiB + 64 KiB) is swallowed too.
    w = ctx.broker.worker("w1")
    big = 3 * 65536 + 1
    r = w.request("FINISH 1 1 exit=0 %d" % big, b"x" * big)
    r.expect_err("body-too-large")
    w.request("PING").expect_ok()
    # A good BATCH of the most commands one may hold is accepted; one
    # command more is refused whole.
    lines = b"".join(b"job%07d\n" % i for i in range(0, BATCH_JOBS_MAX))
    r = c.request("BATCH %d" % len(lines), lines).expect_ok()
    eq(int(r.words[1]), BATCH_JOBS_MAX, "jobs in a big batch")
    eq(c.status1(int(r.words[0]) + BATCH_JOBS_MAX - 1).argv,
       ["job%07d" % (BATCH_JOBS_MAX - 1)], "last")
    before = next_id(c)
    lines += b"one-more\n"
    c.request("BATCH %d" % len(lines), lines).expect_err("bad-body")
    eq(next_id(c), before, "nothing of the refused batch submitted")


test_oversized_batch_body_is_swallowed.timeout = 120


def test_bad_body_terminator(ctx):
    c = ctx.broker.client()
    before = next_id(c)
    # The 5 body bytes are followed by 'Z', not CR LF: bad-body, and the
    # input is skipped to the next LF (here the PING is swallowed with it).
    c.send(b"BATCH 5\r\nabcdeZ PING\r\nPING\r\n")
    c.read_reply().expect_err("bad-body")
    c.read_reply().expect_ok()
    # The body runs into the next request.
    c.send(b"BATCH 2\r\nabcdef\nPING\n")
    c.read_reply().expect_err("bad-body")
    c.read_reply().expect_ok()
    # A CR not followed by LF.
    c.send(b"BATCH 2\r\nab\rX\nPING\n")
    c.read_reply().expect_err("bad-body")
    c.read_reply().expect_ok()
    eq(next_id(c), before, "nothing submitted")
    # A body terminated by a bare LF is fine.
    c.send(b"BATCH 2\r\nab\nPING\n")
    c.read_reply().expect_ok(before, 1)
    c.read_reply().expect_ok()
    # The body arrives a few bytes at a time.
    c.send(b"BATCH 4\r\n")
    for b in (b"c", b"d", b"\n", b"e", b"\r", b"\nPING\r\n"):
        time.sleep(0.01)
        c.send(b)
    c.read_reply().expect_ok(before + 1, 2)
    c.read_reply().expect_ok()
    # FINISH with a bad terminator.
    w = ctx.broker.worker("w")
    w.send(b"FINISH 1 1 exit=0 out=2 2\r\nhiXX\r\nPING\r\n")
    w.read_reply().expect_err("bad-body")
    w.read_reply().expect_ok()


def test_pipeline_1000_mixed(ctx):
    c = ctx.broker.client()
    base = next_id(c)
    frames, expect = [], []
    nid = base
    for i in range(200):
        k = i % 5
        frames.append(Client.frame(submit_line(["job", str(i), "a b"],
                                               pri=i % 3)))
        expect.append(("OK", nid))
        frames.append(Client.frame("STATUS %d" % nid))
        expect.append(("STATUS", nid, ["job", str(i), "a b"]))
        nid += 1
        if k == 0:
            body = b"x %d\ny\n" % i
            frames.append(Client.frame("BATCH %d" % len(body), body))
            expect.append(("BATCH", nid, 2))
            nid += 2
        elif k == 1:
            frames.append(Client.frame("NOPE %d" % i))
            expect.append(("ERR", "unknown-command"))
        elif k == 2:
            frames.append(Client.frame("STATUS 1_x"))
            expect.append(("ERR", "bad-request"))
        elif k == 3:
            frames.append(Client.frame("QUEUES"))
            expect.append(("ITEMS",))
        else:
            frames.append(Client.frame("CANCEL 999999999"))
            expect.append(("ERR", "not-found"))
        frames.append(Client.frame("PING"))
        expect.append(("OK",))
        if len(frames) >= 1000:
            break
    while len(frames) < 1000:
        frames.append(Client.frame("PING"))
        expect.append(("OK",))
    frames, expect = frames[:1000], expect[:1000]
    # Keep the expectation consistent with the cut.
    replies = c.pipeline(frames)
    eq(len(replies), 1000, "replies")
    for i, (r, e) in enumerate(zip(replies, expect)):
        what = "reply %d to %r" % (i, frames[i][:60])
        if e[0] == "OK":
            if len(e) == 2:
                eq(r.one_id(), e[1], what)
            else:
                eq(r.line, "OK", what)
        elif e[0] == "STATUS":
            items = r.expect_items(1)
            eq(items[0]["id"], str(e[1]), what)
            eq(items[0].argv, e[2], what)
        elif e[0] == "BATCH":
            eq(r.line, "OK %d %d" % (e[1], e[2]), what)
        elif e[0] == "ERR":
            eq((r.kind, r.code), ("ERR", e[1]), what)
        elif e[0] == "ITEMS":
            check(r.kind == "ITEMS" and len(r.items) >= 1, what)
    c.request("PING").expect_ok()


def test_half_close_gets_every_reply(ctx):
    b = ctx.broker
    c = b.client()
    queued = c.submit(["sleep", "1"])
    d = b.client()
    frames = [Client.frame("PING")]
    frames += [Client.frame(submit_line(["x", str(i)])) for i in range(50)]
    # A WAIT that parks (the job stays queued) until its timeout...
    frames.append(Client.frame("WAIT 300 %d" % queued))
    # ...and requests behind it.
    frames += [Client.frame("STATUS %d" % queued), Client.frame("FOO"),
               Client.frame("PING")]
    body = b"a\nb\n"
    frames.append(Client.frame("BATCH 4", body))
    d.send(b"".join(frames))
    d.shutdown_write()
    d.read_reply().expect_ok()
    ids = [d.read_reply().one_id() for _ in range(50)]
    eq(ids, list(range(ids[0], ids[0] + 50)), "ids in order")
    t0 = time.monotonic()
    w = d.read_reply()
    eq(w.expect_items(1)[0]["state"], "queued", "WAIT timed out")
    d.read_reply().expect_items(1)
    d.read_reply().expect_err("unknown-command")
    d.read_reply().expect_ok()
    d.read_reply().expect_ok(ids[-1] + 1, 2)
    check(d.at_eof(10), "the broker must close after the last reply")
    # The jobs are there.
    eq(c.status1(ids[-1] + 2)["state"], "queued", "batch job")
    # A half-closed connection with a parked TAKE.
    w = b.worker("hc")
    w.send(b"TAKE 1 500 nothing\r\nPING\r\n")
    w.shutdown_write()
    w.read_reply().expect_items(0)
    w.read_reply().expect_ok()
    check(w.at_eof(10), "close after the parked TAKE's reply")
    check(time.monotonic() - t0 < 10, "slow")


def test_worker_commands_transcript(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    # Worker commands before WORKER.
    c.request("TAKE 1 0 default").expect_err("bad-state")
    c.request("HEARTBEAT").expect_err("bad-state")
    c.request("FINISH %d 1 exit=0 0" % jid, b"").expect_err("bad-state")
    c.request("FAIL %d 1 why" % jid).expect_err("bad-state")
    c.request("RELEASE %d 1" % jid).expect_err("bad-state")
    for line in ("WORKER", "WORKER bad/name", "WORKER " + "n" * 129,
                 "WORKER w lease=999", "WORKER w lease=3600001",
                 "WORKER w lease=abc", "WORKER w foo=1", "WORKER w slots",
                 "WORKER w slots=-1", "WORKER w pid=x",
                 "WORKER w a=1 b=2 c=3 d=4 e=5"):
        c.request(line).expect_err("bad-request")
    eq(c.request("WORKERS").expect_items(), [], "no worker registered")
    n7 = b.client()
    n7.request("WORKER node7:4211@x host=node7 slots=16 pid=42") \
        .expect_ok("30000")
    # Registering again renames the connection: w2 is gone, w3 remains.
    c.request("WORKER w2 lease=1000").expect_ok("1000")
    c.request("WORKER w3 lease=3600000").expect_ok("3600000")
    ws = {w["name"]: w for w in c.request("WORKERS").expect_items()}
    check("node7:4211@x" in ws, "worker listed: %r" % ws)
    eq(ws["node7:4211@x"]["host"], "node7", "host")
    eq(ws["node7:4211@x"]["slots"], "16", "slots")
    # This connection is now w3.
    eq(ws["w3"]["connected"], "1", "w3 connected")
    eq(ws["w3"]["lease"], "3600000", "w3 lease")
    eq(sorted(ws), ["node7:4211@x", "w3"], "workers")
    for line in ("TAKE 0 0 default", "TAKE 1025 0 default",
                 "TAKE x 0 default", "TAKE 1 -1 default",
                 "TAKE 1 x default", "TAKE 1 0 bad/q", "TAKE 1 0 a,,b",
                 "TAKE 1 0 a,", "TAKE 1 0 ,a", "TAKE 1 0",
                 "TAKE 1 0 a b", "TAKE 1 0 " + ",".join("q%d" % i
                                                      for i in range(65))):
        c.request(line).expect_err("bad-request")
    eq(c.request("TAKE 1 0 empty,other").expect_items(), [], "nothing")
    r = c.request("TAKE 1024 0 " + ",".join("q%d" % i for i in range(63)) +
                  ",default")
    jobs = r.expect_items(1)
    eq(jobs[0]["id"], str(jid), "took the job")
    eq(jobs[0]["attempt"], "1", "first attempt")
    eq(jobs[0]["q"], "default", "q")
    eq(jobs[0]["timeout"], "0", "timeout")
    eq(jobs[0].argv, ["x"], "argv")
    # HEARTBEAT.
    c.request("HEARTBEAT").expect_items(0)
    c.request("HEARTBEAT %d:1" % jid).expect_items(0)
    for line in ("HEARTBEAT x", "HEARTBEAT %d" % jid, "HEARTBEAT %d:" % jid,
                 "HEARTBEAT :1", "HEARTBEAT %d:x" % jid):
        c.request(line).expect_err("bad-request")
    d = c.request("HEARTBEAT 999999:1 %d:7" % jid).expect_items(2)
    eq([(x.kind, x["id"], x["attempt"]) for x in d],
       [("drop", "999999", "1"), ("drop", str(jid), "7")], "drops")
    eq(d[0]["reason"], "unknown", "reason for an unknown job")
    # FINISH / FAIL / RELEASE argument errors.
    for line, body, code in (
            ("FINISH %d 1 0" % jid, b"", "bad-request"),      # no exit
            ("FINISH %d 1 exit=0 signal=9 0" % jid, b"", "bad-request"),
            ("FINISH %d 1 exit=256 0" % jid, b"", "bad-request"),
            ("FINISH %d 1 signal=0 0" % jid, b"", "bad-request"),
            ("FINISH %d 1 exit=0 bogus=1 0" % jid, b"", "bad-request"),
            ("FINISH %d 1 exit=0 out=65537 65537" % jid, b"o" * 65537,
             "bad-request"),
            ("FINISH %d 1 exit=0 out=3 2" % jid, b"ab", "bad-body"),
            ("FINISH %d 1 exit=0 out=1 2" % jid, b"ab", "bad-body"),
            ("FINISH x 1 exit=0 0", b"", "bad-request"),
            ("FINISH %d x exit=0 0" % jid, b"", "bad-request"),
            ("FINISH %d 1" % jid, None, "bad-request"),
            ("FINISH 999999 1 exit=0 0", b"", "not-found"),
            ("FINISH %d 2 exit=0 0" % jid, b"", "stale"),
            ("FAIL %d 1" % jid, None, "bad-request"),
            ("FAIL %d 1 a b" % jid, None, "bad-request"),
            ("FAIL %d 1 bad%%zz" % jid, None, "bad-request"),
            ("FAIL %d 1 %s" % (jid, "r" * 1025), None, "bad-request"),
            ("FAIL 999999 1 why", None, "not-found"),
            ("FAIL %d 0 why" % jid, None, "stale"),
            ("RELEASE %d" % jid, None, "bad-request"),
            ("RELEASE 999999 1", None, "not-found"),
            ("RELEASE %d 2" % jid, None, "stale")):
        r = c.request(line, body)
        if r.kind != "ERR" or r.code != code:
            raise TestFailure("%r: expected ERR %s, got %r" %
                              (line, code, r))
    eq(c.status1(jid)["state"], "running", "still running after errors")
    # Another worker cannot report on this worker's job.
    o = b.worker("other")
    o.request("FINISH %d 1 exit=0 0" % jid, b"").expect_err("stale")
    o.request("FAIL %d 1 nope" % jid).expect_err("stale")
    o.request("RELEASE %d 1" % jid).expect_err("stale")
    # The right one can.
    c.request("FINISH %d 1 exit=0 0" % jid, b"").expect_ok("done")
    c.request("FINISH %d 1 exit=0 0" % jid, b"").expect_err("stale")
    c.request("RELEASE %d 1" % jid).expect_err("stale")
    # An array id is not a job.
    aid = c.submit(["y"], array="1-2")
    c.request("FINISH %d 1 exit=0 0" % aid, b"").expect_err("not-found")
    # A TAKE of a paused queue gives nothing.
    c.request("PAUSE default").expect_ok()
    eq(c.request("TAKE 5 0 default").expect_items(), [], "paused queue")


def test_status_list_wait_transcript(ctx):
    c = ctx.broker.client()
    ids = [c.submit(["j", str(i)], q="a" if i % 2 else "b")
           for i in range(10)]
    for line in ("STATUS", "STATUS x", "STATUS 1_", "STATUS _1", "STATUS -1",
                 "STATUS 01", "STATUS 1_x", "STATUS 1__2",
                 "STATUS 99999999999999999999999", "STATUS %d x" % ids[0]):
        c.request(line).expect_err("bad-request")
    items = c.status(ids[0], 999999, "999999_3", ids[1])
    eq([i.kind for i in items], ["job", "missing", "missing", "job"],
       "status kinds in order")
    eq(items[1]["id"], "999999", "missing id")
    eq(items[2]["id"], "999999_3", "missing task id")
    # LIST.
    all_ = c.request("LIST").expect_items(10)
    eq([int(i["id"]) for i in all_], ids, "LIST in id order")
    eq([int(i["id"]) for i in c.request("LIST q=a").expect_items()],
       ids[1::2], "LIST q=a")
    eq(c.request("LIST q=nosuch").expect_items(), [], "LIST of no queue")
    eq(len(c.request("LIST state=queued").expect_items()), 10, "queued")
    eq(c.request("LIST state=done").expect_items(), [], "done")
    eq([int(i["id"]) for i in c.request("LIST limit=3").expect_items()],
       ids[:3], "limit")
    eq([int(i["id"]) for i in c.request("LIST after=%d limit=3" %
                                        ids[2]).expect_items()],
       ids[3:6], "after + limit")
    eq([int(i["id"]) for i in c.request("LIST after=%d q=b limit=2" %
                                        ids[3]).expect_items()],
       [ids[4], ids[6]], "after + q + limit")
    for line in ("LIST limit=0", "LIST limit=100001", "LIST state=bogus",
                 "LIST q=bad/q", "LIST foo=1", "LIST after=x", "LIST x",
                 "LIST a=1 b=2 c=3 d=4 e=5"):
        c.request(line).expect_err("bad-request")
    c.request("LIST limit=100000").expect_items(10)
    # QUEUES counts.
    qs = {q["name"]: q for q in c.request("QUEUES").expect_items()}
    eq(qs["a"]["queued"], "5", "queue a queued")
    eq(qs["b"]["queued"], "5", "queue b queued")
    for k in ("paused", "waiting", "running", "done", "failed", "canceled"):
        check(k in qs["a"], "QUEUES key %s missing: %r" % (k, qs["a"]))
    c.request("QUEUES x").expect_err("bad-request")
    c.request("WORKERS x").expect_err("bad-request")
    c.request("STATS x").expect_err("bad-request")
    # STATS keys.
    st = c.stats()
    eq(st.kind, "stats", "stats item kind")
    for k in ("version", "uptime", "next_id", "jobs", "queues", "workers",
              "connections", "submitted", "finished", "lost",
              "journal_bytes", "journal_segments", "commits", "fsyncs",
              "snapshots", "fsync"):
        check(k in st, "STATS key %s missing: %r" % (k, st))
    eq(st["fsync"], "always", "default fsync policy")
    eq(st["next_id"], str(ids[-1] + 1), "next_id")
    eq(st["submitted"], "10", "submitted")
    # WAIT.
    for line in ("WAIT", "WAIT 100", "WAIT x 1", "WAIT 3600001 1",
                 "WAIT 100 x"):
        c.request(line).expect_err("bad-request")
    t0 = time.monotonic()
    w = c.request("WAIT 0 %d 999999" % ids[0]).expect_items(2)
    eq([i.kind for i in w], ["job", "missing"], "WAIT 0 answers at once")
    w = c.request("WAIT 200 %d" % ids[0]).expect_items(1)
    dt = time.monotonic() - t0
    eq(w[0]["state"], "queued", "WAIT timed out")
    check(0.15 <= dt < 5, "WAIT 200 took %.3fs" % dt)
    # A missing id counts as finished.
    t0 = time.monotonic()
    c.request("WAIT 5000 999999").expect_items(1)
    check(time.monotonic() - t0 < 2, "WAIT on a missing id must not park")


def test_output_transcript(ctx):
    b = ctx.broker
    c = b.client()
    jid = c.submit(["x"])
    aid = c.submit(["x"], array="1-2")
    c.request("OUTPUT 999999 stdout").expect_err("not-found")
    c.request("OUTPUT %d stdout" % jid).expect_err("bad-state")
    c.request("OUTPUT %d" % jid).expect_err("bad-request")
    c.request("OUTPUT x stdout").expect_err("bad-request")
    c.request("OUTPUT %d stdout" % aid).expect_err("not-found")
    w = b.worker("w")
    j = w.take1()
    c.request("OUTPUT %d stdout" % jid).expect_err("bad-state")
    w.finish_job(j, out=b"o", err=b"ee", res=b"").expect_ok("done")
    eq(c.request("OUTPUT %d stdout" % jid).data, b"o", "stdout")
    c.request("OUTPUT %d bogus" % jid).expect_err("bad-request")
    c.request("OUTPUT %d STDOUT" % jid).expect_err("bad-request")
    eq(c.request("OUTPUT %d stderr" % jid).data, b"ee", "stderr")
    r = c.request("OUTPUT %d result" % jid)
    eq((r.line, r.data), ("DATA 0", b""), "empty result")


def test_cancel_retry_pause_transcript(ctx):
    c = ctx.broker.client()
    a = c.submit(["a"])
    for line in ("CANCEL", "CANCEL x", "RETRY", "RETRY x", "PAUSE",
                 "PAUSE a b", "PAUSE bad/q", "RESUME", "RESUME bad/q",
                 "PAUSE %"):
        c.request(line).expect_err("bad-request")
    c.request("CANCEL 999999").expect_err("not-found")
    c.request("CANCEL %d 999999" % a).expect_err("not-found")
    eq(c.status1(a)["state"], "queued", "nothing canceled when one is missing")
    c.request("RETRY 999999").expect_err("not-found")
    c.request("RETRY %d" % a).expect_ok("0")
    c.request("CANCEL %d" % a).expect_ok("1")
    eq(c.status1(a)["state"], "canceled", "canceled")
    c.request("CANCEL %d" % a).expect_ok("0")
    c.request("RETRY %d %d" % (a, a)).expect_ok("1")
    eq(c.status1(a)["state"], "queued", "retried")
    # PAUSE and RESUME name a queue that exists.
    c.request("PAUSE q1").expect_err("not-found")
    c.request("RESUME never-seen").expect_err("not-found")
    c.submit(["b"], q="q1")
    c.request("PAUSE q1").expect_ok()
    c.request("PAUSE q1").expect_ok()
    qs = {q["name"]: q for q in c.request("QUEUES").expect_items()}
    eq(qs["q1"]["paused"], "1", "paused")
    c.request("RESUME q1").expect_ok()
    c.request("RESUME q1").expect_ok()
    qs = {q["name"]: q for q in c.request("QUEUES").expect_items()}
    eq(qs["q1"]["paused"], "0", "resumed")


def test_argument_bytes_round_trip(ctx):
    b = ctx.broker
    c = b.client()
    weird = bytes(range(1, 256)).decode("latin-1")
    args = ["sp ace", "tab\there", "cr\rlf\n", "100%", "%", "", "%41",
            "ü日本", "{}", "--", "a=b", weird]
    jid = c.submit(args, name="n a%me", env=["K=v w", "E=%"], cwd="/d ir")
    it = c.status1(jid)
    eq(it.argv, args, "argv round trip through STATUS")
    eq(it["name"], "n a%me", "name round trip")
    w = b.worker("w")
    j = w.take1()
    eq(j.argv, args, "argv round trip through TAKE")
    eq(j.multi.get("env"), ["K=v w", "E=%"], "env items")
    eq(j["cwd"], "/d ir", "cwd")
    eq(j["name"], "n a%me", "name")
    # Every byte of a reply's words is a legal word byte.
    for line in (it.line, j.line):
        check(all(ch not in line for ch in "\t\r\n\0"), "raw control byte "
              "in an item: %r" % line)


def test_worker_renamed_on_one_connection(ctx):
    """A connection that registers twice under different names, then goes
    away: the first name must not keep pointing at the dead connection."""
    b = ctx.broker
    a = b.client()
    a.request("WORKER a").expect_ok()
    a.request("WORKER b").expect_ok()
    a.request("PING").expect_ok()
    a.close()
    c = b.client()

    def gone():
        ws = {w["name"]: w for w in c.request("WORKERS").expect_items()}
        return all(w["connected"] == "0" for w in ws.values())
    wait_until(gone, 5, "no worker shown connected after the connection "
               "closed: %r" % c.request("WORKERS"))
    d = b.worker("a")
    d.request("PING").expect_ok()
    e = b.worker("b")
    e.request("PING").expect_ok()
    ws = {w["name"]: w for w in c.request("WORKERS").expect_items()}
    eq((ws["a"]["connected"], ws["b"]["connected"]), ("1", "1"), "connected")
    check(b.running(), "simqd died")


def test_line_too_long_is_answered_before_the_line_ends(ctx):
    c = ctx.broker.client()
    c.send(b"SUBMIT -- " + b"z" * (LINE_MAX - 10))      # 65536, no LF yet
    r = c.read_reply()
    r.expect_err("line-too-long")
    # The rest of the line, up to and including its LF, is discarded.
    c.send(b"z" * 100000)
    c.send(b"zzz\nPING\n")
    c.read_reply().expect_ok()
    eq(c.stats()["jobs"], "0", "nothing submitted")


def test_encoding_details(ctx):
    b = ctx.broker
    c = b.client()
    # Escapes in either case; replies use upper case.
    jid = c.request("SUBMIT name=a%2fb%2Fc -- x%7fy %c3%a9 %7E").one_id()
    it = c.status1(jid)
    eq(it["name"], "a/b/c", "lower-case escapes")
    eq(it.argv, ["x\x7fy", "\u00e9", "~"], "decoded argv")
    check("%7F" in it.line and "\x7f" not in it.line,
          "DEL must be written %%7F: %r" % it.line)
    check("%7f" not in it.line, "senders use upper case: %r" % it.line)
    # A literal UTF-8 byte sequence stays literal.
    jid = c.submit(["\u00e9t\u00e9"])
    check("\u00e9t\u00e9" in c.status1(jid).line, "UTF-8 as itself")


def test_worker_queues_and_pid(ctx):
    b = ctx.broker
    c = b.client()
    w = b.client()
    w.request("WORKER n1 host=h1 slots=4 pid=4211 queues=urgent,default") \
        .expect_ok("30000")
    for bad in ("WORKER n2 queues=a,,b", "WORKER n2 queues=bad/q",
                "WORKER n2 queues=%", "WORKER n2 queues=" +
                ",".join("q%d" % i for i in range(65))):
        c.request(bad).expect_err("bad-request")
    ws = {x["name"]: x for x in c.request("WORKERS").expect_items()}
    eq(sorted(ws), ["n1"], "workers")
    n1 = ws["n1"]
    eq((n1["host"], n1["slots"], n1["pid"], n1["queues"], n1["connected"]),
       ("h1", "4", "4211", "urgent,default", "1"), "worker item")


def test_untaken_task_status_and_cancel(ctx):
    b = ctx.broker
    c = b.client()
    aid = c.submit(["t", "{}"], array="1-4", q="a")
    it = c.status1("%d_3" % aid)
    eq((it.kind, it["id"], it["state"], it["attempts"], it.argv),
       ("job", "%d_3" % aid, "queued", "0", ["t", "3"]), "untaken task")
    other = c.submit(["o"])
    # A task no worker has taken is canceled alone, and not handed out.
    c.request("CANCEL %d_3 %d_9" % (aid, aid)).expect_err("not-found")
    eq(c.status1("%d_3" % aid)["state"], "queued", "nothing canceled")
    c.request("CANCEL %d_3" % aid).expect_ok("1")
    eq(c.status1("%d_3" % aid)["state"], "canceled", "untaken task canceled")
    eq(c.status1(other)["state"], "queued", "the other job")
    w = b.worker("w")
    jobs, _ = w.take(3, 0, "a")
    eq([j["id"] for j in jobs], ["%d_%d" % (aid, i) for i in (1, 2, 4)],
       "tasks 1, 2 and 4 taken")
    c.request("CANCEL %d_4" % aid).expect_ok("1")
    eq(c.status1("%d_4" % aid)["state"], "canceled", "taken task canceled")
    eq([(d["id"], d["reason"]) for d in w.heartbeat(*jobs)],
       [("%d_4" % aid, "canceled")], "drop")
    c.request("CANCEL %d" % aid).expect_ok("2")
    it = c.status1(aid)
    eq((it["state"], it["canceled"]), ("canceled", "4"), "array canceled")


def test_take_ahead_only_while_no_worker_is_idle(ctx):
    b = ctx.broker
    c = b.client()
    ids = [c.submit(["x", str(i)]) for i in range(6)]
    w = b.worker("busy", slots=1)
    for line in ("TAKE 2 0 default ahead=3", "TAKE 2 0 default ahead=x",
                 "TAKE 2 0 default behind=1", "TAKE 2 0 default ahead"):
        w.request(line).expect_err("bad-request")
    # Another worker waits idle (on another queue): jobs asked for ahead
    # are not given, only the one for the free slot.
    idle = b.worker("idle", slots=1)
    idle.send(Client.frame("TAKE 1 60000 other"))
    wait_until(lambda: int(c.stats().get("workers", 0)) >= 2, 5, "workers")
    time.sleep(0.2)
    got = w.request("TAKE 3 0 default ahead=2").expect_items()
    eq([j["id"] for j in got], [str(ids[0])], "no ahead while one is idle")
    got = w.request("TAKE 2 0 default ahead=2").expect_items()
    eq(got, [], "nothing ahead while one is idle")
    # The idle worker's TAKE ends: now ahead jobs go, up to
    # SIMQ_AHEAD_PER_SLOT (3) per slot beyond the slot itself.
    idle.request("PING").expect_items(0)
    idle.read_reply().expect_ok()
    got = w.request("TAKE 4 0 default ahead=4").expect_items()
    eq([j["id"] for j in got], [str(i) for i in ids[1:4]], "three ahead")
    got = w.request("TAKE 1 0 default ahead=1").expect_items()
    eq(got, [], "at most three ahead per slot")
    # One ended: room for one more.
    w.request("FINISH %d 1 exit=0 0" % ids[0], b"").expect_ok("done")
    got = w.request("TAKE 1 0 default ahead=1").expect_items()
    eq([j["id"] for j in got], [str(ids[4])], "one more once one ended")
