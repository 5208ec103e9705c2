#!/usr/bin/env bash
# End-to-end check of the test-host scripts on this machine (root; needs the image).
#
#   scripts/testhosts/selftest.sh [--docker] [--load N]
#
#   always:   3 fresh hosts + one host of each other state, checked over real SSH from outside,
#             host key regeneration, exec.sh, clean teardown (no mounts left)
#   --docker  also install docker.io offline in a host and run `docker info` there
#   --load N  also time bringing up and tearing down N hosts (prefix "load")
#
# Uses prefixes st-fresh, st-sudo, st-wrongos, st-tiny, st-sshdown (and load); removes them at the end.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"

docker=0 load=0
while (($#)); do
  case "$1" in
    --docker) docker=1 ;;
    --load) load=$2; shift ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
require_root

T="$SCRIPT_DIR"
KEY="$AXION_TESTHOST_STATE/ssh/id_ed25519"
PW='Selftest-pw-1'
SSH=(ssh -i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
     -o BatchMode=yes -o ConnectTimeout=5)
fails=0
check() { # check "description" command...
  local what=$1; shift
  if "$@" >/tmp/axion-selftest.out 2>&1; then
    printf 'ok    %s\n' "$what"
  else
    printf 'FAIL  %s\n' "$what"; sed 's/^/      /' /tmp/axion-selftest.out; fails=$((fails + 1))
  fi
}
ip_of() { awk -v n="$1" '$1 == n { print $2 }' /tmp/axion-selftest.hosts; }
cleanup() { "$T/down.sh" --prefix st-fresh >/dev/null 2>&1 || true
  for p in st-sudo st-wrongos st-tiny st-sshdown load; do "$T/down.sh" --prefix "$p" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

"$T/build-image.sh"
{
  "$T/up.sh" 3 --prefix st-fresh --root-password "$PW"
  "$T/up.sh" 1 --prefix st-sudo --state sudo-user
  "$T/up.sh" 1 --prefix st-wrongos --state wrong-os
  "$T/up.sh" 1 --prefix st-tiny --state tiny-disk
  "$T/up.sh" 1 --prefix st-sshdown --state sshd-down
} > /tmp/axion-selftest.hosts
cat /tmp/axion-selftest.hosts

for i in 1 2 3; do
  ip="$(ip_of "axh-st-fresh-$i")"
  check "fresh $i: root by key, system running, Debian 12" \
    bash -c '"$@" | tee /dev/stderr | grep -qx "running" && "$@" | grep -q "VERSION_ID=\"12\""' _ \
    "${SSH[@]}" "root@$ip" 'systemctl is-system-running; cat /etc/os-release'
  check "fresh $i: hostname is axh-st-fresh-$i" \
    bash -c '[[ "$("$@")" == "axh-st-fresh-'"$i"'" ]]' _ "${SSH[@]}" "root@$ip" hostname
done
check "fresh: three different host keys" bash -c \
  "[[ \$(jq -r '.hosts[].hostKeys.ed25519' '$AXION_TESTHOST_STATE/st-fresh.json' | sort -u | wc -l) == 3 ]]"
if command -v sshpass >/dev/null; then
  check "fresh: root by password" sshpass -p "$PW" ssh -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PubkeyAuthentication=no \
    "root@$(ip_of axh-st-fresh-1)" true
fi
check "exec.sh: systemctl status ssh" "$T/exec.sh" axh-st-fresh-1 systemctl status ssh --no-pager

old="$(jq -r '.hosts[0].hostKeys.ed25519' "$AXION_TESTHOST_STATE/st-fresh.json")"
check "regen-hostkey: new key served" bash -c '
  "$1" axh-st-fresh-1 >/dev/null
  new=$(ssh-keyscan -t ed25519 "$2" 2>/dev/null | ssh-keygen -lf - | awk "{ print \$2 }")
  [[ -n "$new" && "$new" != "$3" ]] && grep -q "$new" "$4"' _ \
  "$T/regen-hostkey.sh" "$(ip_of axh-st-fresh-1)" "$old" "$AXION_TESTHOST_STATE/st-fresh.json"

ip="$(ip_of axh-st-sudo-1)"
check "sudo-user: deploy can sudo -n" "${SSH[@]}" "deploy@$ip" 'sudo -n true'
check "sudo-user: root login refused" bash -c '! "$@"' _ "${SSH[@]}" "root@$ip" true

check "wrong-os: os-release says centos 6" bash -c '"$@" | grep -q "^ID=\"centos\"" && "$@" | grep -q "^VERSION_ID=\"6\""' _ \
  "${SSH[@]}" "root@$(ip_of axh-st-wrongos-1)" 'cat /etc/os-release'

check "tiny-disk: / is under 32 MB" bash -c '(( $("$@") < 32768 ))' _ \
  "${SSH[@]}" "root@$(ip_of axh-st-tiny-1)" "df -k --output=size / | tail -1"

check "sshd-down: port 22 refused" bash -c '! timeout 3 bash -c "exec 3<>/dev/tcp/$1/22"' _ "$(ip_of axh-st-sshdown-1)"
check "sshd-down: host itself is up" "$T/exec.sh" axh-st-sshdown-1 systemctl is-system-running

if ((docker)); then
  check "docker: offline install + docker info (storage driver)" "${SSH[@]}" "root@$(ip_of axh-st-fresh-2)" \
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null && systemctl is-active docker && docker info --format "{{.ServerVersion}} {{.Driver}}"'
  cat /tmp/axion-selftest.out
fi

cleanup
check "teardown: nothing mounted" bash -c '! mount | grep -E "axion|axh-"'

if ((load > 0)); then
  before=$(free -m | awk '/^Mem:/ { print $3 }')
  s=$EPOCHREALTIME
  "$T/up.sh" "$load" --prefix load >/dev/null
  up=$(echo "$EPOCHREALTIME - $s" | bc)
  sleep 5
  after=$(free -m | awk '/^Mem:/ { print $3 }')
  s=$EPOCHREALTIME
  "$T/down.sh" --prefix load
  down=$(echo "$EPOCHREALTIME - $s" | bc)
  printf 'load: %d hosts up (sshd answering) in %.1f s, down in %.1f s, +%d MB used (%.1f MB/host)\n' \
    "$load" "$up" "$down" $((after - before)) "$(echo "($after - $before) / $load" | bc -l)"
fi

((fails == 0)) && echo "selftest: all checks passed" || { echo "selftest: $fails check(s) failed"; exit 1; }
