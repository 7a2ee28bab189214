"""A WSGI app for gunicorn: each response names the worker (its pid) and
the connection as it sees it: REMOTE_ADDR, and the names of the socket
(gunicorn's sync worker puts it in environ["gunicorn.socket"]). A request
for /slow takes a second, so that concurrent ones each hold a worker.

gunicorn -w N -b 0.0.0.0:PORT --chdir DIR wsgipeer:app
"""
import os
import time


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(1)
    sock = environ.get("gunicorn.socket")
    local = "%s:%d" % sock.getsockname()[:2] if sock else "?"
    peer = "%s:%d" % sock.getpeername()[:2] if sock else "?"
    line = "worker=%d remote=%s:%s local=%s peer=%s\n" % (
        os.getpid(), environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT"), local, peer)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [line.encode()]
