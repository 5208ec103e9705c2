import type { HandlerContext } from "@connectrpc/connect";
import { AppError } from "../core/errors.js";
import type { Owner } from "../core/owners.js";
import { ownerKey } from "./context.js";

export function requireOwner(context: HandlerContext): Owner {
  const owner = context.values.get(ownerKey);
  if (!owner) throw new AppError("unauthenticated", "no authenticated owner");
  return owner;
}
