import { ApplicationFailure } from "@temporalio/common";
import { recordAudit } from "../../core/audit/record.js";
import type { AuditOutcome } from "../../core/kernel/kinds.js";
import { currentLogContext, errorSummary, log } from "../../core/kernel/log.js";
import type { Database } from "../../db/client.js";
import { SshErrorType } from "./errors.js";

/** How a failed login reads in the audit trail, in the trail's one vocabulary (Connect code names). */
const outcomes: Partial<Record<string, AuditOutcome>> = {
  [SshErrorType.AuthFailed]: "unauthenticated",
  [SshErrorType.HostKeyMismatch]: "failed_precondition",
  [SshErrorType.Unreachable]: "unavailable",
  [SshErrorType.Timeout]: "deadline_exceeded",
  [SshErrorType.KeyUnusable]: "failed_precondition",
  [SshErrorType.RefusedByPolicy]: "permission_denied",
};

function outcomeOf(error: unknown): { outcome: AuditOutcome; type?: string } {
  if (error === undefined) return { outcome: "ok" };
  if (error instanceof ApplicationFailure && error.type) return { outcome: outcomes[error.type] ?? "unknown", type: error.type };
  if (error instanceof Error && error.name === "AbortError") return { outcome: "canceled" };
  return { outcome: "unknown" };
}

/**
 * Records one SSH login the worker made (actor: system `worker`): the server and the operation as
 * targets, the step (the activity) and, for a failure, its type as the detail. A failure to record
 * is logged, never the step's failure.
 */
export async function recordSshLogin(db: Database, server: { id: string; ownerId: string }, error?: unknown): Promise<void> {
  const context = currentLogContext();
  const { outcome, type } = outcomeOf(error);
  try {
    await recordAudit(db, {
      ownerId: server.ownerId,
      actor: { kind: "system", name: "worker" },
      action: "ssh.login",
      targetIds: [server.id, ...(context?.operationId ? [context.operationId] : [])],
      detail: [context?.activityType ?? "unknown step", type].filter(Boolean).join(": "),
      outcome,
    });
  } catch (failure) {
    log.error("audit entry for an SSH login not recorded", { serverId: server.id, ...errorSummary(failure) });
  }
}
