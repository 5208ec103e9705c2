import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";

/**
 * The addresses this machine accepts connections on, as the kernel routes them.
 * `os.networkInterfaces()` is not that list: it leaves out every interface
 * without carrier (an idle docker0, a veth whose peer is down, a bridge
 * without ports), while Linux still delivers to their addresses. On Linux the
 * kernel's own tables are read instead: the IPv4 local routing table
 * (/proc/net/fib_trie, "host LOCAL" entries, whole ranges included when an
 * operator routes one locally) and every IPv6 address (/proc/net/if_inet6).
 *
 * Read again when older than FRESH_MS, so an address added (a container
 * network created, say) is refused within that long, at the cost of one
 * small file read per second of checks.
 */

/** How long one reading of the kernel's tables is used. */
export const FRESH_MS = 1000;

/** "a.b.c.d/n" for every LOCAL route of the IPv4 routing tables. */
export function parseFibTrieLocal(text: string): string[] {
  const found = new Set<string>();
  let address: string | undefined;
  for (const line of text.split("\n")) {
    const leaf = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (leaf) {
      address = leaf[1];
      continue;
    }
    const route = /^\s*\/(\d+) host LOCAL\s*$/.exec(line);
    if (route && address) found.add(`${address}/${route[1]}`);
  }
  return [...found];
}

/** "x:…:y/n" for every line of /proc/net/if_inet6 (address in 32 hex digits, index, prefix length in hex, …). */
export function parseIfInet6(text: string): string[] {
  const found = new Set<string>();
  for (const line of text.split("\n")) {
    const [hex, , prefix] = line.trim().split(/\s+/);
    if (!hex || !/^[0-9a-f]{32}$/i.test(hex) || !prefix || !/^[0-9a-f]{1,2}$/i.test(prefix)) continue;
    const groups = hex.match(/.{4}/g) as string[];
    // Each address alone: its prefix is the link's, not addresses of this machine.
    found.add(`${groups.join(":")}/128`);
  }
  return [...found];
}

function fromInterfaces(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i ? [i.address.replace(/%.*$/, "")] : []));
}

function readKernel(): string[] | undefined {
  try {
    return [...parseFibTrieLocal(readFileSync("/proc/net/fib_trie", "utf8")), ...parseIfInet6(readFileSync("/proc/net/if_inet6", "utf8"))];
  } catch {
    return undefined;
  }
}

let reading: { at: number; ranges: string[] } | undefined;

/**
 * This machine's local addresses and ranges ("a.b.c.d/n", "x::y/128"), from
 * the kernel where it can be read (Linux), from the running interfaces elsewhere.
 */
export function localAddressRanges(now = performance.now()): string[] {
  if (!reading || now - reading.at >= FRESH_MS) {
    const kernel = readKernel();
    // Both: where /proc is not the kernel's (a container without it), the interfaces still count.
    reading = { at: now, ranges: [...new Set([...(kernel ?? []), ...fromInterfaces()])] };
  }
  return reading.ranges;
}
