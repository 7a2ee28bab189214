"""An asyncio echo server and client, written as their users write them.

server PORT: asyncio.start_server(handler, port=PORT) with no host, so it
listens on every address family the machine has (0.0.0.0 and ::), prints
"serving on" with its sockets, and echoes lines until stopped.
client HOST PORT: opens 8 connections at once with asyncio.open_connection,
sends 200 lines of 1 KiB on each and checks every echo; prints "echoed N lines" and
exits 0 only if every line came back. Every wait is bounded.
"""
import asyncio
import sys

CONNECTIONS = 8
LINES = 200
PAD = 1024  # bytes a line is padded to: 3 MiB cross over the overlay if not accelerated
TIMEOUT = 10


async def echo(reader, writer):
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    finally:
        writer.close()


async def serve(port):
    server = await asyncio.start_server(echo, port=port)
    names = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
    print("serving on", names, flush=True)
    async with server:
        await server.serve_forever()


async def one(host, port, n):
    reader, writer = await asyncio.open_connection(host, port)
    good = 0
    for i in range(LINES):
        line = ("line %d of connection %d " % (i, n)).encode().ljust(PAD, b".") + b"\n"
        writer.write(line)
        await writer.drain()
        if await reader.readline() == line:
            good += 1
    writer.close()
    await writer.wait_closed()
    return good


async def client(host, port):
    jobs = [one(host, port, n) for n in range(CONNECTIONS)]
    good = sum(await asyncio.wait_for(asyncio.gather(*jobs), TIMEOUT))
    print("echoed %d lines" % good, flush=True)
    return 0 if good == CONNECTIONS * LINES else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "server":
        asyncio.run(serve(int(argv[2])))
        return 0
    if len(argv) == 4 and argv[1] == "client":
        return asyncio.run(client(argv[2], int(argv[3])))
    print("usage: asyncecho.py server PORT | client HOST PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
