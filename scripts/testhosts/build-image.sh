#!/usr/bin/env bash
# Build the Debian bookworm root file system that every test host uses as its overlay lowerdir.
#
#   scripts/testhosts/build-image.sh [--force]
#
# Result: $AXION_TESTHOST_CACHE/image (default /var/cache/axion-testhosts/image) with a stamp
# file .axion-testhost-image. Idempotent: exits at once when the stamp exists (--force rebuilds,
# refused while hosts are up, because an overlay's lowerdir must not change under it).
#
# The Debian mirror is the one apt on this machine already uses (read from /etc/apt/sources.list*).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SUITE=bookworm
# Packages of a "fresh VPS": systemd as init, sshd (+ sftp for uploads), python3 (+ python3-apt)
# for Ansible, the tools the bootstrap checks for. Docker is NOT installed, only its .debs cached.
INCLUDE_PACKAGES=(
  systemd systemd-sysv dbus openssh-server openssh-sftp-server sudo nftables iproute2 procps
  ca-certificates curl python3 python3-apt iputils-ping netbase less
)
DEB_CACHE_IN_IMAGE=/var/cache/axion-debs

force=0
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

require_root

if [[ -f "$IMAGE_STAMP" && $force -eq 0 ]]; then
  log "image ready: $IMAGE_DIR ($(grep -m1 '^built=' "$IMAGE_STAMP" || true))"
  exit 0
fi
if [[ $force -eq 1 ]] && findmnt -rn -o OPTIONS -t overlay | grep -q "lowerdir=$IMAGE_DIR"; then
  die "test hosts are using $IMAGE_DIR; run scripts/testhosts/down.sh --all first"
fi

# Tools needed here and by up.sh/down.sh, so one build prepares the machine.
ensure_tools debootstrap:debootstrap ip:iproute2 nft:nftables nsenter:util-linux \
  unshare:util-linux ssh-keygen:openssh-client ssh:openssh-client flock:util-linux \
  openssl:openssl timeout:coreutils

# --- the machine's Debian sources ------------------------------------------------------------
# Prints the Debian entries of the machine's apt configuration (suites bookworm*, URIs with
# "debian" in them), in the machine's own format, so the image talks to the same mirror.
machine_debian_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v s="$SUITE" '
      /^[[:space:]]*deb[[:space:]]/ {
        # deb [options] URI suite components...
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($i ~ /debian/ && $(i + 1) ~ "^" s) print
      }' "$f"
  done > "$1.list"
  : > "$1.sources"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    # deb822: paragraphs separated by blank lines; keep those with a bookworm* suite and a
    # debian URI.
    awk -v s="$SUITE" 'BEGIN { RS = ""; ORS = "\n\n" }
      {
        keep_suite = 0; keep_uri = 0
        n = split($0, lines, "\n")
        for (j = 1; j <= n; j++) {
          if (lines[j] ~ /^Suites:/) { m = split(lines[j], w, /[[:space:]]+/); for (k = 2; k <= m; k++) if (w[k] ~ "^" s) keep_suite = 1 }
          if (lines[j] ~ /^URIs:/ && lines[j] ~ /debian/) keep_uri = 1
        }
        if (keep_suite && keep_uri) print
      }' "$f"
  done >> "$1.sources"
}

# The URI that serves "<suite>" itself (not -updates / -security): the debootstrap mirror.
machine_debian_mirror() {
  local uri
  uri="$(awk -v s="$SUITE" '
      /^[[:space:]]*deb[[:space:]]/ {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit }
      }' "$1.list")"
  if [[ -z "$uri" ]]; then
    uri="$(awk -v s="$SUITE" 'BEGIN { RS = "" }
      {
        has = 0; u = ""
        n = split($0, lines, "\n")
        for (j = 1; j <= n; j++) {
          if (lines[j] ~ /^Suites:/) { m = split(lines[j], w, /[[:space:]]+/); for (k = 2; k <= m; k++) if (w[k] == s) has = 1 }
          if (lines[j] ~ /^URIs:/) { split(lines[j], w, /[[:space:]]+/); u = w[2] }
        }
        if (has && u != "") { print u; exit }
      }' "$1.sources")"
  fi
  printf '%s' "$uri"
}

mkdir -p "$AXION_TESTHOST_CACHE"
work="$(mktemp -d "$AXION_TESTHOST_CACHE/build.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
  # Nothing is mounted in the machine's namespace (chroot work runs under unshare --mount),
  # so removing the work dir is enough.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

machine_debian_sources "$work/apt"
MIRROR="$(machine_debian_mirror "$work/apt")"
[[ -n "$MIRROR" ]] || die "no '$SUITE' Debian source found in /etc/apt/sources.list*"
log "mirror: $MIRROR"

start=$SECONDS
log "debootstrap $SUITE into $rootfs (a few minutes)"
include="$(IFS=,; echo "${INCLUDE_PACKAGES[*]}")"
debootstrap --variant=minbase --include="$include" "$SUITE" "$rootfs" "$MIRROR" \
  > "$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# --- apt sources in the image: the same Debian entries as the machine ------------------------
rm -f "$rootfs/etc/apt/sources.list"
[[ -s "$work/apt.list" ]] && cp "$work/apt.list" "$rootfs/etc/apt/sources.list"
[[ -s "$work/apt.sources" ]] && cp "$work/apt.sources" "$rootfs/etc/apt/sources.list.d/debian.sources"

# Runs a command chrooted into the image, in a private mount namespace with its own /proc, so
# that nothing stays mounted on the machine whatever happens. DNS comes from the machine's
# resolv.conf, which is replaced again at the end.
in_image() {
  unshare --mount --propagation private --fork -- bash -c '
    set -e
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive "$@"
  ' in_image "$rootfs" "$@"
}
cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"

# --- Docker's packages, downloaded only ------------------------------------------------------
# apt's download-only mode computes docker.io's dependencies (Recommends included, as a plain
# `apt-get install docker.io` would) minus what the image already has, and leaves the .debs in
# /var/cache/apt/archives. They are hard-linked into /var/cache/axion-debs too, so inside a host
# both `apt-get install docker.io` (lists + archives are in the image) and
# `apt-get install /var/cache/axion-debs/*.deb` / `dpkg -i /var/cache/axion-debs/*.deb` work
# with no network.
log "apt-get update + download docker.io and its dependencies into the image"
in_image apt-get update -q > "$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; die "apt-get update in image failed"; }
# debootstrap leaves the base system's .debs in the archive cache: drop them first so only
# Docker's set remains.
in_image apt-get clean
in_image apt-get install -y -q --download-only docker.io >> "$work/apt.log" 2>&1 \
  || { tail -n 20 "$work/apt.log" >&2; die "downloading docker.io failed"; }
mkdir -p "$rootfs$DEB_CACHE_IN_IMAGE"
ln -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs$DEB_CACHE_IN_IMAGE/"
docker_version="$(in_image apt-cache policy docker.io | awk '/Candidate:/ { print $2 }')"
cat > "$rootfs$DEB_CACHE_IN_IMAGE/README" <<EOF
Offline packages for docker.io $docker_version (Debian $SUITE) and the dependencies that are not
in the base image, Recommends included. The same files are in /var/cache/apt/archives, so
"apt-get install -y docker.io" works without network, as does:
  apt-get install -y $DEB_CACHE_IN_IMAGE/*.deb
  dpkg -i $DEB_CACHE_IN_IMAGE/*.deb
EOF

# --- make it look like a fresh VPS, bootable as a container ---------------------------------
# Root login with password or key, as a provider's fresh image allows. Edited in sshd_config
# itself (not a drop-in), so the bootstrap's SSH hardening meets the usual file.
sed -i -E \
  -e 's/^#?PermitRootLogin .*/PermitRootLogin yes/' \
  -e 's/^#?PasswordAuthentication .*/PasswordAuthentication yes/' \
  -e 's/^#?PubkeyAuthentication .*/PubkeyAuthentication yes/' \
  "$rootfs/etc/ssh/sshd_config"
grep -q '^PermitRootLogin yes' "$rootfs/etc/ssh/sshd_config" || echo 'PermitRootLogin yes' >> "$rootfs/etc/ssh/sshd_config"
grep -q '^PasswordAuthentication yes' "$rootfs/etc/ssh/sshd_config" || echo 'PasswordAuthentication yes' >> "$rootfs/etc/ssh/sshd_config"

# Host keys are generated per host by up.sh; none may be shared through the image.
rm -f "$rootfs"/etc/ssh/ssh_host_*

# ssh.service has RuntimeDirectory=sshd, which covers the service itself; this tmpfiles entry
# also covers `sshd -t`, socket-activated sshd and sshd started by hand.
echo 'd /run/sshd 0755 root root -' > "$rootfs/usr/lib/tmpfiles.d/axion-sshd.conf"

# Units that make no sense (or harm) in a container sharing the machine's /dev and kernel:
# gettys on the machine's console, logind (seats/VTs), udev (would replay uevents for the
# machine's devices), what writes kernel-wide settings the machine shares (binfmt_misc
# registrations, modules via modprobe@, /etc/sysctl.d at boot), kernel file systems and
# disk scrubbers a VPS guest would not see, and apt's timers (they take the dpkg lock at random after boot, which
# would make bootstrap tests flaky, and there is no network anyway).
for unit in console-getty.service getty@tty1.service systemd-logind.service \
            systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
            systemd-udev-trigger.service systemd-udev-settle.service \
            proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-binfmt.service \
            modprobe@.service systemd-sysctl.service systemd-remount-fs.service \
            dev-hugepages.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
            sys-fs-fuse-connections.mount systemd-journald-audit.socket systemd-pstore.service \
            e2scrub_reap.service e2scrub_all.timer \
            apt-daily.timer apt-daily-upgrade.timer; do
  ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
done

echo 'LANG=C.UTF-8' > "$rootfs/etc/default/locale"

# Per-host identity is written by up.sh: machine-id, hostname, /etc/hosts.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs/etc/hostname"
printf '# test host: no DNS (hosts have no route out)\n' > "$rootfs/etc/resolv.conf"
printf '# test host: no file systems to mount\n' > "$rootfs/etc/fstab"

cat > "$rootfs/$(basename "$IMAGE_STAMP")" <<EOF
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
suite=$SUITE
mirror=$MIRROR
packages=${INCLUDE_PACKAGES[*]}
docker_io=$docker_version
docker_debs=$DEB_CACHE_IN_IMAGE
EOF

# Swap the finished image in (rename is atomic; an old image goes away afterwards).
if [[ -e "$IMAGE_DIR" ]]; then mv "$IMAGE_DIR" "$work/old-image"; fi
mv "$rootfs" "$IMAGE_DIR"
log "image built in $((SECONDS - start)) s: $IMAGE_DIR ($(du -sh "$IMAGE_DIR" | cut -f1), docker.io $docker_version)"
