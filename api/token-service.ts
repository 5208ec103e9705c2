import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { createToken, listTokens, type Owner, revokeToken, setTokenExpiry, type TokenView } from "../core/inventory/owners.js";
import { AppError } from "../core/kernel/errors.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import type { Database } from "../db/client.js";
import { Role, type Token, TokenSchema, type TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { roleProto } from "./enum-mapping.js";
import { requireOwner } from "./owner.js";

/** Built field by field: a token's hash has no field to leak into. */
function tokenMessage(row: TokenView, caller: Owner): Token {
  return create(TokenSchema, {
    id: row.id,
    label: row.label,
    prefix: row.tokenPrefix,
    createTime: timestampFromDate(row.createdAt),
    lastUseTime: row.lastUsedAt ? timestampFromDate(row.lastUsedAt) : undefined,
    expireTime: row.expiresAt ? timestampFromDate(row.expiresAt) : undefined,
    revokeTime: row.revokedAt ? timestampFromDate(row.revokedAt) : undefined,
    current: row.id === caller.tokenId,
    role: roleProto.toProto(row.role),
    clusterIds: row.clusterIds ?? [],
    createdByTokenId: row.createdByTokenId ?? "",
  });
}

/** Milliseconds since the epoch; out-of-range values stay out of range, for the core's checks to refuse. */
const timestampMs = (ts: Timestamp | undefined): number | undefined =>
  ts === undefined ? undefined : Number(ts.seconds) * 1000 + Math.trunc(ts.nanos / 1_000_000);

/** The calling owner's own tokens (core/inventory/owners.ts). */
export function tokenService(db: Database): ServiceImpl<typeof TokenService> {
  return {
    async listTokens(req, ctx) {
      const owner = requireOwner(ctx);
      const page = await listTokens(db, owner, parsePageRequest(req.pageSize, req.pageToken));
      return { tokens: page.items.map((t) => tokenMessage(t, owner)), nextPageToken: page.nextPageToken };
    },
    async createToken(req, ctx) {
      const owner = requireOwner(ctx);
      const role = req.role === Role.UNSPECIFIED ? undefined : roleProto.fromProto(req.role);
      if (req.role !== Role.UNSPECIFIED && !role) throw AppError.invalid("role", "is not a known role");
      const { token, bearerToken } = await createToken(db, owner, {
        label: req.label,
        expireTime: timestampMs(req.expireTime),
        role,
        clusterIds: req.clusterIds,
      });
      return { token: tokenMessage(token, owner), bearerToken };
    },
    async revokeToken(req, ctx) {
      const owner = requireOwner(ctx);
      return { token: tokenMessage(await revokeToken(db, owner, req.id), owner) };
    },
    async setTokenExpiry(req, ctx) {
      const owner = requireOwner(ctx);
      return { token: tokenMessage(await setTokenExpiry(db, owner, req.id, timestampMs(req.expireTime)), owner) };
    },
  };
}
