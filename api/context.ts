import { createContextKey } from "@connectrpc/connect";
import type { Owner } from "../core/inventory/owners.js";

/** Set by the auth interceptor; every owner-scoped handler reads it. */
export const ownerKey = createContextKey<Owner | undefined>(undefined, { description: "authenticated owner" });

/** Where a call came from, for the audit trail: the peer's address (no forwarded header is trusted) and its user agent. */
export interface Caller {
  address: string | null;
  userAgent: string | null;
}
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "the caller's address and user agent" });
