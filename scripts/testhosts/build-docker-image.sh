#!/usr/bin/env bash
# The test-host image with docker.io installed: what `up.sh --docker-preinstalled` boots, for tests
# where Docker is not what is checked (a Docker install takes a minute of dpkg on a busy machine).
#
#   scripts/testhosts/build-docker-image.sh      prints the image path
#
# A copy of build-image.sh's image with `apt-get install docker.io` run in it, offline from the
# image's own apt cache. No service starts in the chroot; docker.service is enabled, so Docker
# runs when a host boots. Built once per machine like the base image and rebuilt when the base
# image changes. Concurrent callers wait for one build (flock).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root
base="$AXION_TESTHOST_CACHE/image"
dest="$(docker_image_dir)"
stamp="$(basename "$IMAGE_STAMP")"
[[ -f "$base/$stamp" ]] || die "no base image at $base: run scripts/testhosts/build-image.sh first"

mkdir -p "$AXION_TESTHOST_CACHE"
exec 9>"$AXION_TESTHOST_CACHE/.docker-image.lock"
flock -w 1200 9 || die "another build of $dest took more than 20 minutes"

if [[ -f "$dest/$stamp" ]] && cmp -s "$base/$stamp" "$dest/.base-stamp"; then echo "$dest"; exit 0; fi
if findmnt -rn -o OPTIONS -t overlay | grep -q "lowerdir=$dest"; then
  die "hosts use $dest, built from an older base image; bring them down first (down.sh --all)"
fi

start=$SECONDS
tmp="$dest.tmp.$$"
trap 'rm -rf --one-file-system "$tmp"' EXIT
log "building $dest: the test-host image + docker.io"
cp -a "$base" "$tmp"
printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"   # no service starts in the chroot
chmod 0755 "$tmp/usr/sbin/policy-rc.d"
unshare --mount --propagation private --fork -- bash -c '
  set -e
  root=$1
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -o Dpkg::Use-Pty=0 docker.io
' build-docker-image "$tmp" > "$AXION_TESTHOST_CACHE/docker-image.log" 2>&1 \
  || { tail -n 20 "$AXION_TESTHOST_CACHE/docker-image.log" >&2; die "installing docker.io into the image failed"; }
rm -f "$tmp/usr/sbin/policy-rc.d"
[[ -x "$tmp/usr/bin/docker" && -L "$tmp/etc/systemd/system/multi-user.target.wants/docker.service" ]] \
  || die "docker.io did not install into $tmp"
cp "$base/$stamp" "$tmp/.base-stamp"
rm -rf --one-file-system "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "docker image built in $((SECONDS - start)) s: $dest"
echo "$dest"
