#!/usr/bin/env bash
# e2e client: kcat (librdkafka's command-line client).
#
# For each codec: create topic kcat-<codec>, produce E2E_RECORDS records
# with keys and two headers, consume the topic from the beginning of every
# partition, and check each record came back exactly once with its key,
# headers and value. Prints one PASS/FAIL line per codec.
#
# Then the consumer-group cases (unless E2E_GROUPS=0; see group_cases
# below for what each asserts) with kcat's balanced consumer, kcat -G.
# kcat never commits itself: librdkafka stores the offset of each record as
# it hands it to kcat, which prints it before asking for the next, and
# commits the stored offsets of partitions as they are revoked (before it
# rejoins) and on close, besides every 5 s. So a record printed by one
# member and then by another after a rebalance is the broker's fault.
#
# Usage: kcat.sh BOOTSTRAP
# Environment: TROUPE (bin/troupe), E2E_RECORDS (10000), E2E_PARTITIONS (3),
# E2E_CODECS ("none gzip snappy lz4 zstd"), E2E_CREATE_TOPICS (1; 0 for a
# broker that auto-creates), E2E_PHASE_TIMEOUT (120 s), E2E_GROUPS (1; 0: no
# group cases; only: nothing else), E2E_GROUP_RECORDS (4000),
# E2E_GROUP_PARTITIONS (4), E2E_GROUP_TIMEOUT (30 s for any one wait).
set -uo pipefail # no -e: every codec reports, then the exit code says

BOOTSTRAP=${1:?usage: kcat.sh BOOTSTRAP}
TROUPE=${TROUPE:-bin/troupe}
RECORDS=${E2E_RECORDS:-10000}
PARTITIONS=${E2E_PARTITIONS:-3}
CODECS=${E2E_CODECS:-none gzip snappy lz4 zstd}
PHASE_TIMEOUT=${E2E_PHASE_TIMEOUT:-120}
GROUPS_MODE=${E2E_GROUPS:-1}
GROUP_RECORDS=${E2E_GROUP_RECORDS:-4000}
GROUP_PARTITIONS=${E2E_GROUP_PARTITIONS:-4}
GROUP_WAIT=${E2E_GROUP_TIMEOUT:-30}
if [ "$GROUPS_MODE" = only ]; then CODECS=""; fi

if ! command -v kcat >/dev/null; then
	echo "FAIL kcat all: kcat is not installed (Debian: kcat)"
	exit 1
fi
kcat -V 2>&1 | grep '^Version' || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/troupe-kcat.XXXXXX")
# The group members run in the background; whatever ends this script
# (a failure, e2e.sh's timeout) stops the ones still running, by PID.
MEMBER_PIDS=()
cleanup() {
	local pid
	for pid in "${MEMBER_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
failed=0

fail() {
	echo "FAIL kcat $1: $2"
	failed=$((failed + 1))
}

# show_diff explains how the consumed records differ from the produced ones.
show_diff() {
	local want=$1 got=$2
	echo "    got $(wc -l <"$got") records, want $(wc -l <"$want")"
	echo "    missing: $(comm -23 "$want" "$got" | wc -l), first:"
	comm -23 "$want" "$got" | head -3 | cut -c1-120 | sed 's/^/      /'
	echo "    unexpected or duplicated: $(comm -13 "$want" "$got" | wc -l), first:"
	comm -13 "$want" "$got" | head -3 | cut -c1-120 | sed 's/^/      /'
}

for codec in $CODECS; do
	topic=kcat-$codec
	started=$SECONDS
	if [ "${E2E_CREATE_TOPICS:-1}" != 0 ]; then
		if ! out=$("$TROUPE" topics create --bootstrap-server "$BOOTSTRAP" --topic "$topic" --partitions "$PARTITIONS" 2>&1); then
			fail "$codec" "create topic: $out"
			continue
		fi
	fi

	# Input "key:value" for kcat -K:, and the "key|headers|value" lines the
	# consumer must print, sorted so comm can compare them.
	awk -v n="$RECORDS" -v codec="$codec" 'BEGIN {
		filler = "the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog "
		for (i = 0; i < n; i++)
			printf "key-%d:value-%d-%s-kcat|%s\n", i, i, codec, substr(filler, 1, i % length(filler))
	}' >"$WORK/in"
	sed "s/^\([^:]*\):/\1|codec=$codec,client=kcat|/" "$WORK/in" | LC_ALL=C sort >"$WORK/want"

	timeout "$PHASE_TIMEOUT" kcat -P -b "$BOOTSTRAP" -t "$topic" -K: \
		-H "codec=$codec" -H client=kcat -z "$codec" \
		-X acks=all -X linger.ms=5 <"$WORK/in" 2>"$WORK/produce.err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$codec" "produce: kcat exited $rc: $(tail -3 "$WORK/produce.err")"
		continue
	fi

	# -e exits once every partition's end is reached; -q drops the
	# "Reached end" notices so stdout holds only records.
	timeout "$PHASE_TIMEOUT" kcat -C -b "$BOOTSTRAP" -t "$topic" -o beginning -e -q \
		-X check.crcs=true -f '%k|%h|%s\n' >"$WORK/got.raw" 2>"$WORK/consume.err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$codec" "consume: kcat exited $rc: $(tail -3 "$WORK/consume.err")"
		continue
	fi
	LC_ALL=C sort "$WORK/got.raw" >"$WORK/got"
	if ! cmp -s "$WORK/want" "$WORK/got"; then
		# The content check is the verdict; kcat's stderr (failed
		# deliveries, errors) only helps explain it.
		fail "$codec" "records differ"
		show_diff "$WORK/want" "$WORK/got"
		for f in produce consume; do
			if [ -s "$WORK/$f.err" ]; then
				echo "    kcat $f stderr:"
				tail -5 "$WORK/$f.err" | sed 's/^/      /'
			fi
		done
		continue
	fi
	echo "PASS kcat $codec ($RECORDS records, $((SECONDS - started))s)"
done

# ---- consumer groups -------------------------------------------------

# Every member prints "partition|key|headers|value|end": the partition for
# the assignment check, "|end" so that a line still being written is not
# counted. -u: unbuffered, so the driver sees progress as it happens.
MEMBER_FORMAT='%p|%k|%h|%s|end\n'

# member_cmd GROUP [FLAG...]: sets MEMBER_CMD to the command line of a
# kcat -G member of GROUP reading $topic.
member_cmd() {
	local group=$1
	shift
	MEMBER_CMD=(kcat -b "$BOOTSTRAP" -G "$group" -u -f "$MEMBER_FORMAT"
		-X auto.offset.reset=earliest -X heartbeat.interval.ms=500
		-X session.timeout.ms=10000 -X check.crcs=true "$@" "$topic")
}

# start_member NAME GROUP: a member in the background, its output in
# $WORK/NAME.out and NAME.err, its PID in PID_NAME.
start_member() {
	member_cmd "$2"
	"${MEMBER_CMD[@]}" >"$WORK/$1.out" 2>"$WORK/$1.err" &
	MEMBER_PIDS+=($!)
	printf -v "PID_$1" %s $!
}

# stop_member NAME: SIGTERM, on which kcat commits and leaves the group;
# SIGKILL if it has not exited within GROUP_WAIT, noted in STOP_PROBLEMS.
stop_member() {
	local pid_var="PID_$1" i
	local pid=${!pid_var}
	kill "$pid" 2>/dev/null
	for ((i = 0; i < GROUP_WAIT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		STOP_PROBLEMS+="; member $1 did not stop within ${GROUP_WAIT}s"
	fi
	wait "$pid" 2>/dev/null
}

# records_of NAME...: the members' complete records as "key|headers|value".
records_of() {
	local n
	for n in "$@"; do
		grep -h '|end$' "$WORK/$n.out" | sed 's/^[0-9]*|//; s/|end$//'
	done
}

# have_all: members a and b together printed GROUP_RECORDS different keys
# (different, so that duplicates cannot make records look missing).
have_all() {
	local n
	n=$(grep -h '|end$' "$WORK/a.out" "$WORK/b.out" | cut -d'|' -f2 | sort -u | wc -l)
	[ "$n" -ge "$GROUP_RECORDS" ]
}

# assigned NAME: the partitions member NAME owns, one a line, from kcat's
# last "rebalanced" notice (a revocation leaves it none).
assigned() {
	grep 'rebalanced' "$WORK/$1.err" | tail -1 | grep 'assigned:' | grep -o '\[[0-9]*\]' | tr -d '[]' | sort -n
}

# split_ok: a and b both own partitions, none the same, together every one
# in $WORK/parts.
split_ok() {
	local pa pb
	pa=$(assigned a) pb=$(assigned b)
	[ -n "$pa" ] && [ -n "$pb" ] &&
		[ "$(printf '%s\n%s\n' "$pa" "$pb" | sort -n)" = "$(cat "$WORK/parts")" ]
}

# wait_until SECONDS CMD...: runs CMD every 0.2 s until it succeeds; fails
# after SECONDS.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 5; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# check_records WANT NAME...: the members together printed exactly the
# records in file WANT ("key|headers|value" lines), each once; if not,
# says how they differ.
check_records() {
	local want=$1
	shift
	records_of "$@" | LC_ALL=C sort >"$WORK/got"
	LC_ALL=C sort "$want" >"$WORK/want.sorted"
	if ! cmp -s "$WORK/want.sorted" "$WORK/got"; then
		show_diff "$WORK/want.sorted" "$WORK/got"
		return 1
	fi
}

# produce_file FILE: its "key:value" lines as records of $topic.
produce_file() {
	timeout "$GROUP_WAIT" kcat -P -b "$BOOTSTRAP" -t "$topic" -K: -H codec=group -H client=kcat \
		-X acks=all -X linger.ms=5 <"$1" 2>"$WORK/produce.err"
}

# consume_to_end CASE NAME GROUP WANT: one member of GROUP reads every
# partition to its end (-e) and must print exactly the records in WANT.
consume_to_end() {
	local case=$1 name=$2 group=$3 want=$4 started=$SECONDS rc=0
	member_cmd "$group" -e
	timeout "$GROUP_WAIT" "${MEMBER_CMD[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$case" "kcat -G $group -e exited $rc (124: it did not reach the end within ${GROUP_WAIT}s)"
		tail -3 "$WORK/$name.err" | sed 's/^/    /'
		return
	fi
	if ! check_records "$want" "$name" >"$WORK/diff"; then
		fail "$case" "records differ"
		cat "$WORK/diff"
		return
	fi
	echo "PASS kcat $case ($(wc -l <"$want") records, $((SECONDS - started))s)"
}

# group_cases: on a fresh topic kcat-group-<run> with GROUP_PARTITIONS
# partitions and fresh groups,
#   group-rebalance   member a joins group 1 and consumes; member b joins
#                     while a is consuming and records still arrive (a
#                     rebalance); together they print every record exactly
#                     once, and each prints some.
#   group-assignment  after that rebalance the members' assignments (kcat's
#                     "rebalanced ... assigned:" notices) are disjoint, both
#                     non-empty, and cover every partition.
#   group-pubsub      group 2 reads the same topic and gets every record
#                     exactly once, independently of group 1.
#   group-resume      after group 1 stopped, 100 more records are produced;
#                     group 1's next member gets exactly those: its committed
#                     offsets held, nothing is replayed or skipped.
group_cases() {
	local run c chunk problems='' assign_problem='' pa pb na nb started=$SECONDS
	run=$$-$(date +%s)
	topic=kcat-group-$run
	local g1=kcat-g1-$run g2=kcat-g2-$run
	local cases="group-rebalance group-assignment group-pubsub group-resume"
	if [ "${E2E_CREATE_TOPICS:-1}" != 0 ]; then
		if ! out=$("$TROUPE" topics create --bootstrap-server "$BOOTSTRAP" --topic "$topic" --partitions "$GROUP_PARTITIONS" 2>&1); then
			for c in $cases; do fail "$c" "create topic: $out"; done
			return
		fi
	fi
	awk -v n="$GROUP_RECORDS" 'BEGIN {
		for (i = 0; i < n + 100; i++) printf "key-%d:value-%d-group-kcat\n", i, i
	}' >"$WORK/group.all"
	head -n "$GROUP_RECORDS" "$WORK/group.all" >"$WORK/group.in"
	tail -n 100 "$WORK/group.all" >"$WORK/group.extra"
	for c in group.in group.extra; do
		sed 's/^\([^:]*\):/\1|codec=group,client=kcat|/' "$WORK/$c" >"$WORK/$c.want"
	done
	# Eight chunks: one before member a starts, the rest spread over b's
	# join and the rebalance.
	split -n l/8 -d "$WORK/group.in" "$WORK/chunk."

	if ! produce_file "$WORK/chunk.00"; then
		for c in $cases; do fail "$c" "produce: $(tail -3 "$WORK/produce.err")"; done
		return
	fi
	start_member a "$g1"
	if ! wait_until "$GROUP_WAIT" test -s "$WORK/a.out"; then
		STOP_PROBLEMS=
		stop_member a
		for c in $cases; do fail "$c" "member a printed no record within ${GROUP_WAIT}s$STOP_PROBLEMS"; done
		tail -3 "$WORK/a.err" | sed 's/^/    /'
		return
	fi
	start_member b "$g1"
	for chunk in "$WORK"/chunk.0[1-9]; do
		sleep 0.25
		if ! produce_file "$chunk"; then
			problems="; produce: $(tail -3 "$WORK/produce.err")"
			break
		fi
	done
	if [ -z "$problems" ] && ! wait_until "$GROUP_WAIT" have_all; then
		problems="; timed out after ${GROUP_WAIT}s waiting for a and b to print $GROUP_RECORDS records"
	fi

	if [ "${E2E_CREATE_TOPICS:-1}" != 0 ]; then
		seq 0 $((GROUP_PARTITIONS - 1)) >"$WORK/parts"
	else # an auto-created topic: every partition a record came from
		grep -h '|end$' "$WORK/a.out" "$WORK/b.out" | cut -d'|' -f1 | sort -nu >"$WORK/parts"
	fi
	if ! wait_until "$GROUP_WAIT" split_ok; then
		assign_problem="no disjoint assignments covering $(paste -sd, "$WORK/parts") within ${GROUP_WAIT}s"
	fi
	pa=$(assigned a | paste -sd,) pb=$(assigned b | paste -sd,)
	STOP_PROBLEMS=
	stop_member a
	stop_member b
	problems=$problems$STOP_PROBLEMS

	na=$(records_of a | wc -l) nb=$(records_of b | wc -l)
	if ! check_records "$WORK/group.in.want" a b >"$WORK/diff"; then
		fail group-rebalance "records differ$problems"
		cat "$WORK/diff"
	elif [ "$na" = 0 ] || [ "$nb" = 0 ]; then
		fail group-rebalance "one member got nothing: a $na, b $nb$problems"
	elif [ -n "$problems" ]; then
		fail group-rebalance "${problems#; }"
	else
		echo "PASS kcat group-rebalance ($GROUP_RECORDS records: a $na, b $nb; $((SECONDS - started))s)"
	fi
	if [ -n "$assign_problem" ]; then
		fail group-assignment "$assign_problem; a owns [$pa], b owns [$pb]"
		for c in a b; do
			echo "    $c's last notices:"
			grep rebalanced "$WORK/$c.err" | tail -2 | sed 's/^/      /'
		done
	else
		echo "PASS kcat group-assignment (a [$pa], b [$pb])"
	fi

	consume_to_end group-pubsub c "$g2" "$WORK/group.in.want"
	if ! produce_file "$WORK/group.extra"; then
		fail group-resume "produce: $(tail -3 "$WORK/produce.err")"
		return
	fi
	consume_to_end group-resume d "$g1" "$WORK/group.extra.want"
}

if [ "$GROUPS_MODE" != 0 ]; then
	group_cases
fi

[ "$failed" = 0 ]
