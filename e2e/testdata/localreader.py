"""What an unprivileged local user can read of Slim (issue 9, item 18).

localreader.py CHECK...: each CHECK is read:PATH (open and read a byte),
list:DIR (list a directory), connect:PATH (connect a unix stream socket)
or hello:PATH (connect a unix seqpacket socket and send HELLO), reserve:PATH
(RESERVE with a bound TCP socket) or namebook:PATH (NAMEBOOK). For each it
prints "<check> OK" or "<check> <errno name>"; hello prints "<check> OK
<reply type> <errno>" when the router answered, reserve and namebook also
"<N> fds" (descriptors the reply carried).
"""
import errno
import os
import socket
import struct
import sys

MAGIC = 0x4D494C53


def attempt(kind, path):
    if kind == "read":
        with open(path, "rb") as f:
            f.read(1)
        return "OK"
    if kind == "list":
        os.listdir(path)
        return "OK"
    if kind == "connect":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
        return "OK"
    if kind == "hello":
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(2)
            s.connect(path)
            s.send(struct.pack("<IHHII", MAGIC, 1, 1, 7, 0))
            reply = s.recv(2048)
        kind_, code = struct.unpack("<H", reply[6:8])[0], 0
        if kind_ == 0xFF and len(reply) >= 20:
            code = struct.unpack("<i", reply[16:20])[0]
        return "OK %#x %s" % (kind_, errno.errorcode.get(code, code))
    if kind in ("reserve", "namebook"):
        return request(kind, path)
    raise ValueError(kind)


def request(kind, path):
    """RESERVE (with a bound TCP socket) or NAMEBOOK: the router's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s, socket.socket() as bound:
        s.settimeout(2)
        s.connect(path)
        if kind == "reserve":
            bound.bind(("0.0.0.0", 0))
            header = struct.pack("<IHHII", MAGIC, 1, 12, 8, 0)
            s.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", bound.fileno()))])
        else:
            s.send(struct.pack("<IHHII", MAGIC, 1, 13, 9, 0))
        reply, fds, _, _ = socket.recv_fds(s, 2048, 4)
        for fd in fds:
            os.close(fd)
    kind_, code = struct.unpack("<H", reply[6:8])[0], 0
    if kind_ == 0xFF and len(reply) >= 20:
        code = struct.unpack("<i", reply[16:20])[0]
    return "OK %#x %s %d fds" % (kind_, errno.errorcode.get(code, code), len(fds))


for check in sys.argv[1:]:
    kind, path = check.split(":", 1)
    try:
        result = attempt(kind, path)
    except OSError as e:
        result = errno.errorcode.get(e.errno, str(e))
    print("%s %s" % (check, result), flush=True)
