import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ownerForToken } from "../core/owners.js";
import type { Database } from "../db/client.js";
import { ownerKey } from "./context.js";

/** Methods whose callers are agents, authenticated by their own per-server token in the handler. */
const agentMethods = new Set(["axion.infrastructure.v1.AgentService/Register", "axion.infrastructure.v1.AgentService/Heartbeat"]);

/** Bearer-token auth: resolves the owner every owner-scoped handler acts as. */
export function authInterceptor(db: Database): Interceptor {
  return (next) => async (req) => {
    if (agentMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    const owner = await ownerForToken(db, match[1] as string);
    if (!owner) throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    req.contextValues.set(ownerKey, owner);
    return next(req);
  };
}
