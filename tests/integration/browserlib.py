"""
A real headless browser for the dashboard's tests and for
`make dashboard-shot`: Debian's chromium driven by chromium-driver through
python3-selenium (installed by `make deps`).  Only 127.0.0.1 is visited.
"""

import os
import shutil
import sys
import tempfile

from harness import Client, Worker


DEB_SITE = "/usr/lib/python3/dist-packages"


def have_browser():
    """None if the browser can be driven, else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium, for a python3 that is not Debian's.
        if DEB_SITE not in sys.path:
            sys.path.append(DEB_SITE)
        try:
            import selenium  # noqa: F401,F811
        except ImportError:
            return "python3-selenium is not installed (make deps)"
    for b in ("chromium", "chromedriver"):
        if shutil.which(b) is None:
            return "%s is not installed (make deps)" % b
    return None


class Browser:
    def __init__(self, width=1280, height=1000):
        why = have_browser()
        if why is not None:
            raise RuntimeError(why)
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.profile = tempfile.mkdtemp(prefix="simq-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium")
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-extensions", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--window-size=%d,%d" % (width, height),
                  "--user-data-dir=" + self.profile):
            opts.add_argument(a)
        self.d = webdriver.Chrome(service=Service(shutil.which(
            "chromedriver"), log_output=os.devnull), options=opts)
        self.d.set_page_load_timeout(30)

    def close(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def worker(port, name, token=None, **kw):
    """A protocol worker that says HELLO first when there is a token."""
    w = Client(port)
    if token is not None:
        w.request("HELLO 1 " + token).expect_ok()
    line = "WORKER " + name + "".join(" %s=%s" % kv for kv in kw.items())
    w.request(line).expect_ok()
    w.take = Worker.take.__get__(w)
    w.finish = Worker.finish.__get__(w)
    w.finish_job = Worker.finish_job.__get__(w)
    return w


def sweep(port, token=None, n=20, fail=(3, 5)):
    """An array of n tasks: those in fail failed (exit 3, with output),
    a few running, the rest done or queued.  Returns (client, worker)."""
    c = Client(port)
    if token is not None:
        c.request("HELLO 1 " + token).expect_ok()
    aid = c.request("SUBMIT array=0-%d name=sweep q=sims -- ./sim --seed {}"
                    % (n - 1)).one_id()
    c.request("SUBMIT name=prep q=sims -- ./prepare data").one_id()
    w = worker(port, "node1-w", token, host="node1", slots=8)
    jobs, _ = w.take(n // 2, 0, "sims")
    for j in jobs[:-3]:
        idx = int(j["id"].split("_")[1]) if "_" in j["id"] else -1
        if idx in fail:
            w.finish_job(j, exit=3, out=b"seed %d\nstep 1 ok\nstep 2\n" % idx,
                         err=b"sim: diverged at step 2 (dt too large)\n")
        else:
            w.finish_job(j, exit=0, out=b"seed %d\nok\n" % idx, res=b"0.5")
    return c, w, aid
