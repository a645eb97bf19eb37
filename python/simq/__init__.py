"""simq for Python: a client of the simq broker, and a
concurrent.futures executor whose calls run as simq jobs.

    import simq
    c = simq.Client()                       # $SIMQ_SERVER, $SIMQ_TOKEN
    job = c.submit(["./sim", "--seed", "3"], queue="sims", timeout="2h")
    job.wait(); print(job.state, job.exit_code, job.output())

    with simq.Executor(queue="sims") as ex:
        print(list(ex.map(pow, range(10), [2] * 10)))

See python/README.md.
"""

from .client import Client, Job
from .errors import (BadState, BrokerUnreachable, ConnectionLost,
                     LimitReached, PayloadTooLarge, RemoteError,
                     RemoteTraceback, RequestError, SimqError, TaskFailed,
                     TokenRefused, UnknownJob)
from .executor import Executor
from .queue import Queue

__version__ = "0.1.0"

__all__ = ["Client", "Job", "Executor", "Queue", "SimqError",
           "BrokerUnreachable", "ConnectionLost", "TokenRefused",
           "RequestError", "UnknownJob", "BadState", "LimitReached",
           "TaskFailed", "PayloadTooLarge", "RemoteError", "RemoteTraceback"]
