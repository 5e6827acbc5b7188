#!/usr/bin/env bash
# fuzz.sh: runs every Go fuzz target in the module for FUZZTIME each.
#
# Targets are discovered with `go test -list '^Fuzz'`, so a new Fuzz
# function is fuzzed without touching this script. Go fuzzes one target
# of one package per invocation, hence the loop.
#
# Usage: scripts/fuzz.sh [FUZZTIME]   (default 10s; e.g. 2m, 1h, 500x)
# Environment: FUZZ_PKGS (default ./...) narrows the packages searched.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${1:-10s}
read -ra pkgs <<<"${FUZZ_PKGS:-./...}"

# `go test -list` prints each package's matching names, then a line
# "ok <package> <time>" (or "? <package> [no test files]").
list=$(go test -list '^Fuzz' "${pkgs[@]}")
targets=$(awk '/^Fuzz/ { names[n++] = $1; next }
	/^ok / { for (i = 0; i < n; i++) print $2, names[i]; n = 0; next }
	{ n = 0 }' <<<"$list")

if [ -z "$targets" ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

count=$(wc -l <<<"$targets")
echo "fuzz: $count targets, $FUZZTIME each"
failed=0
while read -r pkg name; do
	echo "=== fuzz $pkg $name"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"; then
		echo "FAIL fuzz $pkg $name (a failing input is saved under the package's testdata/fuzz/$name)"
		failed=$((failed + 1))
	fi
done <<<"$targets"
echo "fuzz: $((count - failed)) of $count targets passed"
[ "$failed" = 0 ]
