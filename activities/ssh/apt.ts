import { type ShellFragment, sh } from "./shell.js";

/** Seconds apt waits for another apt/dpkg (unattended-upgrades, a previous attempt) to let go of the dpkg lock. */
export const DPKG_LOCK_TIMEOUT_SECONDS = 300;

/**
 * Installs Debian packages the way every step does: waits for the dpkg lock
 * instead of failing on it, first finishes a dpkg run that was interrupted (a
 * cancelled or killed step) and repairs unmet dependencies it left, installs from the current package lists and
 * refreshes them only when a package is missing. Fails with apt's own message.
 */
export function aptInstall(packages: readonly string[]): ShellFragment {
  // No pty for dpkg: apt would start dpkg in a session of its own, out of reach of a cancelled step's kill.
  const wait = sh`-o ${`DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_SECONDS}`} -o Dpkg::Use-Pty=0`;
  return sh`(
export DEBIAN_FRONTEND=noninteractive
if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ]; then
  i=0; until dpkg --force-confold --configure -a >/dev/null 2>&1; do
    i=$((i+1)); [ "$i" -lt ${DPKG_LOCK_TIMEOUT_SECONDS} ] || { dpkg --force-confold --configure -a; exit 1; }; sleep 1
  done
fi
# An interrupted apt can also leave packages unpacked without their dependencies: let apt repair that first.
apt-get check >/dev/null 2>&1 || apt-get install -y -qq -f ${wait} >/dev/null 2>&1 || true
apt-get install -y -qq ${wait} ${packages} >/dev/null 2>&1 || { apt-get update -qq ${wait} && apt-get install -y -qq ${wait} ${packages} >/dev/null; }
)`;
}
