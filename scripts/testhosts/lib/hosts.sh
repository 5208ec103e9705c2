# shellcheck shell=bash
# Host life-cycle helpers shared by up.sh, down.sh and regen-hostkey.sh. Sourced after common.sh.

# Run a command while holding the global lock (allocation file, inventories).
with_lock() {
  mkdir -p "$AXION_TESTHOST_STATE"
  (
    flock -w 60 9 || die "could not lock $LOCK_FILE"
    "$@"
  ) 9>"$LOCK_FILE"
}

# Allocated index of a host, empty if none.
alloc_index_of() {
  [[ -f "$ALLOC_FILE" ]] || return 0
  awk -v n="$1" '$2 == n { print $1; exit }' "$ALLOC_FILE"
}

# Give NAME the smallest free index (call under with_lock). Prints the index.
alloc_index() {
  local idx
  idx="$(alloc_index_of "$1")"
  if [[ -z "$idx" ]]; then
    touch "$ALLOC_FILE"
    idx="$(awk '{ used[$1] = 1 } END { i = 0; while (i in used) i++; print i }' "$ALLOC_FILE")"
    ((idx < 250 * 254)) || die "address space 10.213.0.0/16 exhausted"
    echo "$idx $1" >> "$ALLOC_FILE"
  fi
  printf '%s' "$idx"
}

alloc_release() {
  [[ -f "$ALLOC_FILE" ]] || return 0
  awk -v n="$1" '$2 != n' "$ALLOC_FILE" > "$ALLOC_FILE.tmp"
  mv "$ALLOC_FILE.tmp" "$ALLOC_FILE"
}

# Names of the hosts (dirs) of a prefix, or of all prefixes with "".
list_hosts() {
  local d re='^axh-.+-[0-9]+$'
  [[ -n "${1:-}" ]] && re="^axh-$1-[0-9]+\$"
  for d in "$AXION_TESTHOST_STATE"/axh-*; do
    if [[ -d "$d" && "$(basename "$d")" =~ $re ]]; then basename "$d"; fi
  done | sort -V
}

ensure_sysctls() {
  # 128 inotify instances run out at about 30 hosts (systemd, journald, dbus... each take some).
  local key want cur
  for kv in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576; do
    key="${kv%%=*}"; want="${kv#*=}"
    cur="$(sysctl -n "$key")"
    ((cur >= want)) || sysctl -q -w "$key=$want"
  done
}

ensure_bridge() {
  # Another up.sh may add it at the same moment: then it exists, which is all that is asked.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge 2>/dev/null || ip link show "$BRIDGE" >/dev/null
  ip addr replace "$BRIDGE_CIDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# Every process (machine PIDs) in the host's cgroup subtree or network namespace.
host_pids() {
  local name=$1 h
  {
    while read -r h; do
      [[ -d "/sys/fs/cgroup/$h/$CGROUP_SUBDIR/$name" ]] || continue
      find "/sys/fs/cgroup/$h/$CGROUP_SUBDIR/$name" -name cgroup.procs -exec cat {} + 2>/dev/null
    done < <(cgroup_hierarchies)
    if [[ -e "/run/netns/$name" ]]; then ip netns pids "$name" 2>/dev/null || true; fi
  } | sort -un
}

# The host's init found from its processes (when host.env is missing or stale): the one that is
# PID 1 of its PID namespace.
find_init_pid() {
  local p
  for p in $(host_pids "$1"); do
    if awk '$1 == "NSpid:" && NF == 3 && $3 == 1 { f = 1 } END { exit !f }' "/proc/$p/status" 2>/dev/null; then
      printf '%s' "$p"
      return 0
    fi
  done
  return 1
}

# Stop one host and remove every trace of it. Idempotent; works on half-built hosts.
#   down_host NAME [GRACE_SECONDS]   (GRACE 0 = SIGKILL at once)
down_host() {
  local name=$1 grace=${2:-10} dir pid upid veth i h cg
  dir="$(host_dir "$name")"
  upid="$(host_var "$name" UNSHARE_PID || true)"
  veth="$(host_var "$name" VETH || true)"

  if pid="$(host_init_pid "$name")" || pid="$(find_init_pid "$name")"; then
    if ((grace > 0)); then
      # SIGRTMIN+4 asks systemd for a poweroff; in a container it then exits.
      kill -s RTMIN+4 "$pid" 2>/dev/null || true
      for ((i = 0; i < grace * 10; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
      done
    fi
    # Killing PID 1 of the PID namespace kills every process of the host.
    kill -s KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.05; done
  fi
  # Anything left in the host's cgroups or network namespace (should be nothing: they all died
  # with PID 1 of the host's PID namespace).
  for p in $(host_pids "$name"); do
    [[ "$p" == "$upid" ]] || kill -s KILL "$p" 2>/dev/null || true
  done
  # The unshare parent exits (and reaps) after its child; kill it only if it hangs around.
  for ((i = 0; i < 40; i++)); do
    [[ -n "$upid" && -d /proc/$upid ]] && grep -q '^unshare' "/proc/$upid/comm" 2>/dev/null || break
    sleep 0.05
  done
  if [[ -n "$upid" && -d /proc/$upid ]] && grep -q '^unshare' "/proc/$upid/comm" 2>/dev/null; then
    kill -s KILL "$upid" 2>/dev/null || true
  fi

  # Mounts in the machine's namespace: the overlay root and (tiny-disk) the small upper fs.
  for m in "$dir/root" "$dir/disk"; do
    for ((i = 0; i < 20; i++)); do
      mountpoint -q "$m" 2>/dev/null || break
      umount "$m" 2>/dev/null || sleep 0.1
    done
    if mountpoint -q "$m" 2>/dev/null; then
      log "$name: $m busy, detaching lazily"
      umount -l "$m" || true
    fi
  done

  # cgroups: remove the host's subtree in every hierarchy, deepest first.
  while read -r h; do
    cg="/sys/fs/cgroup/$h/$CGROUP_SUBDIR/$name"
    [[ -d "$cg" ]] || continue
    for ((i = 0; i < 20; i++)); do
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ -d "$cg" ]] || break
      sleep 0.1
    done
    [[ -d "$cg" ]] && log "$name: could not remove cgroup $cg"
  done < <(cgroup_hierarchies)

  # Network: deleting the namespace destroys the veth pair once no process holds it.
  ip netns del "$name" 2>/dev/null || true
  [[ -n "$veth" ]] && ip link del "$veth" 2>/dev/null || true

  if [[ -d "$dir" ]]; then
    if findmnt -rn -o TARGET | grep -q "^$dir/"; then
      log "$name: something is still mounted under $dir, leaving it"
    else
      rm -rf --one-file-system "$dir"
    fi
  fi
  with_lock alloc_release "$name"
}

json_str_or_null() { if [[ -n "$1" ]]; then printf '"%s"' "$(json_escape "$1")"; else printf 'null'; fi; }

# (Re)write $STATE/<prefix>.json from the hosts' host.env files. Call under with_lock.
write_inventory() {
  local prefix=$1 out="$AXION_TESTHOST_STATE/$1.json" name first=1 pid keyfile
  local -a hosts
  mapfile -t hosts < <(list_hosts "$prefix")
  if ((${#hosts[@]} == 0)); then
    rm -f "$out" "$AXION_TESTHOST_STATE/$prefix.key"
    return 0
  fi
  keyfile=""
  [[ -f "$AXION_TESTHOST_STATE/$prefix.key" ]] && keyfile="$(cat "$AXION_TESTHOST_STATE/$prefix.key")"
  {
    printf '{\n  "prefix": "%s",\n  "bridge": "%s",\n  "gateway": "%s",\n' "$prefix" "$BRIDGE" "$GATEWAY_IP"
    printf '  "privateKeyPath": %s,\n' "$([[ -n "$keyfile" ]] && printf '"%s"' "$(json_escape "$keyfile")" || echo null)"
    printf '  "hosts": [\n'
    for name in "${hosts[@]}"; do
      [[ -f "$(host_dir "$name")/host.env" ]] || continue
      pid="$(host_init_pid "$name" || echo 0)"
      ((first)) || printf ',\n'
      first=0
      printf '    {"name": "%s", "ip": "%s", "port": 22, "state": "%s", "user": "%s", "pid": %s, "root": "%s", "running": %s,\n' \
        "$name" "$(host_var "$name" IP)" "$(host_var "$name" STATE)" "$(host_var "$name" USER)" \
        "$pid" "$(json_escape "$(host_var "$name" ROOT)")" "$([[ $pid != 0 ]] && echo true || echo false)"
      printf '     "hostKeys": {"ed25519": %s, "ecdsa": %s, "rsa": %s}}' \
        "$(json_str_or_null "$(host_var "$name" FP_ED25519)")" \
        "$(json_str_or_null "$(host_var "$name" FP_ECDSA)")" \
        "$(json_str_or_null "$(host_var "$name" FP_RSA)")"
    done
    printf '\n  ]\n}\n'
  } > "$out.tmp"
  mv "$out.tmp" "$out"
}

# Fingerprints (SHA256:...) of a root's host public keys -> FP_* lines for host.env.
host_key_fingerprints() {
  local root=$1 t f
  for t in ed25519 ecdsa rsa; do
    f="$root/etc/ssh/ssh_host_${t}_key.pub"
    if [[ -f "$f" ]]; then
      printf 'FP_%s=%s\n' "${t^^}" "$(ssh-keygen -l -E sha256 -f "$f" | awk '{ print $2 }')"
    else
      printf 'FP_%s=\n' "${t^^}"
    fi
  done
}

# Replace the FP_* lines of a host's host.env.
update_host_fingerprints() {
  local name=$1 root=$2 env
  env="$(host_dir "$name")/host.env"
  { grep -v '^FP_' "$env"; host_key_fingerprints "$root"; } > "$env.tmp"
  mv "$env.tmp" "$env"
}
