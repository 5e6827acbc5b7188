#!/usr/bin/env python3
"""e2e client: kafka-python (pure Python protocol implementation).

For each codec: create topic kpy-<codec>, produce RECORDS records with keys
and headers with acks=all, read them back with a group-less consumer
assigned to every partition, and check each came back exactly once.
Codecs whose Python module is missing are skipped with a SKIP line.

Then the consumer-group cases of common.run_groups (unless E2E_GROUPS=0)
with KafkaConsumer(group_id=...) members: manual commits, synchronous after
every processed batch and again from a ConsumerRebalanceListener when
partitions are revoked.

Usage: kafka_python.py BOOTSTRAP   (environment: see common.py)
"""

import sys
import time

import common

try:
    import kafka
    from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
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


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Commits what the member has processed before its partitions go to
    another member. kafka-python calls this from poll(), before it rejoins,
    while the old generation can still commit."""

    def __init__(self, member):
        self.member = member

    def on_partitions_revoked(self, revoked):
        if revoked:
            self.member.commit()

    def on_partitions_assigned(self, assigned):
        pass


class GroupMember(common.Member):
    """A KafkaConsumer(group_id=...) subscribed to the topic."""

    def open(self):
        self.consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            heartbeat_interval_ms=500,  # notice a rebalance quickly
            session_timeout_ms=10000,
            max_poll_records=200,
            check_crcs=True,
            api_version_auto_timeout_ms=10000,
        )
        self.ends = None
        self.consumer.subscribe([self.topic], listener=_CommitOnRevoke(self))

    def poll(self):
        out = []
        for tp, msgs in self.consumer.poll(timeout_ms=200).items():
            for m in msgs:
                out.append((tp.partition, m.key, m.value, tuple((k, v) for k, v in m.headers)))
        return out

    def commit(self):
        try:
            self.consumer.commit()
        except kafka.errors.KafkaError as e:
            # Noted, not raised: kafka-python would only log an exception
            # raised in on_partitions_revoked.
            self.note_commit_error(repr(e))

    def assignment(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def at_end(self, parts):
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        if self.ends is None:  # nothing is produced while a member reads to the end
            self.ends = self.consumer.end_offsets(tps)
        return all(self.consumer.position(tp) >= self.ends[tp] for tp in tps)

    def close(self):
        self.consumer.close(autocommit=False)  # every processed batch is committed already


def main():
    bootstrap = common.bootstrap()
    report = common.Report("kafka-python")
    print("kafka-python %s" % kafka.__version__, flush=True)
    for codec in common.codecs():
        if not AVAILABLE[codec]():
            report.skip(codec, "Python module for %s is not installed (Debian: %s)" % (codec, MODULE.get(codec, "?")))
            continue
        common.run_codec(report, "kafka-python", "kpy-" + codec, codec,
                         lambda topic, codec, recs: produce(bootstrap, topic, codec, recs),
                         lambda topic: consume(bootstrap, topic))
    if common.GROUPS != "0":
        common.run_groups(report, "kafka-python", "kpy",
                          lambda name, group, topic, until_end=None: GroupMember(name, bootstrap, group, topic, until_end),
                          lambda topic, recs: produce(bootstrap, topic, "none", recs))
    report.exit()


if __name__ == "__main__":
    main()
