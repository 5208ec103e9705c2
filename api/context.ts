import { createContextKey } from "@connectrpc/connect";
import type { Owner } from "../core/inventory/owners.js";

/** Set by the auth interceptor; every owner-scoped handler reads it. */
export const ownerKey = createContextKey<Owner | undefined>(undefined, { description: "authenticated owner" });
