"""A TCP server and client for the IPv6 overlay tests: they print every
address the socket API hands them, so a test can check what the
application sees.

ov6echo.py server ADDR PORT [v6only]
    Listens on ADDR (an IPv6 address or ::, an AF_INET6 socket; an IPv4
    address or 0.0.0.0, an AF_INET one; v6only sets IPV6_V6ONLY) and
    prints "listening". For each connection it prints "accepted FROM=..
    LOCAL=.. PEER=..", reads to end of file and answers "FAMILY got N"
    (FAMILY: v4 or v6, the listener's). Runs until killed.
ov6echo.py client ADDR PORT BYTES [HOLD]
    Connects to ADDR (the family follows the address), prints "client
    LOCAL=.. PEER=.. DOMAIN=..", sends BYTES bytes, waits HOLD seconds
    (default 0), shuts down its side and prints "reply ..." with the
    answer; "client failed ERRNO" if the connect fails. Every wait is
    bounded (30 s).
"""
import errno
import socket
import sys
import time


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def show(a):
    return "[%s]:%d" % (a[0], a[1]) if len(a) == 4 else "%s:%d" % a


def server(addr, port, v6only):
    fam = family_of(addr)
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    l.bind((addr, port))
    l.listen(64)
    print("listening", flush=True)
    name = "v6" if fam == socket.AF_INET6 else "v4"
    while True:
        c, frm = l.accept()
        c.settimeout(30)
        print("accepted FROM=%s LOCAL=%s PEER=%s" % (show(frm), show(c.getsockname()), show(c.getpeername())), flush=True)
        n = 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            n += len(b)
        c.sendall(b"%s got %d" % (name.encode(), n))
        c.close()


def client(addr, port, size, hold):
    s = socket.socket(family_of(addr), socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect((addr, port))
    except OSError as e:
        print("client failed %s" % errno.errorcode.get(e.errno, str(e)), flush=True)
        return
    domain = s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    print("client LOCAL=%s PEER=%s DOMAIN=%d" % (show(s.getsockname()), show(s.getpeername()), domain), flush=True)
    chunk = b"x" * (1 << 16)
    left = size
    while left > 0:
        left -= s.send(chunk[:left])
    time.sleep(hold)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        reply += b
    print("reply %s" % reply.decode(), flush=True)


def main():
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "v6only")
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 0)


main()
