#!/usr/bin/env bash
# Builds the Temporal server (`temporal-server`, cmd/server) and its schema tool
# (`temporal-sql-tool`, cmd/tools/sql) from the Go module proxy into a cache outside the repo:
# $AXION_TEMPORAL_SERVER_HOME/<version>/bin (default /var/cache/axion-temporal-server, or
# ~/.cache/axion-temporal-server when that is not writable; TEMPORAL_SERVER_VERSION, default v1.32.1).
# Idempotent; prints the bin folder. The build takes several CPU-minutes: CI runs it once, here,
# from scripts/install-test-deps.sh. The server's schema files are copied next to the binaries
# (bin/../schema) since temporal-sql-tool reads them from disk.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
if [ -f "$TEMPORAL_SERVER_DIR/.complete" ]; then echo "$TEMPORAL_SERVER_BIN"; exit 0; fi
mkdir -p "$TEMPORAL_SERVER_DIR"
exec 9>"$TEMPORAL_SERVER_DIR/.lock"
flock 9
if [ -f "$TEMPORAL_SERVER_DIR/.complete" ]; then echo "$TEMPORAL_SERVER_BIN"; exit 0; fi

work=$(mktemp -d "$TEMPORAL_SERVER_DIR/.build-XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
module="go.temporal.io/server@$TEMPORAL_SERVER_VERSION"
# The module has no replace directives, so `go install module@version` builds it as released.
# Pure Go (its SQLite driver is modernc), hence CGO off: no C toolchain, a static binary.
{
  CGO_ENABLED=0 GOBIN="$work/bin" go install \
    "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
} >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
mv "$work/bin/server" "$work/bin/temporal-server"
mv "$work/bin/sql" "$work/bin/temporal-sql-tool"
"$work/bin/temporal-server" --version >/dev/null
source_dir=$(go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$source_dir/schema" "$work/schema"
chmod -R u+w "$work/schema"
rm -rf "$TEMPORAL_SERVER_BIN" "$TEMPORAL_SERVER_DIR/schema"
mv "$work/schema" "$TEMPORAL_SERVER_DIR/schema"
mv "$work/bin" "$TEMPORAL_SERVER_BIN"
touch "$TEMPORAL_SERVER_DIR/.complete"
echo "$TEMPORAL_SERVER_BIN"
