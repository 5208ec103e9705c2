import { BlockList, isIP, isIPv4 } from "node:net";
import { hostname } from "node:os";
import { localAddressRanges } from "./local-addresses.js";
import { defaultNameResolver, type NameResolver } from "./name-resolution.js";

/**
 * Which addresses the worker may open SSH connections to. Refused always:
 * loopback, unspecified, link-local (cloud metadata endpoints included),
 * multicast, broadcast/reserved, and this machine's own addresses (from the
 * kernel, interfaces without carrier included: core/security/local-addresses.ts);
 * private ranges are allowed (real fleets live there). IPv4 embedded in IPv6
 * (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) is judged as the IPv4.
 *
 * Operators narrow and widen it with CIDR lists (SERVER_ADDRESS_DENY,
 * SERVER_ADDRESS_ALLOW):
 * - deny: refused, whatever else says; deny always wins.
 * - allow: when set, only addresses inside one of its ranges are allowed.
 *   An allow entry that lies wholly inside a refused class re-admits that part
 *   of it (`127.0.0.1/32` admits that address, `0.0.0.0/0` never admits loopback).
 */

export interface Cidr {
  text: string;
  family: "ipv4" | "ipv6";
  network: string;
  prefix: number;
  list: BlockList;
}

const REFUSED_CLASSES: [string, string][] = [
  ["0.0.0.0/8", "an unspecified address"],
  ["127.0.0.0/8", "a loopback address"],
  ["169.254.0.0/16", "a link-local address (cloud metadata endpoints live here)"],
  ["100.100.100.200/32", "a cloud metadata endpoint"],
  ["224.0.0.0/4", "a multicast address"],
  ["255.255.255.255/32", "the broadcast address"],
  ["240.0.0.0/4", "a reserved address"],
  ["::/128", "an unspecified address"],
  ["::1/128", "a loopback address"],
  ["fe80::/10", "a link-local address"],
  ["fd00:ec2::254/128", "a cloud metadata endpoint"],
  ["ff00::/8", "a multicast address"],
  ["::/96", "an IPv4-compatible IPv6 address (deprecated)"],
];

/** Names every resolver answers with this machine (RFC 6761 and the usual /etc/hosts entries). */
const LOCAL_NAMES = new Set([
  "localhost",
  "localhost.localdomain",
  "localhost6",
  "localhost6.localdomain6",
  "ip6-localhost",
  "ip6-loopback",
]);

/** Parses "a.b.c.d/n", "x::y/n" or a bare address (a single-address range); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = "", prefixText, extra] = text.trim().split("/");
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? "ipv4" : "ipv6";
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return { text: text.trim(), family, network: address, prefix, list };
}

/** The 16 bytes of an IPv6 address (dotted tails included). */
function ipv6Bytes(address: string): Buffer {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split(".").map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  const bytes = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) bytes.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return bytes;
}

/** The IPv4 address an IPv6 address stands for (IPv4-mapped or NAT64), if any. */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const b = ipv6Bytes(address);
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  const nat64 = b.readUInt32BE(0) === 0x0064ff9b && b.subarray(4, 12).every((x) => x === 0);
  return mapped || nat64 ? `${b[12]}.${b[13]}.${b[14]}.${b[15]}` : undefined;
}

const familyOf = (address: string) => (isIPv4(address) ? "ipv4" : "ipv6");
const contains = (range: Cidr, address: string) => range.family === familyOf(address) && range.list.check(address, range.family);
/** Whether every address of `inner` lies inside `outer`. */
const within = (inner: Cidr, outer: Cidr) =>
  inner.family === outer.family && inner.prefix >= outer.prefix && contains(outer, inner.network);

const refusedClasses = REFUSED_CLASSES.map(([cidr, why]) => ({ range: parseCidr(cidr) as Cidr, why }));

export interface NetworkPolicyOptions {
  allow?: Cidr[];
  deny?: Cidr[];
  /** This machine's addresses and local ranges ("a.b.c.d", "a.b.c.d/n"); by default the kernel's (core/security/local-addresses.ts). */
  ownAddresses?: () => string[];
  /** How names are resolved before their addresses are checked; default: the process' shared resolver. */
  resolver?: NameResolver;
}

export interface NetworkPolicy {
  /** Why an IP address is refused ("a loopback address"), or undefined when it may be connected to. */
  addressProblem(address: string): string | undefined;
  /** Why a host as registered (address or name) is refused before any resolution ("127.0.0.1 is a loopback address"), or undefined. */
  hostProblem(host: string): string | undefined;
  /** Resolves the names checked with this policy (core/security/name-resolution.ts). */
  readonly resolver: NameResolver;
}

export function createNetworkPolicy(options: NetworkPolicyOptions = {}): NetworkPolicy {
  const allow = options.allow ?? [];
  const deny = options.deny ?? [];
  const own = options.ownAddresses ?? (() => localAddressRanges());

  const classOf = (address: string): { range: Cidr; why: string } | undefined => {
    const found = refusedClasses.find((c) => contains(c.range, address));
    if (found) return found;
    // Through ranges: "fd00::2" and "fd00:0::2" are the same address.
    const self = own().some((entry) => {
      const [bare = "", prefix] = entry.split("/");
      const v4 = embeddedIpv4(bare);
      const range = parseCidr(v4 ?? (prefix === undefined ? bare : entry));
      return range !== undefined && contains(range, address);
    });
    return self ? { range: parseCidr(address) as Cidr, why: "an address of this service's own machine" } : undefined;
  };

  const policy: NetworkPolicy = {
    resolver: options.resolver ?? defaultNameResolver(),
    addressProblem(address) {
      if (isIP(address) === 0) return "is not an IP address";
      const v4 = embeddedIpv4(address);
      const subject = v4 ?? address;
      const denied = deny.find((d) => contains(d, subject) || contains(d, address));
      if (denied) return `in SERVER_ADDRESS_DENY (${denied.text})`;
      const refused = classOf(subject);
      if (refused) {
        const exception = allow.find((a) => contains(a, subject) && within(a, refused.range));
        return exception ? undefined : refused.why;
      }
      if (allow.length > 0 && !allow.some((a) => contains(a, subject) || contains(a, address))) return "outside SERVER_ADDRESS_ALLOW";
      return undefined;
    },
    hostProblem(host) {
      if (isIP(host) !== 0) {
        const why = policy.addressProblem(host);
        const v4 = embeddedIpv4(host);
        return why && `${host}${v4 ? ` (${v4})` : ""} is ${why}`;
      }
      const name = host.toLowerCase().replace(/\.$/, "");
      if (LOCAL_NAMES.has(name) || name.endsWith(".localhost") || name === hostname().toLowerCase()) {
        return `${host} names this machine`;
      }
      return undefined;
    },
  };
  return policy;
}

/** Raised when a host resolves to an address the policy refuses. */
export class RefusedByPolicy extends Error {}

/**
 * Resolves a host once (through the policy's resolver, as `owner`'s lookup) and checks every
 * address it resolves to; the caller connects to the returned address, so a second resolution
 * (DNS rebinding) cannot switch the target after the check.
 */
export async function resolveAllowedAddress(policy: NetworkPolicy, host: string, timeoutMs: number, owner?: string): Promise<string> {
  const early = policy.hostProblem(host);
  if (early) throw new RefusedByPolicy(`refused by policy: ${early}`);
  if (isIP(host) !== 0) return host;
  const addresses = await policy.resolver.resolve(host, { owner, timeoutMs });
  if (addresses.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: "ENOTFOUND" });
  for (const { address } of addresses) {
    const problem = policy.addressProblem(address);
    if (problem) throw new RefusedByPolicy(`refused by policy: ${host} resolves to ${address}, ${problem}`);
  }
  return (addresses[0] as { address: string }).address;
}

let shared: NetworkPolicy | undefined;

/** The built-in policy without operator lists, for callers not handed one (tests, tools). */
export function defaultNetworkPolicy(): NetworkPolicy {
  shared ??= createNetworkPolicy();
  return shared;
}
