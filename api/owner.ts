import type { HandlerContext } from "@connectrpc/connect";
import type { Owner } from "../core/inventory/owners.js";
import { AppError } from "../core/kernel/errors.js";
import { ownerKey } from "./context.js";

export function requireOwner(context: HandlerContext): Owner {
  const owner = context.values.get(ownerKey);
  if (!owner) throw new AppError("unauthenticated", "no authenticated owner");
  return owner;
}
