"""
What the three programs share through lib/: they read a token file the
same way, understand the same server addresses, and write the same JSON.
Each test here once showed two programs disagreeing.
"""

import json
import os
import signal

from clientlib import Simq
from harness import check, enc, eq, free_port, run_simqd
from test_http import get
from workerlib import WorkerProc, run_simq_worker, wait_job


def test_token_file_ending_in_a_tab(ctx):
    # Trailing whitespace, a tab included, is not part of the token, for
    # the broker, simq and simq-worker alike.
    tf = ctx.newfile("token")
    with open(tf, "w") as f:
        f.write("s3cret\t")
    b = ctx.start_broker(["--token-file", tf])
    s = Simq(ctx, b)
    jid = s.submit("--token-file", tf, "true")
    w = WorkerProc(ctx, b, args=["--token-file", tf])
    r = s("wait", "-t", "%ds" % (10 * ctx.slow), "--token-file", tf, jid)
    eq(r.rc, 0, "the job ran: simq-worker was let in with the token file "
       "(%r; worker log:\n%s)" % (r, w.log()[-600:]))
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(), 0, "worker exit")
    b.client().request("HELLO 1 s3cret").expect_ok("simq", "1")


def test_long_token_file_is_refused_by_all(ctx):
    # A token file longer than a token may be is refused, never cut.
    tf = ctx.newfile("token")
    with open(tf, "w") as f:
        f.write("x" * 5000 + "\n")
    rc, out = run_simqd(ctx, ["-d", ctx.mkdtemp("data"), "-p",
                              str(free_port()), "--token-file", tf])
    check(rc != 0, "simqd started with a too long token file")
    check("token file" in out and "long" in out, out[-300:])
    b = ctx.start_broker()
    s = Simq(ctx, b)
    r = s("status", "--token-file", tf)
    eq(r.rc, 2, "simq with a too long token file: %r" % r)
    check("token file" in r.err and "long" in r.err, r.err)
    rc, out, err = run_simq_worker(ctx, ["-s", "127.0.0.1:%d" % b.port,
                                         "-w", ctx.mkdtemp("w"),
                                         "--token-file", tf])
    eq(rc, 2, "simq-worker with a too long token file")
    check("token file" in err and "long" in err, err[-300:])


def test_server_with_only_a_port(ctx):
    # SIMQ_SERVER=:PORT (and -s :PORT) means the default host, for simq
    # and for simq-worker.
    b = ctx.start_broker()
    c = b.client()
    s = Simq(ctx, None, server=":%d" % b.port)
    jid = s.submit("true")
    w = WorkerProc(ctx, None, env={"SIMQ_SERVER": ":%d" % b.port})
    eq(wait_job(ctx, c, jid)["state"], "done",
       "simq-worker with SIMQ_SERVER=:PORT (log:\n%s)" % w.log()[-600:])
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(), 0, "worker exit")
    jid = s.submit("true")
    w = WorkerProc(ctx, None, server=":%d" % b.port)
    eq(wait_job(ctx, c, jid)["state"], "done", "simq-worker -s :PORT")
    # What neither accepts.
    for bad in ("[]:%d" % b.port, "host:", "host:0", "host:99999", "[::1"):
        r = Simq(ctx, None, server=bad)("status")
        eq(r.rc, 2, "simq with SIMQ_SERVER=%s: %r" % (bad, r))
        rc, out, err = run_simq_worker(ctx, ["-s", bad, "-w",
                                             ctx.mkdtemp("w")])
        eq(rc, 2, "simq-worker -s %s: %s" % (bad, err[-200:]))


def test_http_job_json_with_bytes_that_are_not_utf8(ctx):
    # /api/jobs/ID and `simq status --json` write one JSON: a name or a
    # reason that is not UTF-8 becomes U+FFFD in both, and the document
    # stays valid.
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    name = b"a\xffb\x01\"\\\xe2\x80\xa8"
    jid = c.request("SUBMIT name=%s -- true" % enc(name)).one_id()
    w = b.client()
    w.request("WORKER w1").expect_ok()
    w.request("TAKE 1 0 default").expect_items(1)
    w.request("FAIL %d 1 %s" % (jid, enc(b"bad \xc3( byte"))).expect_ok()
    code, ctype, body = get(hp, "/api/jobs/%d" % jid)
    eq((code, ctype), (200, "application/json"), "/api/jobs/%d" % jid)
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError as e:
        raise AssertionError("/api/jobs/%d is not valid JSON in UTF-8 "
                             "(%s): %r" % (jid, e, body))
    want_name = "a\ufffdb\x01\"\\\u2028"
    eq(doc["name"], want_name, "name in /api/jobs")
    eq(doc["reason"], "bad \ufffd( byte", "reason in /api/jobs")
    st = Simq(ctx, b)("status", "--json", str(jid))
    one = st.json()["jobs"][0]
    eq((one["name"], one["reason"]), (doc["name"], doc["reason"]),
       "simq status --json and /api/jobs agree")
    # The status document too.
    code, _, body = get(hp, "/api/status")
    json.loads(body.decode("utf-8"))
