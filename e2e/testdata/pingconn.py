"""Short echo connections for the secure-mode restart tests.

ping HOST PORT N: makes N connections one after the other; on each sends a
line, reads its echo, and prints "PING i OK" or "PING i FAILED <reason>";
ends with "PINGS <ok>/<N>". Every wait is bounded (5 s per step).
"""
import errno
import socket
import sys


def ping(host, port, i):
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            want = b"ping %d\n" % i
            conn.sendall(want)
            got = b""
            while len(got) < len(want):
                data = conn.recv(len(want) - len(got))
                if not data:
                    return "EOF"
                got += data
            return "OK" if got == want else "MISMATCH"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))


def main():
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ok = 0
    for i in range(n):
        result = ping(host, port, i)
        ok += result == "OK"
        print("PING %d %s" % (i, result if result == "OK" else "FAILED " + result), flush=True)
    print("PINGS %d/%d" % (ok, n), flush=True)


if __name__ == "__main__":
    main()
