"""Shared parts of the Python e2e clients: settings, topic creation, the
records to send, the exactly-once check and the PASS/FAIL/SKIP lines that
scripts/e2e.sh counts.

Every record carries its sequence number in key, value and a header, so a
lost, duplicated or corrupted record is reported by number.
"""

import collections
import os
import subprocess
import sys
import time
import traceback

CODECS = os.environ.get("E2E_CODECS", "none gzip snappy lz4 zstd").split()
RECORDS = int(os.environ.get("E2E_RECORDS", "10000"))
PARTITIONS = int(os.environ.get("E2E_PARTITIONS", "3"))
# Seconds a whole produce or consume phase may take before it counts as hung.
PHASE_TIMEOUT = float(os.environ.get("E2E_PHASE_TIMEOUT", "120"))

# Filler that makes values compressible and of varying size.
_FILLER = b"the quick brown fox jumps over the lazy dog " * 4


def records(client, codec):
    """The (key, value, headers) tuples to produce, in order."""
    out = []
    for i in range(RECORDS):
        key = b"key-%d" % i
        value = b"value-%d-%s-%s|" % (i, codec.encode(), client.encode()) + _FILLER[: i % len(_FILLER)]
        headers = (("codec", codec.encode()), ("seq", b"%d" % i))
        out.append((key, value, headers))
    return out


def create_topic(topic):
    """Creates topic with bin/troupe unless E2E_CREATE_TOPICS=0 (for
    brokers that auto-create). Returns an error string or None."""
    if os.environ.get("E2E_CREATE_TOPICS", "1") == "0":
        return None
    troupe = os.environ.get("TROUPE", "bin/troupe")
    cmd = [troupe, "topics", "create", "--bootstrap-server", bootstrap(),
           "--topic", topic, "--partitions", str(PARTITIONS)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s: %s" % (" ".join(cmd), e)
    if r.returncode != 0:
        return "%s: exit %d: %s" % (" ".join(cmd), r.returncode, (r.stderr or r.stdout).strip())
    return None


def bootstrap():
    if len(sys.argv) < 2:
        sys.exit("usage: %s BOOTSTRAP (host:port)" % sys.argv[0])
    return sys.argv[1]


def check(expected, got):
    """Compares produced and consumed records. Returns None when every
    expected record came back exactly once and nothing else did, else a
    description of the first differences."""
    want = collections.Counter(expected)
    have = collections.Counter(got)
    if want == have:
        return None
    missing = sorted(want - have, key=_seq)
    extra = have - want
    dups = sorted((r for r in extra if r in want), key=_seq)
    unknown = [r for r in extra if r not in want]
    problems = ["got %d records, want %d" % (len(got), len(expected))]
    if missing:
        problems.append("%d missing (first: %s)" % (len(missing), _show(missing[:3])))
    if dups:
        problems.append("%d duplicated (first: %s)" % (len(dups), _show(dups[:3])))
    if unknown:
        problems.append("%d unexpected (first: %s)" % (len(unknown), _show(unknown[:3])))
    return "; ".join(problems)


def _seq(record):
    try:
        return int(record[0].split(b"-", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return -1


def _show(recs):
    return ", ".join(repr((k, v[:40], h)) for k, v, h in recs)


class Report:
    """Prints one PASS/FAIL/SKIP line per case; exit() returns 1 if any
    case failed."""

    def __init__(self, client):
        self.client = client
        self.failed = 0

    def passed(self, codec, detail=""):
        print("PASS %s %s %s" % (self.client, codec, detail), flush=True)

    def fail(self, codec, why):
        self.failed += 1
        print("FAIL %s %s: %s" % (self.client, codec, why), flush=True)

    def skip(self, codec, why):
        print("SKIP %s %s: %s" % (self.client, codec, why), flush=True)

    def exit(self):
        sys.exit(1 if self.failed else 0)


def run_codec(report, client, topic, codec, produce, consume):
    """One case: create topic, produce records(client, codec) with
    produce(topic, codec, recs) -> error or None, read them back with
    consume(topic) -> records, check exactly-once, report the outcome."""
    started = time.monotonic()
    try:
        err = create_topic(topic)
        if err:
            report.fail(codec, "create topic: " + err)
            return
        recs = records(client, codec)
        err = produce(topic, codec, recs)
        if err:
            report.fail(codec, "produce: " + err)
            return
        err = check(recs, consume(topic))
        if err:
            report.fail(codec, err)
            return
        report.passed(codec, "(%d records, %.1fs)" % (len(recs), time.monotonic() - started))
    except Exception:
        report.fail(codec, traceback.format_exc().strip().replace("\n", "\n    "))
