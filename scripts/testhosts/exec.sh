#!/usr/bin/env bash
# Run a command inside a running test host, as root, like a login would see it.
#
#   scripts/testhosts/exec.sh NAME [CMD [ARG...]]      (no CMD: an interactive login shell)
#
# Enters every namespace of the host's systemd (mount, UTS, IPC, net, PID, cgroup) and its root
# directory (nsenter -r: the chroot), so `systemctl status ssh`, `journalctl`, `docker info`
# talk to that host's services. The exit status is the command's.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

(($# >= 1)) || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
name=$1; shift
require_root
pid="$(host_init_pid "$name")" || die "host $name is not running"
(($#)) || set -- /bin/bash -l

# Join the host's cgroup subtree first (best effort), so what the command starts is accounted to
# the host and /proc/self/cgroup inside reads "/" like for the host's own processes.
while read -r h; do
  echo $$ > "/sys/fs/cgroup/$h/$CGROUP_SUBDIR/$name/cgroup.procs" 2>/dev/null || true
done < <(cgroup_hierarchies)

exec nsenter --target "$pid" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
  /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root USER=root LOGNAME=root TERM="${TERM:-dumb}" LANG=C.UTF-8 "$@"
