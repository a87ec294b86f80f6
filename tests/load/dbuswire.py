# SPDX-License-Identifier: LGPL-2.1-or-later
"""
dbuswire — a D-Bus client that speaks the wire protocol itself, for tests
that must do what well-behaved libraries refuse to: attach file descriptors
to a message whose signature has none, nest variants as deep as the
protocol allows, send strings of many MiB, pipeline the authentication, a
call and a close in one write, or never read a reply.

Marshalling follows the D-Bus specification: little-endian, every value
aligned to its natural boundary from the start of the message, the header
an array of (byte code, variant) fields padded to 8, then the body. Only
what the tests need is here: every basic type, arrays, structs, dict
entries and variants (Variant(signature, value)); replies are parsed with
the same code.
"""

import os
import socket
import struct

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1

F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL = 1, 2, 3, 4, 5
F_DESTINATION, F_SENDER, F_SIGNATURE, F_UNIX_FDS = 6, 7, 8, 9

BUS = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

_FIXED = {
    "y": ("<B", 1), "b": ("<I", 4), "n": ("<h", 2), "q": ("<H", 2),
    "i": ("<i", 4), "u": ("<I", 4), "x": ("<q", 8), "t": ("<Q", 8),
    "d": ("<d", 8), "h": ("<I", 4),
}
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8,
          "h": 4, "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}


class Variant:
    """A value of type v: its own signature and the value."""

    def __init__(self, signature, value):
        self.signature = signature
        self.value = value

    def __repr__(self):
        return f"Variant({self.signature!r}, {self.value!r})"


class ObjectPath(str):
    pass


class Signature(str):
    pass


class Fd(int):
    """An index into the message's file descriptors (type h)."""


def nested_variant(depth, signature, value):
    """depth variants around value: v(v(...v(value)))."""
    out = Variant(signature, value)
    for _ in range(depth - 1):
        out = Variant("v", out)
    return out


def split_signature(sig):
    """'sa{sv}(ii)' -> ['s', 'a{sv}', '(ii)']."""
    out, i = [], 0
    while i < len(sig):
        j = _complete_type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _complete_type_end(sig, i):
    c = sig[i]
    if c == "a":
        return _complete_type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        depth, j = 0, i
        while j < len(sig):
            if sig[j] in "({":
                depth += 1
            elif sig[j] in ")}":
                depth -= 1
                if depth == 0:
                    if sig[j] != close:
                        raise ValueError(f"bad signature {sig!r}")
                    return j + 1
            j += 1
        raise ValueError(f"unterminated signature {sig!r}")
    return i + 1


class _Writer:
    def __init__(self):
        self.buf = bytearray()

    def align(self, n):
        pad = (-len(self.buf)) % n
        self.buf += b"\0" * pad

    def put(self, sig, value):
        c = sig[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            self.buf += struct.pack(fmt, int(value) if c != "d" else value)
        elif c in "so":
            data = value.encode() if isinstance(value, str) else value
            self.align(4)
            self.buf += struct.pack("<I", len(data))
            self.buf += data
            self.buf += b"\0"
        elif c == "g":
            data = value.encode()
            self.buf += struct.pack("<B", len(data)) + data + b"\0"
        elif c == "v":
            self.put("g", value.signature)
            self.put(value.signature, value.value)
        elif c == "a":
            elem = sig[1:_complete_type_end(sig, 1)]
            self.align(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.align(_ALIGN[elem[0]])
            start = len(self.buf)
            if elem[0] == "{":
                items = value.items() if isinstance(value, dict) else value
                for k, v in items:
                    self.put(elem, (k, v))
            elif elem == "y" and isinstance(value, (bytes, bytearray)):
                self.buf += value
            else:
                for v in value:
                    self.put(elem, v)
            struct.pack_into("<I", self.buf, at, len(self.buf) - start)
        elif c in "({":
            self.align(8)
            inner = sig[1:-1]
            for t, v in zip(split_signature(inner), value):
                self.put(t, v)
        else:
            raise ValueError(f"cannot marshal type {c!r}")


class _Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def align(self, n):
        self.pos += (-self.pos) % n

    def get(self, sig):
        c = sig[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            (v,) = struct.unpack_from(fmt, self.data, self.pos)
            self.pos += size
            if c == "b":
                return bool(v)
            if c == "h":
                return Fd(v)
            return v
        if c in "so":
            self.align(4)
            (n,) = struct.unpack_from("<I", self.data, self.pos)
            s = bytes(self.data[self.pos + 4:self.pos + 4 + n]).decode()
            self.pos += 4 + n + 1
            return ObjectPath(s) if c == "o" else s
        if c == "g":
            n = self.data[self.pos]
            s = bytes(self.data[self.pos + 1:self.pos + 1 + n]).decode()
            self.pos += 1 + n + 1
            return Signature(s)
        if c == "v":
            s = self.get("g")
            return Variant(s, self.get(s))
        if c == "a":
            elem = sig[1:_complete_type_end(sig, 1)]
            self.align(4)
            (n,) = struct.unpack_from("<I", self.data, self.pos)
            self.pos += 4
            self.align(_ALIGN[elem[0]])
            end = self.pos + n
            out = []
            while self.pos < end:
                out.append(self.get(elem))
            return dict(out) if elem[0] == "{" else out
        if c in "({":
            self.align(8)
            return tuple(self.get(t) for t in split_signature(sig[1:-1]))
        raise ValueError(f"cannot unmarshal type {c!r}")


def marshal(sig, values):
    w = _Writer()
    for t, v in zip(split_signature(sig), values):
        w.put(t, v)
    return w.buf


class Message:
    def __init__(self, type, serial=0, flags=0, fields=None, body=b"", signature="", args=(),
                 fds=()):
        self.type = type
        self.serial = serial
        self.flags = flags
        self.fields = dict(fields or {})
        self.signature = signature
        self.body = body
        self.args = list(args)
        self.fds = list(fds)

    @property
    def reply_serial(self):
        return self.fields.get(F_REPLY_SERIAL)

    @property
    def error_name(self):
        return self.fields.get(F_ERROR_NAME)

    @property
    def member(self):
        return self.fields.get(F_MEMBER)

    def __repr__(self):
        kind = {1: "call", 2: "return", 3: "error", 4: "signal"}.get(self.type, self.type)
        return (f"<{kind} serial={self.serial} {self.fields.get(F_MEMBER) or self.error_name or ''} "
                f"reply_to={self.reply_serial} args={self.args!r:.200} fds={len(self.fds)}>")


def encode_message(type, serial, fields, signature="", args=(), flags=0, n_fds=None, body=None):
    """The bytes of one message. fields: {code: (sig, value)}. n_fds: the
    UNIX_FDS header (None: none). body: raw body bytes instead of args."""
    if body is None:
        body = marshal(signature, args)
    f = dict(fields)
    if signature:
        f[F_SIGNATURE] = ("g", signature)
    if n_fds is not None:
        f[F_UNIX_FDS] = ("u", n_fds)
    w = _Writer()
    w.put("y", ord("l"))
    w.put("y", type)
    w.put("y", flags)
    w.put("y", 1)
    w.put("u", len(body))
    w.put("u", serial)
    w.put("a(yv)", [(code, Variant(s, v)) for code, (s, v) in sorted(f.items())])
    w.align(8)
    w.buf += body
    return w.buf


def decode_header_length(data):
    """Total length of the message at the start of data, or None if the
    fixed part is not complete."""
    if len(data) < 16:
        return None
    body_len, _serial, fields_len = struct.unpack_from("<III", data, 4)
    header = 16 + fields_len
    header += (-header) % 8
    return header + body_len


def decode_message(data, fds=()):
    r = _Reader(data)
    endian, type, flags = data[0], data[1], data[2]
    if endian != ord("l"):
        raise ValueError("big-endian messages are not supported here")
    r.pos = 4
    body_len = r.get("u")
    serial = r.get("u")
    fields = {code: v.value for code, v in r.get("a(yv)")}
    r.align(8)
    body_start = r.pos
    sig = fields.get(F_SIGNATURE, "")
    args = []
    rb = _Reader(data[body_start:body_start + body_len])
    for t in split_signature(sig):
        args.append(rb.get(t))
    return Message(type, serial, flags, fields, data[body_start:body_start + body_len], sig, args, fds)


def socket_path(address):
    """The path of a unix:path=... D-Bus address."""
    for part in address.split(";"):
        if part.startswith("unix:"):
            kv = dict(p.split("=", 1) for p in part[5:].split(","))
            if "path" in kv:
                return kv["path"]
            if "abstract" in kv:
                return "\0" + kv["abstract"]
    raise ValueError(f"no unix path in address {address!r}")


def auth_bytes(negotiate_fds=True):
    uid = str(os.geteuid()).encode().hex().encode()
    out = b"\0AUTH EXTERNAL " + uid + b"\r\n"
    if negotiate_fds:
        out += b"NEGOTIATE_UNIX_FD\r\n"
    return out + b"BEGIN\r\n"


class Connection:
    """One connection to the bus. connect() authenticates and says Hello
    (unless hello=False); call() sends and waits; send() only sends."""

    def __init__(self, address, timeout=30):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.serial = 0
        self.rbuf = bytearray()
        self.rfds = []
        self.unique_name = None
        self.queue = []

    def next_serial(self):
        self.serial += 1
        return self.serial

    def connect(self, hello=True, negotiate_fds=True):
        self.sock.connect(socket_path(self.address))
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
        line = self._auth_line()
        if not line.startswith(b"OK "):
            raise ConnectionError(f"authentication refused: {line!r}")
        if negotiate_fds:
            self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
            line = self._auth_line()
            if not line.startswith(b"AGREE_UNIX_FD"):
                raise ConnectionError(f"fd passing refused: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        if hello:
            reply = self.call(BUS, BUS_PATH, BUS, "Hello")
            self.unique_name = reply.args[0]
        return self

    def _auth_line(self):
        while b"\r\n" not in self.rbuf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the bus closed the connection during authentication")
            self.rbuf += chunk
        line, _, rest = bytes(self.rbuf).partition(b"\r\n")
        self.rbuf = bytearray(rest)
        return line

    def encode_call(self, dest, path, iface, member, signature="", args=(), flags=0, n_fds=None,
                    body=None, serial=None):
        fields = {F_PATH: ("o", path), F_MEMBER: ("s", member)}
        if dest:
            fields[F_DESTINATION] = ("s", dest)
        if iface:
            fields[F_INTERFACE] = ("s", iface)
        return encode_message(METHOD_CALL, serial or self.next_serial(), fields, signature, args,
                              flags, n_fds, body)

    def send_raw(self, data, fds=()):
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
            sent = self.sock.sendmsg([data], anc)
            if sent < len(data):
                self.sock.sendall(data[sent:])
        else:
            self.sock.sendall(data)

    def send(self, dest, path, iface, member, signature="", args=(), fds=(), flags=0, n_fds=None):
        """Sends a call and returns its serial. fds are attached whatever the
        signature says; n_fds sets the UNIX_FDS header (default: len(fds))."""
        serial = self.next_serial()
        if n_fds is None and fds:
            n_fds = len(fds)
        data = self.encode_call(dest, path, iface, member, signature, args, flags, n_fds,
                                serial=serial)
        self.send_raw(data, fds)
        return serial

    def _fill(self):
        data, anc, flags, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(253 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // 4
                self.rfds.extend(struct.unpack(f"{n}i", payload[:n * 4]))
        if not data:
            raise ConnectionError("the bus closed the connection")
        self.rbuf += data

    def recv(self):
        """The next message (fds taken from those received, in order)."""
        while True:
            n = decode_header_length(self.rbuf)
            if n is not None and len(self.rbuf) >= n:
                data = bytes(self.rbuf[:n])
                del self.rbuf[:n]
                probe = decode_message(data)
                nfds = probe.fields.get(F_UNIX_FDS, 0)
                fds, self.rfds = self.rfds[:nfds], self.rfds[nfds:]
                probe.fds = fds
                return probe
            self._fill()

    def wait_reply(self, serial):
        for i, m in enumerate(self.queue):
            if m.reply_serial == serial:
                return self.queue.pop(i)
        while True:
            m = self.recv()
            if m.type in (METHOD_RETURN, ERROR) and m.reply_serial == serial:
                return m
            if m.type in (METHOD_RETURN, ERROR):
                self.queue.append(m)
            else:
                for fd in m.fds:
                    os.close(fd)

    def call(self, dest, path, iface, member, signature="", args=(), fds=(), n_fds=None):
        return self.wait_reply(self.send(dest, path, iface, member, signature, args, fds,
                                         n_fds=n_fds))

    def close(self):
        for fd in self.rfds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.rfds = []
        self.sock.close()
