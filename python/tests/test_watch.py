"""Watching from Python, against a real simqd and simq-worker: follow()
(FOLLOW), tasks() (TASKS), explain() (EXPLAIN), submit_each_line()
(EACHLINE), stats() (STATS) and list() (LIST, paged).

Loaded by run.py, whose helpers (ctx, eq, check, raises, wait_until) the
tests use; run one with `/usr/bin/python3 python/tests/run.py -k NAME`.
"""

# The job of the follow tests: LINES lines, DT seconds apart, on stdout
# (and "e N" on stderr), with a pause in the middle to notice.
LINES_JOB = ('i=1; while [ $i -le %d ]; do echo "line $i of the job"; '
             'echo "e $i" >&2; sleep %s; i=$((i + 1)); done')


def lines_want(n):
    return b"".join(b"line %d of the job\n" % i for i in range(1, n + 1))


class Collector:
    """Follows a job in a thread, keeping each chunk with when it came."""

    def __init__(self, follow):
        self.follow = follow
        self.chunks = []
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            for ch in self.follow:
                self.chunks.append((time.monotonic(), ch))
        except BaseException as e:   # the test says what it was
            self.error = e

    def data(self):
        return b"".join(ch for _, ch in list(self.chunks))

    def join(self, timeout):
        self.t.join(timeout)
        check(not self.t.is_alive(), "the follower ended with the job")
        if self.error is not None:
            raise self.error


def contiguous(chunks, what):
    """Each chunk starts where the one before ended, nothing skipped."""
    at = 0
    for ch in chunks:
        eq((ch.offset, ch.skipped, ch.tail), (at, 0, False),
           "%s: chunk at %d" % (what, at))
        at += len(ch)


def test_follow_live(ctx):
    c = ctx.shared.client()
    out = os.path.join(ctx.tmp, "out-%A")
    j = c.submit(["sh", "-c", LINES_JOB % (8, "0.3")], output=out)
    col = Collector(j.follow())
    col.join(60)
    ended = time.monotonic()
    chunks = [ch for _, ch in col.chunks]
    eq(j.state, "done", "the job's state")
    eq(col.follow.state, "done", "the follower's last word of it")
    check(len(chunks) >= 3, "chunks as written, not one at the end: %r"
          % chunks)
    check(chunks[0].state == "running" and
          ended - col.chunks[0][0] >= 1.0,
          "the first chunk came while the job ran (%.2fs before its end)"
          % (ended - col.chunks[0][0]))
    data = col.data()
    eq(data, lines_want(8), "every byte, in order")
    with open(j.refresh().info["outpath"], "rb") as f:
        eq(data, f.read(), "the output equals the worker's output file")
    contiguous(chunks, "stdout")
    check(all(ch.stream == "stdout" and ch.attempt == 1 for ch in chunks),
          "stdout chunks of attempt 1")
    check(not any(ch.end for ch in chunks[:-1]), "no end before the last")
    # A finished job: its kept tail at once; from an offset: the rest.
    eq(b"".join(j.follow()), data, "a finished job's tail")
    eq(b"".join(j.follow(offset=20)), data[20:], "from offset 20")
    eq(b"".join(c.follow(j.id, offset=len(data))), b"", "from the end")
    # stderr, and both streams at once (each on its own connection).
    j2 = c.submit(["sh", "-c", LINES_JOB % (5, "0.2") + "; exit 3"])
    both = Collector(j2.follow(stream="both"))
    err = Collector(j2.follow(stream="stderr"))
    both.join(60)
    err.join(60)
    want_err = b"".join(b"e %d\n" % i for i in range(1, 6))
    eq(err.data(), want_err, "stderr")
    eq(b"".join(ch for _, ch in both.chunks if ch.stream == "stdout"),
       lines_want(5), "both: stdout")
    eq(b"".join(ch for _, ch in both.chunks if ch.stream == "stderr"),
       want_err, "both: stderr")
    eq(both.follow.state, "failed", "a failed job ends the follow too")
    # Bad inputs: clear exceptions.
    raises(simq.UnknownJob, list, c.follow(99999999))
    a = c.submit(["true"], array="1-2")
    e = raises(simq.BadState, list, c.follow(a))
    check("array" in str(e), "says it is an array: %s" % e)
    raises(ValueError, c.follow, j, stream="both!")
    raises(ValueError, c.follow, j, offset=-1)
    raises(simq.UnknownJob, c.follow, 99999999, offset=5)
    # A job that does not start in time.
    n = c.submit(["true"], queue="nobody%d" % os.getpid())
    t = time.monotonic()
    e = raises(TimeoutError, list, n.follow(start_timeout=0.5))
    check(time.monotonic() - t < 5, "start_timeout bounds the wait")
    check("did not start" in str(e), "says so: %s" % e)
    n.cancel()


test_follow_live.timeout = 120


def restart_broker(b):
    b.proc.stop(signal.SIGKILL)
    b.start()
    b.ctx.track(b.proc)


def test_follow_across_broker_restart(ctx):
    b = ctx.broker()
    w = b.worker("-j", "2")
    c = b.client()
    out = os.path.join(ctx.tmp, "out-%A")
    # The broker is killed while the job runs, and comes back while it
    # still runs: the follower goes on from its offset.
    j = c.submit(["sh", "-c", LINES_JOB % (60, "0.1")], output=out)
    col = Collector(j.follow())
    wait_until(lambda: len(col.chunks) >= 3, 30, "three chunks")
    check(col.chunks[-1][1].state == "running", "the job runs")
    restart_broker(b)
    back = time.monotonic()
    col.join(60)
    eq(j.wait(30), "done", "the job ended done")
    chunks = [ch for _, ch in col.chunks]
    after = [ch for t, ch in col.chunks if t > back]
    check(len(after) >= 3 and after[0].state == "running",
          "chunks after the restart, while the job ran: %r" % after[:3])
    print("# %d chunks before the restart, %d after" %
          (len(chunks) - len(after), len(after)))
    data = col.data()
    eq(data, lines_want(60), "no byte lost or repeated across the restart")
    with open(j.refresh().info["outpath"], "rb") as f:
        eq(data, f.read(), "the output equals the worker's output file")
    contiguous(chunks, "across the restart")
    # Killed while the job runs, back after it has ended: the rest comes
    # from its kept tail, cut where the follower was.
    stop = os.path.join(ctx.tmp, "go")
    j = c.submit(["sh", "-c", LINES_JOB % (6, "0.1") + "; while [ ! -e %s ]; "
                  "do sleep 0.05; done; echo last" % stop], output=out)
    col = Collector(j.follow())
    wait_until(lambda: b"line 6 " in col.data(), 30, "six lines")
    b.proc.stop(signal.SIGKILL)
    open(stop, "w").close()
    # The job ends while there is no broker (its worker holds the report).
    time.sleep(1)
    b.start()
    ctx.track(b.proc)
    col.join(60)
    eq(j.wait(30), "done", "the second job ended done")
    eq(col.data(), lines_want(6) + b"last\n", "the tail after the restart, "
       "less what was given")
    contiguous([ch for _, ch in col.chunks], "the tail after the restart")
    # No broker at all for longer than reconnect=: BrokerUnreachable.
    c2 = b.client(reconnect=0.5)
    j = c2.submit(["sleep", "8"])
    wait_until(lambda: j.state == "running", 30, "running")
    f = j.follow(wait=0.2)
    b.proc.stop(signal.SIGKILL)
    raises(simq.BrokerUnreachable, list, f)
    w.killpg()          # it would wait for its job and the broker


test_follow_across_broker_restart.timeout = 150


def test_tasks_failed_first_paged(ctx):
    c = ctx.shared.client()
    a = c.submit(["sh", "-c", "exit $(( {} % 7 == 0 ))"], array="1-100")
    eq(a.wait(120), "failed", "the array failed")
    failed = ["%s_%d" % (a.id, i) for i in range(7, 101, 7)]
    done = ["%s_%d" % (a.id, i) for i in range(1, 101) if i % 7]
    ts = a.tasks()
    eq([t.id for t in ts], failed + done, "failed first, then by index")
    eq([t.state for t in ts], ["failed"] * 14 + ["done"] * 86, "states")
    eq(ts[0].exit_code, 1, "a failed task's exit code, from its page")
    eq(ts[0].info["attempts"], 1, "attempts")
    # Small pages: the same tasks, in as many TASKS requests as pages.
    sent = []
    real = c._requests

    def counting(reqs, check=True):
        sent.extend(l for l, _ in reqs if l.startswith("TASKS"))
        return real(reqs, check)
    c._requests = counting
    eq([t.id for t in c.tasks(a.id, page_size=7)], failed + done,
       "page_size=7")
    check(len(sent) >= 2 + 100 // 7, "paged: %d requests" % len(sent))
    check(any("from=" in l for l in sent), "with the broker's cursor")
    del c._requests
    eq([t.id for t in a.tasks(state="failed", page_size=5)], failed,
       "state=failed")
    eq([t.id for t in a.tasks(state="done", page_size=9)], done,
       "state=done")
    eq(a.tasks(state="running"), [], "state=running: none")
    eq([t.id for t in a.tasks(failed_first=False)],
       ["%s_%d" % (a.id, i) for i in range(1, 101)], "by index")
    eq([t.id for t in a.tasks(limit=16)], failed + done[:2], "limit=16")
    it = c.iter_tasks(a, page_size=3)
    eq(next(it).id, failed[0], "iter_tasks: lazily")
    # Tasks no worker has taken: queued, from the array, paged too.
    q = "tq%d" % os.getpid()
    p = c.submit(["true"], queue=q, array="1-50")
    eq([(t.id, t.state) for t in p.tasks(page_size=7)],
       [("%s_%d" % (p.id, i), "queued") for i in range(1, 51)],
       "untaken tasks")
    # Canceled alone (a record each) and to the end (a count): failed()
    # finds both with TASKS state=canceled, in index order.
    eq(c.cancel("%s_[45-50]" % p.id), 6, "cancel to the end")
    eq(c.cancel("%s_[5-7]" % p.id), 3, "cancel three")
    want = [5, 6, 7, 45, 46, 47, 48, 49, 50]
    eq([t.id for t in p.failed()], ["%s_%d" % (p.id, i) for i in want],
       "failed(): the canceled tasks")
    eq([t.id for t in p.tasks(state="canceled", page_size=4)],
       ["%s_%d" % (p.id, i) for i in want], "state=canceled, paged")
    c.cancel(p)
    eq(len(p.failed()), 50, "all canceled")
    # Bad inputs.
    j = c.submit(["true"])
    e = raises(simq.BadState, c.tasks, j)
    check("not an array" in str(e), "says so: %s" % e)
    raises(simq.BadState, c.tasks, "%s_3" % a.id)
    e = raises(simq.UnknownJob, c.tasks, 99999999)
    check("99999999" in str(e), "names the id: %s" % e)
    raises(ValueError, a.tasks, state="broken")
    raises(ValueError, a.tasks, page_size=0)


test_tasks_failed_first_paged.timeout = 180


def cli_explain(ctx, addr, jid):
    """`simq explain --json ID`, to compare with."""
    r = subprocess.run([os.path.join(BIN, "simq"), "explain", "--json",
                        str(jid)], stdout=subprocess.PIPE,
                       env=dict(os.environ, SIMQ_SERVER=addr), check=True)
    import json
    return json.loads(r.stdout)


def test_explain(ctx):
    c = ctx.shared.client()
    # Waiting on a running dependency.
    first = c.submit(["sleep", "30"])
    wait_until(lambda: first.state == "running", 30, "running")
    dep = c.submit(["true"], after=first)
    e = dep.explain()
    eq((e.id, e.state), (dep.id, "waiting"), "id and state")
    r = e.reason("dependency")
    check(r is not None, "a dependency reason: %r" % e)
    eq((r["dep"], r["kind"], r["dep_state"]), (first.id, "ok", "running"),
       "the dependency's facts")
    check(first.id in r.text, "the sentence names it: %s" % r.text)
    check(str(e).startswith("%s is waiting.\n  - " % dep.id),
          "readable: %r" % str(e))
    cli = cli_explain(ctx, ctx.shared.addr, dep.id)
    eq([(x["code"], x["text"]) for x in e.as_dict()["reasons"]],
       [(x["code"], x["text"]) for x in cli["reasons"]], "as simq explain")
    ex = first.explain()
    check("running" in ex, "the running job: %r" % ex)
    check(isinstance(ex.reason("running")["since"], int), "a number")
    # A paused queue.
    q = "eq%d" % os.getpid()
    held = c.submit(["true"], queue=q, delay=3600)
    c.pause(q)
    j = c.submit(["true"], queue=q)
    e = j.explain()
    check("paused" in e, "paused: %r" % e)
    eq(e.reason("paused")["q"], q, "which queue")
    check(q in e.reason("paused").text, "its sentence: %s" % e)
    c.resume(q)
    # A resource request no worker could fit.
    big = c.submit(["true"], cpus=4096)
    e = c.explain(big)
    check("unfit" in e, "unfit: %r" % e)
    check("cpus" in e.reason("unfit")["unfit"], "what is short: %r"
          % e.reason("unfit").facts)
    # How a job ended.
    f = c.submit(["sh", "-c", "exit 4"])
    f.wait(30)
    e = f.explain()
    eq(e.state, "failed", "failed")
    eq(e.reason("failed")["exit"], 4, "its exit status")
    for x in (first, held, j, big):
        x.cancel()
    raises(simq.UnknownJob, c.explain, 99999999)
    raises(simq.UnknownJob, c.explain, "%s_5" % first.id)


def test_each_line(ctx):
    c = ctx.shared.client()
    path = os.path.join(ctx.tmp, "lines")
    lines = [b"case %d: a=%d b=%%%d" % (i, i, i * 3) for i in range(1, 1001)]
    lines[9] = b""                       # an empty line is a task too
    lines[19] = b"with\ttab and 'quotes' \"x\" $HOME"
    lines[29] = "caf\u00e9 \u2603".encode()
    with open(path, "wb") as f:
        f.write(b"\n".join(lines[:500]) + b"\n" +
                b"\r\n".join(lines[500:]) + b"\r\n")   # CR LF too
    before = c.stats()["next_id"]
    a = c.submit_each_line(
        ["sh", "-c", 'printf "%s|%s|%s" "$1" "$SIMQ_ENTRY" '
         '"$SIMQ_ARRAY_INDEX" >"$SIMQ_RESULT"', "sh", "<{}>"], path)
    check(a.is_array, "an array")
    eq(a.refresh().info["tasks"], 1000, "1,000 tasks")
    eq(a.wait(170), "done", "all done")
    res = a.results()
    want = [b"<%s>|%s|%d" % (l, l, i) for i, l in enumerate(lines, 1)]
    eq(res, want, "{} and SIMQ_ENTRY of each line, in order")
    eq(c.status("%s_30" % a.id)[0]["argv"][-1], "<%s>" % lines[29].decode(),
       "a task's status: its line in place of {}")
    check(c.stats()["next_id"] == before + 1, "one id: one array")
    # Lines as a list, as bytes; the options of submit().
    b = c.submit_each_line(["sh", "-c", 'printf "%s" "x{}y$FOO" '
                            '>"$SIMQ_RESULT"'], ["1", "two words", ""],
                           env={"FOO": "!"}, name="each")
    b.wait(60)
    eq(b.results(), [b"x1y!", b"xtwo wordsy!", b"xy!"], "from a list")
    eq(b.info["name"], "each", "name=")
    c3 = c.submit_each_line(["echo", "{}"], b"p\nq")
    c3.wait(60)
    eq([t.output() for t in c3.tasks(failed_first=False)],
       [b"p\n", b"q\n"], "bytes, the last line without a newline")
    # Bad inputs change nothing.
    empty = os.path.join(ctx.tmp, "empty")
    open(empty, "w").close()
    before = c.stats()["next_id"]
    e = raises(ValueError, c.submit_each_line, ["echo", "{}"], empty)
    check("no lines" in str(e) and empty in str(e), "says so: %s" % e)
    raises(ValueError, c.submit_each_line, ["echo", "{}"], [])
    raises(FileNotFoundError, c.submit_each_line, ["echo"],
           os.path.join(ctx.tmp, "nope"))
    e = raises(ValueError, c.submit_each_line, ["echo"], ["a", "b\0c"])
    check("line 2" in str(e) and "NUL" in str(e), "names the line: %s" % e)
    e = raises(ValueError, c.submit_each_line, ["echo"], ["x" * 4097])
    check("4096" in str(e), "the longest line: %s" % e)
    raises(ValueError, c.submit_each_line, ["echo"], ["a\nb"])
    raises(ValueError, c.submit_each_line, [], ["a"])
    raises(TypeError, c.submit_each_line, "echo {}", ["a"])
    raises(TypeError, c.submit_each_line, ["echo"], ["a"], array="1-2")
    raises(simq.UnknownJob, c.submit_each_line, ["echo"], ["a"],
           after=99999999)
    eq(c.stats()["next_id"], before, "nothing submitted")


test_each_line.timeout = 240


def test_stats(ctx):
    c = ctx.shared.client()
    s = c.stats()
    check(isinstance(s["uptime"], int) and s["workers"] >= 1,
          "numbers: %r" % s)
    check(isinstance(s["fsync"], str), "words stay words")


def test_list_pages(ctx):
    c = ctx.shared.client()
    q = "lq%d" % os.getpid()
    first = c.submit(["true"], queue=q, delay=3600)
    c.pause(q)
    js = [first] + c.submit_many([["true"]] * 24, queue=q)
    ids = [j.id for j in js]
    c.LIST_PAGE = 10                       # three pages
    eq([d["id"] for d in c.list(queue=q)], ids, "every job, in id order")
    eq([d["id"] for d in c.list(queue=q, newest_first=True)], ids[::-1],
       "the newest first")
    eq([d["id"] for d in c.list(queue=q, limit=12)], ids[:12], "limit=12")
    eq([d["id"] for d in c.list(queue=q, limit=12, newest_first=True)],
       ids[::-1][:12], "the newest 12")
    eq([d["id"] for d in c.list(queue=q, state="waiting")], [first.id],
       "state=waiting")
    named = c.submit_many([["true"]] * 3, queue=q, name="sweep-a") + \
        c.submit_many([["true"]] * 2, queue=q, name="sweep-b")
    eq([d["id"] for d in c.list(queue=q, name="sweep-b")],
       [j.id for j in named[3:]], "name=")
    eq([d["id"] for d in c.list(queue=q, name="sweep-*", limit=4,
                                newest_first=True)],
       [j.id for j in named[::-1][:4]], "name=PREFIX*, over pages")
    time.sleep(1.2)
    late = c.submit(["true"], queue=q)
    eq([d["id"] for d in c.list(queue=q, since=1)], [late.id], "since=1")
    eq([d["id"] for d in c.list(queue=q, since="1s", newest_first=True)],
       [late.id], "since, the newest first")
    eq(len(c.list(queue=q, since="1h")), 31, "since=1h")
    c.resume(q)
    c.cancel(queue=q)


def test_watch_with_token(ctx):
    tf = os.path.join(ctx.tmp, "token")
    with open(tf, "w") as f:
        f.write("right-token\n")
    b = ctx.broker(["--token-file", tf])
    b.worker("-j", "1", "--token-file", tf)
    c = b.client(token="right-token")
    j = c.submit(["sh", "-c", LINES_JOB % (3, "0.1")])
    eq(b"".join(j.follow()), lines_want(3), "follow with the token")
    eq(j.explain().state, "done", "explain with the token")
    e = raises(simq.TokenRefused, list, b.client(token="wrong").follow(j))
    check("refused the token" in str(e), "a wrong token: %s" % e)


def test_wait_many(ctx):
    c = ctx.shared.client()
    js = [c.submit(["sleep", "0.%d" % i]) for i in (1, 3, 5)]
    a = c.submit(["sh", "-c", "exit $(( {} == 2 ))"], array="1-4")
    got = c.wait(*js, a.id, "%s_3" % a.id)
    eq([j.id for j in got], [j.id for j in js] + [a.id, "%s_3" % a.id],
       "the jobs, in order")
    eq([j.state for j in got], ["done", "done", "done", "failed", "done"],
       "their states")
    check(got[3] is not a and got[3].is_array, "the array's Job")
    s = c.submit(["sleep", "30"])
    t = time.monotonic()
    e = raises(TimeoutError, c.wait, js[0], s, timeout=0.5)
    check(time.monotonic() - t < 5, "timeout= bounds it")
    check(s.id in str(e), "names the job left: %s" % e)
    raises(simq.UnknownJob, c.wait, js[0], 99999999)
    s.cancel()
    eq(c.wait(s)[0].state, "canceled", "canceled")


def fake_broker(answer):
    """A broker on a socket of its own: answer(words) gives the reply's
    bytes, or None to close the connection.  Returns (address, the
    request lines seen)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    seen = []

    def serve():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            f = s.makefile("rb")
            for line in f:
                w = line.decode().split()
                seen.append(" ".join(w))
                r = b"OK simq 1\r\n" if w[0] == "HELLO" else answer(w)
                if r is None:
                    break
                s.sendall(r)
            f.close()
            s.close()
    threading.Thread(target=serve, daemon=True).start()
    return "127.0.0.1:%d" % srv.getsockname()[1], seen, srv


def test_follow_resumes_from_its_offset(ctx):
    """A connection lost while a FOLLOW is held: the next one, on a new
    connection, asks from the offset and attempt reached."""
    n = [0]

    def answer(w):
        n[0] += 1
        if n[0] == 1:
            return (b"ITEMS 1\r\nchunk id=5 attempt=2 state=running off=0 "
                    b"len=6 data=hello%0A\r\n")
        if n[0] == 2:
            return None                     # the broker goes away
        return (b"ITEMS 1\r\nchunk id=5 attempt=2 state=done off=6 len=6 "
                b"end=1 data=world%0A\r\n")
    addr, seen, srv = fake_broker(answer)
    c = simq.Client(addr, reconnect=5)
    chunks = list(c.follow(5))
    eq(b"".join(chunks), b"hello\nworld\n", "the output")
    follows = [l for l in seen if l.startswith("FOLLOW")]
    eq(len(follows), 3, "three FOLLOWs: %r" % follows)
    check("from=" not in follows[0], "the first from what there is")
    check("from=6 attempt=2" in follows[1] and "from=6 attempt=2" in
          follows[2], "then from the offset reached: %r" % follows)
    eq(seen.count("HELLO 1"), 2, "a new connection for the third")
    eq(chunks[-1].state, "done", "the job's state")
    srv.close()
    # A broker that closes every FOLLOW: given up after reconnect=.
    addr, seen, srv = fake_broker(lambda w: None)
    c = simq.Client(addr, reconnect=1)
    t = time.monotonic()
    e = raises(simq.ConnectionLost, list, c.follow(5))
    check(time.monotonic() - t < 10, "given up in time")
    check("following job 5" in str(e), "says so: %s" % e)
    check(len([l for l in seen if l.startswith("FOLLOW")]) >= 3,
          "asked again meanwhile")
    srv.close()


def test_fetch_all(ctx):
    c = ctx.shared.client()
    j = c.submit(["sh", "-c", "mkdir -p out; echo one >out/a.csv; "
                  "printf 'x%.0s' $(seq 3000) >big.bin; chmod 755 big.bin; "
                  "echo skip >no.txt"], files={"in.dat": b"data"},
                 collect=["out/*.csv", "*.bin"])
    eq(j.wait(60), "done", "the job")
    d = os.path.join(ctx.tmp, "got")
    paths = j.fetch_all(d)
    eq(sorted(os.path.relpath(p, d) for p in paths),
       ["big.bin", os.path.join("out", "a.csv")], "the collected files")
    with open(os.path.join(d, "out", "a.csv"), "rb") as f:
        eq(f.read(), b"one\n", "a.csv")
    with open(os.path.join(d, "big.bin"), "rb") as f:
        eq(f.read(), b"x" * 3000, "big.bin")
    check(os.stat(os.path.join(d, "big.bin")).st_mode & 0o111,
          "its mode")
    eq(sorted(os.listdir(d)), ["big.bin", "out"], "no temporary file left")
    # An array: each task under DIR/INDEX/.
    a = c.submit(["sh", "-c", "echo {} >r.txt"], array="1-3",
                 files={"in.dat": b"data"}, collect=["r.txt"])
    eq(a.wait(60), "done", "the array")
    paths = a.fetch_all(d)
    eq(sorted(os.path.relpath(p, d) for p in paths),
       [os.path.join(str(i), "r.txt") for i in (1, 2, 3)], "per task")
    with open(os.path.join(d, "2", "r.txt"), "rb") as f:
        eq(f.read(), b"2\n", "task 2's file")
    # Not ended: BadState; nothing collected: no paths.
    s = c.submit(["sleep", "30"], files={"in.dat": b"data"},
                 collect=["*.out"])
    raises(simq.BadState, s.fetch_all, d)
    s.cancel()
    t = c.submit(["true"])
    eq(t.wait(30), "done", "a job without files")
    eq(t.fetch_all(d), [], "nothing collected")
