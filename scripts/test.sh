#!/usr/bin/env bash
# The test command (`npm test`): installs missing system parts, then runs every test file
# (or the ones given) with node's test runner. Node 20 does not find .ts files by itself,
# so the files are listed explicitly. Files run one at a time: they start real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
if [ "$#" -eq 0 ]; then set -- test/*.test.ts; fi
exec node --import tsx --test --test-concurrency=1 "$@"
