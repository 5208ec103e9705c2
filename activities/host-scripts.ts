import { aptInstall } from "./ssh/apt.js";
import { type ShellFragment, sh } from "./ssh/shell.js";

/**
 * The remote side of each bootstrap step: check first, act only when needed, and
 * end with one line `AXION_RESULT changed|unchanged|skipped <detail>`. Every
 * interpolated value is quoted by `sh` and stands as a word of its own: never
 * inside "…" (where a quote would be literal text), a message that mixes text and
 * values is built in TypeScript and passed as one value. test/shell-quoting.test.ts
 * scans every sh`` template for this.
 */

export const RESULT_MARK = "AXION_RESULT";

export const factsScript = sh`. /etc/os-release 2>/dev/null
printf 'os_id=%s\\nos_version=%s\\nos_pretty=%s\\n' "\${ID:-}" "\${VERSION_ID:-}" "\${PRETTY_NAME:-}"
printf 'arch=%s\\nkernel=%s\\n' "$(uname -m)" "$(uname -r)"
printf 'root_free_mb=%s\\n' "$(df -Pm / | awk 'NR==2{print $4}')"
printf 'mem_mb=%s\\n' "$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)"
if command -v docker >/dev/null 2>&1; then printf 'docker=%s\\n' "$(docker --version 2>/dev/null | sed -E 's/^Docker version ([^,]+).*/\\1/')"; fi`;

export function adminUserScript(user: string): ShellFragment {
  const sudoers = `${user} ALL=(ALL) NOPASSWD:ALL`;
  const sudoersFile = `/etc/sudoers.d/90-axion-${user}`;
  return sh`set -e
changed=""
if ! id -u ${user} >/dev/null 2>&1; then useradd --create-home --shell /bin/bash ${user}; changed="user created"; fi
if ! command -v sudo >/dev/null 2>&1; then ${aptInstall(["sudo"])}; changed="$changed sudo installed"; fi
if [ "$(cat ${sudoersFile} 2>/dev/null)" != ${sudoers} ]; then
  tmp=$(mktemp); printf '%s\\n' ${sudoers} > "$tmp"
  visudo -cqf "$tmp"; install -m 0440 -o root -g root "$tmp" ${sudoersFile}; rm -f "$tmp"
  changed="$changed sudoers written"
fi
if [ -n "$changed" ]; then echo ${RESULT_MARK} changed "$changed"; else echo ${RESULT_MARK} unchanged ${user} has passwordless sudo; fi`;
}

export const dockerScript = sh`set -e
if command -v docker >/dev/null 2>&1 && systemctl is-active --quiet docker && docker info >/dev/null 2>&1; then
  echo ${RESULT_MARK} unchanged "docker $(docker version --format '{{.Server.Version}}') running"; exit 0
fi
# An attempt killed mid-install (its worker gone) leaves the binary unpacked but the package not configured.
state=$(dpkg-query -W -f='\${Status}' docker.io 2>/dev/null || true)
if ! command -v docker >/dev/null 2>&1 || { [ -n "$state" ] && [ "$state" != "install ok installed" ]; }; then ${aptInstall(["docker.io"])}; fi
systemctl enable --now docker >/dev/null
for i in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null
echo ${RESULT_MARK} changed "docker $(docker version --format '{{.Server.Version}}') installed and running"`;

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
export function firewallScript(connectPort: number): ShellFragment {
  return sh`set -e
command -v nft >/dev/null 2>&1 || ${aptInstall(["nftables"])}
ports=$({ sshd -T 2>/dev/null | awk '$1 == "port" { print $2 } $1 == "listenaddress" { n = split($2, a, ":"); print a[n] }'
  ss -Hltnp 2>/dev/null | awk '/"sshd"/ { n = split($4, a, ":"); print a[n] }'
  ! systemctl is-active --quiet ssh.socket 2>/dev/null || systemctl show -p Listen --value ssh.socket | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /:[0-9]+$/) { n = split($i, a, ":"); print a[n] } }'
  echo ${connectPort}; } | grep -xE '[0-9]{1,5}' | sort -nu | paste -sd, - | sed 's/,/, /g')
case "$ports" in *,*) match="{ $ports }" ;; *) match=$ports ;; esac
file=/etc/nftables.d/axion.nft conf=/etc/nftables.conf dropin=/etc/systemd/system/nftables.service.d/axion.conf
want=$(printf ${axionRuleset} "$match")
persisted() {
  grep -q 'include "/etc/nftables.d/\\*.nft"' "$conf" 2>/dev/null && ! grep -qE '^[[:space:]]*flush[[:space:]]+ruleset' "$conf" &&
    [ "$(cat "$dropin" 2>/dev/null)" = "$(printf '%s' ${nftablesStopDropIn})" ]
}
if [ "$(cat "$file" 2>/dev/null)" = "$want" ] && nft list table inet axion_filter >/dev/null 2>&1 && persisted; then
  echo ${RESULT_MARK} unchanged "firewall active, ssh open on tcp $ports"; exit 0
fi
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
echo ${RESULT_MARK} changed "firewall applied, ssh open on tcp $ports"`;
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
 * Password logins are turned off only when we are connected with a key: then a
 * key is known to work. Each setting is the stricter of what the host has
 * without our drop-in (`sshd -T` with it set aside: the running sshd reads its
 * files only on reload) and what we want, so a host that forbids root logins
 * keeps forbidding them.
 */
export function sshHardeningScript(keyWorks: boolean): ShellFragment {
  const wanted = keyWorks
    ? "PasswordAuthentication=no KbdInteractiveAuthentication=no PermitRootLogin=prohibit-password PermitEmptyPasswords=no X11Forwarding=no"
    : "PermitEmptyPasswords=no X11Forwarding=no";
  return sh`set -e
file=/etc/ssh/sshd_config.d/10-axion-hardening.conf aside=/etc/ssh/sshd_config.d/10-axion-hardening.conf.aside
mkdir -p /etc/ssh/sshd_config.d /run/sshd
grep -qiE '^Include /etc/ssh/sshd_config.d/\\*.conf' /etc/ssh/sshd_config || sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
[ ! -f "$aside" ] || mv -f "$aside" "$file"
[ ! -f "$file" ] || mv "$file" "$aside"
host=$(sshd -T) || { [ ! -f "$aside" ] || mv "$aside" "$file"; echo "sshd -T failed on the host's own configuration" >&2; exit 1; }
[ ! -f "$aside" ] || mv "$aside" "$file"
settings=$(printf '%s\\n' "$host" | awk -v want=${wanted} ${stricterOfHostAndWanted})
case "$(printf '%s\\n' "$settings" | awk '$1 == "PermitRootLogin" { print $2 }')" in
  no) root="root login off" ;; forced-commands-only) root="root by forced commands only" ;; *) root="root by key only" ;;
esac
if [ "$(cat "$file" 2>/dev/null)" = "$settings" ]; then echo ${RESULT_MARK} unchanged "sshd hardened"; exit 0; fi
old=$(mktemp); cp "$file" "$old" 2>/dev/null || rm -f "$old"
printf '%s\\n' "$settings" > "$file"; chmod 0644 "$file"
if ! sshd -t; then if [ -f "$old" ]; then mv "$old" "$file"; else rm -f "$file"; fi; echo "sshd -t rejected the hardened configuration" >&2; exit 1; fi
rm -f "$old"
systemctl reload ssh 2>/dev/null || systemctl reload sshd
# sshd re-executes on SIGHUP and stops listening for a moment: the next step must find it back.
sleep 0.5
port=$(printf '%s\\n' "$host" | awk '$1 == "port" { print $2; exit }')
for i in $(seq 1 40); do ss -Htln "sport = :\${port:-22}" 2>/dev/null | grep -q . && break; sleep 0.25; done
${keyWorks ? sh`echo ${RESULT_MARK} changed "password logins disabled, $root"` : sh`echo ${RESULT_MARK} changed ${"kept password logins: connected by password, no key known to work"}`}`;
}

/** Adds or removes exactly one authorized_keys line of a user; other lines are never touched. */
export function authorizedKeyScript(user: string, publicKey: string, action: "add" | "remove"): ShellFragment {
  const prepare = sh`set -e
home=$(getent passwd ${user} | cut -d: -f6)
[ -n "$home" ] || { echo ${`user ${user} does not exist`} >&2; exit 1; }
group=$(id -gn ${user})
install -d -m 0700 -o ${user} -g "$group" "$home/.ssh"
file="$home/.ssh/authorized_keys"
[ -f "$file" ] || install -m 0600 -o ${user} -g "$group" /dev/null "$file"
chmod 0600 "$file"; chown ${user}:"$group" "$file"`;
  if (action === "add") {
    return sh`${prepare}
if grep -qxF ${publicKey} "$file"; then echo ${RESULT_MARK} unchanged ${`key already authorized for ${user}`}; exit 0; fi
[ -z "$(tail -c1 "$file")" ] || printf '\\n' >> "$file"
printf '%s\\n' ${publicKey} >> "$file"
echo ${RESULT_MARK} changed ${`key authorized for ${user}`}`;
  }
  return sh`${prepare}
if ! grep -qxF ${publicKey} "$file"; then echo ${RESULT_MARK} unchanged ${`key not present for ${user}`}; exit 0; fi
tmp=$(mktemp); grep -vxF ${publicKey} "$file" > "$tmp" || true
install -m 0600 -o ${user} -g "$group" "$tmp" "$file"; rm -f "$tmp"
echo ${RESULT_MARK} changed ${`key removed for ${user}`}`;
}

export function parseStepOutput(stdout: string): { changed: boolean; skipped: boolean; detail: string } {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith(`${RESULT_MARK} `));
  if (!line) return { changed: true, skipped: false, detail: "step finished without a result line" };
  const [, state = "", ...rest] = line.split(" ");
  return { changed: state === "changed", skipped: state === "skipped", detail: rest.join(" ") };
}

/** Disk use per real mount (pseudo file systems left out), Docker presence and responsiveness, journal size. */
export const diagnoseScript = sh`df -P -T -x tmpfs -x devtmpfs -x squashfs -x proc -x sysfs -x cgroup -x cgroup2 2>/dev/null | awk 'NR>1{gsub("%","",$6); print "mount", $7, $6, int($5/1024)}'
for m in /var/lib/docker /var/log; do mountpoint -q "$m" && df -P "$m" | awk -v m="$m" 'NR==2{gsub("%","",$5); print "mount", m, $5, int($4/1024)}'; done
if command -v docker >/dev/null 2>&1; then
  if timeout 10 docker info >/dev/null 2>&1; then echo "docker responsive"; else echo "docker unresponsive"; fi
else echo "docker absent"; fi
echo "journal_mb $(du -sm /var/log/journal 2>/dev/null | cut -f1 || echo 0)"`;

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

/** Is the wanted agent binary installed and running? Prints `ok` or what differs. */
export function agentStateScript(sha256: string, apiUrl: string): ShellFragment {
  return sh`if [ "$(sha256sum ${AGENT_PATH} 2>/dev/null | cut -d' ' -f1)" != ${sha256} ]; then echo "binary differs"
elif ! systemctl is-active --quiet axion-agent; then echo "service not running"
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
echo ${`${sha256}  `}"$bin" | sha256sum -c --quiet -
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
