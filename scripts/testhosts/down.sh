#!/usr/bin/env bash
# Stop test hosts and remove every trace of them (processes, mounts, cgroups, netns, veth,
# overlay dirs, address allocation, inventory). Idempotent.
#
#   scripts/testhosts/down.sh --prefix NAME     the hosts axh-NAME-*
#   scripts/testhosts/down.sh --all            every host, then the bridge axbr0
#   scripts/testhosts/down.sh NAME...          the named hosts (axh-...)
#   options: --kill   SIGKILL at once instead of a clean poweroff (10 s grace)
#            --jobs J hosts stopped in parallel (default 16)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"
source "$SCRIPT_DIR/lib/hosts.sh"

prefix="" all=0 grace=10 jobs=16 names=()
while (($#)); do
  case "$1" in
    --prefix) prefix=$2; shift ;;
    --all) all=1 ;;
    --kill) grace=0 ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) names+=("$1") ;;
  esac
  shift
done
require_root
if ((all)); then
  mapfile -t names < <(list_hosts "")
  # Hosts whose state dir is gone but whose netns survived (interrupted runs).
  while read -r n _; do
    # shellcheck disable=SC2076  # literal match of " name " in the space-joined list
    [[ "$n" == axh-* && ! " ${names[*]} " =~ " $n " ]] && names+=("$n")
  done < <(ip netns list 2>/dev/null)
elif [[ -n "$prefix" ]]; then
  validate_prefix "$prefix"
  mapfile -t names < <(list_hosts "$prefix")
elif ((${#names[@]} == 0)); then
  die "say which hosts: --prefix NAME, --all or host names"
fi

start=$SECONDS
prefixes=()
for name in "${names[@]}"; do
  p="$(host_var "$name" PREFIX 2>/dev/null || true)"
  [[ -n "$p" ]] && prefixes+=("$p")
done
for name in "${names[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  down_host "$name" "$grace" &
done
wait
# Whatever went wrong, the proof is what is left behind.
failed=0
for name in "${names[@]}"; do
  if [[ -e "$(host_dir "$name")" || -e "/run/netns/$name" ]]; then
    log "$name: not fully removed"; failed=1
  fi
done

# Inventories: rewrite (or remove) those of the prefixes touched.
[[ -n "$prefix" ]] && prefixes+=("$prefix")
for p in $(printf '%s\n' "${prefixes[@]}" | sort -u); do with_lock write_inventory "$p"; done

if ((all)); then
  for f in "$AXION_TESTHOST_STATE"/*.json "$AXION_TESTHOST_STATE"/*.key; do
    if [[ -e "$f" ]]; then rm -f "$f"; fi
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  for h in $(cgroup_hierarchies); do rmdir "/sys/fs/cgroup/$h/$CGROUP_SUBDIR" 2>/dev/null || true; done
fi
log "${#names[@]} host(s) down in $((SECONDS - start)) s"
exit "$failed"
