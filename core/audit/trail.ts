import { ADMIN_OWNER, type Owner } from "../inventory/owners.js";
import { AppError } from "../kernel/errors.js";
import { type AuditOutcome, auditOutcomes } from "../kernel/kinds.js";
import { INSTALLATION_CHAIN } from "./chain.js";
import type { AuditFilter } from "./list.js";

/**
 * The chain a caller reads: its organization's, or the installation's (callers refused before they
 * named an organization), which only the organization of AXION_ADMIN_TOKEN may read; any other
 * caller is told it has no such chain rather than that it exists.
 */
export function chainFor(owner: Owner, installation: boolean): string {
  if (!installation) return owner.id;
  if (owner.name !== ADMIN_OWNER) throw AppError.invalid("installation", "only the installation's admin organization may read its chain");
  return INSTALLATION_CHAIN;
}

const MAX_FILTER = 200;

/** The list filter from a request, each field checked and named. */
export function auditFilter(input: {
  actor: string;
  target: string;
  action: string;
  since?: Date;
  until?: Date;
  outcome: string;
}): AuditFilter {
  for (const field of ["actor", "target", "action"] as const) {
    if (input[field].length > MAX_FILTER) throw AppError.invalid(field, `must be at most ${MAX_FILTER} characters`);
  }
  if (input.outcome && !(auditOutcomes as readonly string[]).includes(input.outcome)) {
    throw AppError.invalid("outcome", `must be one of ${auditOutcomes.join(", ")}`);
  }
  if (input.since && input.until && input.since >= input.until) throw AppError.invalid("until", "must be after since");
  return {
    actor: input.actor || undefined,
    targetId: input.target || undefined,
    action: input.action || undefined,
    since: input.since,
    until: input.until,
    outcome: (input.outcome || undefined) as AuditOutcome | undefined,
  };
}
