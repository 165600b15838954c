"""The Python peer of `fleetctl bench connect`: SOCAR's connector as a Python team would
write it -- confluent-kafka (librdkafka) + redis-py, one pipelined round trip of GEOADDs per
1,000 messages, offsets committed after each pipeline (asynchronously, as fleetctl does).

Usage: connect_peer.py BROKERS TOPIC GROUP REDIS_URL GEO_KEY EXPECTED
Prints one JSON object: messages, rejected, elapsed_s (first message -> last commit), rate.
"""

import json
import sys
import time

import redis
from confluent_kafka import Consumer


def main() -> None:
    brokers, topic, group, redis_url, geo_key, expected = sys.argv[1:7]
    expected = int(expected)
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 25,
        }
    )
    consumer.subscribe([topic])
    r = redis.Redis.from_url(redis_url)
    seen = rejected = 0
    first = None
    last_commit = time.monotonic()
    deadline = time.monotonic() + 600
    while seen < expected and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=1000, timeout=1.0)
        if not msgs:
            continue
        if first is None:
            first = time.monotonic()
        pipe = r.pipeline(transaction=False)
        for m in msgs:
            if m.error():
                continue
            seen += 1
            try:
                p = json.loads(m.value())
                pipe.geoadd(geo_key, (float(p["lng"]), float(p["lat"]), m.key()))
            except (ValueError, KeyError, TypeError):
                rejected += 1
        pipe.execute()
        consumer.commit(asynchronous=True)
        last_commit = time.monotonic()
    consumer.close()
    elapsed = last_commit - (first or last_commit)
    print(
        json.dumps(
            {
                "messages": seen,
                "rejected": rejected,
                "elapsed_s": elapsed,
                "rate": seen / max(elapsed, 1e-9),
            }
        )
    )


if __name__ == "__main__":
    main()
