#!/usr/bin/env bash
# The bootstrap benchmark (`npm run bench [-- --sizes 1,10 --modes fresh,docker-preinstalled]`):
# Axion's ConfigureServer vs an Ansible playbook of the same steps on N fresh test hosts.
# Installs what is missing (ansible-core from Debian, PostgreSQL and the Temporal CLI as for the
# tests), builds the test-host image once, then runs bench/bootstrap.ts. Needs root (test hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "bench: needs root (it brings up test hosts)" >&2; exit 1; fi
if ! command -v ansible-playbook >/dev/null 2>&1; then
  echo "bench: installing ansible-core (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible-core >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible-core >/dev/null
  }
fi
bash scripts/install-test-deps.sh          # PostgreSQL server binaries, the Temporal CLI
bash scripts/testhosts/build-image.sh      # once per machine (~80 s); later runs return at once
exec node --import tsx bench/bootstrap.ts "$@"
