import type { DeployKeyAction } from "../core/kernel/kinds.js";
import { RESULT_MARK } from "./host-facts/step-result.js";
import { aptInstall } from "./ssh/apt.js";
import { type ShellFragment, sh } from "./ssh/shell.js";

export { parseStepOutput, RESULT_MARK, type StepState } from "./host-facts/step-result.js";

/**
 * The remote side of each bootstrap step: check first, act only when needed, and
 * end with one line `AXION_RESULT changed|unchanged|skipped|would_change|cannot <detail>`.
 * Every interpolated value is quoted by `sh` and stands as a word of its own: never
 * inside "…" (where a quote would be literal text), a message that mixes text and
 * values is built in TypeScript and passed as one value. test/shell-quoting.test.ts
 * scans every sh`` template for this.
 *
 * Check mode (plans) and apply mode run the same script: every action is guarded
 * by `change <what>`, which in check mode records what would change and skips the
 * action, and in apply mode records it and lets the action run. `finish` prints the
 * result line. A check therefore reads exactly what the apply reads and changes nothing.
 */

/** "check": read-only, report what would change; "apply": act. */
export type StepMode = "check" | "apply";

function stepFrame(mode: StepMode): ShellFragment {
  return sh`mode=${mode} would="" did=""
change() { if [ "$mode" = check ]; then would="\${would:+$would, }$1"; return 1; fi; did="\${did:+$did, }$1"; }
finish() {
  if [ -n "$would" ]; then echo ${RESULT_MARK} would_change "$would"
  elif [ -n "$did" ]; then echo ${RESULT_MARK} changed "$did"
  else echo ${RESULT_MARK} unchanged "$1"; fi
}`;
}

export function adminUserScript(user: string, mode: StepMode): ShellFragment {
  const sudoers = `${user} ALL=(ALL) NOPASSWD:ALL`;
  const sudoersFile = `/etc/sudoers.d/90-axion-${user}`;
  return sh`set -e
${stepFrame(mode)}
if ! id -u ${user} >/dev/null 2>&1 && change ${`create user ${user}`}; then useradd --create-home --shell /bin/bash ${user}; fi
if ! command -v sudo >/dev/null 2>&1 && change ${"install sudo"}; then ${aptInstall(["sudo"])}; fi
if [ "$(cat ${sudoersFile} 2>/dev/null)" != ${sudoers} ] && change ${`grant ${user} passwordless sudo`}; then
  tmp=$(mktemp); printf '%s\\n' ${sudoers} > "$tmp"
  visudo -cqf "$tmp"; install -m 0440 -o root -g root "$tmp" ${sudoersFile}; rm -f "$tmp"
fi
finish ${`${user} has passwordless sudo`}`;
}

export function dockerScript(mode: StepMode): ShellFragment {
  return sh`set -e
${stepFrame(mode)}
# Docker is asked only when systemd says it runs: asking a stopped one would start it.
if command -v docker >/dev/null 2>&1 && timeout -k 2 20 systemctl is-active --quiet docker.service && timeout -k 2 30 docker info >/dev/null 2>&1; then
  version=$(timeout -k 2 20 docker version --format '{{.Server.Version}}' 2>/dev/null | head -c 200)
  finish "docker $version running"; exit 0
fi
# An attempt killed mid-install (its worker gone) leaves the binary unpacked but the package not configured.
state=$(dpkg-query -W -f='\${Status}' docker.io 2>/dev/null || true)
if ! command -v docker >/dev/null 2>&1 || { [ -n "$state" ] && [ "$state" != "install ok installed" ]; }; then what="install docker.io"
else what="start docker"; fi
if change "$what"; then
  [ "$what" = "start docker" ] || ${aptInstall(["docker.io"])}
  systemctl enable --now docker >/dev/null
  for i in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null
  version=$(timeout -k 2 20 docker version --format '{{.Server.Version}}' 2>/dev/null | head -c 200)
  did="$what: docker $version running"
fi
finish "docker running"`;
}

/**
 * Our one table, as a file `nft -f` loads atomically: declared, deleted and
 * defined again, so loading it twice replaces it (no duplicated rules) and no
 * other table (Docker's, the operator's) is touched. `%s` is the ports' match.
 */
const axionRuleset = `table inet axion_filter {}
delete table inet axion_filter
table inet axion_filter {
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
    meta l4proto { icmp, ipv6-icmp } accept
    tcp dport %s accept
  }
}
`;

/**
 * Debian's /etc/nftables.conf starts with `flush ruleset`, which deletes
 * Docker's tables on every start of nftables.service: replaced by the deletion
 * of the tables that file itself defines, so it still replaces its own.
 */
const ownTablesInsteadOfFlush = `NR == FNR {
  if ($1 == "table") { fam = $2; name = $3; if (name == "" || name ~ /^[{]/) { fam = "ip"; name = $2 }
    sub(/[{].*/, "", name); if (name != "") own = own "table " fam " " name " {}\\ndelete table " fam " " name "\\n" }
  next
}
/^[ \\t]*flush[ \\t]+ruleset/ { printf "# axion: flush ruleset would delete Docker's tables; this file replaces only its own\\n%s", own; next }
{ print }`;

/** Stopping nftables.service removes our table, not the whole ruleset (Docker's tables stay). */
const nftablesStopDropIn = `[Service]
ExecStop=
ExecStop=-/usr/sbin/nft delete table inet axion_filter
`;

/**
 * nftables: one table of our own; input dropped except loopback, replies, ICMP
 * and SSH on every port sshd listens on (read from the host: `sshd -T`, sshd's
 * listening sockets, ssh.socket where sshd is socket-activated; behind NAT or a
 * port forward the port we connect to is not one of them) and the port we
 * connect to. Persisted in /etc/nftables.d/axion.nft; Docker's tables are left alone.
 */
export function firewallScript(connectPort: number, mode: StepMode): ShellFragment {
  return sh`set -e
${stepFrame(mode)}
if ! command -v nft >/dev/null 2>&1 && change ${"install nftables"}; then ${aptInstall(["nftables"])}; fi
ports=$({ timeout -k 2 20 sshd -T 2>/dev/null | head -c 262144 | awk '$1 == "port" { print $2 } $1 == "listenaddress" { n = split($2, a, ":"); print a[n] }'
  timeout -k 2 20 ss -Hltnp 2>/dev/null | head -c 262144 | awk '/"sshd"/ { n = split($4, a, ":"); print a[n] }'
  ! timeout -k 2 20 systemctl is-active --quiet ssh.socket 2>/dev/null || timeout -k 2 20 systemctl show -p Listen --value ssh.socket | head -c 65536 | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /:[0-9]+$/) { n = split($i, a, ":"); print a[n] } }'
  echo ${connectPort}; } | grep -xE '[0-9]{1,5}' | sort -nu | head -n 32 | paste -sd, - | sed 's/,/, /g')
case "$ports" in *,*) match="{ $ports }" ;; *) match=$ports ;; esac
file=/etc/nftables.d/axion.nft conf=/etc/nftables.conf dropin=/etc/systemd/system/nftables.service.d/axion.conf
want=$(printf ${axionRuleset} "$match")
persisted() {
  grep -q 'include "/etc/nftables.d/\\*.nft"' "$conf" 2>/dev/null && ! grep -qE '^[[:space:]]*flush[[:space:]]+ruleset' "$conf" &&
    [ "$(cat "$dropin" 2>/dev/null)" = "$(printf '%s' ${nftablesStopDropIn})" ]
}
what=""
if command -v nft >/dev/null 2>&1 && nft list table inet axion_filter >/dev/null 2>&1; then
  [ "$(cat "$file" 2>/dev/null)" = "$want" ] || what="update nftables table inet axion_filter: input dropped except ssh on tcp $ports"
else what="add nftables table inet axion_filter: input dropped except ssh on tcp $ports"; fi
persisted || what="\${what:+$what, }keep it across restarts of nftables ($conf, $dropin)"
if [ -n "$what" ] && change "$what"; then
  mkdir -p /etc/nftables.d /etc/systemd/system/nftables.service.d
  tmp=$(mktemp); printf '%s\\n' "$want" > "$tmp"
  nft -c -f "$tmp"
  install -m 0644 "$tmp" "$file"
  [ -f "$conf" ] || printf '#!/usr/sbin/nft -f\\n' > "$conf"
  if grep -qE '^[[:space:]]*flush[[:space:]]+ruleset' "$conf"; then awk ${ownTablesInsteadOfFlush} "$conf" "$conf" > "$tmp"; cat "$tmp" > "$conf"; fi
  grep -q 'include "/etc/nftables.d/\\*.nft"' "$conf" || printf '\\ninclude "/etc/nftables.d/*.nft"\\n' >> "$conf"
  rm -f "$tmp"
  printf '%s' ${nftablesStopDropIn} > "$dropin"
  systemctl daemon-reload
  nft -f "$file"
  systemctl enable nftables >/dev/null 2>&1 || true
fi
finish "firewall active, ssh open on tcp $ports"`;
}

/** How strict each value of the settings hardening writes is: a setting is only ever raised. */
const stricterOfHostAndWanted = `function rank(k, v) {
  if (k == "permitrootlogin") return v == "no" ? 3 : v == "forced-commands-only" ? 2 : (v == "prohibit-password" || v == "without-password") ? 1 : 0
  return v == "no" ? 1 : 0
}
{ have[$1] = $2 }
END {
  n = split(want, w, " ")
  for (i = 1; i <= n; i++) {
    split(w[i], kv, "="); k = tolower(kv[1]); v = kv[2]
    if ((k in have) && rank(k, have[k]) > rank(k, v)) v = have[k]
    if (v == "without-password") v = "prohibit-password"
    print kv[1] " " v
  }
}`;

/**
 * What writing the settings changes in what sshd does now (`sshd -T` first, a
 * line `---`, then the settings), one phrase per setting, comma-separated.
 * Root logins are described by the caller, always.
 */
const describeSettingChanges = `function norm(v) { return v == "without-password" ? "prohibit-password" : v }
$0 == "---" { past = 1; next }
!past { now[$1] = norm($2); next }
{ k = tolower($1); v = norm(tolower($2)); if (k == "permitrootlogin" || now[k] == v) next
  if (k == "passwordauthentication") d = "disable password login"
  else if (k == "kbdinteractiveauthentication") d = "disable keyboard-interactive login"
  else if (k == "permitemptypasswords") d = "forbid empty passwords"
  else if (k == "x11forwarding") d = "disable X11 forwarding"
  else d = "set " $1 " " $2
  out = out (out == "" ? "" : ", ") d }
END { print out }`;

/**
 * Password logins are turned off only when we are connected with a key: then a
 * key is known to work. Each setting is the stricter of what the host has
 * without our drop-in and what we want, so a host that forbids root logins
 * keeps forbidding them. The host's settings without our drop-in are read
 * read-only: `sshd -T` on a copy of its configuration (in a temporary
 * directory) that includes every drop-in but ours.
 */
export function sshHardeningScript(keyWorks: boolean, mode: StepMode): ShellFragment {
  const wanted = keyWorks
    ? "PasswordAuthentication=no KbdInteractiveAuthentication=no PermitRootLogin=prohibit-password PermitEmptyPasswords=no X11Forwarding=no"
    : "PermitEmptyPasswords=no X11Forwarding=no";
  const keptPasswords = keyWorks ? "" : "kept password logins: connected by password, no key known to work";
  return sh`set -e
${stepFrame(mode)}
file=/etc/ssh/sshd_config.d/10-axion-hardening.conf aside=/etc/ssh/sshd_config.d/10-axion-hardening.conf.aside
# sshd -T needs its privilege separation directory; a check creates nothing, it says so.
if [ ! -d /run/sshd ]; then
  [ "$mode" = apply ] || { echo ${RESULT_MARK} would_change ${"create /run/sshd, then harden sshd"}; exit 0; }
  mkdir -p /run/sshd
fi
if [ -f "$aside" ] && change ${"restore the hardening drop-in an interrupted run set aside"}; then mv -f "$aside" "$file"; fi
included=yes
grep -qiE '^Include /etc/ssh/sshd_config.d/\\*.conf' /etc/ssh/sshd_config || included=""
view=$(mktemp -d); trap 'rm -rf "$view"' EXIT
for f in /etc/ssh/sshd_config.d/*.conf; do [ ! -f "$f" ] || [ "$f" = "$file" ] || cp "$f" "$view/"; done
{ [ -n "$included" ] || echo 'Include /etc/ssh/sshd_config.d/*.conf'; cat /etc/ssh/sshd_config; } |
  sed -E "/^[[:space:]]*[Ii]nclude[[:space:]]/ s#(/etc/ssh/)?sshd_config\\.d/\\*\\.conf#$view/*.conf#g" > "$view/sshd_config"
# sshd's settings, bounded in time and size, and refused unless every line is a setting in printable ASCII.
settings_of() {
  out=$1; shift
  { timeout -k 2 20 sshd -T "$@" 2>/dev/null; echo "$?" > "$out.rc"; } | head -c 262145 > "$out"
  read -r rc < "$out.rc" || rc=1
  if [ "$(wc -c < "$out")" -gt 262144 ] || LC_ALL=C grep -aqvE '^[a-z0-9]+( [ -~]*)?$' "$out"; then
    echo "sshd -T: answered something that is not sshd's settings" >&2; exit 1
  fi
  return "$rc"
}
settings_of "$view/host" -f "$view/sshd_config" || { echo "sshd -T failed on the host's own configuration" >&2; exit 1; }
host=$(head -c 262144 "$view/host")
settings_of "$view/now" || true
now=$(head -c 262144 "$view/now")
settings=$(printf '%s\\n' "$host" | awk -v want=${wanted} ${stricterOfHostAndWanted})
case "$(printf '%s\\n' "$settings" | awk '$1 == "PermitRootLogin" { print $2 }')" in
  no) root="root login off" ;; forced-commands-only) root="root by forced commands only" ;; *) root="root by key only" ;;
esac
kept=${keptPasswords}
[ -z "$kept" ] || root=$kept
if [ -z "$included" ] && change ${"include /etc/ssh/sshd_config.d/*.conf in sshd_config"}; then sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config; fi
changes=$({ printf '%s\\n---\\n' "$now"; printf '%s\\n' "$settings"; } | awk ${describeSettingChanges})
if [ "$(cat "$file" 2>/dev/null)" != "$settings" ] && change "\${changes:-write $file}, $root"; then
  mkdir -p /etc/ssh/sshd_config.d
  old=$(mktemp); cp "$file" "$old" 2>/dev/null || rm -f "$old"
  printf '%s\\n' "$settings" > "$file"; chmod 0644 "$file"
  if ! sshd -t; then if [ -f "$old" ]; then mv "$old" "$file"; else rm -f "$file"; fi; echo "sshd -t rejected the hardened configuration" >&2; exit 1; fi
  rm -f "$old"
  systemctl reload ssh 2>/dev/null || systemctl reload sshd
  # sshd re-executes on SIGHUP and stops listening for a moment: the next step must find it back.
  sleep 0.5
  port=$(printf '%s\\n' "$host" | awk '$1 == "port" { print $2; exit }')
  for i in $(seq 1 40); do ss -Htln "sport = :\${port:-22}" 2>/dev/null | grep -q . && break; sleep 0.25; done
fi
finish "sshd hardened, $root"`;
}

/** Adds or removes exactly one authorized_keys line of a user; other lines are never touched. */
export function authorizedKeyScript(user: string, publicKey: string, action: DeployKeyAction, mode: StepMode): ShellFragment {
  const prepare = sh`set -e
${stepFrame(mode)}
home=$(getent passwd ${user} | cut -d: -f6)
if [ -z "$home" ]; then
  [ "$mode" = apply ] || { echo ${RESULT_MARK} cannot ${`user ${user} does not exist`}; exit 0; }
  echo ${`user ${user} does not exist`} >&2; exit 1
fi
group=$(id -gn ${user})
file="$home/.ssh/authorized_keys"`;
  if (action === "add") {
    return sh`${prepare}
if [ "$(stat -c '%a %U' "$home/.ssh" 2>/dev/null)" != ${`700 ${user}`} ] && change "create $home/.ssh (mode 700)"; then
  install -d -m 0700 -o ${user} -g "$group" "$home/.ssh"
fi
if [ ! -f "$file" ]; then
  if change "create $file"; then install -m 0600 -o ${user} -g "$group" /dev/null "$file"; fi
elif [ "$(stat -c '%a %U' "$file")" != ${`600 ${user}`} ] && change ${`give ${user}'s authorized_keys mode 600`}; then
  chmod 0600 "$file"; chown ${user}:"$group" "$file"
fi
if ! grep -qxF ${publicKey} "$file" 2>/dev/null && change ${`add the deploy key for ${user}`}; then
  [ -z "$(tail -c1 "$file")" ] || printf '\\n' >> "$file"
  printf '%s\\n' ${publicKey} >> "$file"
fi
finish ${`key already authorized for ${user}`}`;
  }
  return sh`${prepare}
if grep -qxF ${publicKey} "$file" 2>/dev/null && change ${`remove the deploy key for ${user}`}; then
  tmp=$(mktemp); grep -vxF ${publicKey} "$file" > "$tmp" || true
  install -m 0600 -o ${user} -g "$group" "$tmp" "$file"; rm -f "$tmp"
fi
finish ${`key not present for ${user}`}`;
}

/**
 * Disk use per real mount (pseudo file systems left out), Docker's state, journal size; read-only.
 * A stopped Docker is asked about through systemd only: `docker info` would socket-activate it
 * (and start its restart-always containers). Each command is bounded in time on the host (df by
 * 45 s: a slow disk may take long, and the step's 60 s bound the rest).
 */
export const diagnoseScript = sh`timeout -k 2 45 df -P -T -x tmpfs -x devtmpfs -x squashfs -x proc -x sysfs -x cgroup -x cgroup2 2>/dev/null | head -c 65536 | awk 'NR>1{gsub("%","",$6); print "mount", $7, $6, int($5/1024)}'
for m in /var/lib/docker /var/log; do mountpoint -q "$m" && timeout -k 2 10 df -P "$m" | head -c 4096 | awk -v m="$m" 'NR==2{gsub("%","",$5); print "mount", m, $5, int($4/1024)}'; done
if ! command -v docker >/dev/null 2>&1; then echo "docker absent"
elif ! timeout -k 2 10 systemctl is-active --quiet docker.service; then echo "docker stopped"
elif timeout -k 2 10 docker info >/dev/null 2>&1; then echo "docker responsive"
else echo "docker unresponsive"; fi
journal=$(timeout -k 2 10 du -sm /var/log/journal 2>/dev/null | cut -f1)
echo "journal_mb \${journal:-0}"`;

export const pruneDockerScript = sh`set -e
before=$(df -Pm /var/lib/docker 2>/dev/null | awk 'NR==2{print $4}')
timeout 300 docker system prune --all --force >/dev/null
after=$(df -Pm /var/lib/docker 2>/dev/null | awk 'NR==2{print $4}')
echo ${RESULT_MARK} changed "docker pruned: free MB $before -> $after"`;

export function vacuumJournalScript(maxMb: number): ShellFragment {
  return sh`set -e
journalctl --vacuum-size=${`${maxMb}M`} >/dev/null 2>&1 || true
apt-get clean >/dev/null 2>&1 || true
echo ${RESULT_MARK} changed ${`journal vacuumed to ${maxMb} MB, apt cache cleaned`}`;
}

/** A hung daemon does not stop on SIGTERM: kill it, then start it again and wait until it answers. */
export const restartDockerScript = sh`set -e
timeout 30 systemctl restart docker || { systemctl kill --signal=SIGKILL docker.service || true; sleep 1; systemctl reset-failed docker.service || true; systemctl start docker; }
for i in $(seq 1 30); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
timeout 10 docker info >/dev/null
echo ${RESULT_MARK} changed "docker restarted and answering"`;

export const AGENT_PATH = "/usr/local/bin/axion-agent";
export const AGENT_CONFIG = "/etc/axion-agent/config.json";

const agentUnit = `[Unit]
Description=Axion agent: registration and heartbeats
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=${AGENT_PATH} -config ${AGENT_CONFIG}
User=axion-agent
Group=axion-agent
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
`;

/** Is the wanted agent binary installed and running? Prints `ok` or what differs (read-only: the agent step's check). */
export function agentStateScript(sha256: string, apiUrl: string): ShellFragment {
  return sh`if [ ! -f ${AGENT_PATH} ]; then echo "not installed"
elif [ "$(timeout -k 2 10 sha256sum ${AGENT_PATH} 2>/dev/null | head -c 200 | cut -d' ' -f1)" != ${sha256} ]; then echo "binary differs"
elif ! timeout -k 2 10 systemctl is-active --quiet axion-agent; then echo "service not running"
elif ! grep -qF ${`"api_url":${JSON.stringify(apiUrl)}`} ${AGENT_CONFIG}; then echo "api url differs"
else echo ok; fi`;
}

/**
 * Installs the uploaded binary and config (both in the login user's home, mode
 * 0600): the checksum is verified on the host first; the config, which holds
 * the token, goes in place without ever being on a command line.
 */
export function agentInstallScript(uploadedBinary: string, uploadedConfig: string, sha256: string): ShellFragment {
  return sh`set -e
bin=${uploadedBinary}; cfg=${uploadedConfig}
trap 'rm -f "$bin" "$cfg"' EXIT
echo ${`${sha256}  `}"$bin" | timeout -k 2 30 sha256sum -c --quiet - >/dev/null 2>&1 || { echo "sha256sum -c: the uploaded agent did not verify" >&2; exit 1; }
id -u axion-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin axion-agent
install -m 0755 -o root -g root "$bin" ${AGENT_PATH}
install -d -m 0750 -o root -g axion-agent /etc/axion-agent
install -m 0640 -o root -g axion-agent "$cfg" ${AGENT_CONFIG}
printf '%s' ${agentUnit} > /etc/systemd/system/axion-agent.service
systemctl daemon-reload
systemctl enable axion-agent >/dev/null 2>&1
systemctl restart axion-agent
echo ${RESULT_MARK} changed "agent installed and started"`;
}
