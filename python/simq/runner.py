"""The warm runner for Python tasks (simq-runner(7)).

A task of simq.Executor is the command `PYTHON -m simq.task CALL` with
SIMQ_RUNNER=3 in its environment.  simq-worker may then run it through a
warm runner: it starts `PYTHON -m simq.task` (the first 3 words) once per
slot, with SIMQ_RUNNER_FD=3 naming a SOCK_SEQPACKET socket to the slot's
shepherd, and sends it each task.  This module is that runner.  For each
task it:

  - makes the task's environment, directory and soft limits its own, and
    decodes its call;
  - imports, in itself, the modules the pickled call names (the
    function's module, the classes of its arguments, found in the
    pickle's bytes without running it), and those that earlier tasks
    imported themselves (a module named only inside a blob argument, or
    imported by the function): imports are paid once per runner, the
    former with the task's stdout and stderr as the runner's while they
    run, so what an import prints is the first task's output;
  - freezes the garbage collector's objects and forks; the child makes a
    session of its own, takes the task's stdin, stdout and stderr and
    its hard limit, reseeds numpy's global generator if it is loaded
    (`random` reseeds itself at fork), runs the call as `simq.task`
    would, runs the atexit handlers, joins threads and exits with
    os._exit;
  - says "pid P" at once, so the shepherd can kill the task's process
    group on a timeout or a cancel, and "exit STATUS UTIME STIME MAXRSS"
    when it reaped it.

Nothing the task does reaches the runner: a task that leaks memory or
descriptors, changes a module's globals or the garbage collector's
settings, or dies by os._exit or a signal takes it all with its process.

What a forked child costs is mostly its page faults: each page of the
runner that the child writes to (a reference count is a write) is copied,
some microseconds each, and so is each page the runner writes to while
the child lives, or later (the fork made them all read-only).  Hence:
the runner's own work per task is a few C calls on the message (no
parsing in Python loops, nothing imported), it has run the child's code
path itself before its first fork (so that the child inherits bytecode
the interpreter has already specialised instead of specialising, that
is writing, it again in each child), and the child gets its call already
decoded and its result file's name, with little left to do but the call.
Standard library only.
"""

import atexit
import gc
import mmap
import os
import pickle
import re
import resource as _resource
import socket
import sys

from . import _task_codec as codec

# Bound here: a name looked up in the child is a page written to.
_setsid, _dup2, _close, _os_exit = os.setsid, os.dup2, os.close, os._exit
_getpid = os.getpid
_setrlimit = _resource.setrlimit
_RLIMIT_AS = _resource.RLIMIT_AS
_run_exitfuncs = atexit._run_exitfuncs

# Larger than any datagram of a shepherd (SHEP_MSG_MAX).
MSG_MAX = 1 << 17
# Room for the three descriptors of a run message, and for more (which
# makes it malformed rather than truncated).
_ANC = socket.CMSG_SPACE(8 * 4)

# A forked child that imported modules the runner has not says which
# here (shared memory, so that saying it copies no page of the runner):
# a flag byte, at 8 their names' length, at 16 the names, one a line.
_NEWMODS_MAX = 1 << 16

# Every this many forks the runner collects its own garbage (between
# forks its objects are frozen, out of the collector's sight).
_COLLECT_EVERY = 4096

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
    _newmods()
    _os_exit(code & 0xff)


# The children's new modules (see _newmods), and how many modules there
# were at the last fork.
_shm = None
_known = 0


def _newmods():
    """In a child about to end: the names of the modules it imported
    (and the runner has not), for the runner to import too."""
    if _shm is None or len(sys.modules) == _known:
        return
    try:
        # Not one from the files of a job: the next job's may differ.
        wd = os.environ.get("SIMQ_WORKDIR")
        mods = list(sys.modules)[_known:]
        if wd:
            wd = os.path.join(os.path.realpath(wd), "")
            mods = [m for m in mods if not os.path.realpath(getattr(
                sys.modules.get(m), "__file__", None) or "/").startswith(wd)]
        names = "\n".join(mods).encode()
        if 0 < len(names) <= _NEWMODS_MAX - 16:
            _shm[16:16 + len(names)] = names
            _shm[8:16] = len(names).to_bytes(8, "little")
            _shm[0] = 1
    except BaseException:
        pass


def _environ_set():
    return {k + b"=" + v for k, v in os.environb.items()}


# The variables of one attempt (simq-runner(7)); a shepherd of simq sends
# them after the others.
PER_TASK = (b"SIMQ_JOB_ID=", b"SIMQ_ATTEMPT=", b"SIMQ_RESULT=",
            b"SIMQ_ARRAY_ID=", b"SIMQ_ARRAY_INDEX=", b"SIMQ_JOB_NAME=",
            b"SIMQ_QUEUE=", b"SIMQ_WORKDIR=")


# os.environb[k] = v and del os.environb[k], without the Python code of
# os._Environ (os.environ and os.environb share its dict of bytes).
_envdata = getattr(os.environb, "_data", None)
if isinstance(_envdata, dict) and _envdata is getattr(os.environ, "_data",
                                                      None):
    def _setenv(k, v, _putenv=os.putenv, _data=_envdata):
        _putenv(k, v)
        _data[k] = v

    def _unsetenv(k, _unsetenv=os.unsetenv, _data=_envdata):
        _unsetenv(k)
        _data.pop(k, None)
else:
    def _setenv(k, v):
        os.environb[k] = v

    def _unsetenv(k):
        os.environb.pop(k, None)


def _pairs(entries):
    """{K: V} of K=V entries; ValueError for one that is not."""
    out = {}
    for kv in entries:
        k, eq, v = kv.partition(b"=")
        if not eq or not k:
            raise ValueError("a malformed run message")
        out[k] = v
    return out


class _Runner:
    """The runner's state, and what it makes its own before each fork so
    that the child inherits it instead of making it: the task's
    environment, directory and soft limits, its decoded call."""

    def __init__(self, sock, task, run):
        self.sock = sock
        self.task = task        # task(args): a call as simq.task runs it
        self.run = run          # run(word, path, pickle): the same, faster
        self.cwd = os.getcwdb()
        # `python -m` put the directory it started in first on sys.path;
        # a task in another directory (a job with files has one of its
        # own) finds its directory there instead, as it would started
        # there.
        self.path0 = bool(sys.path) and sys.path[0] == os.fsdecode(self.cwd)
        self.limits = {}
        # The environment is the last task's: as a set of K=V (None: to
        # be read again), and as the last message had it, the part before
        # its variables of one attempt (None: none such) and those.
        self.env = None
        self.base = None
        self.tail = []
        self.tailmap = {}
        self.tried = set()      # imports that failed: not again
        self.np = None          # numpy.random, once loaded
        self.forks = 0
        self.view = memoryview(bytearray(MSG_MAX))
        global _shm
        try:
            _shm = mmap.mmap(-1, _NEWMODS_MAX)
        except OSError:
            _shm = None

    # -- what the child inherits -------------------------------------------
    def environ(self, data, start):
        """Makes the K=V entries of data[start:] (each NUL-terminated) our
        environment.  Between two tasks of a runner only the variables of
        one attempt change, and they come last: the rest is compared as
        one string, and only those are parsed."""
        base = self.base
        if base is not None and data.startswith(base, start):
            tail = data[start + len(base):].split(b"\0")
            tail.pop()
            if tail == self.tail:
                return
            for kv in tail:
                if not kv.startswith(PER_TASK):
                    break
            else:
                new = _pairs(tail)
                old = self.tailmap
                self.env = None
                for k in old:
                    if k not in new:
                        _unsetenv(k)
                for k, v in new.items():
                    if old.get(k) != v:
                        _setenv(k, v)
                self.tail = tail
                self.tailmap = new
                return
        entries = data[start:].split(b"\0")
        entries.pop()
        new = set(entries)
        env = self.env if self.env is not None else _environ_set()
        self.base = None
        if new != env:
            came = _pairs(new - env)
            cur = os.environb
            try:
                for kv in env - new:
                    k = kv.partition(b"=")[0]
                    if k not in came and k in cur:
                        del cur[k]
                for k, v in came.items():
                    cur[k] = v
            except Exception:
                self.env = None
                raise
        self.env = new
        # The part before the variables of one attempt, if they come last.
        i = len(entries)
        while i > 0 and entries[i - 1].startswith(PER_TASK):
            i -= 1
        if not any([kv.startswith(PER_TASK) for kv in entries[:i]]):
            self.base = b"".join([kv + b"\0" for kv in entries[:i]])
            self.tail = entries[i:]
            self.tailmap = _pairs(self.tail)

    def adopt(self, cwd, limit_as, nofile):
        if cwd != self.cwd:
            os.chdir(cwd)
            self.cwd = cwd
            if self.path0 and sys.path:
                sys.path[0] = os.fsdecode(cwd)
        for res, soft in ((_resource.RLIMIT_AS, limit_as),
                          (_resource.RLIMIT_NOFILE, nofile)):
            if soft and self.limits.get(res) != soft:
                hard = _resource.getrlimit(res)[1]
                if hard != _resource.RLIM_INFINITY and soft > hard:
                    soft = hard
                _resource.setrlimit(res, (soft, hard))
                self.limits[res] = soft

    def imported(self):
        """After imports: the environment they may have changed, numpy,
        and the modules a child is to report."""
        global _known
        self.env = self.base = None
        self.np = sys.modules.get("numpy.random")
        _known = len(sys.modules)

    def warm(self, data, out, err):
        """Imports what the call's pickle names, in the runner, with the
        task's output as ours meanwhile."""
        mods = sys.modules
        for m in modules_of(data):
            if m not in mods and m != "__main__" and m not in self.tried:
                self.imports([m for m in modules_of(data)
                              if m not in mods and m != "__main__" and
                              m not in self.tried], out, err)
                return

    def imports(self, names, out, err):
        import importlib
        import importlib.util
        # Not one from the files of a job: the next job's may differ (the
        # task imports it itself).
        wd = os.environ.get("SIMQ_WORKDIR")
        if wd:
            wd = os.path.join(os.path.realpath(wd), "")
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(out, 1)
            os.dup2(err, 2)
            for m in names:
                if wd:
                    try:
                        spec = importlib.util.find_spec(m.partition(".")[0])
                        where = [spec.origin] + list(
                            spec.submodule_search_locations or [])
                    except Exception:
                        where = []
                    if any(p and os.path.realpath(p).startswith(wd)
                           for p in where):
                        continue
                try:
                    importlib.import_module(m)
                except BaseException:
                    self.tried.add(m)   # the task meets it again, says so
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
        self.imported()

    def learn(self):
        """Imports, with our own output, the modules the last child
        imported by itself."""
        shm = _shm
        n = min(int.from_bytes(shm[8:16], "little"), _NEWMODS_MAX - 16)
        shm[0] = 0
        names = [m for m in shm[16:16 + n].decode("utf-8", "replace").split(
            "\n") if m and m not in sys.modules and m not in self.tried]
        if names:
            self.imports(names, 1, 1)     # fd 1: /dev/null

    # -- a task --------------------------------------------------------------
    def recv(self):
        """One message of the shepherd: (bytes, fds), b"" at its end."""
        n, anc, flags, _ = self.sock.recvmsg_into([self.view], _ANC)
        fds = []
        for level, kind, d in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += memoryview(d)[:len(d) - len(d) % 4].cast("i")
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            fds.append(-1)      # malformed
        return bytes(self.view[:n]), fds

    def parse(self, data, nwords):
        """(limit_as, args) of a run message (args: its words past the
        runner's), its environment, directory and soft limits made ours."""
        find = data.index
        e1 = find(b"\0")
        e2 = find(b"\0", e1 + 1)
        e3 = find(b"\0", e2 + 1)
        e4 = find(b"\0", e3 + 1)
        e5 = find(b"\0", e4 + 1)
        argc = int(data[e4 + 1:e5])
        if data[:e1] != b"run" or argc < nwords or data[-1:] != b"\0":
            raise ValueError("a malformed run message")
        pos = e5 + 1
        for _ in range(nwords):
            pos = find(b"\0", pos) + 1
        args = []
        for _ in range(argc - nwords):
            e = find(b"\0", pos)
            args.append(data[pos:e])
            pos = e + 1
        try:
            self.environ(data, pos)
        except Exception:
            self.env = self.base = None     # read it all again next time
            raise
        self.adopt(data[e1 + 1:e2], int(data[e2 + 1:e3]),
                   int(data[e3 + 1:e4]))
        return int(data[e2 + 1:e3]), args

    def serve(self, nwords):
        global _known
        sock = self.sock
        prefix = codec.CALL_PREFIX_B
        plen = len(prefix)
        self.prime()
        while True:
            data, fds = self.recv()
            if not data:
                return 0
            try:
                if len(fds) != 3:
                    raise ValueError("a malformed run message")
                limit_as, args = self.parse(data, nwords)
            except Exception as e:
                for f in fds:
                    if f >= 0:
                        os.close(f)
                sock.send(b"error 22 %s" % str(e).encode()[:150])
                continue
            # A call of simq.Executor's: decoded here, the child runs it.
            call = path = None
            if len(args) == 1 and args[0][:plen] == prefix:
                try:
                    call = codec.call_pickle(args[0])
                except Exception:
                    pass        # the child says what is wrong with it
            if call is not None:
                self.warm(call, fds[1], fds[2])
                path = self.tailmap.get(b"SIMQ_RESULT") \
                    if self.base is not None else \
                    os.environb.get(b"SIMQ_RESULT")
            # os.fsdecode, without its Python code
            args = list(map(_fsdecode, args))
            sys.argv[1:] = args
            self.forks += 1
            if self.forks % _COLLECT_EVERY == 0:
                gc.unfreeze()
                gc.collect()
            gc.freeze()         # no collection in the child touches these
            _known = len(sys.modules)
            try:
                pid = os.fork()
            except OSError as e:
                for f in fds:
                    os.close(f)
                sock.send(b"error %d fork: %s" % (e.errno or 0,
                                                 str(e).encode()[:150]))
                continue
            if pid == 0:
                self.child(args, call, path, limit_as, fds)
            # The child says its pid: what we write to now, while it lives,
            # is copied.
            _, status, ru = os.wait4(pid, 0)
            for f in fds:
                os.close(f)
            sock.send(b"exit %d %d %d %d" % (
                status, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6),
                ru.ru_maxrss))
            if _shm is not None and _shm[0]:
                self.learn()

    def child(self, args, call, path, limit_as, fds):
        """In the forked child: the task's session, its pid said, its
        stdio and hard limit; then the task.  Never returns."""
        code = 1
        try:
            _setsid()
            sock = self.sock
            try:
                sock.send(b"pid %d" % _getpid())
            except OSError:
                _os_exit(1)     # the shepherd is gone, or killed us
            _dup2(fds[0], 0)
            _dup2(fds[1], 1)
            _dup2(fds[2], 2)
            for f in fds:
                if f > 2:
                    _close(f)
            _close(sock.fileno())
            if limit_as:
                _setrlimit(_RLIMIT_AS, (limit_as, limit_as))
            if self.np is not None:
                try:
                    self.np.seed()
                except Exception:
                    pass
            if call is not None:
                code = self.run(args[0], path, call)
            else:
                code = self.task(args)
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

    def prime(self):
        """Runs the child's code path here a few times, on a call that
        does nothing, writing nothing: the interpreter specialises its
        bytecode here, once, instead of in each child."""
        word = codec.encode_call(pickle.dumps(
            (True, [(_nothing, (), {})]), protocol=4))
        call = codec.call_pickle(word)
        for _ in range(100):
            modules_of(call)
            self.run(word, _DEVNULL, call)
            gc.freeze()
        self.imported()


_DEVNULL = os.devnull
_FSENC = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _fsdecode(b):
    return b.decode(*_FSENC)


def _nothing():
    return None


def serve(fd, task, nwords, run=None):
    """Serves the shepherd on socket fd until it closes: each task's argv
    past its first nwords words goes to task(args), in a fork; a call of
    simq.Executor's to run(word, path, pickle) (simq.task's run) if
    given."""
    sock = socket.socket(fileno=fd)
    os.environ.pop("SIMQ_RUNNER_FD", None)
    if run is None:
        def run(word, path, call):
            return task([word])
    return _Runner(sock, task, run).serve(nwords)
