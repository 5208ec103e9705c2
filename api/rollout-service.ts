import { create } from "@bufbuild/protobuf";
import { type Duration, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AppError } from "../core/kernel/errors.js";
import { endedRolloutStatuses } from "../core/kernel/kinds.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import { MAX_PLAN_SERVERS, runPlan } from "../core/operations/plans.js";
import type { WorkflowGateway } from "../core/operations/provisioning.js";
import { type RolloutRequest, resolveRollout, rolloutDetail, startRollout, steerRollout } from "../core/rollouts/rollout-control.js";
import { createRolloutStepQueries } from "../core/rollouts/rollout-step-queries.js";
import type { RolloutStrategy as Strategy, StrategyInput } from "../core/rollouts/rollout-strategy.js";
import { listRollouts, type RolloutRow, requireRollout } from "../core/rollouts/rollouts.js";
import type { Database } from "../db/client.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import {
  BusyServerPolicy,
  type Rollout,
  type RolloutAmount,
  RolloutSchema,
  type RolloutService,
  RolloutStatus,
  type RolloutStrategy,
  type RolloutTarget,
} from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { serverPlanMessage } from "./convert.js";
import { pauseUnlessDraining } from "./drain.js";
import { busyPolicyProto, rolloutKindProto, rolloutServerStateProto, rolloutStatusProto } from "./enum-mapping.js";
import { requireOwner } from "./owner.js";
import type { OwnerBudgets } from "./owner-limits.js";
import { requireGateway } from "./server-service.js";

const WATCH_INTERVAL_MS = 1000;
/**
 * A watch asks running servers' workflows for their current step at most 4 times a second on
 * average (each query costs the Temporal server and the worker ~10 ms of CPU: bench/temporal-overhead.ts
 * --queries); in between it shows the last answers. 20 running servers: each step refreshed every 5 s.
 */
const STEP_QUERY_SPACING_MS = 250;
const STEP_QUERIES_SHOWN = 20;

function durationSeconds(field: string, d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  const seconds = Number(d.seconds) + d.nanos / 1e9;
  if (!Number.isFinite(seconds) || seconds < 0 || d.nanos < 0) throw AppError.invalid(field, "must not be negative");
  return seconds;
}

function amountInput(a: RolloutAmount | undefined): StrategyInput["batchSize"] {
  if (!a) return undefined;
  if (a.value.case === "count") return { count: a.value.value };
  if (a.value.case === "percent") return { percent: a.value.value };
  return {};
}

function strategyInput(s: RolloutStrategy | undefined): StrategyInput {
  if (!s) return {};
  if (s.busyPolicy !== BusyServerPolicy.UNSPECIFIED && !BusyServerPolicy[s.busyPolicy])
    throw AppError.invalid("strategy.busy_policy", "is not a known policy");
  return {
    canarySize: s.canarySize,
    batchSize: amountInput(s.batchSize),
    maxFailures: amountInput(s.maxFailures),
    batchPauseSeconds: durationSeconds("strategy.batch_pause", s.batchPause),
    pauseAfterCanary: s.pauseAfterCanary,
    busyPolicy: busyPolicyProto.fromProto(s.busyPolicy) ?? "skip",
    busyWaitSeconds: durationSeconds("strategy.busy_wait_timeout", s.busyWaitTimeout),
  };
}

function requestOf(req: {
  kind: RolloutKind;
  target?: RolloutTarget;
  strategy?: RolloutStrategy;
  options?: { diskThresholdPercent: number };
}): RolloutRequest {
  const kind = rolloutKindProto.fromProto(req.kind);
  if (!kind && req.kind !== RolloutKind.UNSPECIFIED) throw AppError.invalid("kind", "is not a known rollout kind");
  return {
    kind,
    target: req.target && { clusterId: req.target.clusterId, selector: req.target.selector, serverIds: [...req.target.serverIds] },
    strategy: strategyInput(req.strategy),
    diskThresholdPct: req.options?.diskThresholdPercent,
  };
}

const duration = (seconds: number) => ({ seconds: BigInt(Math.floor(seconds)), nanos: Math.round((seconds % 1) * 1e9) });
const amount = (a: Strategy["maxFailures"] | undefined) =>
  a && { value: "count" in a ? { case: "count" as const, value: a.count } : { case: "percent" as const, value: a.percent } };

function rolloutMessage(detail: Awaited<ReturnType<typeof rolloutDetail>>): Rollout {
  const { row, counts } = detail;
  const strategy = row.strategy as unknown as Strategy;
  const target = row.target as { clusterId?: string; selector?: string; serverIds?: string[] };
  return create(RolloutSchema, {
    id: row.id,
    kind: rolloutKindProto.toProto(row.kind),
    status: rolloutStatusProto.toProto(row.status),
    target: { clusterId: target.clusterId ?? "", selector: target.selector ?? "", serverIds: target.serverIds ?? [] },
    strategy: {
      canarySize: strategy.canarySize,
      batchSize: amount(strategy.batchSize),
      maxFailures: amount(strategy.maxFailures),
      batchPause: duration(strategy.batchPauseSeconds),
      pauseAfterCanary: strategy.pauseAfterCanary,
      busyPolicy: busyPolicyProto.toProto(strategy.busyPolicy),
      busyWaitTimeout: strategy.busyPolicy === "wait" ? duration(strategy.busyWaitSeconds) : undefined,
    },
    options: { diskThresholdPercent: Number((row.options as { diskThresholdPct?: number }).diskThresholdPct ?? 0) },
    workflowId: row.workflowId,
    counts: { ...counts, notReached: counts.not_reached },
    batchCount: row.batchCount,
    currentBatch: row.currentBatch,
    reason: row.reason,
    startTime: timestampFromDate(row.startedAt),
    finishTime: row.finishedAt ? timestampFromDate(row.finishedAt) : undefined,
    servers: (detail.servers ?? []).map((s) => ({
      serverId: s.serverId ?? "",
      serverName: s.serverName,
      batch: s.batch,
      state: rolloutServerStateProto.toProto(s.state),
      operationId: s.operationId ?? "",
      currentStep: s.currentStep ?? "",
      reason: s.reason || (s.state === "FAILED" || s.state === "CANCELLED" ? (s.operationError ?? "") : ""),
    })),
  });
}

export function rolloutService(deps: {
  db: Database;
  workflows?: WorkflowGateway;
  maxServersPerOwner: number;
  budgets: OwnerBudgets;
  rolloutQueriesPerOwner: number;
  /** Aborts when the API starts to drain: watches then end with Unavailable. */
  draining?: AbortSignal;
}): ServiceImpl<typeof RolloutService> {
  const { db, budgets } = deps;
  const steps = deps.workflows && createRolloutStepQueries(deps.workflows, { perOwner: deps.rolloutQueriesPerOwner });
  const detailed = async (row: RolloutRow) => rolloutMessage(await rolloutDetail(db, steps, row, true));

  return {
    async planRollout(req, ctx) {
      const owner = requireOwner(ctx);
      const plan = await resolveRollout(db, owner, requestOf(req), deps.maxServersPerOwner);
      const ids = plan.batches.flat().map((s) => s.id);
      if (req.checks && ids.length > MAX_PLAN_SERVERS)
        throw AppError.invalid("checks", `checks plan at most ${MAX_PLAN_SERVERS} servers; narrow the target`);
      // Each server checked is a login: charged per server, before any starts.
      if (req.checks) budgets.charge(owner.id, "planChecks", ids.length);
      // The same read-only checks the steps run, per server per step (core/operations/plans.ts).
      const checked = req.checks
        ? (await runPlan({ db, workflows: requireGateway(deps.workflows) }, owner, plan.kind, ids)).servers
        : undefined;
      let at = 0;
      return {
        batches: plan.batches.map((batch, index) => ({
          index,
          canary: index === 0 && plan.strategy.canarySize > 0,
          serverIds: batch.map((s) => s.id),
          plans: batch.map(() => checked?.[at++]).flatMap((p) => (p ? [serverPlanMessage(p)] : [])),
        })),
        maxFailures: plan.failureBudget,
        total: plan.total,
      };
    },
    async startRollout(req, ctx) {
      const owner = requireOwner(ctx);
      const request = requestOf(req);
      const gateway = requireGateway(deps.workflows);
      const row = await startRollout(db, gateway, owner, request, deps.maxServersPerOwner, (plan) => {
        // A connection-test rollout probes every target: charged per probe, like TestServerConnection.
        if (plan.kind === "test_connection") budgets.charge(owner.id, "connectionTests", plan.total);
      });
      return { rollout: await detailed(await requireRollout(db, owner, row.id)) };
    },
    async getRollout(req, ctx) {
      return { rollout: await detailed(await requireRollout(db, requireOwner(ctx), req.id)) };
    },
    async listRollouts(req, ctx) {
      const owner = requireOwner(ctx);
      const status = rolloutStatusProto.fromProto(req.status);
      if (req.status !== RolloutStatus.UNSPECIFIED && !status) throw AppError.invalid("status", "is not a known rollout status");
      const page = await listRollouts(db, owner, parsePageRequest(req.pageSize, req.pageToken), status);
      const rollouts = await Promise.all(page.items.map(async (row) => rolloutMessage(await rolloutDetail(db, undefined, row, false))));
      return { rollouts, nextPageToken: page.nextPageToken };
    },
    async *watchRollout(req, ctx) {
      const owner = requireOwner(ctx);
      let last = "";
      const shown = new Map<number, string | undefined>();
      let askAfter = 0;
      for (;;) {
        const row = await requireRollout(db, owner, req.id);
        const ask = Date.now() >= askAfter;
        const detail = await rolloutDetail(db, ask ? steps : undefined, row, true);
        const running = (detail.servers ?? []).filter((s) => s.state === "RUNNING");
        if (ask) {
          shown.clear();
          for (const s of running) shown.set(s.position, s.currentStep);
          askAfter = Date.now() + Math.min(running.length, STEP_QUERIES_SHOWN) * STEP_QUERY_SPACING_MS;
        } else for (const s of running) s.currentStep = shown.get(s.position);
        const rollout = rolloutMessage(detail);
        const fingerprint = JSON.stringify({
          s: rollout.status,
          b: rollout.currentBatch,
          r: rollout.reason,
          v: rollout.servers.map((s) => [s.state, s.currentStep]),
        });
        if (fingerprint !== last) {
          last = fingerprint;
          yield { rollout };
        }
        if (endedRolloutStatuses.includes(row.status) || ctx.signal.aborted) return;
        await pauseUnlessDraining(WATCH_INTERVAL_MS, deps.draining);
      }
    },
    async pauseRollout(req, ctx) {
      const row = await steerRollout(db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "pause");
      return { rollout: await detailed(row) };
    },
    async resumeRollout(req, ctx) {
      const row = await steerRollout(db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "resume");
      return { rollout: await detailed(row) };
    },
    async abortRollout(req, ctx) {
      const row = await steerRollout(db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "abort", req.reason);
      return { rollout: await detailed(row) };
    },
  };
}
