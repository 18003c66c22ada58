#!/usr/bin/env python3
"""kafka-python producer/consumer against the Kafka 0.9.0.1 brokers of tests/kafka/run.sh.

  clients.py BOOTSTRAP produce TOPIC N TAG     N keyed messages "TAG-i", acks=all; prints offsets
  clients.py BOOTSTRAP consume TOPIC N TAG GROUP
                                               reads until N messages "TAG-*" came back (group
                                               consumer, offsets committed to __consumer_offsets)

Exit status 1 if the messages did not all come back (or a send failed). api_version=(0, 9).
"""

import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer


def produce(bootstrap, topic, n, tag):
    p = KafkaProducer(
        bootstrap_servers=bootstrap,
        api_version=(0, 9),
        acks="all",
        retries=5,
        request_timeout_ms=30000,
    )
    offsets = []
    t0 = time.time()
    for i in range(n):
        md = p.send(topic, key=str(i).encode(), value=f"{tag}-{i}".encode()).get(timeout=30)
        offsets.append(f"{md.partition}@{md.offset}")
    p.flush()
    p.close()
    print(json.dumps({"produced": n, "tag": tag, "seconds": round(time.time() - t0, 2), "offsets": offsets}))
    return 0


def consume(bootstrap, topic, n, tag, group):
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        api_version=(0, 9),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        consumer_timeout_ms=60000,
    )
    seen = set()
    t0 = time.time()
    for msg in c:
        v = msg.value.decode()
        if v.startswith(tag + "-"):
            seen.add(v)
        if len(seen) >= n:
            break
    c.commit()
    c.close()
    ok = len(seen) >= n
    print(json.dumps({"consumed": len(seen), "wanted": n, "tag": tag, "group": group, "seconds": round(time.time() - t0, 2)}))
    return 0 if ok else 1


def main():
    bootstrap, cmd = sys.argv[1], sys.argv[2]
    if cmd == "produce":
        return produce(bootstrap, sys.argv[3], int(sys.argv[4]), sys.argv[5])
    if cmd == "consume":
        return consume(bootstrap, sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
