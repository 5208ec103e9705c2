#!/usr/bin/env bash
# The test-host image with docker.io already installed, for `bench/bootstrap.ts --docker-preinstalled`:
# a copy of scripts/testhosts' image with `apt-get install docker.io` run in it (offline, from the
# image's own apt cache; services are not started in the chroot, docker.service is enabled, so it
# starts when a host boots). Hosts use it through AXION_TESTHOST_IMAGE. Built once, rebuilt when
# the base image changes. Prints the image path.
set -euo pipefail
cache="${AXION_TESTHOST_CACHE:-/var/cache/axion-testhosts}"
base="$cache/image"
dest="$cache/bench-docker-image"
stamp=".axion-testhost-image"
[[ -f "$base/$stamp" ]] || { echo "no base image at $base: run scripts/testhosts/build-image.sh" >&2; exit 1; }
if [[ -f "$dest/$stamp" ]] && cmp -s "$base/$stamp" "$dest/.bench-base-stamp"; then echo "$dest"; exit 0; fi
if findmnt -rn -o OPTIONS -t overlay | grep -q "lowerdir=$dest"; then echo "hosts use $dest; bring them down first" >&2; exit 1; fi

tmp="$dest.tmp.$$"
trap 'rm -rf --one-file-system "$tmp"' EXIT
echo "[bench] building $dest: the test-host image + docker.io" >&2
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
' bench "$tmp" > "$cache/bench-docker-image.log" 2>&1 || { tail -n 20 "$cache/bench-docker-image.log" >&2; exit 1; }
rm -f "$tmp/usr/sbin/policy-rc.d"
[[ -x "$tmp/usr/bin/docker" && -L "$tmp/etc/systemd/system/multi-user.target.wants/docker.service" ]] \
  || { echo "docker.io did not install into $tmp" >&2; exit 1; }
cp "$base/$stamp" "$tmp/.bench-base-stamp"
rm -rf --one-file-system "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest"
