#!/usr/bin/env bash
# run.sh ENDPOINT REPO EXPECT_DIR
#
# Checks a Shoal node's Hugging Face Hub-compatible endpoint
# (shoal daemon --hf-endpoint) with the real @huggingface/hub client:
# installs the pinned client from package-lock.json if it is missing, then
# runs hubtest.mjs, which downloads REPO from ENDPOINT and compares every
# file with EXPECT_DIR. Example:
#   bash scripts/hfclient/run.sh http://127.0.0.1:8081 alice/tiny ./tiny
set -euo pipefail
if [ $# -ne 3 ]; then
	echo "usage: $0 ENDPOINT REPO EXPECT_DIR" >&2
	exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
expect="$(cd "$3" && pwd)"
cd "$here"
if [ ! -d node_modules/@huggingface/hub ]; then
	timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
exec timeout 600 node hubtest.mjs "$1" "$2" "$expect"
