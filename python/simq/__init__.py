"""simq for Python: a client of the simq broker, and a
concurrent.futures executor whose calls run as simq jobs.

    import simq
    c = simq.Client()                       # $SIMQ_SERVER, $SIMQ_TOKEN
    job = c.submit(["./sim", "--seed", "3"], queue="sims", timeout="2h")
    job.wait(); print(job.state, job.exit_code, job.output())

    with simq.Executor(queue="sims") as ex:
        print(list(ex.map(pow, range(10), [2] * 10)))

See python/README.md.  The names below are imported on first use, so
that a task (`python3 -m simq.task`) starts without loading the client.
"""

__version__ = "0.1.0"

_WHERE = {
    "Client": "client", "Job": "client", "Blob": "client",
    "Executor": "executor", "Queue": "queue",
    "Chunk": "watch", "Follow": "watch", "Explanation": "watch",
    "Reason": "watch",
    "SimqError": "errors", "BrokerUnreachable": "errors",
    "ConnectionLost": "errors", "TokenRefused": "errors",
    "RequestError": "errors", "UnknownJob": "errors", "BadState": "errors",
    "LimitReached": "errors", "TaskFailed": "errors",
    "PayloadTooLarge": "errors", "RemoteError": "errors",
    "RemoteTraceback": "errors",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError("module 'simq' has no attribute %r" % name)
    import importlib
    v = getattr(importlib.import_module("." + mod, __name__), name)
    globals()[name] = v
    return v


def __dir__():
    return sorted(list(globals()) + __all__)
