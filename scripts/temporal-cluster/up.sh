#!/usr/bin/env bash
# Runs a real Temporal server (the release built by install.sh, not the CLI's dev server): every
# service (frontend, history, matching, worker) in one process, on the given PostgreSQL with SQL
# visibility, on free loopback ports, with the namespace registered and our custom search
# attributes (temporal/search-attributes.ts) added.
#   up.sh --database-url postgres://USER[:PASSWORD]@HOST:PORT/DB [--databases NAME] [--namespace NS]
#         [--port PORT] DIR
# Creates the databases NAME and NAME_visibility (default temporal, temporal_visibility) on that
# server unless they exist, sets up or upgrades their schemas with temporal-sql-tool, writes DIR/config.yaml
# and DIR/dynamicconfig.yaml, starts the server in its own process group (pid in DIR/temporal.pid,
# log in DIR/temporal.log) and returns once the namespace answers a visibility query on our search
# attributes. The last line printed is the frontend's address (also in DIR/address). down.sh DIR stops it.
# Starting again with the same DIR and databases keeps every workflow.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: up.sh --database-url URL [--databases NAME] [--namespace NS] [--port PORT] DIR"
database_url="" databases=temporal namespace=axion port="" dir=""
while [ $# -gt 0 ]; do
  case "$1" in
  --database-url) database_url="${2:?$usage}"; shift 2 ;;
  --databases) databases="${2:?$usage}"; shift 2 ;;
  --namespace) namespace="${2:?$usage}"; shift 2 ;;
  --port) port="${2:?$usage}"; shift 2 ;;
  -*) echo "$usage" >&2; exit 2 ;;
  *) dir="$1"; shift ;;
  esac
done
[ -n "$database_url" ] && [ -n "$dir" ] || { echo "$usage" >&2; exit 2; }
[[ "$databases" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "--databases: lower-case letters, digits and _ only" >&2; exit 2; }
bin=$(bash "$here/install.sh")
schema="$bin/../schema/postgresql/v12"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/temporal.pid" ] && kill -0 "$(cat "$dir/temporal.pid")" 2>/dev/null; then
  echo "a Temporal server from $dir runs already (pid $(cat "$dir/temporal.pid")): down.sh $dir first" >&2
  exit 1
fi
started=$(date +%s%N)

# The URL's parts, as temporal-sql-tool and the server's config take them (percent-decoded).
mapfile -t pg < <(python3 - "$database_url" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
if p.scheme not in ("postgres", "postgresql") or not p.hostname:
    sys.exit("--database-url: postgres://USER[:PASSWORD]@HOST[:PORT]/DB")
print(p.hostname); print(p.port or 5432); print(u.unquote(p.username or "postgres")); print(u.unquote(p.password or ""))
PY
)
pg_host=${pg[0]} pg_port=${pg[1]} pg_user=${pg[2]} pg_password=${pg[3]}
# The password reaches the tool through its environment, never its command line.
export SQL_PASSWORD="$pg_password" SQL_USER="$pg_user"
sql_tool() { "$bin/temporal-sql-tool" --plugin postgres12 --endpoint "$pg_host" --port "$pg_port" --user "$pg_user" --database "$1" "${@:2}"; }
for db in "$databases" "${databases}_visibility"; do
  kind=temporal
  [ "$db" = "$databases" ] || kind=visibility
  marker="$dir/.schema-$db"
  {
    if [ ! -f "$marker" ]; then
      sql_tool "$db" create-database || true # it exists already: setup-schema below says whether it is ours
      sql_tool "$db" setup-schema -v 0.0
      touch "$marker"
    fi
    sql_tool "$db" update-schema -d "$schema/$kind/versioned"
  } >>"$dir/schema.log" 2>&1 || { tail -20 "$dir/schema.log" >&2; exit 1; }
done

# Free loopback ports below the kernel's ephemeral range: a port picked from that range (even one
# parked in TIME_WAIT, as test/support/ports.ts does) can become the local end of one of the many
# connections this server opens before its eight listeners are all bound (seen: ringpop's
# "bind: address already in use"). Each candidate is checked by binding it without SO_REUSEADDR.
mapfile -t ports < <(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
picked = []
while len(picked) < 8:
    port = random.randrange(10000, low)
    if port in picked: continue
    s = socket.socket()
    try: s.bind(("127.0.0.1", port))
    except OSError: continue
    finally: s.close()
    picked.append(port)
print("\n".join(map(str, picked)))
PY
)
frontend=${port:-${ports[0]}}
cat >"$dir/config.yaml" <<YAML
# enable-template (the database password comes from the server's environment, not this file)
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  # Shards are fixed for a cluster's life; a few suffice on one machine.
  numHistoryShards: ${TEMPORAL_HISTORY_SHARDS:-4}
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: $databases
        connectAddr: "$pg_host:$pg_port"
        connectProtocol: tcp
        user: '{{ env "SQL_USER" }}'
        password: '{{ env "SQL_PASSWORD" }}'
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: ${databases}_visibility
        connectAddr: "$pg_host:$pg_port"
        connectProtocol: tcp
        user: '{{ env "SQL_USER" }}'
        password: '{{ env "SQL_PASSWORD" }}'
        maxConns: 5
        maxIdleConns: 5
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
  frontend:
    rpc: { grpcPort: $frontend, membershipPort: ${ports[1]}, bindOnIP: 127.0.0.1 }
  history:
    rpc: { grpcPort: ${ports[2]}, membershipPort: ${ports[3]}, bindOnIP: 127.0.0.1 }
  matching:
    rpc: { grpcPort: ${ports[4]}, membershipPort: ${ports[5]}, bindOnIP: 127.0.0.1 }
  worker:
    rpc: { grpcPort: ${ports[6]}, membershipPort: ${ports[7]}, bindOnIP: 127.0.0.1 }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$frontend"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "$dir/dynamicconfig.yaml"
  pollInterval: 10s
YAML
cat >"$dir/dynamicconfig.yaml" <<YAML
# A namespace registered by up.sh is served within a second instead of the default 10 s.
system.namespaceCacheRefreshInterval:
  - value: 1s
YAML

if [ -f "$dir/temporal.log" ]; then mv "$dir/temporal.log" "$dir/temporal.log.1"; fi
# setsid: the server leads its own process group, which down.sh ends whole.
setsid "$bin/temporal-server" --config-file "$dir/config.yaml" --allow-no-auth start \
  </dev/null >>"$dir/temporal.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/temporal.pid"
address="127.0.0.1:$frontend"
if ! (cd "$here/../.." && node --import tsx "$here/register.ts" "$address" "$namespace" "$pid"); then
  tail -20 "$dir/temporal.log" >&2
  bash "$here/down.sh" "$dir"
  exit 1
fi
echo "$address" >"$dir/address"
echo "temporal server $("$bin/temporal-server" --version | awk '{print $NF}') ready on $address, namespace $namespace (pid $pid) in $((($(date +%s%N) - started) / 1000000)) ms" >&2
echo "$address"
