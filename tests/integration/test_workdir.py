"""
Where simq-worker keeps job output without -w: $XDG_STATE_HOME/simq, else
/var/tmp/simq-USER; never the directory it was started in.
"""

import os
import pwd
import signal
import stat

from harness import check, eq
from workerlib import WorkerProc, marker, run_simq_worker, wait_job


def start_without_w(ctx, b, env, cwd):
    w = WorkerProc(ctx, b, env=env, cwd=cwd, start=False)
    i = w.cmd.index("-w")
    del w.cmd[i:i + 2]
    return w.start()


def test_default_work_directory(ctx):
    b = ctx.start_broker()
    c = b.client()
    cwd = ctx.mkdtemp("cwd")
    state = os.path.join(ctx.mkdtemp("xdg"), "state")
    w = start_without_w(ctx, b, {"XDG_STATE_HOME": state}, cwd)
    jid = c.submit(["echo", "hello"])
    eq(wait_job(ctx, c, jid)["state"], "done", "job")
    wd = os.path.join(state, "simq")
    check("work directory %s" % wd in w.log(), w.log()[-400:])
    with open(os.path.join(wd, "%d.1.out" % jid)) as f:
        eq(f.read(), "hello\n", "output in $XDG_STATE_HOME/simq")
    eq(stat.S_IMODE(os.stat(wd).st_mode) & 0o077, 0, "private")
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(), 0, "exit")

    # Without XDG_STATE_HOME (a relative one does not count): /var/tmp.
    mark = marker()
    w = start_without_w(ctx, b, {"XDG_STATE_HOME": "state"}, cwd)
    jid = c.submit(["echo", mark])
    eq(wait_job(ctx, c, jid)["state"], "done", "job")
    wd = "/var/tmp/simq-%s" % pwd.getpwuid(os.getuid()).pw_name
    check("work directory %s" % wd in w.log(), w.log()[-400:])
    out = os.path.join(wd, "%d.1.out" % jid)
    try:
        with open(out) as f:
            eq(f.read(), mark + "\n", "output in %s" % wd)
    finally:
        if os.path.exists(out):
            os.unlink(out)
    w.signal(signal.SIGTERM)
    eq(w.wait_exit(), 0, "exit")
    eq(os.listdir(cwd), [], "nothing in the directory it started in")


def test_default_work_directory_must_be_ours(ctx):
    # A link where the default directory should be is refused: in
    # /var/tmp, anyone could have put it there.
    d = ctx.mkdtemp("xdg")
    os.mkdir(os.path.join(d, "elsewhere"))
    os.symlink(os.path.join(d, "elsewhere"), os.path.join(d, "simq"))
    rc, out, err = run_simq_worker(ctx, ["-s", "127.0.0.1:1"],
                                   env={"XDG_STATE_HOME": d})
    eq(rc, 1, "exit status: %s" % err[-300:])
    check("not a directory of this user's" in err and "-w" in err,
          err[-300:])
