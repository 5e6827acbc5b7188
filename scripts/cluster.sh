#!/usr/bin/env bash
# cluster.sh: failover tests of a 3-node cluster of real processes.
#
# Runs bench/cmd/failover twice against `troupe dev --nodes 3` (3 broker
# processes on 127.0.0.1, default settings): SIGKILL the leader of an RF=3,
# min.insync.replicas=2 partition CLUSTER_KILLS times, then the active
# controller CLUSTER_CONTROLLER_KILLS times, each while an idempotent
# acks=all producer and a tailing consumer run; the killed node is
# restarted and must rejoin the ISR each time. Each run checks that every
# acknowledged record is in the partition exactly once and in order, and
# that the consumer resumed on every new leader. Then kcat (librdkafka)
# lists the three brokers of a fresh dev cluster and reads a replicated
# topic back after its leader was killed.
#
# Environment: CLUSTER_KILLS (3), CLUSTER_CONTROLLER_KILLS (2),
# CLUSTER_BASE_PORT (39092), TROUPE (bin/troupe, rebuilt if stale).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KILLS=${CLUSTER_KILLS:-3}
CKILLS=${CLUSTER_CONTROLLER_KILLS:-2}
BASE=${CLUSTER_BASE_PORT:-39092}
TROUPE=${TROUPE:-$ROOT/bin/troupe}
if [ ! -x "$TROUPE" ] || [ -n "$(find . -name '*.go' -newer "$TROUPE" -print -quit)" ]; then
	echo "cluster: building $TROUPE"
	go build -o "$TROUPE" ./cmd/troupe
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/troupe-cluster.XXXXXX")
DEV_PID=
cleanup() {
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		kill "$DEV_PID" 2>/dev/null || true
		wait "$DEV_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
go build -o "$WORK/failover" ./bench/cmd/failover

fail=0
run() {
	local name=$1; shift
	if timeout 600 "$WORK/failover" --troupe-bin "$TROUPE" --dir "$WORK/$name" --base-port "$BASE" --quiet "$@" >"$WORK/$name.out" 2>&1; then
		echo "PASS cluster $name: $(tr '\n' ' ' <"$WORK/$name.out")"
	else
		echo "FAIL cluster $name:"; cat "$WORK/$name.out"
		for f in "$WORK/$name"/node-*/broker.log; do echo "--- $f"; tail -n 30 "$f"; done
		fail=1
	fi
}
run leader-kills --kills "$KILLS"
run controller-kills --kills "$CKILLS" --controller

# kcat against a fresh cluster: metadata lists all three brokers, and a
# replicated topic survives its leader's death.
if command -v kcat >/dev/null; then
	"$TROUPE" dev --nodes 3 --dir "$WORK/kcat" --base-port "$BASE" >"$WORK/dev.out" 2>&1 &
	DEV_PID=$!
	for _ in $(seq 300); do grep -q '^ready' "$WORK/dev.out" && break; sleep 0.1; done
	BS=$(sed -n 's/^bootstrap: //p' "$WORK/dev.out")
	ok=1
	for _ in $(seq 100); do
		n=$(kcat -b "$BS" -L -m 5 2>/dev/null | grep -c 'broker [0-9]* at' || true)
		[ "$n" = 3 ] && break
		sleep 0.2
	done
	[ "${n:-0}" = 3 ] || { echo "FAIL cluster kcat: kcat -L lists ${n:-0} brokers, want 3"; ok=0; }
	"$TROUPE" topics create --bootstrap-server "$BS" --topic kc --partitions 1 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
	seq 1 1000 | kcat -b "$BS" -P -t kc -p 0 -X acks=all -X enable.idempotence=true
	leader=$("$TROUPE" topics describe --bootstrap-server "$BS" --topic kc | sed -n 's/.*Leader: \([0-9]*\).*/\1/p' | head -1)
	pid=$(sed -n "s/^node $leader  pid \([0-9]*\).*/\1/p" "$WORK/dev.out")
	kill -9 "$pid"
	got=$(timeout 60 kcat -b "$BS" -C -t kc -p 0 -o beginning -e -q 2>/dev/null | wc -l)
	[ "$got" = 1000 ] || { echo "FAIL cluster kcat: read $got of 1000 records after killing leader $leader"; ok=0; }
	[ $ok = 1 ] && echo "PASS cluster kcat: 3 brokers listed; 1000 records read back after killing leader $leader"
	[ $ok = 1 ] || fail=1
	kill "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; DEV_PID=
fi
exit $fail
