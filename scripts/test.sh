#!/usr/bin/env bash
# The whole test suite: vet, unit and in-process network tests (with the
# race detector, fuzz seed corpora included), then the end-to-end script
# with real processes on 127.0.0.1. The tests run in a network namespace
# of their own with only loopback (scripts/netns.sh), so nothing they
# start with default settings reaches beyond this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed: $unformatted"
	exit 1
fi
go vet ./... # also fetches every module, before the tests go offline
. scripts/netns.sh
run_isolated go test -race -count=1 -timeout 15m ./...
# The 100-node DHT network, without the race detector (see its test file).
run_isolated go test -count=1 -timeout 10m -run TestHundredNodes -v ./node | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|scale_test'
test "${PIPESTATUS[0]}" -eq 0
bash scripts/e2e.sh
# NAT traversal and mDNS across real network namespaces (needs root, as CI
# has): two homes behind NAT meet through a relay and punch a hole.
if [ "$(id -u)" = 0 ]; then
	bash scripts/nat-test.sh
else
	echo "skipping scripts/nat-test.sh: it needs root to make network namespaces"
fi
