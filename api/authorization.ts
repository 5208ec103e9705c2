import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { roleAtLeast } from "../core/inventory/owner-scope.js";
import { ownerKey } from "./context.js";
import { permissionOf } from "./permissions.js";

/**
 * The role check, for every call after authentication: a method's declared role (api/permissions.ts)
 * above the token's is PermissionDenied naming the role needed; a method nobody declared is refused.
 * Agent methods go on to their per-server token check. Cluster limits are not checked here: the
 * owner-scoped queries in core/ apply them (core/inventory/owner-scope.ts), so out of scope is NotFound.
 */
export const authorizationInterceptor: Interceptor = (next) => async (req) => {
  const permission = permissionOf(req.method);
  if (!permission) throw new ConnectError(`${req.method.name} has no declared permission`, Code.PermissionDenied);
  if (permission.role === "agent") return next(req);
  const owner = req.contextValues.get(ownerKey);
  if (!owner) throw new ConnectError("missing bearer token", Code.Unauthenticated);
  if (!roleAtLeast(owner.role, permission.role)) {
    throw new ConnectError(`${req.method.name} needs the ${permission.role} role; this token is ${owner.role}`, Code.PermissionDenied);
  }
  return next(req);
};
