import { AppError } from "../kernel/errors.js";
import { shown } from "../kernel/validation.js";

/**
 * The pure core of CalculateSystemRequirements: validation, totals, start order
 * and a deterministic placement heuristic. docs/requirements.md explains the
 * algorithm and its limits.
 */

export interface ResourceAmounts {
  cpuMillis: number;
  memoryBytes: number;
  diskBytes: number;
}

export interface ServiceNodeInput {
  name: string;
  /** Per replica. */
  requests: ResourceAmounts;
  /** 0 means 1. */
  replicas: number;
}

/** `from` depends on `to`: `to` starts first. */
export interface DependencyInput {
  from: string;
  to: string;
}

export interface ServerCapacity {
  serverId: string;
  capacity: ResourceAmounts;
  used: ResourceAmounts;
}

export interface Placement {
  service: string;
  /** 0-based. */
  replica: number;
  serverId: string;
}

export interface ServerFit {
  serverId: string;
  freeBefore: ResourceAmounts;
  freeAfter: ResourceAmounts;
}

export interface FitResult {
  fits: boolean;
  /** In the order the heuristic placed them. */
  placements: Placement[];
  /** Sorted by serverId. */
  servers: ServerFit[];
  /** "service#replica", in the order the heuristic tried them. */
  unplaced: string[];
  /** Per resource: max(0, requests of the unplaced replicas - free left on all servers). */
  missing: ResourceAmounts;
}

export interface RequirementsResult {
  total: ResourceAmounts;
  startOrder: string[];
  /** Set when servers were given. */
  fit?: FitResult;
}

/** Input bounds (docs/requirements.md, "Validation"): they keep one calculation within a few milliseconds. */
export const MAX_SERVICES = 1000;
export const MAX_REPLICAS = 1000;
export const MAX_TOTAL_REPLICAS = 10_000;
export const MAX_DEPENDENCIES = 10_000;
export const MAX_PLACEMENT_STEPS = 1_000_000;

const serviceName = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

type ResourceKey = keyof ResourceAmounts;
const RESOURCES: readonly ResourceKey[] = ["cpuMillis", "memoryBytes", "diskBytes"];
const protoName: Record<ResourceKey, string> = { cpuMillis: "cpu_millis", memoryBytes: "memory_bytes", diskBytes: "disk_bytes" };

const amounts = (f: (key: ResourceKey) => number): ResourceAmounts => ({
  cpuMillis: f("cpuMillis"),
  memoryBytes: f("memoryBytes"),
  diskBytes: f("diskBytes"),
});
const zero = (): ResourceAmounts => amounts(() => 0);

// Plain code-unit order: localeCompare would depend on the runtime's locale data.
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface Service {
  name: string;
  requests: ResourceAmounts;
  replicas: number;
}

export function calculateRequirements(
  services: ServiceNodeInput[],
  dependencies: DependencyInput[],
  servers?: ServerCapacity[],
): RequirementsResult {
  const nodes = validateServices(services);
  if (dependencies.length > MAX_DEPENDENCIES) throw AppError.invalid("dependencies", `must hold at most ${MAX_DEPENDENCIES} dependencies`);
  const dependsOn = validateDependencies(dependencies, nodes);
  const total = amounts((k) => {
    let sum = 0;
    for (const s of nodes.values()) sum += s.requests[k] * s.replicas;
    if (!Number.isSafeInteger(sum)) throw AppError.invalid("services", `total ${protoName[k]} exceeds ${Number.MAX_SAFE_INTEGER}`);
    return sum;
  });
  const startOrder = topologicalOrder(nodes, dependsOn);
  const result: RequirementsResult = { total, startOrder };
  if (servers) {
    const bins = validateServers(servers);
    const replicas = totalReplicas(nodes);
    if (replicas * bins.length > MAX_PLACEMENT_STEPS)
      throw AppError.invalid(
        "services",
        `${replicas} replicas on the cluster's ${bins.length} servers exceed the placement bound: replicas × servers must be at most ${MAX_PLACEMENT_STEPS}`,
      );
    result.fit = place(
      startOrder.map((name) => nodes.get(name) as Service),
      bins,
    );
  }
  return result;
}

function totalReplicas(nodes: Map<string, Service>): number {
  let sum = 0;
  for (const s of nodes.values()) sum += s.replicas;
  return sum;
}

function validateServices(services: ServiceNodeInput[]): Map<string, Service> {
  if (services.length === 0) throw AppError.invalid("services", "must hold at least one service");
  if (services.length > MAX_SERVICES) throw AppError.invalid("services", `must hold at most ${MAX_SERVICES} services`);
  const nodes = new Map<string, Service>();
  const indexOf = new Map<string, number>();
  services.forEach((s, i) => {
    const at = `services[${i}]`;
    if (typeof s.name !== "string" || !serviceName.test(s.name))
      throw AppError.invalid(`${at}.name`, "must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit");
    const first = indexOf.get(s.name);
    if (first !== undefined) throw AppError.invalid(`${at}.name`, `"${s.name}" is already the name of services[${first}]`);
    for (const k of RESOURCES) {
      const v = s.requests?.[k];
      if (!Number.isSafeInteger(v) || v < 0) throw AppError.invalid(`${at}.requests.${protoName[k]}`, "must be a non-negative integer");
    }
    if (!Number.isInteger(s.replicas) || s.replicas < 0 || s.replicas > MAX_REPLICAS)
      throw AppError.invalid(`${at}.replicas`, `must be between 0 and ${MAX_REPLICAS}`);
    indexOf.set(s.name, i);
    nodes.set(s.name, { name: s.name, requests: amounts((k) => s.requests[k]), replicas: Math.max(1, s.replicas) });
  });
  if (totalReplicas(nodes) > MAX_TOTAL_REPLICAS)
    throw AppError.invalid("services", `must hold at most ${MAX_TOTAL_REPLICAS} replicas in all (0 counting as 1)`);
  return nodes;
}

/** Returns, per service, the set of services it depends on. Repeated edges count once. */
function validateDependencies(dependencies: DependencyInput[], nodes: Map<string, Service>): Map<string, Set<string>> {
  const dependsOn = new Map<string, Set<string>>();
  for (const name of nodes.keys()) dependsOn.set(name, new Set());
  dependencies.forEach((d, i) => {
    for (const end of ["from", "to"] as const) {
      if (!nodes.has(d[end])) throw AppError.invalid(`dependencies[${i}].${end}`, `names no service: ${shown(d[end])}`);
    }
    if (d.from === d.to) throw AppError.invalid(`dependencies[${i}].to`, `"${d.to}" cannot depend on itself`);
    dependsOn.get(d.from)?.add(d.to);
  });
  return dependsOn;
}

/** Kahn's algorithm; among the services ready to start, the alphabetically first goes next. */
function topologicalOrder(nodes: Map<string, Service>, dependsOn: Map<string, Set<string>>): string[] {
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const name of nodes.keys()) dependents.set(name, []);
  for (const [from, tos] of dependsOn) {
    pending.set(from, tos.size);
    for (const to of tos) dependents.get(to)?.push(from);
  }
  const ready = [...nodes.keys()].filter((name) => pending.get(name) === 0).sort(byCodeUnit);
  const order: string[] = [];
  while (ready.length > 0) {
    const next = ready.shift() as string;
    order.push(next);
    for (const dependent of dependents.get(next) ?? []) {
      const left = (pending.get(dependent) ?? 0) - 1;
      pending.set(dependent, left);
      if (left === 0) insertSorted(ready, dependent);
    }
  }
  if (order.length < nodes.size) {
    const cycle = findCycle(new Set([...nodes.keys()].filter((name) => (pending.get(name) ?? 0) > 0)), dependsOn);
    throw AppError.invalid("dependencies", `form a cycle: ${cycle.join(" -> ")}`);
  }
  return order;
}

function insertSorted(sorted: string[], value: string): void {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as string) < value) lo = mid + 1;
    else hi = mid;
  }
  sorted.splice(lo, 0, value);
}

/**
 * Every service Kahn's algorithm left behind still waits for another one left
 * behind, so following "depends on" edges inside that set must come back to a
 * service already seen. The cycle is rotated to start at its smallest name and
 * closed, e.g. ["a", "b", "a"].
 */
function findCycle(left: Set<string>, dependsOn: Map<string, Set<string>>): string[] {
  const smallest = (names: Iterable<string>): string => [...names].filter((n) => left.has(n)).sort(byCodeUnit)[0] as string;
  const path: string[] = [];
  const seenAt = new Map<string, number>();
  let node = smallest(left);
  while (!seenAt.has(node)) {
    seenAt.set(node, path.length);
    path.push(node);
    node = smallest(dependsOn.get(node) ?? []);
  }
  const cycle = path.slice(seenAt.get(node));
  const start = cycle.indexOf(smallest(cycle));
  const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
  return [...rotated, rotated[0] as string];
}

interface Bin {
  serverId: string;
  freeBefore: ResourceAmounts;
  free: ResourceAmounts;
}

function validateServers(servers: ServerCapacity[]): Bin[] {
  const ids = new Set<string>();
  const bins = servers.map((s): Bin => {
    // Servers come from the inventory, not from the client: bad values are a bug upstream.
    if (typeof s.serverId !== "string" || s.serverId === "" || ids.has(s.serverId))
      throw new AppError("internal", `server ids must be unique and non-empty: "${s.serverId}"`);
    ids.add(s.serverId);
    for (const k of RESOURCES) {
      for (const v of [s.capacity[k], s.used[k]]) {
        if (!Number.isSafeInteger(v) || v < 0)
          throw new AppError("internal", `server ${s.serverId}: ${protoName[k]} must be a non-negative integer`);
      }
    }
    const freeBefore = amounts((k) => Math.max(0, s.capacity[k] - s.used[k]));
    return { serverId: s.serverId, freeBefore, free: { ...freeBefore } };
  });
  // Sorting first makes every later step, sums included, independent of the input order.
  return bins.sort((a, b) => byCodeUnit(a.serverId, b.serverId));
}

/**
 * The servers' remaining free amounts as flat arrays for the placement's inner
 * loop, with each server's shares kept up to date as it fills: a step compares
 * numbers and divides nothing.
 */
class Scan {
  readonly n: number;
  readonly free: [Float64Array, Float64Array, Float64Array];
  /** Per resource, `share(remaining free)`. */
  readonly shares: [Float64Array, Float64Array, Float64Array];
  /** Per server, the sum of its three shares. */
  readonly overall: Float64Array;
  /** Per server, the queue position of the last service placed on it: "already runs a replica of this service". */
  readonly lastHosted: Int32Array;

  constructor(
    bins: Bin[],
    private readonly totals: number[],
  ) {
    this.n = bins.length;
    const perResource = () => RESOURCES.map(() => new Float64Array(bins.length)) as [Float64Array, Float64Array, Float64Array];
    this.free = perResource();
    this.shares = perResource();
    this.overall = new Float64Array(bins.length);
    this.lastHosted = new Int32Array(bins.length).fill(-1);
    bins.forEach((b, i) => {
      RESOURCES.forEach((k, r) => {
        (this.free[r] as Float64Array)[i] = b.free[k];
      });
      this.refresh(i);
    });
  }

  take(i: number, request: [number, number, number], serviceIndex: number): void {
    for (let r = 0; r < 3; r++) (this.free[r] as Float64Array)[i] = ((this.free[r] as Float64Array)[i] as number) - (request[r] as number);
    this.lastHosted[i] = serviceIndex;
    this.refresh(i);
  }

  private refresh(i: number): void {
    let overall = 0;
    for (let r = 0; r < 3; r++) {
      const free = (this.free[r] as Float64Array)[i] as number;
      const total = this.totals[r] as number;
      const share = total > 0 ? free / total : free > 0 ? Number.POSITIVE_INFINITY : 0;
      (this.shares[r] as Float64Array)[i] = share;
      overall += share;
    }
    this.overall[i] = overall;
  }
}

/** The index of the server a replica goes to, or -1: the criteria of docs/requirements.md, "Placement", step 3. */
function chooseBin(scan: Scan, request: [number, number, number], serviceIndex: number, dominantIndex: number): number {
  const { n, lastHosted, overall } = scan;
  const [free0, free1, free2] = scan.free;
  const [r0, r1, r2] = request;
  const headrooms = dominantIndex < 0 ? undefined : scan.shares[dominantIndex];
  let best = -1;
  let bestHosts = false;
  let bestHeadroom = 0;
  for (let i = 0; i < n; i++) {
    if (r0 > (free0[i] as number) || r1 > (free1[i] as number) || r2 > (free2[i] as number)) continue;
    const hosts = lastHosted[i] === serviceIndex;
    const headroom = headrooms ? (headrooms[i] as number) : 0;
    // Bins are sorted by id, so a full tie keeps the earlier (smaller) id.
    if (best >= 0) {
      if (hosts !== bestHosts) {
        if (hosts) continue;
      } else if (headroom !== bestHeadroom) {
        if (headroom < bestHeadroom) continue;
      } else if (!((overall[i] as number) > (overall[best] as number))) continue;
    }
    best = i;
    bestHosts = hosts;
    bestHeadroom = headroom;
  }
  return best;
}

/**
 * See docs/requirements.md, "Placement". Each replica looks at every server once:
 * O(replicas × servers), kept at most MAX_PLACEMENT_STEPS by the validation. The
 * inner loop works on flat arrays; it computes the same shares, in the same order,
 * as the criteria in the documentation describe.
 */
function place(servicesInStartOrder: Service[], bins: Bin[]): FitResult {
  const totalFree = amounts((k) => bins.reduce((sum, b) => sum + b.freeBefore[k], 0));
  const share = (k: ResourceKey, v: number): number => (totalFree[k] > 0 ? v / totalFree[k] : v > 0 ? Number.POSITIVE_INFINITY : 0);

  const queue = servicesInStartOrder.map((service, position) => {
    let dominant: ResourceKey | undefined;
    let dominantShare = 0;
    for (const k of RESOURCES) {
      const s = share(k, service.requests[k]);
      if (s > dominantShare) {
        dominant = k;
        dominantShare = s;
      }
    }
    return { service, position, dominant, dominantShare };
  });
  queue.sort((a, b) => b.dominantShare - a.dominantShare || a.position - b.position);

  const scan = new Scan(
    bins,
    RESOURCES.map((k) => totalFree[k]),
  );

  const placements: Placement[] = [];
  const unplaced: string[] = [];
  const needed = zero();
  queue.forEach(({ service, dominant }, serviceIndex) => {
    const request = RESOURCES.map((k) => service.requests[k]) as [number, number, number];
    const dominantIndex = dominant ? RESOURCES.indexOf(dominant) : -1;
    let failed = false;
    for (let replica = 0; replica < service.replicas; replica++) {
      // Free space only shrinks, so once a replica finds no server its identical siblings find none either.
      const best = failed ? -1 : chooseBin(scan, request, serviceIndex, dominantIndex);
      if (best < 0) {
        failed = true;
        unplaced.push(`${service.name}#${replica}`);
        for (const k of RESOURCES) needed[k] += service.requests[k];
        continue;
      }
      scan.take(best, request, serviceIndex);
      placements.push({ service: service.name, replica, serverId: (bins[best] as Bin).serverId });
    }
  });
  bins.forEach((b, i) => {
    RESOURCES.forEach((k, r) => {
      b.free[k] = scan.free[r as 0 | 1 | 2][i] as number;
    });
  });

  const remaining = amounts((k) => bins.reduce((sum, b) => sum + b.free[k], 0));
  return {
    fits: unplaced.length === 0,
    placements,
    servers: bins.map((b) => ({ serverId: b.serverId, freeBefore: b.freeBefore, freeAfter: { ...b.free } })),
    unplaced,
    missing: amounts((k) => Math.max(0, needed[k] - remaining[k])),
  };
}
