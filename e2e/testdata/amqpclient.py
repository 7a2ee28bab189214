"""An AMQP publisher or consumer (Debian's python3-pika, blocking API).

  amqpclient.py publish HOST COUNT   COUNT 1 KiB messages to queue "slim",
                                     each confirmed by the broker
  amqpclient.py consume HOST COUNT   takes messages from "slim" until COUNT
                                     distinct ones came (or 10 s without one)

Each prints one line: "published N" or "received N".
"""
import sys

import pika

role, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = pika.ConnectionParameters(host=host, socket_timeout=10, blocked_connection_timeout=10)
conn = pika.BlockingConnection(params)
channel = conn.channel()
channel.queue_declare(queue="slim")
if role == "publish":
    channel.confirm_delivery()
    for i in range(count):
        channel.basic_publish("", "slim", b"%08d" % i + b"x" * 1016)
    print("published", count, flush=True)
else:
    print("consuming", flush=True)
    seen = set()
    for method, _, body in channel.consume("slim", inactivity_timeout=10):
        if method is None:
            break
        seen.add(int(body[:8]))
        channel.basic_ack(method.delivery_tag)
        if len(seen) == count:
            break
    print("received", len(seen), flush=True)
conn.close()
