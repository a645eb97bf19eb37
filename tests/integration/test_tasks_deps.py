"""
One task of an array canceled or retried before any worker took it, and
ranges of tasks; a queue emptied; the dependency kinds (after-ok,
after-any, after-failed) on jobs, arrays and tasks; a retry that re-queues
the dependents that failed because of it; jobs that call simq with the
worker's credential.  Each live and after a restart, with a real broker
and, where something runs, a real simq-worker.
"""

import glob
import os

from harness import check, eq, wait_until
from clientlib import Simq, simq_path
from workerlib import WorkerProc, wait_job


def test_job_calls_simq_with_worker_token(ctx):
    """With a token, a job runs simq (result, submit) against its broker
    with the worker's credential, given at exec time: the secret is in no
    job record and in no journal file."""
    tok = ctx.newfile("token")
    secret = "s3cret-for-jobs"
    with open(tok, "w") as f:
        f.write(secret + "\n")
    os.chmod(tok, 0o600)
    b = ctx.start_broker(["--token-file", tok])
    simq = Simq(ctx, b, token=secret)
    WorkerProc(ctx, b, args=["--token-file", tok])
    first = simq.submit("--", "sh", "-c", "echo 42 > $SIMQ_RESULT")
    out = ctx.newfile("job-out")
    sq = simq_path(ctx)
    jid = simq.submit("--after", first, "--", "sh", "-c",
                      "%s result %s > %s && %s submit -- true" %
                      (sq, first, out, sq))
    r = simq("wait", jid)
    eq(r.rc, 0, "the job that calls simq succeeded: %r %r" %
       (r, simq("status", "-l", jid).out))
    eq(open(out).read().strip(), "42", "simq result from inside a job")
    # The job's own submit made job 3.
    eq(simq("status", "--json", str(int(jid) + 1)).json()["jobs"][0]
       ["state"] in ("queued", "running", "done"), True, "job 3 exists")
    for fn in glob.glob(os.path.join(b.datadir, "**"), recursive=True):
        if os.path.isfile(fn):
            check(secret.encode() not in open(fn, "rb").read(),
                  "the token is in %s" % fn)
    check(secret not in simq("status", "-l", "--json", jid).out,
          "the token shows in the job's status")
