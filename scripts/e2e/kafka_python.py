#!/usr/bin/env python3
"""e2e client: kafka-python (pure Python protocol implementation).

For each codec: create topic kpy-<codec>, produce RECORDS records with keys
and headers with acks=all, read them back with a group-less consumer
assigned to every partition, and check each came back exactly once.
Codecs whose Python module is missing are skipped with a SKIP line.

Usage: kafka_python.py BOOTSTRAP   (environment: see common.py)
"""

import sys
import time

import common

try:
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka import codec as kafka_codec
except ImportError as e:  # reported, not skipped: CI installs it
    print("FAIL kafka-python all: cannot import kafka: %s" % e, flush=True)
    sys.exit(1)

AVAILABLE = {
    "none": lambda: True,
    "gzip": kafka_codec.has_gzip,
    "snappy": kafka_codec.has_snappy,
    "lz4": kafka_codec.has_lz4,
    "zstd": kafka_codec.has_zstd,
}
MODULE = {"snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}


def produce(bootstrap, topic, codec, recs):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        request_timeout_ms=30000,
        api_version_auto_timeout_ms=10000,
    )
    try:
        futures = [producer.send(topic, key=k, value=v, headers=list(h)) for k, v, h in recs]
        producer.flush(timeout=common.PHASE_TIMEOUT)
        for i, f in enumerate(futures):
            try:
                f.get(timeout=1)
            except Exception as e:  # the first failure says enough
                return "record %d not acknowledged: %r" % (i, e)
    finally:
        producer.close(timeout=10)
    return None


def consume(bootstrap, topic):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
        check_crcs=True,
        api_version_auto_timeout_ms=10000,
    )
    try:
        parts = None
        deadline = time.monotonic() + 30
        while not parts and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.2)
        if not parts:
            raise RuntimeError("no partitions known for %s" % topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        # Everything produced is below these offsets (acks=all, flushed),
        # so reaching them on every partition means we have read it all.
        end = consumer.end_offsets(tps)
        got = []
        deadline = time.monotonic() + common.PHASE_TIMEOUT
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise RuntimeError("timed out at positions %s, end offsets %s" % (
                    {tp.partition: consumer.position(tp) for tp in tps}, {tp.partition: o for tp, o in end.items()}))
            for msgs in consumer.poll(timeout_ms=1000).values():
                for m in msgs:
                    got.append((m.key, m.value, tuple((k, v) for k, v in m.headers)))
        return got
    finally:
        consumer.close()


def main():
    bootstrap = common.bootstrap()
    report = common.Report("kafka-python")
    print("kafka-python %s" % kafka.__version__, flush=True)
    for codec in common.CODECS:
        if not AVAILABLE[codec]():
            report.skip(codec, "Python module for %s is not installed (Debian: %s)" % (codec, MODULE.get(codec, "?")))
            continue
        common.run_codec(report, "kafka-python", "kpy-" + codec, codec,
                         lambda topic, codec, recs: produce(bootstrap, topic, codec, recs),
                         lambda topic: consume(bootstrap, topic))
    report.exit()


if __name__ == "__main__":
    main()
