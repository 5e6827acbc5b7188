#!/usr/bin/env python3
"""e2e client: confluent-kafka-python (librdkafka).

For each codec: create topic ck-<codec>, produce RECORDS records with keys
and headers from an idempotent producer (acks=all), checking every
delivery report, read them back with assign() from the beginning of every
partition, and check each came back exactly once.

confluent_kafka's Consumer refuses to start without group.id, so one is
set, but the consumer only assign()s with explicit offsets and never
commits: it needs no group membership and no committed offsets.

Then the consumer-group cases of common.run_groups (unless E2E_GROUPS=0)
with subscribe()d Consumer members: manual commits, synchronous after every
processed batch and again from the on_revoke callback.

Usage: confluent.py BOOTSTRAP   (environment: see common.py)
"""

import sys
import time

import common

try:
    import confluent_kafka
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
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


class GroupMember(common.Member):
    """A Consumer with group.id, subscribed to the topic.

    It commits the offsets of the records consume() actually returned, not
    librdkafka's own position: librdkafka 2.0.2's consume() batch advances
    the position (and stored offset) past records it then discards when a
    revocation arrives in the middle of the batch, so a no-argument
    commit() in on_revoke loses them (seen as ~100 missing records per
    rebalance). Committing what was processed is also what an application
    that cares about exactly-once does."""

    def open(self):
        self.consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "heartbeat.interval.ms": 500,  # notice a rebalance quickly
            "session.timeout.ms": 10000,
            "enable.partition.eof": True,  # for at_end
            "check.crcs": True,
        })
        self.eof = set()
        self.uncommitted = {}  # partition -> offset after the last processed record
        self.consumer.subscribe([self.topic], on_revoke=self._revoked)

    def _revoked(self, consumer, partitions):
        # librdkafka calls this from consume() before it rejoins, while the
        # old generation can still commit; the wrapper then unassigns.
        self.commit()
        for tp in partitions:  # no longer ours: never commit them again
            self.uncommitted.pop(tp.partition, None)
            self.eof.discard(tp.partition)

    def poll(self):
        out = []
        for m in self.consumer.consume(num_messages=200, timeout=0.2):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    self.eof.add(m.partition())
                    continue
                raise RuntimeError("consume error: %s" % m.error())
            self.eof.discard(m.partition())
            self.uncommitted[m.partition()] = m.offset() + 1
            out.append((m.partition(), m.key(), m.value(), tuple(m.headers() or ())))
        return out

    def commit(self):
        if not self.uncommitted:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(self.uncommitted.items())]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            self.uncommitted.clear()
        except KafkaException as e:
            self.note_commit_error(str(e))

    def assignment(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def at_end(self, parts):
        # An EOF event: the position reached the high watermark, above
        # everything produced (nothing is produced while this runs).
        return parts <= self.eof

    def close(self):
        self.consumer.close()  # leaves the group; every processed batch is committed already


def main():
    bootstrap = common.bootstrap()
    report = common.Report("confluent-kafka")
    print("confluent-kafka %s, librdkafka %s" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]), flush=True)
    for codec in common.codecs():
        common.run_codec(report, "confluent-kafka", "ck-" + codec, codec,
                         lambda topic, codec, recs: produce(bootstrap, topic, codec, recs),
                         lambda topic: consume(bootstrap, topic))
    if common.GROUPS != "0":
        common.run_groups(report, "confluent-kafka", "ck",
                          lambda name, group, topic, until_end=None: GroupMember(name, bootstrap, group, topic, until_end),
                          lambda topic, recs: produce(bootstrap, topic, "none", recs))
    report.exit()


if __name__ == "__main__":
    main()
