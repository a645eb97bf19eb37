"""The warm runner for Python tasks (simq-runner(7)).

A task of simq.Executor is the command `PYTHON -m simq.task CALL` with
SIMQ_RUNNER=3 in its environment.  simq-worker may then run it through a
warm runner: it starts `PYTHON -m simq.task` (the first 3 words) once per
slot, with SIMQ_RUNNER_FD=3 naming a SOCK_SEQPACKET socket to the slot's
shepherd, and sends it each task.  This module is that runner.  For each
task it:

  - imports, in itself, the modules the pickled call names (the
    function's module, the classes of its arguments, found in the
    pickle's bytes without running it): imports are paid
    once per runner, with the task's stdout and stderr as the runner's
    while they run, so what an import prints is the first task's output;
  - forks; the child makes a session of its own, takes the task's stdin,
    stdout and stderr, its limits, directory and environment (exactly
    those of the task), reseeds numpy's global generator if it is loaded
    (`random` reseeds itself at fork), runs the call as `simq.task` would,
    runs the atexit handlers, joins threads and exits with os._exit;
  - says "pid P" at once, so the shepherd can kill the task's process
    group on a timeout or a cancel, and "exit STATUS UTIME STIME MAXRSS"
    when it reaped it.

Nothing the task does reaches the runner: a task that leaks memory or
descriptors, changes a module's globals, or dies by os._exit or a signal
takes it all with its process.  Standard library only.
"""

import atexit
import gc
import os
import re
import resource as _resource
import socket
import sys

# Bound here: a name looked up in the child is a page written to.
_setsid, _dup2, _close, _os_exit = os.setsid, os.dup2, os.close, os._exit
_setrlimit = _resource.setrlimit
_run_exitfuncs = atexit._run_exitfuncs

# Larger than any datagram of a shepherd (SHEP_MSG_MAX).
MSG_MAX = 1 << 17

# A protocol 4 pickle names a global as two short strings, each perhaps
# memoized, then STACK_GLOBAL: module, name.  The calls of simq.Executor
# are protocol 4; a module named again later comes from the memo, and its
# first naming is enough.
_GLOBAL = re.compile(rb"\x8c([\x01-\x7f])([A-Za-z_][\w.]*)\x94?"
                     rb"\x8c([\x01-\x7f])([A-Za-z_][\w.<>]*)\x94?\x93")


def modules_of(data):
    """The modules a pickle's globals name, found in its bytes without
    running it (a false find only makes the runner try an import)."""
    mods = []
    for m in _GLOBAL.finditer(data):
        if len(m.group(2)) == m.group(1)[0] and \
                len(m.group(4)) == m.group(3)[0]:
            name = m.group(2).decode("ascii")
            if name not in mods:
                mods.append(name)
    return mods


def _call_modules(args):
    from . import _task_codec as codec
    import binascii
    if len(args) != 1 or not args[0].startswith(codec.CALL_PREFIX):
        return []
    try:
        data = codec._unsqueeze(binascii.a2b_base64(
            args[0][len(codec.CALL_PREFIX):]))
    except Exception:
        return []
    return modules_of(data)


_tried = set()                  # imports that failed: not again


def _warm(args, out, err):
    """Imports what the call needs, in the runner, with the task's output
    as ours meanwhile."""
    new = [m for m in _call_modules(args)
           if m not in sys.modules and m != "__main__" and m not in _tried]
    if not new:
        return
    import importlib
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        for m in new:
            try:
                importlib.import_module(m)
            except BaseException:
                _tried.add(m)   # the task meets it again and says so
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    gc.freeze()                 # fewer pages copied by each fork


def _exit(code):
    """Ends the task's process as an interpreter would, without tearing
    down the modules it shares with the runner."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        try:
            sys.stderr.write("%s\n" % (code,))
        except Exception:
            pass
        code = 1
    try:
        th = sys.modules.get("threading")
        if th is not None:
            th._shutdown()
        _run_exitfuncs()
    except BaseException:
        pass
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass
    _os_exit(code & 0xff)


def _set_environ(env):
    """Makes the environment env, changing only what differs."""
    cur = os.environb
    for k in [k for k in cur if k not in env]:
        del cur[k]
    for k, v in env.items():
        if cur.get(k) != v:
            cur[k] = v


class _Process:
    """What the runner makes its own before each fork, so that the child
    inherits it instead of making it (a forked child pays a page fault,
    some microseconds here, for each page of the runner it writes to):
    the task's environment, directory and soft limits."""

    def __init__(self):
        self.cwd = os.getcwdb()
        # `python -m` put the directory it started in first on sys.path;
        # a task in another directory (a job with files has one of its
        # own) finds its directory there instead, as it would started
        # there.
        self.path0 = bool(sys.path) and sys.path[0] == os.fsdecode(self.cwd)
        self.limits = {}

    def adopt(self, cwd, env, limit_as, nofile):
        if cwd != self.cwd:
            os.chdir(cwd)
            self.cwd = cwd
            if self.path0 and sys.path:
                sys.path[0] = os.fsdecode(cwd)
        _set_environ(env)
        for res, soft in ((_resource.RLIMIT_AS, limit_as),
                          (_resource.RLIMIT_NOFILE, nofile)):
            if soft and self.limits.get(res) != soft:
                hard = _resource.getrlimit(res)[1]
                if hard != _resource.RLIM_INFINITY and soft > hard:
                    soft = hard
                _resource.setrlimit(res, (soft, hard))
                self.limits[res] = soft


def _child(task, limit_as, argv, fds, keep):
    """In the forked child: the task's session, stdio, hard limit; then
    the task.  Never returns."""
    code = 1
    try:
        _setsid()
        _dup2(fds[0], 0)
        _dup2(fds[1], 1)
        _dup2(fds[2], 2)
        for f in fds:
            if f > 2:
                _close(f)
        _close(keep)
        if limit_as:
            _setrlimit(_resource.RLIMIT_AS, (limit_as, limit_as))
        np = sys.modules.get("numpy.random")
        if np is not None:
            try:
                np.seed()
            except Exception:
                pass
        sys.argv = [sys.argv[0]] + argv
        code = task(argv)
    except SystemExit as e:
        code = e.code
    except BaseException:
        try:
            import traceback
            traceback.print_exc()
        except BaseException:
            pass
        code = 1
    _exit(code)


def serve(fd, task, nwords):
    """Serves the shepherd on socket fd until it closes: each task's argv
    past its first nwords words goes to task(args), in a fork."""
    sock = socket.socket(fileno=fd)
    os.environ.pop("SIMQ_RUNNER_FD", None)
    me = _Process()
    while True:
        data, fds, flags, _ = socket.recv_fds(sock, MSG_MAX, 3)
        if not data:
            return 0
        try:
            parts = data.split(b"\0")[:-1]
            argc = int(parts[4])
            if parts[0] != b"run" or len(fds) != 3 or \
                    flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("a malformed run message")
            cwd = parts[1]
            limit_as, nofile = int(parts[2]), int(parts[3])
            argv = [os.fsdecode(a) for a in parts[5:5 + argc]]
            env = dict(kv.split(b"=", 1) for kv in parts[5 + argc:])
            args = argv[nwords:]
        except Exception as e:
            for f in fds:
                os.close(f)
            sock.send(b"error 22 %s" % str(e).encode()[:150])
            continue
        me.adopt(cwd, env, limit_as, nofile)
        _warm(args, fds[1], fds[2])
        for f in (sys.stdout, sys.stderr):
            f.flush()
        try:
            pid = os.fork()
        except OSError as e:
            for f in fds:
                os.close(f)
            sock.send(b"error %d fork: %s" % (e.errno or 0,
                                             str(e).encode()[:150]))
            continue
        if pid == 0:
            _child(task, limit_as, args, fds, sock.fileno())
        for f in fds:
            os.close(f)
        sock.send(b"pid %d" % pid)
        _, status, ru = os.wait4(pid, 0)
        sock.send(b"exit %d %d %d %d" % (
            status, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6),
            ru.ru_maxrss))
