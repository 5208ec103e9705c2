#!/usr/bin/env bash
# Give a running host new SSH host keys and restart its sshd: the "host key changed" event a
# reinstalled (or impersonated) server presents to a client that pinned the old key.
#
#   scripts/testhosts/regen-hostkey.sh NAME
#
# stdout: the new SHA256 fingerprints, one "TYPE SHA256:..." per line. The inventory is updated.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"
source "$SCRIPT_DIR/lib/hosts.sh"

(($# == 1)) || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
name=$1
require_root
host_init_pid "$name" >/dev/null || die "host $name is not running"

# Inside the host: same key types as before, then restart sshd if it is meant to run.
"$SCRIPT_DIR/exec.sh" "$name" /bin/sh -c '
  set -e
  types=""
  for f in /etc/ssh/ssh_host_*_key; do
    t=${f#/etc/ssh/ssh_host_}; types="$types ${t%_key}"
  done
  [ -n "$types" ] || types="ed25519 ecdsa"
  rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
  for t in $types; do ssh-keygen -q -N "" -t "$t" -C "root@$(hostname)" -f "/etc/ssh/ssh_host_${t}_key"; done
  if systemctl is-enabled --quiet ssh.service 2>/dev/null; then systemctl restart ssh.service; fi
'
update_host_fingerprints "$name" "/proc/$(host_init_pid "$name")/root"
with_lock write_inventory "$(host_var "$name" PREFIX)"
grep '^FP_' "$(host_dir "$name")/host.env" | grep -v '=$' | sed -E 's/^FP_([A-Z0-9]+)=/\L\1\E /'
