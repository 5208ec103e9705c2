/**
 * CalculateSystemRequirements at its input bounds (not a test): times the pure
 * calculation (validation, totals, start order, placement) for the largest
 * inputs the bounds allow, wall and CPU time, median and max over the runs.
 *
 *   node --import tsx bench/requirements.ts [--runs 21]
 */
import { parseArgs } from "node:util";
import {
  calculateRequirements,
  type DependencyInput,
  MAX_DEPENDENCIES,
  MAX_PLACEMENT_STEPS,
  MAX_SERVICES,
  MAX_TOTAL_REPLICAS,
  type ServerCapacity,
  type ServiceNodeInput,
} from "../core/inventory/requirements.js";

const { values } = parseArgs({ options: { runs: { type: "string", default: "21" } } });
const runs = Number(values.runs);

const servers = (n: number, identical: boolean): ServerCapacity[] =>
  Array.from({ length: n }, (_, i) => ({
    serverId: `srv-${String(i).padStart(5, "0")}`,
    capacity: { cpuMillis: 64_000, memoryBytes: 2 ** 38, diskBytes: 2 ** 40 },
    used: identical
      ? { cpuMillis: 0, memoryBytes: 0, diskBytes: 0 }
      : { cpuMillis: i * 10, memoryBytes: i * 2 ** 20, diskBytes: i * 2 ** 22 },
  }));
const services = (n: number, replicas: number, zero: boolean): ServiceNodeInput[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `svc-${i}`,
    requests: zero
      ? { cpuMillis: 0, memoryBytes: 0, diskBytes: 0 }
      : { cpuMillis: 1 + (i % 7), memoryBytes: 2 ** 20 * (1 + (i % 5)), diskBytes: 2 ** 20 },
    replicas,
  }));
// A chain and a fan-in: every service but the first depends on its predecessor, the rest on svc-0.
const dependencies = (n: number): DependencyInput[] =>
  Array.from({ length: MAX_DEPENDENCIES }, (_, i) =>
    i < n - 1 ? { from: `svc-${i + 1}`, to: `svc-${i}` } : { from: `svc-${(i % (n - 1)) + 1}`, to: "svc-0" },
  );

const perService = MAX_TOTAL_REPLICAS / MAX_SERVICES;
const cases: [string, () => unknown][] = [
  [
    `${MAX_SERVICES} services, ${MAX_DEPENDENCIES} dependencies, no cluster`,
    () => calculateRequirements(services(MAX_SERVICES, perService, false), dependencies(MAX_SERVICES), undefined),
  ],
  [
    `${MAX_TOTAL_REPLICAS} replicas on ${MAX_PLACEMENT_STEPS / MAX_TOTAL_REPLICAS} distinct servers`,
    () =>
      calculateRequirements(
        services(MAX_SERVICES, perService, false),
        dependencies(MAX_SERVICES),
        servers(MAX_PLACEMENT_STEPS / MAX_TOTAL_REPLICAS, false),
      ),
  ],
  [
    `${MAX_TOTAL_REPLICAS} zero-request replicas on ${MAX_PLACEMENT_STEPS / MAX_TOTAL_REPLICAS} identical servers (every criterion compared)`,
    () => calculateRequirements(services(MAX_SERVICES, perService, true), [], servers(MAX_PLACEMENT_STEPS / MAX_TOTAL_REPLICAS, true)),
  ],
  [`${MAX_SERVICES} replicas on 1000 servers`, () => calculateRequirements(services(MAX_SERVICES, 1, false), [], servers(1000, false))],
];

const ms = (ns: bigint | number) => (Number(ns) / 1e6).toFixed(1);
for (const [name, run] of cases) {
  for (let i = 0; i < 3; i++) run();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = process.hrtime.bigint();
    run();
    wall.push(Number(process.hrtime.bigint() - t));
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) * 1000);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(`${name}: wall median ${ms(median(wall))} ms, max ${ms(Math.max(...wall))} ms; cpu median ${ms(median(cpu))} ms`);
}
