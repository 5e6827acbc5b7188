#!/usr/bin/env python3
"""e2e client: confluent-kafka-python (librdkafka).

For each codec: create topic ck-<codec>, produce RECORDS records with keys
and headers from an idempotent producer (acks=all), checking every
delivery report, read them back with assign() from the beginning of every
partition, and check each came back exactly once.

confluent_kafka's Consumer refuses to start without group.id, so one is
set, but the consumer only assign()s with explicit offsets and never
commits: it needs no group membership and no committed offsets.

Usage: confluent.py BOOTSTRAP   (environment: see common.py)
"""

import sys
import time

import common

try:
    import confluent_kafka
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
except ImportError as e:  # reported, not skipped: CI installs it
    print("FAIL confluent-kafka all: cannot import confluent_kafka: %s" % e, flush=True)
    sys.exit(1)


def produce(bootstrap, topic, codec, recs):
    errors = []
    delivered = [0]

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered[0] += 1

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 5,
        "message.timeout.ms": int(common.PHASE_TIMEOUT * 1000),
    })
    deadline = time.monotonic() + common.PHASE_TIMEOUT
    for k, v, h in recs:
        while True:
            try:
                producer.produce(topic, key=k, value=v, headers=list(h), on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                if time.monotonic() > deadline:
                    return "local queue stayed full"
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(common.PHASE_TIMEOUT)
    if left:
        return "%d records still undelivered after %.0fs" % (left, common.PHASE_TIMEOUT)
    if errors:
        return "%d delivery errors (first: %s)" % (len(errors), errors[0])
    if delivered[0] != len(recs):
        return "%d delivery reports, want %d" % (delivered[0], len(recs))
    return None


def consume(bootstrap, topic):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "troupe-e2e-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "check.crcs": True,
    })
    try:
        md = consumer.list_topics(topic, timeout=30)
        t = md.topics.get(topic)
        if t is None or t.error is not None or not t.partitions:
            raise RuntimeError("metadata for %s: %s" % (topic, t and t.error))
        parts = sorted(t.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        # A partition's EOF event means the consumer reached its high
        # watermark, above everything produced (acks=all, flushed).
        at_eof = set()
        got = []
        deadline = time.monotonic() + common.PHASE_TIMEOUT
        while len(at_eof) < len(parts):
            if time.monotonic() > deadline:
                raise RuntimeError("timed out after %d records; partitions at end: %s of %s" % (len(got), sorted(at_eof), parts))
            m = consumer.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                    continue
                raise RuntimeError("consume error: %s" % m.error())
            at_eof.discard(m.partition())
            got.append((m.key(), m.value(), tuple(m.headers() or ())))
        return got
    finally:
        consumer.close()


def main():
    bootstrap = common.bootstrap()
    report = common.Report("confluent-kafka")
    print("confluent-kafka %s, librdkafka %s" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]), flush=True)
    for codec in common.CODECS:
        common.run_codec(report, "confluent-kafka", "ck-" + codec, codec,
                         lambda topic, codec, recs: produce(bootstrap, topic, codec, recs),
                         lambda topic: consume(bootstrap, topic))
    report.exit()


if __name__ == "__main__":
    main()
