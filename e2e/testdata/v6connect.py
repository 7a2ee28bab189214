"""Connects to an IPv4 overlay address in the ways a program can: an AF_INET
socket, an AF_INET6 socket with the v4-mapped address (connect, and
sendto with MSG_FASTOPEN), for the secure-mode policy tests.

v6connect.py HOST PORT prints, for each way, "WAY NAME: connected" (for
MSG_FASTOPEN on a socket with a timeout, which Python makes non-blocking,
EINPROGRESS: the connect was let through and is under way) or "WAY NAME:
refused ERRNO", and exits 0. Every wait is bounded (3 s).
"""
import errno
import socket
import sys


def attempt(name, family, addr, fastopen):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        if fastopen:
            s.sendto(b"x", socket.MSG_FASTOPEN, addr)
        else:
            s.connect(addr)
        print("WAY %s: connected" % name, flush=True)
    except BlockingIOError:
        print("WAY %s: connected" % name, flush=True)
    except OSError as e:
        print("WAY %s: refused %s" % (name, errno.errorcode.get(e.errno, str(e))), flush=True)
    finally:
        s.close()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    attempt("inet", socket.AF_INET, (host, port), False)
    attempt("inet6-mapped", socket.AF_INET6, ("::ffff:" + host, port), False)
    attempt("inet6-mapped-fastopen", socket.AF_INET6, ("::ffff:" + host, port), True)


main()
