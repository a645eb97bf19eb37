"""
The dashboard in a real headless browser (chromium + chromium-driver +
python3-selenium, from `make deps`): log in with the token, see a failed
task's reason, follow it to its output's tail, press retry, and see the
state change without a reload.
"""

import harness
from harness import check, eq, free_port
from browserlib import Browser, have_browser, sweep


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
    br = Browser()
    try:
        d = br.d
        base = "http://127.0.0.1:%d" % hp
        d.get(base + "/")
        # No cookie yet: the login form.  A wrong token first.
        d.find_element(By.ID, "token").send_keys("wrong")
        d.find_element(By.ID, "login").click()
        check("not the token" in d.page_source, "wrong token refused")
        d.find_element(By.ID, "token").send_keys("s3cret")
        d.find_element(By.ID, "login").click()
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: d.find_elements(By.LINK_TEXT, str(aid)))
        check("2 failed" in d.page_source, "the array shows its failures")
        d.find_element(By.LINK_TEXT, str(aid)).click()
        # The array's page: the failed tasks first, with their reason.
        rows = d.find_elements(By.CSS_SELECTOR, "#live table tr td:first-child a")
        eq([r.text for r in rows[:2]], ["%d_3" % aid, "%d_5" % aid],
           "failed tasks first")
        first = rows[0].find_element(By.XPATH, "../..")
        check("exit status 3" in first.text, "the reason: " + first.text)
        rows[0].click()
        eq(d.find_element(By.ID, "reason").text, "exit status 3", "reason")
        check("diverged at step 2" in d.find_element(By.ID, "stderr").text,
              "stderr's tail")
        check("step 2" in d.find_element(By.ID, "stdout").text,
              "stdout's tail")
        # Retry, without a reload: a marker on the window survives.
        d.execute_script("window.simqMarker = 1;")
        d.find_element(By.ID, "retry-%d_3" % aid).click()
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "h1 span").text ==
            "queued")
        eq(d.execute_script("return window.simqMarker;"), 1, "no reload")
        check("1 changed" in d.find_element(By.ID, "msg").text,
              d.find_element(By.ID, "msg").text)
        eq(c.status1("%d_3" % aid)["state"], "queued", "the broker says so")
        # Something finishing elsewhere shows up by itself.
        jobs, _ = w.take(1, 0, "sims")
        eq(jobs[0]["id"], "%d_3" % aid, "the retried task is taken")
        w.finish_job(jobs[0], exit=0)
        WebDriverWait(d, 15 * ctx.slow).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "h1 span").text ==
            "done")
        eq(d.execute_script("return window.simqMarker;"), 1, "no reload")
    finally:
        br.close()
