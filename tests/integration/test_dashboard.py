"""
The dashboard (simqd --http PORT): its pages and API, its actions and
what guards them (the token, the login cookie, the CSRF checks), and the
bad input it refuses with nothing changed.
"""

import http.client
import json
import re
import socket
import time
import urllib.parse

from harness import Worker, check, eq, free_port


def req(port, method, path, body=None, headers=None):
    """One request; returns (status, headers dict, body bytes)."""
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    hd = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        hd.setdefault("Content-Type", "application/x-www-form-urlencoded")
    h.request(method, path, body=body, headers=hd)
    r = h.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    h.close()
    return out


def csrf_of(page):
    m = re.search(rb'name="csrf" value="([0-9a-f]+)"', page)
    check(m is not None, "no CSRF token in the page: %r" % page[:300])
    return m.group(1).decode()


def sweep(b):
    """An array of 3 tasks, one failed with a reason and stderr, one done,
    one still queued; returns the client."""
    c = b.client()
    eq(c.request("SUBMIT array=0-2 name=sweep -- ./sim {}").one_id(), 1, "id")
    w = Worker(b.port, "w1", host="n1")
    jobs, _ = w.take(2)
    w.finish_job(jobs[0], exit=3, err=b"boom: bad input\n",
                 out=b"step 1\nstep 2\n").expect_ok()
    w.finish_job(jobs[1], exit=0, res=b"42").expect_ok()
    return c, w


def test_dashboard_pages_and_api(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c, w = sweep(b)
    code, hd, page = req(hp, "GET", "/")
    eq(code, 200, "/")
    check(b'href="/jobs/1"' in page and b"1 failed" in page, page[:2000])
    check(b'class="chart"' in page, "the chart")
    code, _, page = req(hp, "GET", "/jobs/1")
    eq(code, 200, "/jobs/1")
    # Failed first: task 1_0 is the first row.
    rows = re.findall(rb'<tr><td><a href="/jobs/(1_\d+)"', page)
    eq(rows[0], b"1_0", "failed task first")
    code, _, page = req(hp, "GET", "/jobs/1_0")
    eq(code, 200, "/jobs/1_0")
    check(b"boom: bad input" in page and b"step 2" in page, page[-1500:])
    check(b"exit 3" in page or b"<td>3</td>" in page, "exit status")
    # The API: the fields of simq status --json, lists, tasks.
    code, _, body = req(hp, "GET", "/api/jobs/1_0")
    doc = json.loads(body)
    for k in ("id", "kind", "state", "queue", "priority", "attempts",
              "retries", "exit_code", "signal", "timed_out", "name",
              "submitted", "started", "finished", "runtime", "worker",
              "host", "reason", "after", "due", "output_path", "max_rss",
              "cpu_time", "array", "index", "command"):
        check(k in doc, "field %s in %r" % (k, doc))
    eq((doc["state"], doc["exit_code"], doc["host"], doc["command"]),
       ("failed", 3, "n1", ["./sim", "0"]), "task 1_0")
    doc = json.loads(req(hp, "GET", "/api/jobs/1_2")[2])
    eq((doc["state"], doc["command"]), ("queued", ["./sim", "2"]),
       "untaken task")
    lst = json.loads(req(hp, "GET", "/api/jobs?state=queued")[2])
    eq(json.loads(req(hp, "GET", "/api/jobs?state=running")[2])["jobs"], [],
       "no job running")
    st = json.loads(req(hp, "GET", "/api/status")[2])
    eq((st["minutes"][-1]["done"], st["minutes"][-1]["failed"]), (1, 1),
       "this minute's counts")
    eq(lst, {"jobs": [json.loads(req(hp, "GET", "/api/jobs/1")[2])],
             "page": 0, "more": False}, "job list")
    tasks = json.loads(req(hp, "GET", "/api/jobs/1/tasks")[2])["tasks"]
    eq([t["id"] for t in tasks], ["1_0", "1_1", "1_2"], "tasks, failed first")
    tasks = json.loads(req(hp, "GET", "/api/jobs/1/tasks?state=queued")[2])
    eq([t["id"] for t in tasks["tasks"]], ["1_2"], "queued tasks")
    # Assets are inside simqd.
    code, hd, js = req(hp, "GET", "/static/dash.js")
    eq((code, hd["content-type"].split(";")[0]), (200, "text/javascript"),
       "dash.js")
    check(b"setInterval" in js, "the refresh")


def test_dashboard_bad_input(ctx):
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c, w = sweep(b)
    for path in ("/api/jobs/77", "/api/jobs/1_9", "/jobs/77", "/jobs/x",
                 "/api/jobs/1_0/tasks", "/api/jobs/1/nothing"):
        eq(req(hp, "GET", path)[0], 404, path)
    for path in ("/?state=sleeping", "/?page=x", "/api/jobs?queue=a%20b",
                 "/api/jobs?state=%zz"):
        eq(req(hp, "GET", path)[0], 400, path)
    eq(req(hp, "GET", "/?queue=" + "a" * 2000)[0], 414, "long query")
    eq(req(hp, "GET", "/" + "a" * 600)[0], 414, "long path")
    csrf = csrf_of(req(hp, "GET", "/jobs/1_0")[2])
    # No token: a name in Host may be DNS rebinding; refused.
    eq(req(hp, "GET", "/", headers={"Host": "evil.example:%d" % hp})[0],
       421, "rebound name")
    eq(req(hp, "GET", "/", headers={"Host": "localhost:%d" % hp})[0], 200,
       "localhost")
    # Forged cross-site POSTs, even with the right CSRF token.
    form = {"op": "retry", "id": "1_0", "csrf": csrf}
    for hd in ({"Origin": "http://evil.example"},
               {"Sec-Fetch-Site": "cross-site"}):
        code, _, body = req(hp, "POST", "/action", form, hd)
        eq(code, 403, "forged %r" % hd)
    eq(req(hp, "POST", "/action", {"op": "retry", "id": "1_0"})[0], 403,
       "no CSRF token")
    eq(req(hp, "POST", "/action", dict(form, csrf="0" * 32))[0], 403,
       "wrong CSRF token")
    eq(req(hp, "GET", "/action?op=retry&id=1_0")[0], 404, "a GET acts not")
    eq(req(hp, "POST", "/action", "x" * 5000, {
        "Content-Type": "application/x-www-form-urlencoded"})[0], 413,
       "oversized body")
    eq(req(hp, "POST", "/action", dict(form, id="99"))[0], 404, "unknown id")
    eq(c.status1("1_0")["state"], "failed", "nothing changed")
    # A body announced and not sent: the connection's deadline ends it.
    s = socket.create_connection(("127.0.0.1", hp))
    s.sendall(b"POST /action HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
              b"\r\nop=")
    s.settimeout(20)
    check(s.recv(100).startswith(b"HTTP/1.1 408"), "half a body")
    s.close()
    # The right form acts, and its answer says so.
    code, _, body = req(hp, "POST", "/action", form,
                        {"Origin": "http://127.0.0.1:%d" % hp,
                         "Accept": "application/json"})
    eq(code, 200, body)
    eq(json.loads(body)["message"], "retry 1_0: 1 changed", "answer")
    eq(c.status1("1_0")["state"], "queued", "retried")
    code, hd, _ = req(hp, "POST", "/action", {"op": "pause",
                                              "queue": "default",
                                              "csrf": csrf,
                                              "back": "/"})
    eq((code, hd.get("location")), (303, "/"), "pause")
    check(c.request("QUEUES").items[0].get("paused") is not None or
          "(paused)" in req(hp, "GET", "/")[2].decode(), "paused")


def test_dashboard_token_and_login(ctx):
    tok = ctx.newfile("token")
    open(tok, "w").write("s3cret\n")
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp), "--token-file", tok])
    c = b.client()
    c.request("HELLO 1 s3cret").expect_ok()
    eq(c.request("SUBMIT -- false").one_id(), 1, "id")
    # No token: the pages offer the login form, the API says 401.
    code, _, page = req(hp, "GET", "/")
    check(code == 401 and b'action="/login"' in page, "login form")
    eq(req(hp, "GET", "/api/jobs/1")[0], 401, "API without the token")
    eq(req(hp, "POST", "/action", {"op": "cancel", "id": "1"})[0], 401,
       "an action without a token")
    eq(req(hp, "POST", "/action", {"op": "cancel", "id": "1"},
           {"Authorization": "Bearer wrong"})[0], 401, "wrong Bearer")
    code, _, page = req(hp, "POST", "/login", {"token": "nope"})
    check(code == 401 and b"not the token" in page, "wrong login")
    # Wrong tokens are slowed down, the login form's as a header's.
    t0 = time.monotonic()
    eq(req(hp, "POST", "/login", {"token": "nope2"})[0], 401, "wrong login")
    check(time.monotonic() - t0 >= 0.15, "a wrong login answered at once")
    eq(c.status1("1")["state"], "queued", "nothing changed")
    # The right token: a cookie, HttpOnly and SameSite=Strict.
    code, hd, _ = req(hp, "POST", "/login", {"token": "s3cret"})
    eq(code, 303, "login")
    cookie = hd["set-cookie"]
    check("HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie)
    check("Secure" not in cookie, "no Secure on plain HTTP")
    sess = cookie.split(";")[0]
    code, _, page = req(hp, "GET", "/jobs/1", headers={"Cookie": sess})
    eq(code, 200, "with the cookie")
    csrf = csrf_of(page)
    eq(req(hp, "POST", "/action", {"op": "cancel", "id": "1"},
           {"Cookie": sess})[0], 403, "cookie without CSRF token")
    eq(req(hp, "POST", "/action", {"op": "cancel", "id": "1", "csrf": csrf},
           {"Cookie": "simq_session=" + "0" * 32})[0], 401, "stale cookie")
    code, hd, _ = req(hp, "POST", "/action",
                      {"op": "cancel", "id": "1", "csrf": csrf,
                       "back": "/jobs/1"}, {"Cookie": sess})
    eq((code, hd.get("location")), (303, "/jobs/1"), "cancel")
    eq(c.status1("1")["state"], "canceled", "canceled")
    # Bearer for scripts, no CSRF token needed.
    code, _, body = req(hp, "POST", "/action", {"op": "retry", "id": "1"},
                        {"Authorization": "Bearer s3cret",
                         "Accept": "application/json"})
    eq(code, 200, body)
    eq(c.status1("1")["state"], "queued", "retried")
    code, hd, _ = req(hp, "POST", "/login", {"token": "s3cret"},
                      {"X-Forwarded-Proto": "https"})
    check("; Secure" in hd["set-cookie"], "Secure behind TLS")
    check(b.running(), "simqd runs")


def test_dashboard_million_task_array(ctx):
    # A million tasks are one record until taken: no page walks them.
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    eq(c.request("SUBMIT array=0-999999 -- ./sim {}").one_id(), 1, "id")
    w = Worker(b.port, "w1")
    jobs, _ = w.take(3)
    w.finish_job(jobs[1], exit=1).expect_ok()
    t0 = time.monotonic()
    for path in ("/", "/jobs/1", "/api/jobs/1/tasks"):
        eq(req(hp, "GET", path)[0], 200, path)
    doc = json.loads(req(hp, "GET",
                         "/api/jobs/1/tasks?state=queued&page=19999")[2])
    # 999997 queued (3 taken): the last page holds 47.
    ids = [t["id"] for t in doc["tasks"]]
    eq((ids[0], ids[-1], len(ids), doc["more"]),
       ("1_999953", "1_999999", 47, False), "the last page of queued")
    doc = json.loads(req(hp, "GET", "/api/jobs/1/tasks?page=19999")[2])
    eq([t["id"] for t in doc["tasks"]][:2], ["1_999950", "1_999951"],
       "the last page, failed first before it")
    doc = json.loads(req(hp, "GET", "/api/jobs/1/tasks")[2])
    eq([t["id"] for t in doc["tasks"]][:4], ["1_1", "1_0", "1_2", "1_3"],
       "failed first")
    check(time.monotonic() - t0 < 5 * ctx.slow, "pages took %.1fs" %
          (time.monotonic() - t0))


def test_dashboard_resources_only_when_asked(ctx):
    """A job page names the resources a job asked for, and only those: a
    plain job (one CPU, the default) has no resources row at all."""
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp)])
    c = b.client()
    plain = c.request("SUBMIT -- true").one_id()
    gpu = c.request("SUBMIT gpus=2 -- true").one_id()
    big = c.request("SUBMIT cpus=4 mem=%d -- true" % (3 << 20)).one_id()
    arr = c.request("SUBMIT array=1-3 -- true").one_id()

    def row(jid):
        code, _, page = req(hp, "GET", "/jobs/%s" % jid)
        eq(code, 200, "/jobs/%s" % jid)
        m = re.findall(rb"<tr><th>resources</th><td>([^<]*)</td>", page)
        return m[0].decode() if m else None

    eq(row(plain), None, "a plain job's resources")
    eq(row(arr), None, "a plain array's resources")
    eq(row("%d_2" % arr), None, "its task's resources")
    eq(row(gpu), "cpus 1, gpus 2", "a GPU job's resources")
    eq(row(big), "cpus 4, mem 3.0 MiB", "a big job's resources")
