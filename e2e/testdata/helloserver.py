"""A server written as its users write it: PORT, bound on all addresses and listening
with Python's defaults, prints "listening", greets each client with a "HELLO" line and
keeps the connection until the client closes it. It stops after 60 s at most."""
import socket
import sys
import threading


def hold(conn):
    with conn:
        conn.settimeout(60)
        conn.sendall(b"HELLO\n")
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass


def main():
    server = socket.create_server(("", int(sys.argv[1])))
    print("listening", flush=True)
    server.settimeout(60)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=hold, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
