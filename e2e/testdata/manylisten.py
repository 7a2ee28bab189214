"""A server with many listeners: more than a directory table of the
default size holds (docs/protocol.md section 2).

manylisten.py FIRST N: listens on 0.0.0.0:FIRST .. FIRST+N-1 (raising its
open-files limit as needed), waits for connections on all of them with
one epoll set, prints "LISTENING N", and answers each client with a HELLO
line in testdata/c/common.h's format, for at most 120 s.
"""
import os
import resource
import selectors
import socket
import sys
import time


def listeners(first, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    socks = []
    for port in range(first, first + n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(16)
        s.setblocking(False)
        socks.append(s)
    return socks


def hello(conn):
    peer = "%s:%d" % conn.getpeername()
    local = "%s:%d" % conn.getsockname()
    return ("HELLO pid=%d peer=%s local=%s fails=0\n" % (os.getpid(), peer, local)).encode()


def serve(first, n):
    sel = selectors.EpollSelector()
    for s in listeners(first, n):
        sel.register(s, selectors.EVENT_READ)
    print("LISTENING %d" % n, flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                continue
            conn.setblocking(True)
            conn.settimeout(5)
            conn.sendall(hello(conn))
            conn.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
