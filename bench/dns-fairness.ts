/**
 * Name resolution under a flood (not a test): organization A (or --orgs of them) resolves names
 * its DNS server never answers; organization B resolves a good name every
 * 100 ms meanwhile. Prints B's answer times, A's failures and how long they
 * took.
 *
 *   node --import tsx bench/dns-fairness.ts [--flood 200] [--orgs 1] [--timeout 2000]
 */
import { parseArgs } from "node:util";
import { createNameResolver } from "../core/security/name-resolution.js";
import { startTestDnsServer } from "../test/support/dns-server.js";

const { values } = parseArgs({
  options: {
    flood: { type: "string", default: "200" },
    orgs: { type: "string", default: "1" },
    timeout: { type: "string", default: "2000" },
  },
});
const flood = Number(values.flood);
const orgs = Number(values.orgs);
const timeoutMs = Number(values.timeout);

const dns = await startTestDnsServer({ "good.example": ["203.0.113.10"] }, (name) => name.endsWith(".slow.example"));
const resolver = createNameResolver({ servers: [dns.address], timeoutMs });

const started = performance.now();
const aEnded: number[] = [];
const aLookups = Array.from({ length: flood }, (_, i) => {
  return resolver.resolve(`n${i}.slow.example`, { owner: `a${i % orgs}` }).catch(() => aEnded.push(performance.now() - started));
});

const bTimes: number[] = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  await resolver.resolve("good.example", { owner: "b" });
  bTimes.push(performance.now() - t);
  await new Promise((r) => setTimeout(r, 100));
}
await Promise.all(aLookups);
await dns.close();

const pct = (list: number[], p: number) =>
  [...list].sort((x, y) => x - y)[Math.min(list.length - 1, Math.floor((list.length * p) / 100))] ?? 0;
console.log(
  `flood of ${flood} names nobody answers from ${orgs} organization(s), timeout ${timeoutMs} ms, defaults otherwise (64 in flight, 4 per owner)`,
);
console.log(`B (another organization), 20 lookups: p50 ${pct(bTimes, 50).toFixed(1)} ms, max ${Math.max(...bTimes).toFixed(1)} ms`);
console.log(`A (flooding): ${aEnded.length} failed, the last after ${Math.max(...aEnded).toFixed(0)} ms`);
