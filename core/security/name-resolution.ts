import { Resolver } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { Config } from "../kernel/config.js";

/**
 * Every name the service connects to on an owner's behalf (servers' hosts,
 * webhook URLs) is resolved here, never through `dns.lookup`: that runs
 * getaddrinfo on libuv's 4 shared threads, where a few names whose DNS server
 * never answers hold every thread (file system work included) and a timeout
 * abandons the promise, not the thread.
 *
 * - Queries go out through c-ares (node:dns `Resolver`), on the event loop's
 *   own sockets; a lookup past its deadline is cancelled, so its slot is free
 *   again when it is answered as failed.
 * - At most `maxInFlightPerOwner` of one owner's lookups run at once, and at
 *   most `maxInFlight` of everyone's, except that an owner with none running
 *   may always start one (so at most maxInFlight + one per owner). Further
 *   lookups wait in their owner's queue; a freed slot goes to the next owner
 *   in turn (round robin), not to the earliest lookup. The bound this gives:
 *   an owner's first lookup starts at once whatever other owners do, its
 *   further ones wait only for their turn, and every lookup, its wait
 *   included, is answered or fails within the timeout.
 * - Names in the hosts file (/etc/hosts: c-ares' resolver never reads it) are
 *   answered from it, as getaddrinfo would.
 */

export interface NameResolutionOptions {
  /** DNS servers ("address" or "address:port", "[v6]:port"); empty: /etc/resolv.conf's. */
  servers?: string[];
  /** A lookup's whole budget, waiting for a slot included. Default 5 s. */
  timeoutMs?: number;
  /** Lookups in flight at once, everyone's. Default 64. */
  maxInFlight?: number;
  /** Lookups in flight at once for one owner. Default 4. */
  maxInFlightPerOwner?: number;
  /** Lookups one owner may have waiting; more are refused at once. Default 256. */
  maxQueuedPerOwner?: number;
  /** Default /etc/hosts. */
  hostsFile?: string;
  /** Where the search domains for names without a dot are read ("search"/"domain"); default /etc/resolv.conf. */
  resolvConf?: string;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface ResolveOptions {
  /** Whose lookup this is (an owner id); lookups of the service itself share one name. */
  owner?: string;
  /** A tighter deadline than the resolver's, for a caller with less time left. */
  timeoutMs?: number;
}

export interface NameResolver {
  /** The addresses of a name (IPv4 first), or of an IP address itself. Rejects with an error carrying `code`. */
  resolve(host: string, options?: ResolveOptions): Promise<ResolvedAddress[]>;
}

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

/** Address → names of a hosts file (lower case, without a trailing dot). */
export function parseHostsFile(text: string): Map<string, ResolvedAddress[]> {
  const names = new Map<string, ResolvedAddress[]>();
  for (const line of text.split("\n")) {
    const [address, ...aliases] = line.replace(/#.*/, "").trim().split(/\s+/);
    const version = address ? isIP(address.replace(/%.*$/, "")) : 0;
    if (!address || version === 0) continue;
    for (const alias of aliases) {
      const name = alias.toLowerCase().replace(/\.$/, "");
      const list = names.get(name) ?? [];
      if (!list.some((a) => a.address === address)) list.push({ address: address.replace(/%.*$/, ""), family: version as 4 | 6 });
      names.set(name, list);
    }
  }
  return names;
}

/** The search domains of a resolv.conf: its last "search" or "domain" line, as glibc reads it. */
export function parseSearchDomains(text: string): string[] {
  let domains: string[] = [];
  for (const line of text.split("\n")) {
    const [keyword, ...values] = line
      .replace(/[#;].*/, "")
      .trim()
      .split(/\s+/);
    if (keyword === "search" || keyword === "domain") domains = values.filter((d) => d !== "" && d !== ".").slice(0, 6);
  }
  return domains;
}

interface Waiting {
  start(): void;
  abandon(): void;
}

export function createNameResolver(options: NameResolutionOptions = {}): NameResolver {
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxInFlight = Math.max(1, options.maxInFlight ?? 64);
  const perOwner = Math.max(1, options.maxInFlightPerOwner ?? 4);
  const maxQueued = Math.max(0, options.maxQueuedPerOwner ?? 256);
  const hostsFile = options.hostsFile ?? "/etc/hosts";
  const resolvConf = options.resolvConf ?? "/etc/resolv.conf";
  const servers = options.servers ?? [];

  const readText = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  let system: { at: number; names: Map<string, ResolvedAddress[]>; search: string[] } | undefined;
  /** The hosts file and search domains, read again after a second: edits take effect as they do for getaddrinfo. */
  const systemFiles = () => {
    if (!system || performance.now() - system.at >= 1000) {
      system = { at: performance.now(), names: parseHostsFile(readText(hostsFile)), search: parseSearchDomains(readText(resolvConf)) };
    }
    return system;
  };
  const fromHostsFile = (name: string) => systemFiles().names.get(name.toLowerCase().replace(/\.$/, ""));

  /** A name without a dot is tried under each search domain first, then alone (glibc's order with ndots:1). */
  const lookupName = async (name: string, deadline: number): Promise<ResolvedAddress[]> => {
    const candidates = name.includes(".") ? [name] : [...systemFiles().search.map((d) => `${name}.${d}`), name];
    for (const [i, candidate] of candidates.entries()) {
      try {
        return await query(candidate, deadline);
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOTFOUND" || i === candidates.length - 1) throw error;
      }
    }
    throw coded(`${name} has no address`, "ENOTFOUND");
  };

  let inFlight = 0;
  const running = new Map<string, number>();
  const queues = new Map<string, Waiting[]>();
  /** Owners with lookups waiting, in turn order. */
  const turn: string[] = [];

  const pump = () => {
    let scanned = 0;
    while (turn.length > 0 && scanned < turn.length) {
      const owner = turn.shift() as string;
      const queue = queues.get(owner);
      if (!queue || queue.length === 0) {
        queues.delete(owner);
        continue;
      }
      const mine = running.get(owner) ?? 0;
      // An owner's first lookup never waits for anyone else's: past the shared cap by at most one per owner.
      if (mine >= perOwner || (inFlight >= maxInFlight && mine > 0)) {
        turn.push(owner);
        scanned += 1;
        continue;
      }
      scanned = 0;
      const next = queue.shift() as Waiting;
      if (queue.length > 0) turn.push(owner);
      else queues.delete(owner);
      next.start();
    }
  };

  const acquire = (owner: string) => {
    inFlight += 1;
    running.set(owner, (running.get(owner) ?? 0) + 1);
  };
  const release = (owner: string) => {
    inFlight -= 1;
    const left = (running.get(owner) ?? 1) - 1;
    if (left > 0) running.set(owner, left);
    else running.delete(owner);
    pump();
  };

  /** Both families at once through a resolver of this lookup's own, cancelled at the deadline. */
  const query = async (name: string, deadline: number): Promise<ResolvedAddress[]> => {
    const budget = Math.max(1, deadline - performance.now());
    const resolver = new Resolver({ timeout: Math.max(1, Math.ceil(budget / 2)), tries: 2 });
    if (servers.length > 0) resolver.setServers(servers);
    const timer = setTimeout(() => resolver.cancel(), budget);
    try {
      const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
      const found: ResolvedAddress[] = [
        ...(v4.status === "fulfilled" ? v4.value.map((address) => ({ address, family: 4 as const })) : []),
        ...(v6.status === "fulfilled" ? v6.value.map((address) => ({ address, family: 6 as const })) : []),
      ];
      if (found.length > 0) return found;
      const codes = [v4, v6].map((r) => (r.status === "rejected" ? ((r.reason as { code?: string }).code ?? "") : "ENODATA"));
      if (performance.now() >= deadline || codes.includes("ECANCELLED") || codes.includes("ETIMEOUT")) {
        throw coded(`resolving ${name} timed out`, "ETIMEOUT");
      }
      if (codes.every((c) => c === "ENOTFOUND" || c === "ENODATA")) throw coded(`${name} has no address`, "ENOTFOUND");
      throw coded(`resolving ${name} failed`, codes.find((c) => c !== "ENODATA" && c !== "ENOTFOUND") ?? "ESERVFAIL");
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async resolve(host, resolveOptions = {}) {
      const bare = host.replace(/^\[(.*)\]$/, "$1");
      const version = isIP(bare);
      if (version !== 0) return [{ address: bare, family: version as 4 | 6 }];
      const listed = fromHostsFile(bare);
      if (listed) return listed;
      const owner = resolveOptions.owner ?? "";
      const deadline = performance.now() + Math.min(timeoutMs, resolveOptions.timeoutMs ?? timeoutMs);
      const queue = queues.get(owner) ?? [];
      if (queue.length >= maxQueued) throw coded(`too many names being resolved for this owner at once (${bare})`, "EBUSY");

      return new Promise<ResolvedAddress[]>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const waiting: Waiting = {
          start() {
            clearTimeout(timer);
            acquire(owner);
            lookupName(bare, deadline)
              .then(resolve, reject)
              .finally(() => release(owner));
          },
          abandon() {
            const at = queue.indexOf(waiting);
            if (at >= 0) queue.splice(at, 1);
            if (queue.length === 0 && queues.get(owner) === queue) {
              queues.delete(owner);
              if (turn.includes(owner)) turn.splice(turn.indexOf(owner), 1);
            }
            reject(coded(`resolving ${bare} timed out waiting for a free lookup`, "ETIMEOUT"));
          },
        };
        queue.push(waiting);
        if (!queues.has(owner)) {
          queues.set(owner, queue);
          turn.push(owner);
        }
        timer = setTimeout(() => waiting.abandon(), Math.max(1, deadline - performance.now()));
        pump();
      });
    },
  };
}

/** The resolver the configuration describes (DNS_SERVERS, DNS_TIMEOUT_MS, DNS_LOOKUPS_IN_FLIGHT, DNS_LOOKUPS_PER_OWNER). */
export function nameResolverFromConfig(
  config: Pick<Config, "DNS_SERVERS" | "DNS_TIMEOUT_MS" | "DNS_LOOKUPS_IN_FLIGHT" | "DNS_LOOKUPS_PER_OWNER">,
): NameResolver {
  return createNameResolver({
    servers: config.DNS_SERVERS,
    timeoutMs: config.DNS_TIMEOUT_MS,
    maxInFlight: config.DNS_LOOKUPS_IN_FLIGHT,
    maxInFlightPerOwner: config.DNS_LOOKUPS_PER_OWNER,
  });
}

let shared: NameResolver | undefined;

/** The process' resolver with default settings, for callers not handed one (tests, tools). */
export function defaultNameResolver(): NameResolver {
  shared ??= createNameResolver();
  return shared;
}
