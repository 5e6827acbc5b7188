#!/usr/bin/env bash
# e2e.sh: end-to-end tests of a real broker with real clients.
#
# Starts bin/troupe on a free 127.0.0.1 port with a fresh data directory,
# runs every client script in scripts/e2e/ against it (kcat, kafka-python,
# confluent-kafka, kafkajs), and stops the broker it started. Each client prints one
# PASS, FAIL or SKIP line per case; the last line is "N passed, M failed".
# On failure the broker's log tail is printed. Exit status: 0 only if
# nothing failed.
#
# Environment:
#   E2E_CLIENTS    clients to run (default "kcat kafka-python confluent-kafka kafkajs";
#                  kafkajs needs `npm ci` in scripts/e2e/kafkajs, which .ci/run does)
#   E2E_RECORDS    records per codec (10000); E2E_PARTITIONS per topic (3)
#   E2E_CODECS     (default "none gzip snappy lz4 zstd")
#   E2E_GROUPS     consumer-group cases of kcat, kafka-python and
#                  confluent-kafka (two members with a rebalance, assignment,
#                  a second group, resuming from committed offsets):
#                  1 (default) after the codec cases, 0 skip them, only: run
#                  nothing else (kafkajs, which has none, is left out)
#   E2E_GROUP_RECORDS (4000), E2E_GROUP_PARTITIONS (4), E2E_GROUP_TIMEOUT
#                  (30 s for any one wait in a group case)
#   E2E_BOOTSTRAP  host:port of an already running broker: start none
#   E2E_CREATE_TOPICS=0  do not create topics (for brokers that auto-create)
#   TROUPE         the troupe binary (default bin/troupe, rebuilt if stale)
#   PYTHON         interpreter with the Debian client packages (default
#                  /usr/bin/python3 when present: Debian's python3-kafka and
#                  python3-confluent-kafka install there, not into pyenv/venvs)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CLIENTS=${E2E_CLIENTS:-kcat kafka-python confluent-kafka kafkajs}
CLIENT_TIMEOUT=${E2E_CLIENT_TIMEOUT:-900}
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

if [ -z "${TROUPE:-}" ]; then
	TROUPE=$ROOT/bin/troupe
	if [ ! -x "$TROUPE" ] || [ -n "$(find . -name '*.go' -newer "$TROUPE" -print -quit)" ] ||
		[ go.mod -nt "$TROUPE" ] || [ go.sum -nt "$TROUPE" ]; then
		echo "e2e: building bin/troupe"
		go build -o bin/troupe ./cmd/troupe
	fi
fi
export TROUPE
# Keep the client scripts from writing __pycache__ into the tree.
export PYTHONDONTWRITEBYTECODE=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/troupe-e2e.XXXXXX")
BROKER_PID=

stop_broker() {
	[ -n "$BROKER_PID" ] || return 0
	if kill -0 "$BROKER_PID" 2>/dev/null; then
		kill "$BROKER_PID" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$BROKER_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$BROKER_PID" 2>/dev/null; then
			echo "e2e: broker $BROKER_PID did not stop in 10s; killing it" >&2
			kill -9 "$BROKER_PID" 2>/dev/null || true
		fi
	fi
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
}

LOG_SHOWN=
show_broker_log() {
	if [ -z "$LOG_SHOWN" ] && [ -s "$WORK/broker.log" ]; then
		echo "---- broker log (last 60 lines) ----"
		tail -n 60 "$WORK/broker.log"
		echo "----"
	fi
	LOG_SHOWN=1
}

cleanup() {
	local rc=$?
	stop_broker
	if [ "$rc" != 0 ]; then show_broker_log; fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

broker_alive() { [ -z "$BROKER_PID" ] || kill -0 "$BROKER_PID" 2>/dev/null; }

if [ -n "${E2E_BOOTSTRAP:-}" ]; then
	BOOTSTRAP=$E2E_BOOTSTRAP
	echo "e2e: using the broker at $BOOTSTRAP"
else
	PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	BOOTSTRAP=127.0.0.1:$PORT
	"$TROUPE" broker --override "listeners=PLAINTEXT://$BOOTSTRAP" --override "log.dirs=$WORK/data" \
		>"$WORK/broker.log" 2>&1 &
	BROKER_PID=$!
	echo "e2e: started broker pid $BROKER_PID on $BOOTSTRAP, data in $WORK/data"
	for i in $(seq 300); do
		if ! broker_alive; then
			echo "e2e: FAIL: the broker exited during startup"
			exit 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			break
		fi
		if [ "$i" = 300 ]; then
			echo "e2e: FAIL: the broker did not accept connections on $BOOTSTRAP within 30s"
			exit 1
		fi
		sleep 0.1
	done
fi

passed=0 failed=0 skipped=0
for client in $CLIENTS; do
	case $client in
	kcat) cmd=(bash scripts/e2e/kcat.sh "$BOOTSTRAP") ;;
	kafka-python) cmd=("$PYTHON" scripts/e2e/kafka_python.py "$BOOTSTRAP") ;;
	confluent-kafka) cmd=("$PYTHON" scripts/e2e/confluent.py "$BOOTSTRAP") ;;
	kafkajs)
		if [ "${E2E_GROUPS:-1}" = only ]; then
			echo "=== kafkajs: no consumer-group cases; not run (E2E_GROUPS=only)"
			continue
		fi
		if [ ! -d scripts/e2e/kafkajs/node_modules/kafkajs ]; then
			echo "FAIL kafkajs: not installed; run (cd scripts/e2e/kafkajs && npm ci)"
			failed=$((failed + 1))
			continue
		fi
		cmd=(node scripts/e2e/kafkajs/produce.js "$BOOTSTRAP")
		;;
	*)
		echo "FAIL $client: unknown client (E2E_CLIENTS)"
		failed=$((failed + 1))
		continue
		;;
	esac
	echo "=== $client"
	rc=0
	timeout "$CLIENT_TIMEOUT" "${cmd[@]}" 2>&1 | tee "$WORK/$client.out" || rc=$?
	p=$(grep -c '^PASS ' "$WORK/$client.out" || true)
	f=$(grep -c '^FAIL ' "$WORK/$client.out" || true)
	s=$(grep -c '^SKIP ' "$WORK/$client.out" || true)
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		# A crash or a timeout reports nothing itself.
		echo "FAIL $client: exited with status $rc"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if ! broker_alive; then
		echo "FAIL broker: exited while $client ran"
		failed=$((failed + 1))
		break
	fi
done

if [ "$failed" != 0 ]; then
	stop_broker
	show_broker_log
fi
summary="$passed passed, $failed failed"
if [ "$skipped" != 0 ]; then summary="$summary, $skipped skipped"; fi
echo "$summary"
[ "$failed" = 0 ]
