#!/usr/bin/env bash
# Builds the axion-agent for linux/amd64 and linux/arm64 (static, CGO off) into
# agent/dist/, stamps the version and writes agent/dist/SHA256SUMS.
#   AGENT_VERSION=1.2.3 bash scripts/build-agent.sh   # default: agent/VERSION
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../agent"
command -v go >/dev/null || { echo "build-agent: go is not on PATH" >&2; exit 1; }

version="${AGENT_VERSION:-$(tr -d '[:space:]' < VERSION)}"
[[ -n "$version" ]] || { echo "build-agent: empty version" >&2; exit 1; }
arches=(amd64 arm64)
mkdir -p dist

pids=()
for arch in "${arches[@]}"; do
  out="dist/axion-agent-linux-$arch"
  # Build to a temporary name of this run's own and rename, so a reader never sees half a
  # binary and two builds at once (test files in parallel) never take each other's file.
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOFLAGS="${GOFLAGS:-} -mod=readonly" \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=$version" \
      -o "$out.tmp.$$" . && mv -f "$out.tmp.$$" "$out" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[[ $status -eq 0 ]] || { echo "build-agent: build failed" >&2; exit 1; }

(
  cd dist
  files=()
  for arch in "${arches[@]}"; do files+=("axion-agent-linux-$arch"); done
  if command -v sha256sum >/dev/null; then sha256sum "${files[@]}"; else shasum -a 256 "${files[@]}"; fi > "SHA256SUMS.tmp.$$"
  mv -f "SHA256SUMS.tmp.$$" SHA256SUMS
)

for arch in "${arches[@]}"; do
  f="dist/axion-agent-linux-$arch"
  echo "agent/$f  $(wc -c < "$f" | tr -d ' ') bytes  (version $version)"
done
echo "agent/dist/SHA256SUMS"
