"""Shared parts of the Python e2e clients: settings, topic creation, the
records to send, the exactly-once check, the consumer-group cases and the
PASS/FAIL/SKIP lines that scripts/e2e.sh counts.

Every record carries its sequence number in key, value and a header, so a
lost, duplicated or corrupted record is reported by number.
"""

import collections
import os
import subprocess
import sys
import threading
import time
import traceback

CODECS = os.environ.get("E2E_CODECS", "none gzip snappy lz4 zstd").split()
RECORDS = int(os.environ.get("E2E_RECORDS", "10000"))
PARTITIONS = int(os.environ.get("E2E_PARTITIONS", "3"))
# Seconds a whole produce or consume phase may take before it counts as hung.
PHASE_TIMEOUT = float(os.environ.get("E2E_PHASE_TIMEOUT", "120"))

# Consumer-group cases (see run_groups): E2E_GROUPS=1 runs them after the
# codec cases, 0 skips them, "only" runs nothing else.
GROUPS = os.environ.get("E2E_GROUPS", "1")
GROUP_RECORDS = int(os.environ.get("E2E_GROUP_RECORDS", "4000"))
GROUP_PARTITIONS = int(os.environ.get("E2E_GROUP_PARTITIONS", "4"))
# Seconds any one wait in a group case may take (a join, a rebalance,
# consuming everything, a member stopping).
GROUP_WAIT = float(os.environ.get("E2E_GROUP_TIMEOUT", "30"))
# The records are produced in this many chunks, the second member joining
# after the first, so that the rebalance happens while records still flow.
GROUP_CHUNKS = 8
# Records produced after the group stopped, which its next run must get.
GROUP_EXTRA = 100

# Filler that makes values compressible and of varying size.
_FILLER = b"the quick brown fox jumps over the lazy dog " * 4


def codecs():
    """The codecs whose produce/consume cases run (none for E2E_GROUPS=only)."""
    return [] if GROUPS == "only" else CODECS


def records(client, codec, count=None, start=0):
    """The (key, value, headers) tuples to produce, in order: count records
    (default RECORDS) numbered from start."""
    out = []
    for i in range(start, start + (RECORDS if count is None else count)):
        key = b"key-%d" % i
        value = b"value-%d-%s-%s|" % (i, codec.encode(), client.encode()) + _FILLER[: i % len(_FILLER)]
        headers = (("codec", codec.encode()), ("seq", b"%d" % i))
        out.append((key, value, headers))
    return out


def creating_topics():
    return os.environ.get("E2E_CREATE_TOPICS", "1") != "0"


def create_topic(topic, partitions=None):
    """Creates topic with bin/troupe unless E2E_CREATE_TOPICS=0 (for
    brokers that auto-create), with partitions (default PARTITIONS)
    partitions. Returns an error string or None."""
    if not creating_topics():
        return None
    troupe = os.environ.get("TROUPE", "bin/troupe")
    cmd = [troupe, "topics", "create", "--bootstrap-server", bootstrap(),
           "--topic", topic, "--partitions", str(PARTITIONS if partitions is None else partitions)]
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


def wait_for(cond, what, timeout=None):
    """Polls cond() until it is true. Returns None, or an error string once
    timeout (default GROUP_WAIT) seconds have passed."""
    timeout = GROUP_WAIT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return "timed out after %.0fs waiting for %s" % (timeout, what)
        time.sleep(0.05)
    return None


class Member(threading.Thread):
    """One consumer-group member, consuming on its own thread until stop()
    or, with until_end, until it owns the partitions in until_end and has
    read each to its end.

    The loop is the at-least-once pattern made exactly-once: every batch
    poll() returns is processed (appended to records()) and then committed
    synchronously before the next poll, and a subclass's revocation
    callback commits again, so a partition that moves to another member
    moves with the offset after the last record this member took. A
    duplicate across a rebalance is then the broker's fault (it lost or
    ignored a commit, or handed a partition to two members at once).

    Subclasses implement open(), poll() -> [(partition, key, value,
    headers)], commit(), assignment() -> set of partitions, at_end(parts)
    and close(); all run on this thread only.
    """

    def __init__(self, name, bootstrap, group, topic, until_end=None):
        super().__init__(name=name, daemon=True)  # daemon: a hung client cannot block the exit
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.until_end = frozenset(until_end) if until_end else None
        self.error = None
        self.commit_errors = []
        self._lock = threading.Lock()
        self._records = []
        self._keys = set()
        self._record_partitions = set()
        self._assignment = frozenset()
        self._stopping = threading.Event()

    def stop(self):
        self._stopping.set()

    def records(self):
        with self._lock:
            return list(self._records)

    def keys(self):
        with self._lock:
            return set(self._keys)

    def record_partitions(self):
        """The partitions the records came from."""
        with self._lock:
            return frozenset(self._record_partitions)

    def count(self):
        with self._lock:
            return len(self._records)

    def assigned(self):
        """The partitions owned at the end of the last loop iteration."""
        with self._lock:
            return self._assignment

    def note_commit_error(self, why):
        """Records a failed commit: kept going (the next commit covers the
        same offsets) but reported, since it can explain a duplicate."""
        with self._lock:
            self.commit_errors.append(why)

    def run(self):
        # A backstop only: the driver's waits are shorter and stop us.
        deadline = time.monotonic() + 6 * GROUP_WAIT
        opened = False
        try:
            self.open()
            opened = True
            while not self._stopping.is_set():
                if time.monotonic() > deadline:
                    raise RuntimeError("still consuming after %.0fs" % (6 * GROUP_WAIT))
                batch = self.poll()
                if batch:
                    with self._lock:
                        for p, k, v, h in batch:
                            self._records.append((k, v, h))
                            self._keys.add(k)
                            self._record_partitions.add(p)
                    self.commit()
                assignment = frozenset(self.assignment())
                with self._lock:
                    self._assignment = assignment
                if self.until_end is not None and assignment == self.until_end and self.at_end(self.until_end):
                    break
        except Exception:
            self.error = traceback.format_exc().strip().replace("\n", "\n    ")
        finally:
            if opened:
                try:
                    self.close()
                except Exception as e:
                    self.error = self.error or "close: %r" % e

    def describe(self):
        with self._lock:
            return "%s: %d records, partitions %s" % (self.name, len(self._records), _parts(self._assignment))


def _parts(ps):
    return "[" + ",".join(str(p) for p in sorted(ps)) + "]"


def _chunks(recs, n):
    size = (len(recs) + n - 1) // n
    return [recs[i:i + size] for i in range(0, len(recs), size)]


def run_groups(report, client, prefix, new_member, produce):
    """The consumer-group cases, on a fresh topic prefix-group-<run> with
    GROUP_PARTITIONS partitions and fresh groups:

      group-rebalance   member a joins group 1 and consumes; member b joins
                        while a is consuming and records still arrive (a
                        rebalance); together they get all GROUP_RECORDS
                        records, each exactly once, and each gets some.
      group-assignment  after that rebalance the two members' assignments
                        (the client's assignment API) are disjoint, both
                        non-empty, and cover every partition.
      group-pubsub      group 2 reads the same topic and gets every record
                        exactly once, independently of group 1.
      group-resume      after group 1 stopped, GROUP_EXTRA more records are
                        produced; group 1's next member gets exactly those:
                        its committed offsets held, nothing is replayed or
                        skipped.

    new_member(name, group, topic, until_end=None) makes a Member;
    produce(topic, recs) returns an error or None.
    """
    run = "%d-%d" % (os.getpid(), int(time.time()))
    topic = "%s-group-%s" % (prefix, run)
    g1, g2 = "%s-g1-%s" % (prefix, run), "%s-g2-%s" % (prefix, run)
    members = []

    def fail_all(cases, why):
        for c in cases:
            report.fail(c, why)

    def member_problems(ms):
        out = []
        for m in ms:
            if m.error:
                out.append("member %s: %s" % (m.name, m.error))
            if m.commit_errors:
                out.append("member %s: %d failed commits (first: %s)" % (m.name, len(m.commit_errors), m.commit_errors[0]))
        return out

    def stop(ms):
        for m in ms:
            m.stop()
        out = []
        deadline = time.monotonic() + GROUP_WAIT
        for m in ms:
            m.join(max(0.1, deadline - time.monotonic()))
            if m.is_alive():
                out.append("member %s did not stop within %.0fs" % (m.name, GROUP_WAIT))
        return out

    def consume_all(name, group, want, parts):
        """Runs one member of group until it has read every partition to
        its end and checks it got exactly want; returns (error, detail)."""
        m = new_member(name, group, topic, until_end=parts)
        members.append(m)
        started = time.monotonic()
        m.start()
        m.join(GROUP_WAIT)
        if m.is_alive():
            m.stop()
            m.join(5)
            return "did not reach the end of %s within %.0fs (%s)" % (_parts(parts), GROUP_WAIT, m.describe()), None
        problems = member_problems([m])
        err = check(want, m.records())
        if err:
            problems.insert(0, err)
        if problems:
            return "; ".join(problems), None
        return None, "(%d records, %.1fs)" % (len(want), time.monotonic() - started)

    def report_one(case, result):
        err, detail = result
        if err:
            report.fail(case, err)
        else:
            report.passed(case, detail)

    cases = ["group-rebalance", "group-assignment", "group-pubsub", "group-resume"]
    try:
        err = create_topic(topic, GROUP_PARTITIONS)
        if err:
            fail_all(cases, "create topic: " + err)
            return
        started = time.monotonic()
        recs = records(client, "group", GROUP_RECORDS)
        chunks = _chunks(recs, GROUP_CHUNKS)
        err = produce(topic, chunks[0])
        if err:
            fail_all(cases, "produce: " + err)
            return
        a = new_member("a", g1, topic)
        members.append(a)
        a.start()
        err = wait_for(lambda: a.count() > 0 or not a.is_alive(), "member a's first record")
        if err or not a.is_alive():
            stop_errs = stop(members)
            fail_all(cases, "; ".join([err or "member a stopped"] + member_problems(members) + stop_errs))
            return
        b = new_member("b", g1, topic)
        members.append(b)
        b.start()
        for c in chunks[1:]:
            time.sleep(0.25)  # spread the rest over the join and the rebalance
            err = produce(topic, c)
            if err:
                stop(members)
                fail_all(cases, "produce: " + err)
                return

        # Distinct keys, so that duplicates cannot end the wait early and
        # make records look missing.
        wait_err = wait_for(lambda: len(a.keys() | b.keys()) >= len(recs) or not (a.is_alive() and b.is_alive()),
                            "members a and b to consume %d records" % len(recs))

        # The partitions to cover: the ones created, or (for an
        # auto-created topic) every one a record came from.
        if creating_topics():
            parts = frozenset(range(GROUP_PARTITIONS))
        else:
            parts = a.record_partitions() | b.record_partitions()

        def split_ok():
            pa, pb = a.assigned(), b.assigned()
            return pa and pb and not (pa & pb) and (pa | pb) == parts
        assign_err = wait_for(lambda: split_ok() or not (a.is_alive() and b.is_alive()),
                              "disjoint assignments of a and b covering %s" % _parts(parts))
        pa, pb = a.assigned(), b.assigned()
        if not assign_err and not split_ok():
            assign_err = "a member stopped"
        stop_errs = stop([a, b])

        problems = []
        err = check(recs, a.records() + b.records())
        if err:
            problems.append(err)
        elif a.count() == 0 or b.count() == 0:
            problems.append("one member got nothing: %s; %s" % (a.describe(), b.describe()))
        problems += member_problems([a, b]) + stop_errs
        if wait_err:
            problems.insert(0, wait_err)
        if problems:
            report.fail("group-rebalance", "; ".join(problems))
        else:
            report.passed("group-rebalance", "(%d records: a %d, b %d; %.1fs)" % (
                len(recs), a.count(), b.count(), time.monotonic() - started))
        if assign_err:
            report.fail("group-assignment", "%s; a owns %s, b owns %s" % (assign_err, _parts(pa), _parts(pb)))
        else:
            report.passed("group-assignment", "(a %s, b %s)" % (_parts(pa), _parts(pb)))

        report_one("group-pubsub", consume_all("c", g2, recs, parts))

        extra = records(client, "group", GROUP_EXTRA, start=GROUP_RECORDS)
        err = produce(topic, extra)
        if err:
            report.fail("group-resume", "produce: " + err)
            return
        report_one("group-resume", consume_all("d", g1, extra, parts))
    except Exception:
        report.fail("group", traceback.format_exc().strip().replace("\n", "\n    "))
    finally:
        # Members still running here failed a case already, which waited
        # for them; ask them to stop without waiting again. They are daemon
        # threads: one hung inside its client ends with the process.
        for m in members:
            m.stop()
