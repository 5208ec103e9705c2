#!/usr/bin/env bash
# Builds Ory Hydra (the OpenID Connect provider of the single sign-on tests) from the Go module
# proxy into a cache outside the repo: $AXION_HYDRA_HOME/<version>/bin/hydra (default
# /var/cache/axion-hydra, or ~/.cache/axion-hydra when that is not writable; HYDRA_VERSION,
# default v2.3.0). Idempotent; prints the binary's path.
# Hydra's own go.mod has replace directives, which `go install module@version` refuses, so the
# build runs in a small wrapper module that requires Hydra as a tool and repeats the replace it
# needs (its pop fork). SQLite is built in (cgo, tags as Hydra's Makefile) for the `memory` DSN.
set -euo pipefail
HYDRA_VERSION="${HYDRA_VERSION:-v2.3.0}"
if [ -z "${AXION_HYDRA_HOME:-}" ]; then
  AXION_HYDRA_HOME=/var/cache/axion-hydra
  if ! { mkdir -p "$AXION_HYDRA_HOME" && [ -w "$AXION_HYDRA_HOME" ]; } 2>/dev/null; then
    AXION_HYDRA_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/axion-hydra"
  fi
fi
home_dir="$AXION_HYDRA_HOME/$HYDRA_VERSION"
binary="$home_dir/bin/hydra"
if [ -f "$home_dir/.complete" ]; then echo "$binary"; exit 0; fi
mkdir -p "$home_dir"
exec 9>"$home_dir/.lock"
flock 9
if [ -f "$home_dir/.complete" ]; then echo "$binary"; exit 0; fi

work=$(mktemp -d "$home_dir/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<MOD
module axion.local/hydra-build

go 1.22

replace github.com/gobuffalo/pop/v6 => github.com/ory/pop/v6 v6.2.1-0.20241121111754-e5dfc0f3344b
MOD
{
  go get -tool "github.com/ory/hydra/v2@$HYDRA_VERSION" &&
    go mod tidy &&
    CGO_ENABLED=1 GOBIN="$work/bin" go install -tags sqlite,sqlite_omit_load_extension \
      -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=$HYDRA_VERSION" github.com/ory/hydra/v2
} >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
"$work/bin/hydra" version >/dev/null
rm -rf "$home_dir/bin"
mv "$work/bin" "$home_dir/bin"
touch "$home_dir/.complete"
echo "$binary"
