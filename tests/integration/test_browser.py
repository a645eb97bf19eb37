"""
The dashboard in a real headless browser (chromium + chromium-driver +
python3-selenium, from `make deps`): log in with the token, see a failed
task's reason, follow it to its output's tail, press retry, and see the
state change without a reload.
"""

import harness
from harness import check, eq, free_port
from browserlib import Browser, have_browser, sweep


def js(d, script):
    return d.execute_script(script)


def text(d, eid):
    return js(d, "var e = document.getElementById('%s');"
                 "return e ? e.textContent : null;" % eid)


def state(d):
    # Read in one step: the refresh may swap the element out between a
    # find and a read.
    return d.execute_script(
        "var e = document.querySelector('h1 span');"
        "return e ? e.textContent : null;")


def test_browser_login_failed_task_retry(ctx):
    why = have_browser()
    if why is not None:
        raise harness.Skip(why)
    tok = ctx.newfile("token")
    open(tok, "w").write("s3cret\n")
    hp = free_port()
    b = ctx.start_broker(["--http", str(hp), "--token-file", tok])
    c, w, aid = sweep(b.port, "s3cret")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import TimeoutException
    br = Browser()
    try:
        d = br.d
        base = "http://127.0.0.1:%d" % hp
        d.get(base + "/")
        # No cookie yet: the login form.  A wrong token first.
        d.find_element(By.ID, "token").send_keys("wrong")
        d.find_element(By.ID, "login").click()
        # The refusal is a new page, answered late on purpose (failed
        # logins are slowed down): wait for it rather than read the page
        # the click left behind.
        try:
            WebDriverWait(d, 15 * ctx.slow).until(
                lambda d: "not the token" in d.page_source)
            refused = True
        except TimeoutException:
            refused = False
        check(refused, "wrong token refused")
        d.find_element(By.ID, "token").send_keys("s3cret")
        d.find_element(By.ID, "login").click()
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: d.find_elements(By.LINK_TEXT, str(aid)))
        check("2 failed" in d.page_source, "the array shows its failures")
        # The page's #live part is swapped every few seconds: each read
        # and click below is one script, so none can hold a stale element.
        d.get(js(d, "return document.querySelector('a[href=\"/jobs/%d\"]')"
                    ".href;" % aid))
        # The array's page: the failed tasks first, with their reason.
        rows = js(d, "return Array.from(document.querySelectorAll("
                     "'#live table tr')).filter(r => r.querySelector("
                     "'td a')).map(r => [r.querySelector('td a').href, "
                     "r.textContent]);")
        check(rows[0][0].endswith("/jobs/%d_3" % aid) and
              rows[1][0].endswith("/jobs/%d_5" % aid), "failed first: %r" %
              rows[:3])
        check("exit status 3" in rows[0][1], "the reason: %r" % rows[0])
        d.get(rows[0][0])
        eq(text(d, "reason"), "exit status 3", "reason")
        check("diverged at step 2" in text(d, "stderr"), "stderr's tail")
        check("step 2" in text(d, "stdout"), "stdout's tail")
        # Retry, without a reload: a marker on the window survives.
        d.execute_script("window.simqMarker = 1;")
        js(d, "document.getElementById('retry-%d_3').click();" % aid)
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: state(d) == "queued")
        eq(d.execute_script("return window.simqMarker;"), 1, "no reload")
        check("1 changed" in text(d, "msg"), text(d, "msg"))
        eq(c.status1("%d_3" % aid)["state"], "queued", "the broker says so")
        # Something finishing elsewhere shows up by itself.
        jobs, _ = w.take(1, 0, "sims")
        eq(jobs[0]["id"], "%d_3" % aid, "the retried task is taken")
        w.finish_job(jobs[0], exit=0)
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: state(d) == "done")
        eq(d.execute_script("return window.simqMarker;"), 1, "no reload")
    finally:
        br.close()
