"""Runs one Python task on a worker: `python3 -m simq.task CALL`.

CALL is the pickled call (see simq._task_codec); the outcome goes to the
file named by $SIMQ_RESULT.  Exit status 0 when every call returned, 1
when one raised (its exception and traceback are in the result).

Started without CALL and with $SIMQ_RUNNER_FD set, it is the slot's warm
runner instead (simq.runner, simq-runner(7)): it runs each task the worker
sends it in a fork of itself.
"""

import os
import sys

from . import _task_codec as codec


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv and os.environ.get("SIMQ_RUNNER_FD"):
        from . import runner
        return runner.serve(int(os.environ["SIMQ_RUNNER_FD"]), main,
                            int(os.environ.get("SIMQ_RUNNER", "3")), run)
    if len(argv) != 1:
        sys.stderr.write("usage: python3 -m simq.task CALL\n")
        return 2
    return run(argv[0], os.environ.get("SIMQ_RESULT"))


def run(word, path, data=None):
    """Runs the call of the payload word (data: its pickle, if known),
    writes the outcome to the file path (None: to stdout) and returns
    the exit status."""
    single = True
    try:
        single, calls = codec.decode_call(word) if data is None else \
            codec.loads_call(data)
    except BaseException as e:    # an import that fails on this node
        outs = [codec.outcome_err(e)]
    else:
        outs = []
        for fn, args, kwargs in calls:
            try:
                outs.append(("ok", fn(*args, **kwargs)))
            except (Exception, SystemExit) as e:
                outs.append(codec.outcome_err(e))
    data, ok = codec.pack_result_ok(single, outs)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            n = os.write(fd, data)
            if n < len(data):
                view = memoryview(data)[n:]
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    else:
        sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
