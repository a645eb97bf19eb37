"""The Celery app of tests/bench/peers.py: a no-op task, Redis at
$SIMQ_BENCH_REDIS_URL the broker (database 0) and the result backend
(database 1)."""

import os

from celery import Celery

_url = os.environ["SIMQ_BENCH_REDIS_URL"]
app = Celery("celery_noop", broker=_url + "/0", backend=_url + "/1")


@app.task
def noop(i):
    return i
