# shellcheck shell=bash disable=SC2034   # constants used by the scripts that source this
# Shared settings and helpers for the test-host scripts. Sourced, never run.
#
# Everything lives outside the repository:
#   $AXION_TESTHOST_CACHE  (default /var/cache/axion-testhosts)  the Debian image (lowerdir)
#   $AXION_TESTHOST_STATE  (default /var/lib/axion-testhosts)    per-host dirs, inventories,
#                                                                 address allocation, default key

AXION_TESTHOST_CACHE="${AXION_TESTHOST_CACHE:-/var/cache/axion-testhosts}"
AXION_TESTHOST_STATE="${AXION_TESTHOST_STATE:-/var/lib/axion-testhosts}"
IMAGE_DIR="${AXION_TESTHOST_IMAGE:-$AXION_TESTHOST_CACHE/image}"
IMAGE_STAMP="$IMAGE_DIR/.axion-testhost-image"
# The image with docker.io installed (build-docker-image.sh, up.sh --docker-preinstalled).
docker_image_dir() { printf '%s/image-docker' "$AXION_TESTHOST_CACHE"; }

BRIDGE="axbr0"
BRIDGE_CIDR="10.213.0.1/16"
GATEWAY_IP="10.213.0.1"
NET_PREFIX="10.213"
ALLOC_FILE="$AXION_TESTHOST_STATE/alloc"   # lines: "<index> <host-name>"
LOCK_FILE="$AXION_TESTHOST_STATE/.lock"
CGROUP_SUBDIR="axion"                       # hosts get /sys/fs/cgroup/<hierarchy>/axion/<name>

log() { printf '[testhosts] %s\n' "$*" >&2; }
die() { printf '[testhosts] error: %s\n' "$*" >&2; exit 1; }

require_root() { [[ $EUID -eq 0 ]] || die "must run as root"; }

# Install Debian packages on the machine when a command they provide is missing.
# Usage: ensure_tools "cmd:package" ...
ensure_tools() {
  local pair cmd pkg missing=()
  for pair in "$@"; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing on the machine: ${missing[*]}"
  # Only refresh the package lists when they were never fetched.
  if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then apt-get update -q; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

validate_prefix() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9-]{0,19}$ ]] \
    || die "prefix '$1' must match [a-z0-9][a-z0-9-]{0,19} (it ends up in host and netns names)"
}

host_dir() { printf '%s/%s' "$AXION_TESTHOST_STATE" "$1"; }

# Read one key from a host's host.env (written by up.sh): host_var NAME KEY
host_var() {
  local f; f="$(host_dir "$1")/host.env"
  [[ -f "$f" ]] || return 1
  sed -n "s/^$2=//p" "$f" | head -n1
}

# PID (in the machine's PID namespace) of a host's systemd, or fail.
host_init_pid() {
  local pid
  pid="$(host_var "$1" INIT_PID)" || return 1
  [[ -n "$pid" && -d /proc/$pid ]] || return 1
  # Guard against PID reuse: the process must still be in the host's network namespace.
  [[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" == "$(stat -L -c %i "/run/netns/$1" 2>/dev/null)" ]] || return 1
  printf '%s' "$pid"
}

# Index N (0-based, global across prefixes) -> 10.213.(1 + N/250).(1 + N%250)
index_to_ip() {
  local n=$1
  printf '%s.%d.%d' "$NET_PREFIX" $((1 + n / 250)) $((1 + n % 250))
}

# cgroup hierarchies mounted under /sys/fs/cgroup, one per line.
#   cgroup v2 only (unified): prints "."   (the whole /sys/fs/cgroup is one hierarchy)
#   cgroup v1 / hybrid:       prints each mounted hierarchy's directory name (cpu, memory, systemd, unified, ...)
cgroup_hierarchies() {
  if [[ "$(stat -f -c %T /sys/fs/cgroup)" == "cgroup2fs" ]]; then
    echo "."
    return
  fi
  findmnt -rn -o TARGET,FSTYPE | awk '$2 ~ /^cgroup2?$/ && $1 ~ "^/sys/fs/cgroup/[^/]+$" { sub("^/sys/fs/cgroup/", "", $1); print $1 }'
}

json_escape() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  printf '%s' "$s"
}
