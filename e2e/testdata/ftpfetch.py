"""Fetches a file COUNT times with Python's ftplib, as its users write it:
FTP(host) (blocking sockets), anonymous login, passive mode (the default)
or active (PORT).

  ftpfetch.py HOST FILE COUNT pasv|port

Prints "fetched COUNT files of SIZE bytes, MS ms each".
"""
import sys
import time
from ftplib import FTP

host, name, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ftp = FTP(host)
ftp.login()
ftp.set_pasv(mode == "pasv")
start = time.monotonic()
for _ in range(count):
    chunks = []
    ftp.retrbinary("RETR " + name, chunks.append)
elapsed = time.monotonic() - start
print("fetched %d files of %d bytes, %.1f ms each" % (count, len(b"".join(chunks)), elapsed * 1000 / count), flush=True)
ftp.quit()
