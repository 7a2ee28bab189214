"""A hostile program in a container that keeps spare pool sockets (issue 9,
item 1). Run it under slim exec (so it is enrolled); it speaks the router
protocol itself (docs/protocol.md section 1), as any program could.

poolhold.py GO PEER_PORT TARGET_HOST TARGET_PORT
  1. asks its router for 2 pool sockets, sets SO_REUSEADDR on the first and
     prints "POOLED";
  2. when the file GO.1 exists: binds the first to 0.0.0.0:PEER_PORT (the
     router's peer port) and listens; prints "PEERPORT TAKEN" or
     "PEERPORT REFUSED <errno>";
  3. when GO.2 exists: connects the second to TARGET_HOST:TARGET_PORT (a
     service of the host, not for containers), writes and reads; prints
     "RETARGET CONNECTED <data>" or "RETARGET REFUSED <errno>";
  4. when GO.3 exists: exits, closing the sockets.
Every wait is bounded (60 s in all, 5 s per socket call).
"""
import array
import errno
import os
import socket
import struct
import sys
import time

MAGIC, VERSION, POOL, POOL_OK = 0x4D494C53, 1, 2, 0x82


def errname(e):
    return errno.errorcode.get(e.errno, str(e))


def ask_pool(count):
    router = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    router.settimeout(5)
    router.connect(os.environ["SLIM_ROUTER_SOCK"])
    router.send(struct.pack("<IHHII", MAGIC, VERSION, POOL, 1, 4) + struct.pack("<I", count))
    fds = array.array("i")
    msg, anc, _, _ = router.recvmsg(1040, socket.CMSG_SPACE(count * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    router.close()
    kind = struct.unpack_from("<H", msg, 6)[0]
    if kind != POOL_OK or len(fds) != count:
        sys.exit("POOL refused: type %#x, %d fds, %r" % (kind, len(fds), msg[16:]))
    return [socket.socket(fileno=fd) for fd in fds]


deadline = time.monotonic() + 60


def wait_for(path):
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.02)


def main():
    go, peer_port, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    spare, other = ask_pool(2)
    spare.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("POOLED", flush=True)

    wait_for(go + ".1")
    try:
        spare.bind(("0.0.0.0", peer_port))
        spare.listen(8)
        print("PEERPORT TAKEN", flush=True)
    except OSError as e:
        print("PEERPORT REFUSED %s" % errname(e), flush=True)

    wait_for(go + ".2")
    other.settimeout(5)
    try:
        other.connect((host, port))
        other.sendall(b"hello\n")  # pool sockets connect with TCP_FASTOPEN_CONNECT: the SYN leaves now
        print("RETARGET CONNECTED %r" % other.recv(100), flush=True)
    except OSError as e:
        print("RETARGET REFUSED %s" % errname(e), flush=True)

    wait_for(go + ".3")


if __name__ == "__main__":
    main()
