import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { planWorkflow } from "../workflows/plan.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { type SilentHost, startSilentHost } from "./support/silent-host.js";

/**
 * A worker's activity slots are shared by every organization. Organization A floods it with plans
 * against a host that never answers (each check hangs in its connect step); organization B's
 * ConfigureServer must still start its first step within 5 s. Real Temporal dev server, the real
 * worker and activities, PGlite, silent hosts (test/support/silent-host.ts).
 */
const silentHostsAllowed = createNetworkPolicy({ allow: ["127.0.0.2/32", "0.0.0.0/0", "::/0"].map((c) => parseCidr(c) as Cidr) });
/** The worker's default share (activities/ssh/owner-shares.ts). */
const SHARE = 8;
let harness: ProvisioningHarness;
const hosts: SilentHost[] = [];

async function ownerWithServer(name: string, host: SilentHost) {
  const owner = await harness.api.newOwner(name);
  const clients = harness.api.clients(owner.token);
  const clusterId = (await clients.clusters.createCluster({ name: `${name}-c` })).cluster!.id;
  const { server } = await clients.servers.createServer({
    clusterId,
    name: `${name}-1`,
    host: host.host,
    sshPort: host.port,
    credential: { method: { case: "password", value: "never-asked-for" } },
  });
  return { ...owner, clients, serverId: server!.id };
}

before(async () => {
  // Each connect to a silent host hangs this long: A's checks hold their sessions for the whole test.
  harness = await startProvisioningHarness({ sshConnectTimeoutMs: 60_000, networkPolicy: silentHostsAllowed });
});

after(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  await harness?.close();
});

test("one organization's 120 checks against a hanging host: another organization's ConfigureServer starts its first step within 5 s; every check of A runs in the end", {
  timeout: 300_000,
}, async () => {
  const hangsForA = await startSilentHost();
  const hangsForB = await startSilentHost();
  hosts.push(hangsForA, hangsForB);
  const a = await ownerWithServer("flooder", hangsForA);
  const b = await ownerWithServer("bystander", hangsForB);

  // Six plans of 20 checks at once: 120 SSH steps of A, more than the worker's 100 activity slots.
  const plans = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      harness.client.workflow.start(planWorkflow, {
        taskQueue: harness.taskQueue,
        workflowId: `flood-plan-${i}-${Date.now()}`,
        args: [{ kind: "configure", serverIds: Array.from({ length: 20 }, () => a.serverId), concurrency: 20 }],
      }),
    ),
  );
  await hangsForA.acceptedCount(SHARE);

  const started = Date.now();
  await b.clients.servers.configureServer({ id: b.serverId });
  const firstStep = hangsForB.acceptedCount(1).then(() => Date.now() - started);
  const late = new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), 5_000).unref());
  const startedAfter = await Promise.race([firstStep, late]);
  assert.ok(
    startedAfter < 5_000,
    `B's first step had not started 5 s after ConfigureServer (A's sessions at once: ${hangsForA.mostOpenAtOnce()})`,
  );
  assert.ok(
    hangsForA.mostOpenAtOnce() <= SHARE,
    `A had ${hangsForA.mostOpenAtOnce()} SSH sessions at once on the worker, its share is ${SHARE}`,
  );

  // A's host goes away: every check of A ends, those that waited for the share included, and each
  // reports the host, never the share (a step refused for want of a share runs again later).
  await hangsForA.close();
  const results = await Promise.all(plans.map((p) => p.result()));
  const checks = results.flatMap((r) => r.servers);
  assert.equal(checks.length, 120);
  for (const check of checks) {
    assert.equal(check.outcome, "cannot");
    assert.match(check.reason ?? "", /unreachable|connection|ECONN/i);
    assert.doesNotMatch(check.reason ?? "", /share|SSH sessions of this organization/i);
  }
});
