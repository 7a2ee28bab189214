"""A server that greets, and a client that reads greetings (peer tests).

server PORT: listens on 0.0.0.0:PORT, prints "LISTENING", and greets every
client with "REAL" for at most 60 s. client HOST PORT N: makes N
connections, 100 ms apart, and prints "GOT <greeting>" (or "FAILED
<error>") for each. Every wait is bounded.
"""
import socket
import sys
import time


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(64)
    print("LISTENING", flush=True)
    ls.settimeout(60)
    while True:
        conn, _ = ls.accept()
        conn.sendall(b"REAL\n")
        conn.close()


def client(host, port, n):
    for _ in range(n):
        try:
            with socket.create_connection((host, port), timeout=5) as conn:
                conn.settimeout(5)
                print("GOT %s" % conn.makefile().readline().strip(), flush=True)
        except OSError as e:
            print("FAILED %s" % e, flush=True)
        time.sleep(0.1)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
