"""Echo server and clients for the cluster-store tests. Every wait is bounded.

server PORT SECONDS: listens on 0.0.0.0:PORT, prints "LISTENING", echoes
every connection, and exits after SECONDS.
client HOST PORT BYTES: connects, sends BYTES bytes, reads them back, prints
"OK" (or "FAILED <reason>").
hold HOST PORT SECONDS: connects, prints "CONNECTED", then sends a byte and
reads its echo every 50 ms; prints "HELD <s>" after each second s and "HOLD DONE"
at the end, or "HOLD CLOSED <reason>" if the connection fails.
"""
import socket
import sys
import threading
import time


def echo(conn):
    conn.settimeout(60)
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    conn.close()


def serve(port, seconds):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    print("LISTENING", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ls.settimeout(max(0.1, end - time.monotonic()))
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            break
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def client(host, port, size):
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.settimeout(5)
            payload = b"x" * size
            conn.sendall(payload)
            got = 0
            while got < size:
                data = conn.recv(65536)
                if not data:
                    raise OSError("EOF after %d bytes" % got)
                got += len(data)
        print("OK", flush=True)
    except OSError as e:
        print("FAILED %s" % e, flush=True)


def hold(host, port, seconds):
    try:
        conn = socket.create_connection((host, port), timeout=5)
        conn.settimeout(5)
        print("CONNECTED", flush=True)
        start = time.monotonic()
        end, reported = start + seconds, 0
        while time.monotonic() < end:
            conn.sendall(b"h")
            if conn.recv(1) != b"h":
                raise OSError("bad echo")
            elapsed = int(time.monotonic() - start)
            if elapsed > reported:
                reported = elapsed
                print("HELD %d" % elapsed, flush=True)
            time.sleep(0.05)
        conn.close()
        print("HOLD DONE", flush=True)
    except OSError as e:
        print("HOLD CLOSED %s" % e, flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        serve(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
