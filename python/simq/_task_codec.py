"""How a Python call travels in a job, and its outcome in the result.

A task's command is `PYTHON -m simq.task CALL`, CALL being "simqpy1:" and
the base64 of a pickled list of calls (fn, args, kwargs), zlib-compressed
when it is over SQUEEZE_MIN bytes and that is shorter.  Its outcome comes
back as the job's result payload ($SIMQ_RESULT): RESULT_MAGIC, then "z"
(zlib) or "p", then a pickled (single, [outcome...]), each outcome ("ok",
value) or ("err", exception, traceback text).  Both are bounded by the
broker's limits (a request line, 65536 bytes; a result, 65536 bytes):
large arguments travel as files of the job (BLOB_TAG), a large result as
a collected file (RESULT_FILE, "f").
"""

import binascii
import pickle
import zlib

from .errors import (PayloadTooLarge, RemoteError, RemoteTraceback,
                     TaskFailed)

CALL_PREFIX = "simqpy1:"
CALL_PREFIX_B = CALL_PREFIX.encode("ascii")
RESULT_MAGIC = b"simq-py1\n"
RESULT_MAX = 65536

# A large argument travels as a file of the job (a blob at the broker,
# stored once however many tasks name it): the call holds the persistent
# id (BLOB_TAG, NAME) in its place, NAME being a file of the task's
# directory ($SIMQ_WORKDIR) that holds the argument's pickle.
BLOB_TAG = "simq-blob"
BLOB_NAME = "simq-arg-%s.pickle"
# A result larger than RESULT_MAX comes back as the collected file
# $SIMQ_PY_RESULT_FILE of the task's directory (Executor(large_results=
# True) asks for it with collect=); the result payload then says only
# RESULT_MAGIC, "f" and its name.
RESULT_FILE_ENV = "SIMQ_PY_RESULT_FILE"
RESULT_FILE = "simq-result.pickle"


# Smaller payloads go as they are: compressing them seldom pays, and
# zlib's state (a quarter of a megabyte) costs a task's forked process
# more than the rest of its work.
SQUEEZE_MIN = 1024


def _squeeze(data):
    if len(data) < SQUEEZE_MIN:
        return b"p" + data
    z = zlib.compress(data, 6)
    return (b"z" + z) if len(z) < len(data) else (b"p" + data)


def _unsqueeze(data):
    return zlib.decompress(data[1:]) if data[:1] == b"z" else data[1:]


def encode_call(pickled):
    return CALL_PREFIX + binascii.b2a_base64(_squeeze(pickled),
                                             newline=False).decode("ascii")


class _CallUnpickler(pickle.Unpickler):
    """Loads the arguments that travel as files from the task's
    directory, each once."""

    def __init__(self, f):
        super().__init__(f)
        self._loaded = {}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 2 and
                pid[0] == BLOB_TAG and isinstance(pid[1], str) and
                "/" not in pid[1]):
            raise pickle.UnpicklingError("unknown persistent id %r" % (pid,))
        if pid[1] not in self._loaded:
            import os
            path = os.path.join(os.environ.get("SIMQ_WORKDIR") or ".",
                                pid[1])
            with open(path, "rb") as f:
                self._loaded[pid[1]] = pickle.load(f)
        return self._loaded[pid[1]]


def call_pickle(word):
    """The pickle a call payload (str or bytes) holds."""
    if not word.startswith(CALL_PREFIX if isinstance(word, str) else
                           CALL_PREFIX_B):
        raise ValueError("not a simq call payload")
    return _unsqueeze(binascii.a2b_base64(word[len(CALL_PREFIX):]))


def decode_call(word):
    return loads_call(call_pickle(word))


def loads_call(data):
    """(single, calls) of a call's pickle."""
    if b"simq-blob" not in data:
        return pickle.loads(data)
    import io
    return _CallUnpickler(io.BytesIO(data)).load()


def is_task(argv):
    return bool(argv) and len(argv) >= 4 and argv[1:3] == ["-m", "simq.task"]


def is_result(data):
    return data is not None and data.startswith(RESULT_MAGIC)


def _safe_exc(e):
    """The exception if it pickles and unpickles, else a RemoteError."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RemoteError("%s: %s" % (type(e).__qualname__, e))


def outcome_err(e):
    import traceback
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return ("err", _safe_exc(e), tb)


def pack_result(single, outcomes):
    """The result payload; a too large one becomes a PayloadTooLarge
    outcome for each call (the values were computed but cannot come back
    until the blob store carries them).  See pack_result_ok."""
    return pack_result_ok(single, outcomes)[0]


def pack_result_ok(single, outcomes):
    """(payload, ok): ok is False when an outcome in it is an error."""
    try:
        data = RESULT_MAGIC + _squeeze(pickle.dumps((single, outcomes)))
    except Exception as e:        # a value that does not pickle
        data = None
        err = outcome_err(e)
        outcomes = [o if o[0] == "err" else err for o in outcomes]
        data = RESULT_MAGIC + _squeeze(pickle.dumps((single, outcomes)))
    ok = True
    for o in outcomes:
        if o[0] != "ok":
            ok = False
    if len(data) > RESULT_MAX and _result_file(data):
        return RESULT_MAGIC + b"f" + RESULT_FILE.encode(), ok
    if len(data) > RESULT_MAX:
        ok = False
        n = len(data)
        e = PayloadTooLarge(
            "the task's pickled result is %d bytes; a result holds at most "
            "%d (return less, use a smaller chunksize, or write a file)"
            % (n, RESULT_MAX))
        data = RESULT_MAGIC + _squeeze(pickle.dumps(
            (single, [("err", e, "PayloadTooLarge: %s\n" % e)] *
             len(outcomes))))
    return data, ok


def _result_file(data):
    """Writes a large result payload where the job collects it, when it
    does; True if it did."""
    import os
    d = os.environ.get("SIMQ_WORKDIR")
    if not d or os.environ.get(RESULT_FILE_ENV) != RESULT_FILE:
        return False
    with open(os.path.join(d, RESULT_FILE), "wb") as f:
        f.write(data)
    return True


def is_file_stub(data):
    """The name of the collected file a result payload points to, else
    None."""
    if data is not None and data.startswith(RESULT_MAGIC + b"f"):
        return data[len(RESULT_MAGIC) + 1:].decode("utf-8", "replace")
    return None


def full_result(data, job):
    """The whole payload of a result that came back as a collected file
    (GET from the broker), or data itself."""
    name = is_file_stub(data)
    if name is None:
        return data
    try:
        return job.fetch(name)
    except KeyError:
        return None


def raise_remote(exc, tb):
    exc.__cause__ = RemoteTraceback(tb)
    raise exc


def unpack_result(data, job=None):
    """[value...] of a result payload; raises the first exception again
    (with the remote traceback as its __cause__)."""
    single, outcomes = pickle.loads(_unsqueeze(data[len(RESULT_MAGIC):]))
    vals = []
    for o in outcomes:
        if o[0] == "err":
            raise_remote(o[1], o[2])
        vals.append(o[1])
    return vals if not single else vals[:1] if vals else [None]


def outcomes(data):
    """(single, [outcome...]) of a result payload, or None."""
    if not is_result(data):
        return None
    return pickle.loads(_unsqueeze(data[len(RESULT_MAGIC):]))


def why(info):
    """Why a finished job has no result, in words."""
    st = info.get("state")
    rsn = info.get("reason")
    jid = info.get("id")
    if st == "canceled":
        s = "task %s was canceled" % jid
    elif info.get("timedout"):
        s = "task %s was killed: it ran past its timeout" % jid
    elif info.get("signal"):
        s = "task %s was killed by signal %d" % (jid, info["signal"])
    elif info.get("exit") not in (None, 0):
        s = "task %s exited with status %d without a result" % (
            jid, info["exit"])
    elif st == "done":
        s = "task %s ended without writing its result" % jid
    else:
        s = "task %s %s" % (jid, st)
    att = info.get("attempts")
    if att and att > 1:
        s += " (after %d attempts)" % att
    if rsn:
        s += ": %s" % rsn
    return s


def failure(job):
    return TaskFailed(why(job.info), job)
