"""
The read-only HTTP view (simqd --http PORT): the status page, the JSON
status and job documents, the Prometheus metrics, the token, and what it
refuses.
"""

import json
import urllib.error
import urllib.request

from harness import check, eq, free_port, run_simqd


def get(port, path, token=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_http_views(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    eq(c.request("SUBMIT q=sims -- ./sim 1").one_id(), 1, "id")
    eq(c.request("SUBMIT array=1-5 name=a%3Cb -- x {}").one_id(), 2, "id")
    c.request("SUBMIT q=q2 -- y").expect_ok()
    c.request("PAUSE q2").expect_ok()
    w = b.client()
    w.request("WORKER w1 host=n1 slots=2").expect_ok()
    w.request("TAKE 1 0 sims").expect_items(1)

    code, ctype, body = get(hp, "/api/status")
    eq((code, ctype), (200, "application/json"), "/api/status")
    st = json.loads(body)
    eq(st["queues"]["sims"]["running"], 1, "sims running")
    eq(st["queues"]["default"]["queued"], 5, "default queued")
    eq(st["paused"], ["q2"], "paused queues")
    eq(st["workers"], [{"name": "w1", "host": "n1", "slots": 2,
                        "connected": True, "running": ["1"]}], "workers")

    code, _, body = get(hp, "/api/jobs/1")
    job = json.loads(body)
    eq((code, job["id"], job["state"], job["attempts"], job["exit_code"],
        job["queue"], job["worker"]),
       (200, "1", "running", 1, None, "sims", "w1"), "job 1")
    code, _, body = get(hp, "/api/jobs/2")
    arr = json.loads(body)
    eq((arr["kind"], arr["tasks"], arr["counts"]["queued"], arr["name"]),
       ("array", 5, 5, "a<b"), "array 2")

    code, ctype, body = get(hp, "/metrics")
    eq(code, 200, "/metrics")
    text = body.decode()
    check('simq_jobs{queue="sims",state="running"} 1' in text, text)
    check("simq_submitted_total 3" in text, text)
    check('simq_queue_paused{queue="q2"} 1' in text, text)

    code, ctype, body = get(hp, "/")
    eq((code, ctype), (200, "text/html; charset=utf-8"), "/")
    check(b"<td>sims</td>" in body and b"w1" in body, body[:200])

    for path in ("/api/jobs/99", "/api/jobs/x", "/nothing"):
        eq(get(hp, path)[0], 404, path)
    eq(get(hp, "/api/status", method="PUT")[0], 405, "PUT")
    # A POST without the page's CSRF token is refused.
    eq(get(hp, "/action", method="POST")[0], 403, "POST, no CSRF token")
    # The view changed nothing.
    eq(c.request("STATUS 1").items[0]["state"], "running", "job 1")


def test_http_needs_the_token(ctx):
    tok = ctx.newfile("token")
    open(tok, "w").write("s3cret\n")
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp), "--token-file", tok])
    eq(get(hp, "/api/status")[0], 401, "no token")
    eq(get(hp, "/api/status", token="wrong")[0], 401, "wrong token")
    code, _, body = get(hp, "/api/status", token="s3cret")
    eq(code, 200, "right token")
    eq(json.loads(body)["workers"], [], "workers")
    check(b.running(), "simqd still runs")


def test_http_port_in_use(ctx):
    hp = free_port()
    ctx.start_broker(["--http", str(hp)])
    # A second broker cannot serve the same HTTP port: it says so and
    # exits, rather than running without its view.
    rc, out = run_simqd(ctx, ["-d", ctx.mkdtemp("other"), "-p",
                              str(free_port()), "--http", str(hp)])
    eq(rc, 1, "exit status")
    check("cannot serve HTTP on 127.0.0.1 port %d" % hp in out, out)
    for bad in ("0", "65536", "x", "-1"):
        rc, out = run_simqd(ctx, ["--http", bad])
        eq(rc, 2, "--http %s" % bad)
        check("bad value '%s' for --http" % bad in out, out)
