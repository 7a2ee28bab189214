"""A program in a container that makes its router make pool sockets ahead
for it, and keeps its router connection open (router/poolahead_linux.go).
Run it under slim exec (so it is enrolled); it speaks the router protocol
itself (docs/protocol.md section 1).

poolahead.py GO
  asks for 4 pool sockets twice on one connection (the router then makes
  the next 4 ahead), closes them, prints "ASKED" and waits, connection
  open, until the file GO exists (60 s at most).
"""
import array
import os
import socket
import struct
import sys
import time

MAGIC, VERSION, POOL, POOL_OK = 0x4D494C53, 1, 2, 0x82


def ask_pool(router, ident, count):
    router.send(struct.pack("<IHHII", MAGIC, VERSION, POOL, ident, 4) + struct.pack("<I", count))
    fds = array.array("i")
    msg, anc, _, _ = router.recvmsg(1040, socket.CMSG_SPACE(count * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    for fd in fds:
        os.close(fd)
    kind = struct.unpack_from("<H", msg, 6)[0]
    if kind != POOL_OK or len(fds) != count:
        sys.exit("POOL refused: type %#x, %d fds, %r" % (kind, len(fds), msg[16:]))


def main():
    router = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    router.settimeout(5)
    router.connect(os.environ["SLIM_ROUTER_SOCK"])
    ask_pool(router, 1, 4)
    ask_pool(router, 2, 4)
    print("ASKED", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[1]):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + sys.argv[1])
        time.sleep(0.02)
    router.close()


if __name__ == "__main__":
    main()
