import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { alertRuleSettings } from "../../db/schema.js";
import { parseInput } from "../kernel/validation.js";

/** What alerts an owner (NotificationService GetAlertRules/UpdateAlertRules). */
export interface ResourceRule {
  enabled: boolean;
  thresholdPercent: number;
  sustainedSeconds: number;
}

/** A server flaps when its liveness changes more than `changes` times within `windowSeconds`; it has settled after `settleSeconds` without one. */
export interface FlappingRule {
  enabled: boolean;
  changes: number;
  windowSeconds: number;
  settleSeconds: number;
}

export interface AlertRules {
  serverOffline: boolean;
  serverUnreachable: boolean;
  hostkeyMismatch: boolean;
  operationFailed: boolean;
  rolloutFailed: boolean;
  disk: ResourceRule;
  memory: ResourceRule;
  flapping: FlappingRule;
}

/** The service-wide defaults (ALERT_DISK_PERCENT, ALERT_MEMORY_PERCENT, ALERT_SUSTAINED_SECONDS, ALERT_FLAP_*). */
export interface AlertDefaults {
  diskPercent: number;
  memoryPercent: number;
  sustainedSeconds: number;
  /** ALERT_FLAP_CHANGES, ALERT_FLAP_WINDOW_SECONDS, ALERT_FLAP_SETTLE_SECONDS; the built-in values where absent. */
  flapping?: Omit<FlappingRule, "enabled">;
}

export const BUILT_IN_FLAPPING: Omit<FlappingRule, "enabled"> = { changes: 6, windowSeconds: 600, settleSeconds: 600 };
export const BUILT_IN_ALERT_DEFAULTS: AlertDefaults = {
  diskPercent: 90,
  memoryPercent: 95,
  sustainedSeconds: 300,
  flapping: BUILT_IN_FLAPPING,
};

export function defaultAlertRules(defaults: AlertDefaults = BUILT_IN_ALERT_DEFAULTS): AlertRules {
  return {
    serverOffline: true,
    serverUnreachable: true,
    hostkeyMismatch: true,
    operationFailed: true,
    rolloutFailed: true,
    disk: { enabled: true, thresholdPercent: defaults.diskPercent, sustainedSeconds: defaults.sustainedSeconds },
    memory: { enabled: true, thresholdPercent: defaults.memoryPercent, sustainedSeconds: defaults.sustainedSeconds },
    flapping: { enabled: true, ...(defaults.flapping ?? BUILT_IN_FLAPPING) },
  };
}

const resourceRule = z.object(
  {
    enabled: z.boolean(),
    thresholdPercent: z.number().refine((v) => Number.isFinite(v) && v > 0 && v <= 100, "must be more than 0 and at most 100"),
    sustainedSeconds: z.number().int().min(1, "must be 1-86400").max(86400, "must be 1-86400"),
  },
  { error: "is required" },
);

const seconds = z.number().int().min(1, "must be 1-86400").max(86400, "must be 1-86400");
const flappingRule = z.object(
  {
    enabled: z.boolean(),
    changes: z.number().int().min(1, "must be 1-100").max(100, "must be 1-100"),
    windowSeconds: seconds,
    settleSeconds: seconds,
  },
  { error: "is required" },
);

const rulesSchema = z.object({
  serverOffline: z.boolean(),
  serverUnreachable: z.boolean(),
  hostkeyMismatch: z.boolean(),
  operationFailed: z.boolean(),
  rolloutFailed: z.boolean(),
  disk: resourceRule,
  memory: resourceRule,
  flapping: flappingRule,
});

/** An owner's rules: stored ones over the defaults (a rule added later gets its default). */
export async function getAlertRules(db: Database, ownerId: string, defaults?: AlertDefaults): Promise<AlertRules> {
  const [row] = await db.select({ rules: alertRuleSettings.rules }).from(alertRuleSettings).where(eq(alertRuleSettings.ownerId, ownerId));
  return mergeRules(defaultAlertRules(defaults), row?.rules);
}

export function mergeRules(base: AlertRules, stored: Record<string, unknown> | undefined): AlertRules {
  if (!stored) return base;
  const s = stored as Partial<AlertRules>;
  return {
    ...base,
    ...s,
    disk: { ...base.disk, ...s.disk },
    memory: { ...base.memory, ...s.memory },
    flapping: { ...base.flapping, ...s.flapping },
  };
}

/** Replaces all of an owner's rules; bad input is InvalidArgument naming the field (`rules.disk.threshold_percent`). */
export async function updateAlertRules(db: Database, ownerId: string, input: unknown): Promise<AlertRules> {
  const rules = parseInput(z.object({ rules: rulesSchema }, { error: "is required" }), { rules: input }).rules;
  await db
    .insert(alertRuleSettings)
    .values({ ownerId, rules })
    .onConflictDoUpdate({ target: alertRuleSettings.ownerId, set: { rules, updatedAt: sql`now()` } });
  return rules;
}
