#!/usr/bin/env bash
# Bring up N test hosts: axh-<prefix>-1 .. axh-<prefix>-N.
#
#   scripts/testhosts/up.sh N [--prefix NAME] [--state STATE] [--pubkey FILE]
#                             [--root-password PW] [--user-password PW] [--disk-size SIZE]
#                             [--jobs J] [--timeout SECONDS] [--docker-preinstalled]
#
#   --prefix         fleet name, [a-z0-9-], default "t"; one inventory per prefix
#   --state          fresh (default) | sudo-user | sudo-password | wrong-os | tiny-disk | sshd-down
#   --pubkey FILE    authorized key (also: env AXION_TESTHOST_PUBKEY = key text or file path);
#                    without either, a key pair is made once at $STATE/ssh/id_ed25519
#   --root-password  set root's password (root may log in with it unless state sudo-user)
#   --user-password  set the password of user "deploy" (state sudo-user; required by sudo-password)
#   --disk-size      size of the root file system's writable layer for tiny-disk (default 20M)
#   --jobs           hosts prepared in parallel (default 8)
#   --timeout        seconds to wait for every host to be ready (default 120)
#   --docker-preinstalled  boot from the image with docker.io installed and enabled
#                    (build-docker-image.sh, built on first use): for tests that do not check
#                    the Docker install; any state
#
# Hosts that already exist and run are left alone (idempotent); dead leftovers are rebuilt.
# stdout: one line "NAME IP" per host of the prefix. Inventory: $STATE/<prefix>.json.
# Env AXION_TESTHOST_RSA_HOSTKEY=1 also generates an RSA host key (slower: ~0.5 s per host).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SCRIPT_DIR/lib/common.sh"
source "$SCRIPT_DIR/lib/hosts.sh"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

count="" prefix="t" state="fresh" pubkey_file="" root_password="" user_password=""
disk_size="20M" jobs=8 timeout=120 docker_preinstalled=0
while (($#)); do
  case "$1" in
    --prefix) prefix=$2; shift ;;
    --state) state=$2; shift ;;
    --pubkey) pubkey_file=$2; shift ;;
    --root-password) root_password=$2; shift ;;
    --user-password) user_password=$2; shift ;;
    --disk-size) disk_size=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --docker-preinstalled) docker_preinstalled=1 ;;
    -h|--help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z "$count" ]] || die "unexpected argument $1"; count=$1 ;;
  esac
  shift
done
[[ "$count" =~ ^[0-9]+$ && $count -ge 1 ]] || usage 2
validate_prefix "$prefix"
case "$state" in fresh|sudo-user|sudo-password|wrong-os|tiny-disk|sshd-down) ;; *) die "unknown state '$state'" ;; esac
[[ "$state" != sudo-password || -n "$user_password" ]] || die "state sudo-password needs --user-password (the password sudo asks for)"
require_root
if ((docker_preinstalled)); then
  IMAGE_DIR="$(bash "$SCRIPT_DIR/build-docker-image.sh")"
  IMAGE_STAMP="$IMAGE_DIR/.axion-testhost-image"
fi
[[ -f "$IMAGE_STAMP" ]] || die "no image at $IMAGE_DIR; run scripts/testhosts/build-image.sh first"
ensure_tools nsenter:util-linux unshare:util-linux ssh-keygen:openssh-client flock:util-linux openssl:openssl

# --- the authorized key -----------------------------------------------------------------------
private_key=""
if [[ -n "$pubkey_file" ]]; then
  pubkey="$(cat "$pubkey_file")"
  [[ "$pubkey_file" == *.pub && -f "${pubkey_file%.pub}" ]] && private_key="$(realpath "${pubkey_file%.pub}")"
elif [[ -n "${AXION_TESTHOST_PUBKEY:-}" ]]; then
  if [[ -f "$AXION_TESTHOST_PUBKEY" ]]; then pubkey="$(cat "$AXION_TESTHOST_PUBKEY")"; else pubkey="$AXION_TESTHOST_PUBKEY"; fi
else
  private_key="$AXION_TESTHOST_STATE/ssh/id_ed25519"
  if [[ ! -f "$private_key" ]]; then
    install -d -m 0700 "$(dirname "$private_key")"
    ssh-keygen -q -t ed25519 -N '' -C axion-testhosts -f "$private_key"
  fi
  pubkey="$(cat "$private_key.pub")"
fi
[[ "$pubkey" == ssh-* || "$pubkey" == ecdsa-* ]] || die "the public key does not look like an OpenSSH public key"

# --- machine-wide preparation -----------------------------------------------------------------
mkdir -p "$AXION_TESTHOST_STATE"
ensure_sysctls
ensure_bridge
if [[ -n "$private_key" ]]; then echo "$private_key" > "$AXION_TESTHOST_STATE/$prefix.key"; else rm -f "$AXION_TESTHOST_STATE/$prefix.key"; fi

hash_password() { openssl passwd -6 -stdin <<<"$1"; }
root_hash="" user_hash=""
[[ -n "$root_password" ]] && root_hash="$(hash_password "$root_password")"
[[ -n "$user_password" ]] && user_hash="$(hash_password "$user_password")"

# Set the password hash of USER in ROOT/etc/shadow (crypt hashes only contain [./0-9A-Za-z$]).
set_shadow_hash() {
  sed -i "s|^$2:[^:]*:|$2:$3:|" "$1/etc/shadow"
}

# --- one host ---------------------------------------------------------------------------------
# Prepare the root file system and network of one host and start its systemd (detached).
# Runs in a background subshell; output goes to the host's setup.log.
setup_host() {
  local name=$1 index=$2 ip dir root upper work veth user=root
  ip="$(index_to_ip "$index")"
  dir="$(host_dir "$name")"
  root="$dir/root"
  veth="axv$index"
  mkdir -p "$root"

  # Writable layer: on the machine's disk, or for tiny-disk on a small tmpfs, so that inside the
  # host `df /` (overlayfs reports its upper file system) shows a tiny, nearly full disk.
  if [[ "$state" == tiny-disk ]]; then
    mkdir -p "$dir/disk"
    mount -t tmpfs -o "size=$disk_size,mode=0755" axion-tinydisk "$dir/disk"
    upper="$dir/disk/upper" work="$dir/disk/work"
  else
    upper="$dir/upper" work="$dir/work"
  fi
  mkdir -p "$upper" "$work"
  mount -t overlay "axion-$name" -o "lowerdir=$IMAGE_DIR,upperdir=$upper,workdir=$work" "$root"

  # Identity: hostname, machine-id, fresh host keys.
  echo "$name" > "$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n%s\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$name" "$ip" "$name" > "$root/etc/hosts"
  openssl rand -hex 16 > "$root/etc/machine-id"
  ssh-keygen -q -N '' -t ed25519 -C "root@$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
  ssh-keygen -q -N '' -t ecdsa -C "root@$name" -f "$root/etc/ssh/ssh_host_ecdsa_key"
  if [[ "${AXION_TESTHOST_RSA_HOSTKEY:-0}" == 1 ]]; then
    ssh-keygen -q -N '' -t rsa -b 3072 -C "root@$name" -f "$root/etc/ssh/ssh_host_rsa_key"
  fi

  # Root: authorized key (+ password).
  install -d -m 0700 "$root/root/.ssh"
  echo "$pubkey" > "$root/root/.ssh/authorized_keys"
  chmod 0600 "$root/root/.ssh/authorized_keys"
  [[ -n "$root_hash" ]] && set_shadow_hash "$root" root "$root_hash"

  case "$state" in
    sudo-user|sudo-password)
      # A provider that hands out a sudo user and no root login (sudo-password: sudo asks deploy's password).
      user=deploy
      chroot "$root" useradd -m -s /bin/bash -G sudo deploy
      install -d -m 0700 "$root/home/deploy/.ssh"
      echo "$pubkey" > "$root/home/deploy/.ssh/authorized_keys"
      chmod 0600 "$root/home/deploy/.ssh/authorized_keys"
      chroot "$root" chown -R deploy:deploy /home/deploy/.ssh
      if [[ "$state" == sudo-password ]]; then echo 'deploy ALL=(ALL) ALL' > "$root/etc/sudoers.d/deploy"
      else echo 'deploy ALL=(ALL) NOPASSWD:ALL' > "$root/etc/sudoers.d/deploy"; fi
      chmod 0440 "$root/etc/sudoers.d/deploy"
      [[ -n "$user_hash" ]] && set_shadow_hash "$root" deploy "$user_hash"
      rm -f "$root/root/.ssh/authorized_keys"
      sed -i -E 's/^PermitRootLogin .*/PermitRootLogin no/' "$root/etc/ssh/sshd_config"
      ;;
    wrong-os)
      # An unsupported distribution as far as every usual probe can tell.
      rm -f "$root/etc/os-release" "$root/etc/debian_version"
      cat > "$root/etc/os-release" <<'EOF'
NAME="CentOS Linux"
VERSION="6 (Final)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="6"
PRETTY_NAME="CentOS Linux 6 (Final)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:6"
HOME_URL="https://www.centos.org/"
EOF
      echo 'CentOS release 6.10 (Final)' > "$root/etc/centos-release"
      ln -sfn centos-release "$root/etc/redhat-release"
      ;;
    sshd-down)
      ln -sfn /dev/null "$root/etc/systemd/system/ssh.service"
      ln -sfn /dev/null "$root/etc/systemd/system/ssh.socket"
      ;;
  esac

  # Network: veth pair, host side on the bridge, the other end is eth0 in the host's netns.
  ip netns add "$name"
  ip link add "$veth" type veth peer name eth0 netns "$name"
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$name" link set lo up
  ip -n "$name" addr add "$ip/16" dev eth0
  ip -n "$name" link set eth0 up

  {
    echo "NAME=$name"; echo "PREFIX=$prefix"; echo "INDEX=$index"; echo "IP=$ip"
    echo "STATE=$state"; echo "USER=$user"; echo "ROOT=$root"; echo "VETH=$veth"
    host_key_fingerprints "$root"
  } > "$dir/host.env"

  # Boot, detached from this script (setsid: own session, survives our exit). Not being a
  # process-group leader, setsid does not fork, so $! is the process that becomes `unshare`.
  rm -f "$dir/init.pid"
  setsid "$SCRIPT_DIR/lib/boot-host.sh" outer "$name" "$root" </dev/null >"$dir/boot.log" 2>&1 &
  local upid=$! init="" i
  # boot-host.sh writes the machine PID of the host's init to init.pid just before it execs
  # systemd. Under load (50 hosts booting on 2 cores) this can take seconds.
  for ((i = 0; i < 600; i++)); do
    if [[ -s "$dir/init.pid" ]]; then init="$(<"$dir/init.pid")"; break; fi
    [[ -d /proc/$upid ]] || break
    sleep 0.05
  done
  [[ -n "$init" ]] || { cat "$dir/boot.log" >&2; die "$name: the boot wrapper did not start (log above)"; }
  { echo "UNSHARE_PID=$upid"; echo "INIT_PID=$init"; } >> "$dir/host.env"
}

# Ready = sshd answers with its banner on port 22 (not for sshd-down) and systemd has finished
# booting (running or degraded). The port is probed with bash's own /dev/tcp, no processes
# forked: 50 hosts polled twice a second would otherwise eat the CPU their boot needs.
sshd_answers() {
  local banner=""
  { exec 3<>"/dev/tcp/$1/22"; } 2>/dev/null || return 1
  read -r -t 2 -n 4 banner <&3 || true
  exec 3<&- 3>&-
  [[ "$banner" == SSH- ]]
}

boot_finished() {
  local pid=$1 st
  st="$(nsenter -t "$pid" -m -p -r -w -- /bin/systemctl is-system-running 2>/dev/null || true)"
  [[ "$st" == running || "$st" == degraded ]]
}

wait_ready() {
  local name=$1 ip state pid deadline=$((SECONDS + timeout))
  ip="$(host_var "$name" IP)"
  state="$(host_var "$name" STATE)"
  pid="$(host_init_pid "$name")" || pid=0
  while :; do
    if [[ ! -d /proc/$pid ]]; then
      log "$name: systemd is gone; see $(host_dir "$name")/boot.log"
      return 1
    fi
    if [[ "$state" == sshd-down ]] || sshd_answers "$ip"; then
      boot_finished "$pid" && return 0
    fi
    ((SECONDS < deadline)) || { log "$name: not ready after ${timeout}s"; return 1; }
    sleep 0.5
  done
}

# --- all hosts --------------------------------------------------------------------------------
start=$SECONDS
todo=()
for ((n = 1; n <= count; n++)); do
  name="axh-$prefix-$n"
  if host_init_pid "$name" >/dev/null; then
    have="$(host_var "$name" STATE)"
    [[ "$have" == "$state" ]] || log "$name: already running in state $have (not $state); left as it is"
    continue
  fi
  if [[ -e "$(host_dir "$name")" ]] || ip netns list | grep -qw "$name"; then
    log "$name: removing a dead leftover"
    down_host "$name" 0
  fi
  todo+=("$name")
done

declare -A index_of
assign_indexes() { local n; for n in "${todo[@]}"; do echo "$n $(alloc_index "$n")"; done; }
if ((${#todo[@]})); then
  while read -r n i; do index_of[$n]=$i; done < <(with_lock assign_indexes)
  log "starting ${#todo[@]} host(s) (state $state, $jobs in parallel)"
fi

# Bounded parallel setup. Success is recorded by a marker file, not by exit statuses: `wait -n`
# (the throttle) consumes statuses that a later `wait PID` could no longer see.
for name in "${todo[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  mkdir -p "$(host_dir "$name")"
  rm -f "$(host_dir "$name")/setup.ok"
  ( set -euo pipefail; setup_host "$name" "${index_of[$name]}"; touch "$(host_dir "$name")/setup.ok" ) \
    > "$(host_dir "$name")/setup.log" 2>&1 &
done
wait
failed=0
for name in "${todo[@]}"; do
  if [[ ! -f "$(host_dir "$name")/setup.ok" ]]; then
    failed=1
    log "$name setup failed:"; cat "$(host_dir "$name")/setup.log" >&2
  fi
done
((failed == 0)) || die "some hosts could not be set up (down.sh --prefix $prefix cleans up)"
((${#todo[@]})) && log "started in $((SECONDS - start)) s, waiting for them to be ready"

# Wait for every host of the prefix (new and old) in parallel.
mapfile -t all < <(list_hosts "$prefix")
for name in "${all[@]}"; do
  rm -f "$(host_dir "$name")/ready"
  { wait_ready "$name" && touch "$(host_dir "$name")/ready"; } &
done
wait
failed=0
for name in "${all[@]}"; do [[ -f "$(host_dir "$name")/ready" ]] || failed=1; done

with_lock write_inventory "$prefix"
for name in "${all[@]}"; do echo "$name $(host_var "$name" IP)"; done
((failed == 0)) || die "some hosts are not ready (inventory written anyway: $AXION_TESTHOST_STATE/$prefix.json)"
log "${#all[@]} host(s) of prefix '$prefix' ready in $((SECONDS - start)) s; inventory $AXION_TESTHOST_STATE/$prefix.json"
