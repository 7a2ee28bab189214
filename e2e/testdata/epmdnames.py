"""Asks Erlang's port mapper (epmd) at HOST:4369 for the nodes it knows
(NAMES_REQ) and prints its answer: "name rabbit at port 25672" lines."""
import socket
import sys

with socket.create_connection((sys.argv[1], 4369), timeout=5) as s:
    s.sendall(b"\x00\x01n")  # length 1, NAMES_REQ
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
print(answer[4:].decode(), end="", flush=True)  # after epmd's own port
