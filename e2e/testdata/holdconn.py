"""Holds connections open for the secure-mode policy tests.

server PORT: accepts connections, echoes, and prints "SERVER CLOSED <peer>
<reason>" when one ends. client HOST PORT: connects, prints "CONNECTED",
then sends a byte every 5 ms and reads its echo until the connection ends;
prints "CLIENT CLOSED <errno name> <CLOCK_MONOTONIC ns>" and exits. Every
wait is bounded (30 s in all).

With HOLD_INET6=1 the sockets are AF_INET6 ones carrying IPv4: the server
listens on :: (dual-stack), the client connects to ::ffff:HOST; peers are
printed as the IPv4 address they stand for.
"""
import errno
import os
import socket
import sys
import threading
import time


INET6 = os.environ.get("HOLD_INET6") == "1"


def serve(port):
    ls = socket.socket(socket.AF_INET6 if INET6 else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::" if INET6 else "0.0.0.0", port))
    ls.listen(16)
    print("LISTENING", flush=True)
    ls.settimeout(30)
    while True:
        conn, peer = ls.accept()
        threading.Thread(target=echo, args=(conn, peer), daemon=True).start()


def echo(conn, peer):
    conn.settimeout(30)
    reason = "EOF"
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except OSError as e:
        reason = errno.errorcode.get(e.errno, str(e))
    host = peer[0][len("::ffff:"):] if peer[0].startswith("::ffff:") else peer[0]
    print("SERVER CLOSED %s:%d %s" % (host, peer[1], reason), flush=True)


def client(host, port):
    try:
        conn = socket.create_connection(("::ffff:" + host if INET6 else host, port), timeout=5)
    except OSError as e:
        print("CONNECT FAILED %s" % errno.errorcode.get(e.errno, str(e)), flush=True)
        return
    print("CONNECTED", flush=True)
    deadline = time.monotonic() + 30
    reason = "TIMEOUT"
    try:
        while time.monotonic() < deadline:
            conn.sendall(b"x")
            if not conn.recv(1):
                reason = "EOF"
                break
            time.sleep(0.005)
    except OSError as e:
        reason = errno.errorcode.get(e.errno, str(e))
    print("CLIENT CLOSED %s %d" % (reason, time.clock_gettime_ns(time.CLOCK_MONOTONIC)), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(sys.argv[2], int(sys.argv[3]))
