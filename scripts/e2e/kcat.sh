#!/usr/bin/env bash
# e2e client: kcat (librdkafka's command-line client).
#
# For each codec: create topic kcat-<codec>, produce E2E_RECORDS records
# with keys and two headers, consume the topic from the beginning of every
# partition, and check each record came back exactly once with its key,
# headers and value. Prints one PASS/FAIL line per codec.
#
# Usage: kcat.sh BOOTSTRAP
# Environment: TROUPE (bin/troupe), E2E_RECORDS (10000), E2E_PARTITIONS (3),
# E2E_CODECS ("none gzip snappy lz4 zstd"), E2E_CREATE_TOPICS (1; 0 for a
# broker that auto-creates), E2E_PHASE_TIMEOUT (120 s).
set -uo pipefail # no -e: every codec reports, then the exit code says

BOOTSTRAP=${1:?usage: kcat.sh BOOTSTRAP}
TROUPE=${TROUPE:-bin/troupe}
RECORDS=${E2E_RECORDS:-10000}
PARTITIONS=${E2E_PARTITIONS:-3}
CODECS=${E2E_CODECS:-none gzip snappy lz4 zstd}
PHASE_TIMEOUT=${E2E_PHASE_TIMEOUT:-120}

if ! command -v kcat >/dev/null; then
	echo "FAIL kcat all: kcat is not installed (Debian: kcat)"
	exit 1
fi
kcat -V 2>&1 | grep '^Version' || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/troupe-kcat.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
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

[ "$failed" = 0 ]
