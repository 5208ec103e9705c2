import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  createProviderAccount,
  deleteProviderAccount,
  getProviderAccount,
  listProviderAccounts,
  type ProviderAccountDeps,
  type ProviderAccountView,
  updateProviderAccount,
} from "../core/inventory/provider-accounts.js";
import { AppError } from "../core/kernel/errors.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import {
  type ProviderAccount,
  ProviderAccountSchema,
  type ProviderAccountService,
} from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { providerKindProto } from "./enum-mapping.js";
import { requireOwner } from "./owner.js";

/** Field by field: the credentials have no field to leak into. */
function accountMessage(row: ProviderAccountView): ProviderAccount {
  return create(ProviderAccountSchema, {
    id: row.id,
    name: row.name,
    kind: providerKindProto.toProto(row.kind),
    serverCount: row.serverCount,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

export function providerAccountService(deps: ProviderAccountDeps): ServiceImpl<typeof ProviderAccountService> {
  return {
    async createProviderAccount(req, ctx) {
      if (!req.credentials) throw AppError.invalid("credentials", "are required: username and password");
      const account = await createProviderAccount(deps, requireOwner(ctx), {
        name: req.name,
        kind: providerKindProto.fromProto(req.kind),
        credentials: { username: req.credentials.username, password: req.credentials.password },
      });
      return { providerAccount: accountMessage(account) };
    },
    async updateProviderAccount(req, ctx) {
      const account = await updateProviderAccount(deps, requireOwner(ctx), req.id, {
        name: req.name,
        credentials: req.credentials && { username: req.credentials.username, password: req.credentials.password },
      });
      return { providerAccount: accountMessage(account) };
    },
    async deleteProviderAccount(req, ctx) {
      await deleteProviderAccount(deps.db, requireOwner(ctx), req.id);
      return {};
    },
    async getProviderAccount(req, ctx) {
      return { providerAccount: accountMessage(await getProviderAccount(deps.db, requireOwner(ctx), req.id)) };
    },
    async listProviderAccounts(req, ctx) {
      const page = await listProviderAccounts(deps.db, requireOwner(ctx), parsePageRequest(req.pageSize, req.pageToken));
      return { providerAccounts: page.items.map(accountMessage), nextPageToken: page.nextPageToken };
    },
  };
}
