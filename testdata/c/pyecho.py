#!/usr/bin/env python3
"""Blocking echo client/server with Python's socket module (stdlib only).

Same CLI and wire protocol as the C programs (see common.h):
  pyecho.py server ADDR PORT [N]
  pyecho.py client ADDR PORT [REFUSED_PORT]   (default PORT+1)
  pyecho.py selftest ADDR
Prints "ok NAME" / "FAIL NAME: reason" per check, "addr local=.. peer=.."
lines, and exits 0 only if every check passed. Exercises what Python
applications do: create_connection, settimeout (non-blocking connect plus
poll inside the interpreter), makefile/readline, sendall, recv_into.
"""
import os
import signal
import socket
import sys
import threading
import time

IO_TIMEOUT = 5.0
IDLE_TIMEOUT = 15.0

_lock = threading.Lock()
checks = 0
fails = 0
selftest_inproc = False


def _skipped(name):
    for pat in filter(None, os.environ.get("SLIMTEST_SKIP", "").split(",")):
        if name == pat or (pat.endswith("*") and name.startswith(pat[:-1])):
            return True
    return False


def check(name, cond, reason="", quiet=False):
    global checks, fails
    with _lock:
        checks += 1
        if cond:
            if not quiet:
                print("ok %s" % name, flush=True)
        elif _skipped(name):
            print("skip %s: %s" % (name, reason), flush=True)
        else:
            fails += 1
            print("FAIL %s: %s" % (name, reason), flush=True)
    return cond


def fmt(addr):
    return "%s:%d" % (addr[0], addr[1])


def parse(s):
    ip, _, port = s.rpartition(":")
    return (ip, int(port))


def print_addr(side, s, acc=None):
    try:
        local = fmt(s.getsockname())
    except OSError:
        local = "?"
    try:
        peer = fmt(s.getpeername())
    except OSError:
        peer = "?"
    line = "addr local=%s peer=%s side=%s" % (local, peer, side)
    if acc is not None:
        line += " acc=%s" % fmt(acc)
    print(line, flush=True)


def finish():
    print("# %d checks, %d failed" % (checks, fails), flush=True)
    return 0 if fails == 0 and checks > 0 else 1


# ---- server ---------------------------------------------------------------

def handle(conn, acc, idx):
    quiet = idx >= 4
    try:
        conn.settimeout(IDLE_TIMEOUT)
        peer, local = conn.getpeername(), conn.getsockname()
        if idx < 32:
            print_addr("server", conn, acc)
        check("srv_accept_addr_is_peer", peer == acc,
              "accept said %s, getpeername %s" % (fmt(acc), fmt(peer)), quiet)
        conn.sendall(("HELLO pid=%d peer=%s local=%s fails=%d\n"
                      % (os.getpid(), fmt(peer), fmt(local), fails)).encode())
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def serve(lsock, maxconns):
    idx = 0
    threads = []
    while maxconns <= 0 or idx < maxconns:
        try:
            conn, acc = lsock.accept()
        except OSError as e:
            check("srv_accept", False, "accept: %s" % e)
            time.sleep(0.1)
            continue
        t = threading.Thread(target=handle, args=(conn, acc, idx), daemon=True)
        t.start()
        threads.append(t)
        idx += 1
    for t in threads:
        t.join(30)


def listener(ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(128)
    return s


# ---- client ---------------------------------------------------------------

def read_hello(f):
    line = f.readline().decode()
    parts = dict(p.split("=", 1) for p in line.split()[1:])
    if not line.startswith("HELLO ") or not {"pid", "peer", "local", "fails"} <= parts.keys():
        raise ValueError("bad HELLO line %r" % line)
    return int(parts["pid"]), parse(parts["peer"]), parse(parts["local"]), int(parts["fails"])


def client(target, refused):
    last = None
    # create_connection with a timeout: non-blocking connect + poll inside.
    try:
        s = socket.create_connection(target, timeout=IO_TIMEOUT)
        check("create_connection", True)
    except OSError as e:
        check("create_connection", False, "%s: %s" % (fmt(target), e))
        return
    print_addr("client", s)
    check("getpeername_is_target", s.getpeername() == target,
          "peer %s, connected to %s" % (fmt(s.getpeername()), fmt(target)))
    check("family", s.family == socket.AF_INET and s.type == socket.SOCK_STREAM, str((s.family, s.type)))
    f = s.makefile("rb")
    try:
        last = read_hello(f)
        pid, speer, slocal, sfails = last
        check("client_local_eq_server_peer", speer == s.getsockname(),
              "client local %s, server peer %s" % (fmt(s.getsockname()), fmt(speer)))
        check("client_peer_eq_server_local", slocal == s.getpeername(),
              "client peer %s, server local %s" % (fmt(s.getpeername()), fmt(slocal)))
    except (OSError, ValueError) as e:
        check("hello", False, str(e))
    # Big echo with sendall (thread sends, we read) and recv_into.
    payload = bytes((i * 131 + 7) & 0xFF for i in range(1 << 20))
    sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
    sender.start()
    got = bytearray(len(payload))
    view, n = memoryview(got), 0
    try:
        while n < len(payload):
            r = f.readinto(view[n:])
            if not r:
                break
            n += r
    except OSError as e:
        check("echo_1m", False, str(e))
    sender.join(IO_TIMEOUT)
    check("echo_1m", n == len(payload) and got == payload, "got %d of %d bytes" % (n, len(payload)))
    # Timeout on an idle socket raises socket.timeout after about that long.
    s.settimeout(0.3)
    t0 = time.monotonic()
    try:
        s.recv(1)
        check("recv_timeout", False, "recv returned without a timeout")
    except socket.timeout:
        dt = time.monotonic() - t0
        check("recv_timeout", 0.2 <= dt < 3, "timed out after %.2f s" % dt)
    s.settimeout(IO_TIMEOUT)
    s.shutdown(socket.SHUT_WR)
    check("eof_after_shutdown", s.recv(1) == b"", "data after our SHUT_WR")
    f.close()
    s.close()

    # Refused, blocking and with a timeout.
    for name, timeout in (("connect_refused", None), ("connect_refused_timeout", IO_TIMEOUT)):
        r = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        r.settimeout(timeout)
        try:
            r.connect(refused)
            check(name, False, "connect to %s succeeded" % fmt(refused))
        except ConnectionRefusedError:
            check(name, True)
        except OSError as e:
            check(name, False, "%s (want ECONNREFUSED)" % e)
        r.close()
    # connect_ex reports errno instead of raising.
    r = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    r.settimeout(IO_TIMEOUT)
    err = r.connect_ex(refused)
    check("connect_ex_refused", err == 111, "connect_ex returned %d" % err)
    r.close()

    # A few sequential clients with `with` blocks.
    okc, why = 0, ""
    for i in range(5):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c:
                c.settimeout(IO_TIMEOUT)
                c.connect(target)
                cf = c.makefile("rwb")
                last = read_hello(cf)
                if last[1] == c.getsockname():
                    cf.write(b"line %d\n" % i)
                    cf.flush()
                    if cf.readline() == b"line %d\n" % i:
                        okc += 1
                else:
                    why = "server saw peer %s, we are %s" % (fmt(last[1]), fmt(c.getsockname()))
                cf.close()
        except (OSError, ValueError) as e:
            why = str(e)
    check("sequential_makefile", okc == 5, "%d of 5: %s" % (okc, why))
    if last is not None and not selftest_inproc:
        check("server_clean", last[3] == 0, "server reported %d failed checks" % last[3])


def main(argv):
    global selftest_inproc
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, ip = argv[1], argv[2]
    if mode == "server" and len(argv) >= 4:
        port = int(argv[3])
        maxconns = int(argv[4]) if len(argv) > 4 else 0
        lsock = listener(ip, port)
        try:
            reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            reserve.bind((ip, port + 1))  # bound, not listening: refused
        except OSError:
            reserve = None
        print("# pyecho listening on %s:%d" % (ip, port), flush=True)
        serve(lsock, maxconns)
        return finish()
    if mode == "client" and len(argv) >= 4:
        port = int(argv[3])
        rport = int(argv[4]) if len(argv) > 4 else port + 1
        signal.alarm(20)
        client((ip, port), (ip, rport))
        return finish()
    if mode == "selftest":
        signal.alarm(20)
        lsock = listener(ip, 0)
        reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserve.bind((ip, 0))
        target, refused = lsock.getsockname(), reserve.getsockname()
        print("# pyecho selftest server %s refused %s" % (fmt(target), fmt(refused)), flush=True)
        selftest_inproc = True
        threading.Thread(target=serve, args=(lsock, 0), daemon=True).start()
        client(target, refused)
        return finish()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
