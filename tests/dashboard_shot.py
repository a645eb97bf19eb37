#!/usr/bin/env python3
"""
dashboard_shot.py OUT.png: starts bin/simqd in a temporary folder with a
small sweep (some tasks failed, some running), opens its dashboard in
headless chromium and writes screenshots of the overview (OUT.png),
an array's page (OUT-array.png) and a failed task's (OUT-task.png), for people reviewing changes.
`make dashboard-shot` runs it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "integration"))
from harness import free_port  # noqa: E402
from browserlib import Browser, have_browser, sweep  # noqa: E402


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/dashboard.png"
    why = have_browser()
    if why:
        sys.exit("dashboard-shot: " + why)
    tmp = tempfile.mkdtemp(prefix="simq-shot-")
    port, hp = free_port(), free_port()
    log = open(os.path.join(tmp, "simqd.log"), "wb")
    p = subprocess.Popen(["bin/simqd", "-d", os.path.join(tmp, "d"), "-p",
                          str(port), "--http", str(hp)], stdout=log,
                         stderr=log)
    br = None
    try:
        for _ in range(500):
            try:
                keep = sweep(port, n=200, fail=(3, 5, 8))
                break
            except OSError:
                time.sleep(0.01)
        br = Browser(1280, 1100)
        br.d.get("http://127.0.0.1:%d/" % hp)
        br.d.save_screenshot(out)
        br.d.get("http://127.0.0.1:%d/jobs/%d" % (hp, keep[2]))
        br.d.save_screenshot(out[:-4] + "-array.png")
        br.d.get("http://127.0.0.1:%d/jobs/1_3" % hp)
        task = out[:-4] + "-task.png" if out.endswith(".png") else \
            out + "-task.png"
        br.d.save_screenshot(task)
        print("dashboard-shot: wrote %s, its -array and -task.png" % out)
    finally:
        if br is not None:
            br.close()
        p.terminate()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


main()
