import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import type { DeployKeyAction, PlanOutcome, RolloutKind } from "../core/kernel/kinds.js";
import { displaySafe } from "../core/kernel/text.js";
import { runningOperation } from "../core/operations/operations.js";
import type { HostFacts, ServerPlan, StepPlan } from "../workflows/definitions.js";
import { FailureType } from "../workflows/failure-types.js";
import { DEFAULT_DISK_THRESHOLD_PCT, DEFAULT_JOURNAL_MAX_MB, remediations } from "../workflows/remediation.js";
import { AGENT_UNCONFIGURED, agentChange, agentCurrent, inspectAgent } from "./agent.js";
import type { ActivityDeps } from "./deps.js";
import { parseStepOutput, type StepState } from "./host-scripts.js";
import { DEPLOY_KEY_UNSET, deployKeyStep, type HostStep, hostSteps, outcomeOf, preflightProblem, readFacts } from "./provisioning.js";
import { readDiagnosis } from "./recovery.js";
import { loadServer, type ServerRecord, withServerSession } from "./server-access.js";
import { isShareBusy } from "./ssh/owner-shares.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import type { SshSession } from "./ssh/session.js";

/**
 * Plans (check mode): the read-only half of every step of an operation kind,
 * run on the real host in one SSH session. Each check is the step's own code
 * (the same script in check mode, the same decision function), so what a plan
 * reports is what the operation would do. A plan pins no host key, writes no
 * status and opens no operation.
 */

const CHECK_TIMEOUT_MS = 60_000;

interface PlanContext {
  deps: ActivityDeps;
  session: SshSession;
  server: ServerRecord;
  /** The steps checked so far, in order. */
  steps: StepPlan[];
}

/** One step's check (named as the step, for a check that fails), answering that step's plan (the recovery's: several). */
interface Check {
  name: string;
  run: (ctx: PlanContext) => Promise<StepPlan[]>;
}

const outcomeOfState: Record<StepState, PlanOutcome> = {
  would_change: "would_change",
  unchanged: "unchanged",
  skipped: "unchanged",
  cannot: "cannot",
  // A check never acts; a script that reports "changed" in check mode is a defect, reported as such.
  changed: "cannot",
};

async function checkHostStep(ctx: PlanContext, name: string, step: HostStep): Promise<StepPlan> {
  const { stdout } = await runRemoteStep(ctx.session, step.script(ctx.deps, ctx.server, "check"), {
    timeoutMs: CHECK_TIMEOUT_MS,
    step: `check ${name}`,
  });
  const parsed = parseStepOutput(stdout, name);
  const detail = parsed.state === "changed" ? `the check reported a change: ${parsed.detail}` : parsed.detail;
  return { name, outcome: outcomeOfState[parsed.state], detail };
}

const hostCheck = (name: keyof typeof hostSteps): Check => ({
  name,
  run: async (ctx) => [await checkHostStep(ctx, name, hostSteps[name])],
});

const describeFacts = (f: HostFacts) => `${f.osPrettyName} ${f.arch}, ${f.rootFreeMb} MB free, docker ${f.dockerVersion ?? "absent"}`;

const preflightCheck: Check = {
  name: "preflight",
  run: async (ctx) => {
    const facts = await readFacts(ctx.session);
    const problem = preflightProblem(facts);
    return [{ name: "preflight", outcome: problem ? "cannot" : "unchanged", detail: problem ? problem.message : describeFacts(facts) }];
  },
};

const deployKeyCheck = (action: DeployKeyAction, name: string): Check => ({
  name,
  run: async (ctx) => {
    const step = deployKeyStep(ctx.deps, action);
    if (!step) return [{ name, outcome: "unchanged", detail: `skipped: ${DEPLOY_KEY_UNSET}` }];
    const planned = await checkHostStep(ctx, name, step);
    // In a configure plan the admin user the key is for may be created by the admin_user step first.
    const userPlanned = ctx.steps.some((s) => s.name === "admin_user" && s.outcome === "would_change");
    if (planned.outcome === "cannot" && action === "add" && userPlanned) {
      return [{ name, outcome: "would_change", detail: `add the deploy key for ${ctx.deps.adminUser} (created by the admin_user step)` }];
    }
    return [planned];
  },
});

const agentCheck = (force: boolean): Check => ({
  name: "agent",
  run: async (ctx) => {
    if (!ctx.deps.agent) return [{ name: "agent", outcome: "unchanged", detail: `skipped: ${AGENT_UNCONFIGURED}` }];
    const found = await inspectAgent(ctx.deps, ctx.session, ctx.server.id);
    if (agentCurrent(found, force))
      return [{ name: "agent", outcome: "unchanged", detail: `axion-agent ${found.version} running and registered` }];
    return [{ name: "agent", outcome: "would_change", detail: agentChange(found, force) }];
  },
});

/** The recovery's diagnosis, and each remediation it would run or not (the recovery's own decision function). */
const recoveryCheck: Check = {
  name: "diagnose",
  run: async (ctx) => {
    const diagnosis = await readDiagnosis(ctx.session);
    const planned = remediations(diagnosis, DEFAULT_DISK_THRESHOLD_PCT, DEFAULT_JOURNAL_MAX_MB);
    const mounts = diagnosis.mounts.map((m) => `${m.mount} ${m.usedPct}%`).join(", ");
    return [
      {
        name: "diagnose",
        outcome: "unchanged",
        detail: `docker ${diagnosis.docker}; ${mounts || "no mounts"} used; journal ${diagnosis.journalMb} MB`,
      },
      ...planned.map((r): StepPlan => ({ name: r.name, outcome: r.needed ? "would_change" : "unchanged", detail: r.detail })),
    ];
  },
};

/** The checks of each kind after `connect`, in the order its operation runs the steps (named as in its progress). */
const checksOf: Record<RolloutKind, Check[]> = {
  configure: [
    preflightCheck,
    hostCheck("admin_user"),
    hostCheck("docker"),
    hostCheck("firewall"),
    hostCheck("ssh_hardening"),
    deployKeyCheck("add", "deploy_key"),
    agentCheck(false),
  ],
  deploy_key_add: [deployKeyCheck("add", "deploy_key_add")],
  deploy_key_remove: [deployKeyCheck("remove", "deploy_key_remove")],
  recover: [recoveryCheck],
  install_agent: [agentCheck(true)],
  test_connection: [],
};

/** A connection that never came up, in words an operator acts on. */
function connectFailure(error: unknown): string {
  if (error instanceof ApplicationFailure && error.type === FailureType.CredentialUnavailable) return "credential unavailable";
  const labels = {
    ok: "connected",
    auth_failed: "auth failed",
    unreachable: "unreachable",
    timeout: "unreachable (timeout)",
    hostkey_mismatch: "host key mismatch",
    refused_by_policy: "refused by network policy",
  } as const;
  return labels[outcomeOf(error)];
}

/** In an activity that was cancelled: a check's failure is then the cancellation, not an answer. */
function cancelled(): boolean {
  try {
    return Context.current().cancellationSignal.aborted;
  } catch {
    return false;
  }
}

/** A failure's message as a plan shows it: it may quote a host's answer, so escaped and cut. */
const messageOf = (error: unknown) => {
  const text = error instanceof Error ? error.message : String(error);
  return displaySafe(text.length > 1000 ? `${text.slice(0, 1000)}…` : text);
};

export function summarize(server: { id: string; name: string }, steps: StepPlan[], reason?: string): ServerPlan {
  const cannot = steps.find((s) => s.outcome === "cannot");
  const outcome: PlanOutcome = reason || cannot ? "cannot" : steps.some((s) => s.outcome === "would_change") ? "would_change" : "unchanged";
  const why = reason ?? (cannot ? `${cannot.name}: ${cannot.detail}` : undefined);
  return { serverId: server.id, serverName: server.name, outcome, ...(why ? { reason: why } : {}), steps };
}

/** The plan of one server for one kind: classified, never thrown (one bad server does not fail a fleet's plan). */
export async function planServer(deps: ActivityDeps, serverId: string, kind: RolloutKind): Promise<ServerPlan> {
  let server: ServerRecord;
  try {
    server = await loadServer(deps, serverId);
  } catch (error) {
    if (error instanceof ApplicationFailure && error.type === FailureType.ServerNotFound) {
      return summarize({ id: serverId, name: "" }, [], "the server no longer exists");
    }
    throw error;
  }
  const busy = await runningOperation(deps.db, serverId);
  if (busy) return summarize(server, [], `busy: the ${busy.kind} operation ${busy.id} is running`);

  try {
    return await heartbeating(() =>
      withServerSession(
        deps,
        serverId,
        async (session, current) => {
          const ctx: PlanContext = { deps, session, server: current, steps: [] };
          ctx.steps.push(
            current.hostKeyFingerprint
              ? { name: "connect", outcome: "unchanged", detail: `host key ${session.fingerprint} as pinned` }
              : { name: "connect", outcome: "would_change", detail: `pin host key ${session.fingerprint}` },
          );
          for (const check of checksOf[kind]) {
            const found = await check.run(ctx).catch((error): StepPlan[] => {
              if (cancelled()) throw error;
              return [{ name: check.name, outcome: "cannot", detail: messageOf(error) }];
            });
            ctx.steps.push(...found);
            // A host the preflight refuses is not checked further: its operation would stop there.
            if (found.some((s) => s.name === "preflight" && s.outcome === "cannot")) break;
          }
          return summarize(current, ctx.steps);
        },
        { readOnly: true },
      ),
    );
  } catch (error) {
    if (cancelled() || isShareBusy(error)) throw error;
    if (error instanceof ApplicationFailure && error.type === FailureType.ServerNotFound) {
      return summarize({ id: serverId, name: server.name }, [], "the server no longer exists");
    }
    const detail = messageOf(error);
    return summarize(server, [{ name: "connect", outcome: "cannot", detail }], `${connectFailure(error)}: ${detail}`);
  }
}

/** Plan activities: one per server, all of a kind's checks in one SSH session. */
export function createPlanActivities(deps: ActivityDeps) {
  return {
    planServer: (input: { serverId: string; kind: RolloutKind }): Promise<ServerPlan> => planServer(deps, input.serverId, input.kind),
  };
}
