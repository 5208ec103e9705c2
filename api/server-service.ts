import type { ServiceImpl } from "@connectrpc/connect";
import { acceptHostKey } from "../core/inventory/host-keys.js";
import { createServer, deleteServer, type InventoryDeps, listServers, requireServer, updateServer } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import type { ServerStatus as DbServerStatus } from "../core/kernel/kinds.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import type { SshCredentialInput } from "../core/kernel/validation.js";
import { requireOperation } from "../core/operations/operations.js";
import { runPlan } from "../core/operations/plans.js";
import { startServerOperation, type WorkflowGateway } from "../core/operations/provisioning.js";
import { checkReinstallable, type ReinstallCheckDeps } from "../core/operations/reinstall-checks.js";
import { type ServerService, ServerStatus, type SshCredential } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { rolloutKindFromProto, serverMessage, serverPlanMessage } from "./convert.js";
import { connectionOutcomeProto, deployKeyActionProto, serverStatusProto } from "./enum-mapping.js";
import { operationMessage } from "./operation-message.js";
import { requireOwner } from "./owner.js";
import type { OwnerBudgets } from "./owner-limits.js";

function credentialInput(credential: SshCredential | undefined): SshCredentialInput | undefined {
  switch (credential?.method.case) {
    case "privateKey":
      return { kind: "private_key", privateKey: credential.method.value.key, passphrase: credential.method.value.passphrase };
    case "password":
      return { kind: "password", password: credential.method.value };
    default:
      return undefined;
  }
}

/** A status filter from the proto: UNSPECIFIED means none for `status`, and is refused inside `statuses`. */
function statusFilter(status: ServerStatus, field: string, required = false): DbServerStatus[] {
  if (status === ServerStatus.UNSPECIFIED && !required) return [];
  const known = serverStatusProto.fromProto(status);
  if (!known) throw AppError.invalid(field, "is not a known server status");
  return [known];
}

export function requireGateway(gateway: WorkflowGateway | undefined): WorkflowGateway {
  if (!gateway) throw new AppError("unavailable", "workflows are not available on this API instance");
  return gateway;
}

export function serverService(
  deps: InventoryDeps & ReinstallCheckDeps & { workflows?: WorkflowGateway; sshConnectTimeoutMs?: number; budgets: OwnerBudgets },
): ServiceImpl<typeof ServerService> {
  return {
    async testServerConnection(req, ctx) {
      const { operation, handle } = await startServerOperation(
        deps.db,
        requireGateway(deps.workflows),
        requireOwner(ctx),
        req.id,
        "test_connection",
      );
      const result = await handle.result();
      const facts = result.facts;
      return {
        operation: operationMessage(await requireOperation(deps.db, requireOwner(ctx), operation.id)),
        outcome: connectionOutcomeProto.toProto(result.outcome),
        message: result.message,
        hostKeyFingerprint: result.fingerprint ?? "",
        facts: facts && {
          ...facts,
          dockerVersion: facts.dockerVersion ?? "",
          rootFreeMb: BigInt(facts.rootFreeMb),
          memoryMb: BigInt(facts.memoryMb),
        },
      };
    },
    async configureServer(req, ctx) {
      const { operation } = await startServerOperation(deps.db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "bootstrap");
      return { operation: operationMessage(operation) };
    },
    async setupDeployKey(req, ctx) {
      const action = deployKeyActionProto.fromProto(req.action) ?? "add";
      const { operation } = await startServerOperation(deps.db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "deploy_key", {
        action,
      });
      return { operation: operationMessage(operation) };
    },
    async createServer(req, ctx) {
      const credential = credentialInput(req.credential);
      if (!credential) throw AppError.invalid("credential", "is required: a private_key or a password");
      const server = await createServer(deps, requireOwner(ctx), {
        clusterId: req.clusterId,
        name: req.name,
        host: req.host,
        sshPort: req.sshPort ?? 22,
        sshUser: req.sshUser === "" ? "root" : req.sshUser,
        credential,
        becomePassword: req.becomePassword || undefined,
        labels: req.labels,
        provider: req.provider,
        providerServerId: req.providerServerId,
        providerAccountId: req.providerAccountId,
      });
      return { server: serverMessage(server) };
    },
    async updateServer(req, ctx) {
      if (req.credential && !credentialInput(req.credential)) {
        throw AppError.invalid("credential", "must hold a private_key or a password when set");
      }
      const server = await updateServer(deps, requireOwner(ctx), req.id, {
        clusterId: req.clusterId,
        name: req.name,
        host: req.host,
        sshPort: req.sshPort,
        sshUser: req.sshUser,
        credential: credentialInput(req.credential),
        becomePassword: req.becomePassword,
        labels: req.labels?.entries,
        provider: req.provider,
        providerServerId: req.providerServerId,
        providerAccountId: req.providerAccountId,
      });
      return { server: serverMessage(server) };
    },
    async recoverServer(req, ctx) {
      if (req.diskThresholdPercent > 100) throw AppError.invalid("disk_threshold_percent", "must be between 1 and 100");
      const { operation } = await startServerOperation(deps.db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "recovery", {
        diskThresholdPct: req.diskThresholdPercent || undefined,
      });
      return { operation: operationMessage(operation) };
    },
    async reinstallServer(req, ctx) {
      if (!/^[A-Za-z0-9._-]{0,64}$/.test(req.os)) throw AppError.invalid("os", "must be a provider OS code");
      const owner = requireOwner(ctx);
      const server = await requireServer(deps.db, owner, req.id);
      const gateway = requireGateway(deps.workflows);
      // The activity checks again right before the rebuild; this answers the caller now, before anything starts.
      await checkReinstallable(deps, server, { beforeProviderCall: () => deps.budgets.charge(owner.id, "providerChecks") });
      const { operation } = await startServerOperation(deps.db, gateway, owner, server.id, "reinstall", {
        os: req.os || undefined,
      });
      return { operation: operationMessage(operation) };
    },
    async planServer(req, ctx) {
      const kind = rolloutKindFromProto(req.kind);
      const owner = requireOwner(ctx);
      const server = await requireServer(deps.db, owner, req.id);
      const { servers } = await runPlan({ db: deps.db, workflows: requireGateway(deps.workflows) }, owner, kind, [server.id]);
      return { plan: servers[0] && serverPlanMessage(servers[0]) };
    },
    async acceptHostKey(req, ctx) {
      return { server: serverMessage(await acceptHostKey(deps, requireOwner(ctx), req.id, req.expectedFingerprint)) };
    },
    async deleteServer(req, ctx) {
      await deleteServer(deps.db, requireOwner(ctx), req.id);
      return {};
    },
    async getServer(req, ctx) {
      return { server: serverMessage(await requireServer(deps.db, requireOwner(ctx), req.id)) };
    },
    async listServers(req, ctx) {
      const page = await listServers(deps.db, requireOwner(ctx), parsePageRequest(req.pageSize, req.pageToken), {
        clusterId: req.clusterId,
        statuses: [...statusFilter(req.status, "status"), ...req.statuses.flatMap((s, i) => statusFilter(s, `statuses[${i}]`, true))],
        selector: req.selector,
      });
      return { servers: page.items.map(serverMessage), nextPageToken: page.nextPageToken };
    },
  };
}
