"""The simq wire protocol (proto/PROTOCOL.md): words, replies, one connection.

Standard library only.  A Connection speaks HELLO, sends requests (one or
pipelined) and reads their replies in order.
"""

import os
import select
import socket

from .errors import (BrokerUnreachable, ConnectionLost, RequestError,
                     TokenRefused, UnknownJob, error_for)

PROTO_VERSION = 1
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7733
DEFAULT_SERVER = "%s:%d" % (DEFAULT_HOST, DEFAULT_PORT)
LINE_MAX = 65536          # SIMQ_LINE_MAX, terminator included
WORDS_MAX = 4096          # SIMQ_WORDS_MAX
PAYLOAD_MAX = 65536       # SIMQ_PAYLOAD_MAX: a job's result payload
BATCH_MAX = 2 << 20       # SIMQ_BATCH_MAX
BATCH_JOBS_MAX = 10000    # SIMQ_BATCH_JOBS_MAX
WAIT_MAX_MS = 3600000     # WAIT's longest hold
PIPELINE_WINDOW = 256     # requests in flight before their replies are read

_LITERAL = bytes(b for b in range(256)
                 if b > 0x20 and b != 0x25 and b != 0x7F)
_ENC = [("%%%02X" % b) if b not in _LITERAL else chr(b) for b in range(256)]


def enc(s):
    """A string or bytes as one protocol word."""
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    if not s:
        return "%"
    if not s.translate(None, _LITERAL):    # all literal, found in C
        return s.decode("utf-8", "surrogateescape")
    out = []
    for b in s:
        if b < 0x80:
            out.append(_ENC[b])
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def dec_bytes(w):
    """A protocol word back to its bytes."""
    if isinstance(w, str):
        w = w.encode("utf-8", "surrogateescape")
    if w == b"%":
        return b""
    if b"%" not in w:
        return w
    out = bytearray()
    i = 0
    n = len(w)
    while i < n:
        c = w[i]
        if c == 0x25 and i + 2 < n:
            out.append(int(w[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def dec(w):
    return dec_bytes(w).decode("utf-8", "surrogateescape")


class Item(dict):
    """One item line: .kind, the key=value words (decoded; a repeated key
    keeps its last value here, and all of them in .multi[key]), .argv."""

    def __init__(self, line):
        super().__init__()
        head, dd, tail = line.partition(" -- ")
        if not dd and head.endswith(" --"):
            head, dd = head[:-3], " -- "
        words = head.split()
        self.kind = words[0] if words else ""
        self._argv = tail if dd else None
        self.multi = {}
        for w in words[1:]:
            k, eq, v = w.partition("=")
            if eq:
                v = dec(v) if "%" in v else v
                self[k] = v
                m = self.multi.get(k)
                if m is None:
                    self.multi[k] = [v]
                else:
                    m.append(v)

    @property
    def argv(self):
        """The words after "--", decoded (when asked for: a job's command
        is most of its item line)."""
        a = self._argv
        if isinstance(a, str):
            a = self._argv = [dec(x) for x in a.split()]
        return a

    @argv.setter
    def argv(self, v):
        self._argv = v

    def __repr__(self):
        return "Item(%s, %s, argv=%r)" % (self.kind, dict.__repr__(self),
                                          self.argv)


class Reply:
    """One reply: .kind is OK, ERR, ITEMS or DATA."""

    __slots__ = ("kind", "words", "items", "data")

    def __init__(self, kind, words, items=None, data=None):
        self.kind = kind
        self.words = words
        self.items = items
        self.data = data

    @property
    def ok(self):
        return self.kind != "ERR"

    def raise_for(self, what=None):
        """Raises the exception an ERR reply stands for; returns self."""
        if self.kind == "ERR":
            code = self.words[0] if self.words else "server"
            msg = " ".join(self.words[1:])
            raise error_for(code, msg, what)
        return self


def split_server(addr):
    """(host, port) of HOST:PORT, :PORT, HOST, [V6]:PORT, [V6] or a bare
    IPv6 address, as lib/server.c splits them; ValueError otherwise."""
    if addr.startswith("["):
        end = addr.find("]")
        if end <= 1 or (addr[end + 1:] and addr[end + 1] != ":"):
            raise ValueError("bad server address %r" % addr)
        host = addr[1:end]
        port = addr[end + 2:] if addr[end + 1:] else None
    elif addr.count(":") == 1:
        host, port = addr.split(":")
    else:
        if not addr:
            raise ValueError("bad server address %r" % addr)
        host, port = addr, None
    if port is not None:
        if (not port.isdigit() or not port.isascii() or
                (len(port) > 1 and port[0] == "0") or
                not 0 < int(port) <= 65535):
            raise ValueError("bad port in server address %r" % addr)
        port = int(port)
    return host or DEFAULT_HOST, port or DEFAULT_PORT


def pick_server(server=None):
    """The broker's address as every simq program picks it: the argument,
    else $SIMQ_SERVER, else 127.0.0.1:7733 (empty values do not count)."""
    if server:
        return server
    return os.environ.get("SIMQ_SERVER") or DEFAULT_SERVER


def pick_token(token=None, token_file=None):
    """The token: the argument, else token_file's content (trailing blank
    lines and spaces cut, as lib/token.c reads it), else $SIMQ_TOKEN."""
    if token:
        return token
    if token_file is not None:
        with open(token_file, "rb") as f:
            data = f.read(4 * 1024 + 1)
        data = data.rstrip(b"\r\n \t")
        if not data:
            raise ValueError("the token file %s is empty" % token_file)
        if b"\0" in data:
            raise ValueError("the token file %s holds a NUL byte"
                             % token_file)
        return data.decode("utf-8", "surrogateescape")
    return os.environ.get("SIMQ_TOKEN") or None


class Connection:
    """One session with the broker: blocking, pipelined, not thread-safe."""

    def __init__(self, server, token=None, timeout=None, connect_timeout=10.0):
        self.server = server
        self.host, self.port = split_server(server)
        self.token = token
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.pos = 0
        self.connect_timeout = connect_timeout

    # -- connecting --------------------------------------------------------
    def connect(self):
        try:
            s = socket.create_connection((self.host, self.port),
                                         timeout=self.connect_timeout)
        except OSError as e:
            raise BrokerUnreachable(
                "cannot reach the simq broker at %s (%s); is simqd running?"
                " (set SIMQ_SERVER or server=)" % (self.server,
                                                    e.strerror or e)) from e
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.timeout)
        self.sock = s
        self.buf = b""
        self.pos = 0
        line = "HELLO %d" % PROTO_VERSION
        if self.token:
            line += " " + enc(self.token)
        try:
            r = self._roundtrip([(line, None)])[0]
        except ConnectionLost as e:
            self.close()
            raise BrokerUnreachable("the broker at %s closed the connection "
                                    "during HELLO" % self.server) from e
        if r.kind == "ERR":
            self.close()
            code = r.words[0] if r.words else ""
            if code == "auth":
                raise TokenRefused(
                    "the broker at %s %s (%s); set SIMQ_TOKEN or token= to "
                    "the broker's token" % (
                        self.server, "refused the token" if self.token
                        else "wants a token", " ".join(r.words[1:])))
            r.raise_for()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""
        self.pos = 0

    def stale(self):
        """True when an idle connection has been closed by the broker."""
        if self.sock is None:
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)   # nothing is owed to an idle client: EOF or reset

    # -- I/O ---------------------------------------------------------------
    def _fill(self):
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            raise
        except OSError as e:
            raise ConnectionLost("lost the connection to the broker at %s "
                                 "(%s)" % (self.server, e)) from e
        if not data:
            raise ConnectionLost("the broker at %s closed the connection"
                                 % self.server)
        if self.pos:
            self.buf = self.buf[self.pos:] + data
            self.pos = 0
        else:
            self.buf += data

    # The buffer is read from self.pos on, so that taking a line does not
    # copy what follows it (a reply of many items is one recv).
    def _line(self):
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                return line.decode("utf-8", "surrogateescape")
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        data = self.buf[self.pos:self.pos + n]
        self.pos += n
        return data

    def _reply(self):
        words = self._line().split()
        if not words:
            raise ConnectionLost("an empty reply from the broker at %s"
                                 % self.server)
        kind = words[0]
        if kind == "ITEMS":
            n = int(words[1])
            items = [Item(self._line()) for _ in range(n)]
            return Reply(kind, words[1:], items=items)
        if kind == "DATA":
            n = int(words[1])
            data = self._exact(n)
            self._line()                 # its CR LF
            return Reply(kind, words[1:], data=data)
        return Reply(kind, words[1:])

    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ConnectionLost("lost the connection to the broker at %s "
                                 "(%s)" % (self.server, e)) from e

    @staticmethod
    def frame(line, body=None):
        if body is None:
            return line.encode("utf-8", "surrogateescape") + b"\r\n"
        return (line.encode("utf-8", "surrogateescape") + b" %d\r\n"
                % len(body) + body + b"\r\n")

    def _roundtrip(self, reqs):
        """Sends (line, body) requests, PIPELINE_WINDOW at a time, and reads
        their replies in order."""
        replies = []
        for i in range(0, len(reqs), PIPELINE_WINDOW):
            chunk = reqs[i:i + PIPELINE_WINDOW]
            self._send(b"".join(self.frame(l, b) for l, b in chunk))
            for _ in chunk:
                replies.append(self._reply())
        return replies

    def requests(self, reqs):
        if self.sock is None:
            self.connect()
        try:
            return self._roundtrip(reqs)
        except (ConnectionLost, socket.timeout):
            self.close()
            raise
