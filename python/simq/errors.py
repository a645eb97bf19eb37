"""The exceptions of the simq package."""


class SimqError(Exception):
    """Every error the simq package raises derives from this."""


class BrokerUnreachable(SimqError, ConnectionError):
    """The broker cannot be reached (nothing listens, or it went away and
    did not come back in time)."""


class ConnectionLost(BrokerUnreachable):
    """The connection broke during a request."""


class TokenRefused(SimqError, PermissionError):
    """The broker wants a token, or refused the one given."""


class RequestError(SimqError):
    """The broker answered ERR.  .code is the protocol's error code."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message) if message else code)
        self.code = code
        self.message = message


class UnknownJob(RequestError, LookupError):
    """No such job, array, task, queue or worker (ERR not-found)."""


class BadState(RequestError):
    """Not allowed in the job's current state (ERR bad-state)."""


class LimitReached(RequestError):
    """A broker-wide limit was reached (ERR limit)."""


class TaskFailed(SimqError):
    """A task ended without a result: killed, timed out, out of retries,
    lost, canceled, or it could not start.  .reason says why; .job is the
    simq.Job."""

    def __init__(self, reason, job=None):
        super().__init__(reason)
        self.reason = reason
        self.job = job


class PayloadTooLarge(SimqError, ValueError):
    """A pickled call or result does not fit the broker's limits."""


class RemoteTraceback(Exception):
    """Carries the traceback of an exception raised in a task: set as the
    __cause__ of the exception result() raises again."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return "\n\n" + self.tb.rstrip("\n")


class RemoteError(SimqError):
    """Stands for a task's exception that could not be pickled."""


_CODES = {"not-found": UnknownJob, "bad-state": BadState,
          "limit": LimitReached, "auth": TokenRefused}


def error_for(code, message, what=None):
    cls = _CODES.get(code, RequestError)
    if cls is TokenRefused:
        return TokenRefused("the broker refused: %s" % message)
    if what and cls is UnknownJob:
        message = "%s (%s)" % (message, what)
    return cls(code, message)
