#!/usr/bin/env bash
# Boots one test host: systemd as PID 1 of its own PID/mount/UTS/IPC/cgroup namespaces, inside the
# host's network namespace, chrooted into the host's overlay root. Started (detached) by up.sh:
#
#   boot-host.sh outer NAME ROOT     on the machine: join the host's cgroups, then
#     nsenter --net=/run/netns/NAME unshare --fork --pid --mount --uts --ipc --cgroup \
#       boot-host.sh inner NAME ROOT
#   boot-host.sh inner NAME ROOT     PID 1 of the new namespaces: mounts, then exec systemd.
#
# `nsenter --net` and not `ip netns exec`: the latter remounts /sys, the cgroup tree disappears
# and systemd exits 255 without a word.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mode=$1 name=$2 root=$3

case "$mode" in
outer)
  # Per-host cgroup subtree in every hierarchy: /sys/fs/cgroup/<h>/axion/<name>. We move
  # ourselves in before unsharing the cgroup namespace, so inside the host that directory is
  # "/" (in /proc/self/cgroup) and matches what is bind-mounted on ROOT/sys/fs/cgroup/<h>.
  while read -r h; do
    base="/sys/fs/cgroup/$h/$CGROUP_SUBDIR"
    mkdir -p "$base/$name"
    if [[ -f "$base/cpuset.cpus" ]]; then
      # cgroup v1 cpuset: a new cgroup starts with empty cpus/mems and refuses tasks.
      [[ -n "$(cat "$base/cpuset.cpus")" ]] || cat "/sys/fs/cgroup/$h/cpuset.cpus" > "$base/cpuset.cpus"
      [[ -n "$(cat "$base/cpuset.mems")" ]] || cat "/sys/fs/cgroup/$h/cpuset.mems" > "$base/cpuset.mems"
      [[ -n "$(cat "$base/$name/cpuset.cpus")" ]] || cat "$base/cpuset.cpus" > "$base/$name/cpuset.cpus"
      [[ -n "$(cat "$base/$name/cpuset.mems")" ]] || cat "$base/cpuset.mems" > "$base/$name/cpuset.mems"
    fi
    echo $$ > "$base/$name/cgroup.procs"
  done < <(cgroup_hierarchies)
  exec nsenter --net="/run/netns/$name" \
    unshare --fork --pid --mount --uts --ipc --cgroup --propagation private \
    "$0" inner "$name" "$root"
  ;;
inner)
  mount --make-rprivate /
  hostname "$name"
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m tmpfs "$root/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev,size=512m tmpfs "$root/tmp"
  # The machine's /dev (with pts, so sshd can allocate terminals), but a /dev/shm of its own.
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
  # Keep the hosts' journald out of the machine's kernel log (and the kernel log out of theirs).
  mount --bind /dev/null "$root/dev/kmsg"

  # cgroups: a tmpfs on ROOT/sys/fs/cgroup with this host's subdirectory of each hierarchy bound
  # in (one shared tree makes same-named units of two hosts collide: status=219/CGROUP).
  if [[ "$(cgroup_hierarchies)" == "." ]]; then
    mount --bind "/sys/fs/cgroup/$CGROUP_SUBDIR/$name" "$root/sys/fs/cgroup"
  else
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs "$root/sys/fs/cgroup"
    while read -r h; do
      mkdir -p "$root/sys/fs/cgroup/$h"
      mount --bind "/sys/fs/cgroup/$h/$CGROUP_SUBDIR/$name" "$root/sys/fs/cgroup/$h"
    done < <(cgroup_hierarchies)
    # Keep the machine's convenience symlinks (cpu,cpuacct -> cpu,cpuacct etc.), if any.
    for l in /sys/fs/cgroup/*; do
      if [[ -L "$l" ]]; then ln -sfn "$(readlink "$l")" "$root/sys/fs/cgroup/$(basename "$l")"; fi
    done
  fi

  # Tell up.sh our PID as the machine sees it: the machine's /proc is still mounted on /proc
  # here, and its "self" resolves in the machine's PID namespace. `read` is a builtin, so
  # "self" is this very process, which becomes systemd.
  read -r machine_pid _ < /proc/self/stat
  echo "$machine_pid" > "$(dirname "$root")/init.pid.tmp"
  mv "$(dirname "$root")/init.pid.tmp" "$(dirname "$root")/init.pid"

  exec chroot "$root" /usr/bin/env -i container=other \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system
  ;;
*)
  echo "usage: $0 outer|inner NAME ROOT" >&2
  exit 2
  ;;
esac
