import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { auditOutcomes } from "../../core/kernel/kinds.js";
import { LIFETIME_FORMAT, lifetimeMs } from "../../core/kernel/lifetime.js";
import { excerpt } from "../../core/kernel/text.js";
import {
  type AuditActor,
  AuditActorKind,
  AuditEventSchema,
  AuditService,
  VerifyAuditTrailResponseSchema,
} from "../../gen/axion/infrastructure/v1/audit_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { enumName, messageJson, outside, printFields, printJson, printTable, time } from "../output.js";
import { listAll } from "../resolve.js";

/** `--since 24h` (that long ago) or an ISO 8601 time. */
export function timeFlag(flag: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const ago = lifetimeMs(text);
  if (ago !== undefined) return new Date(Date.now() - ago);
  const at = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(at)) {
    throw CliError.usage(`--${flag}: an ISO 8601 time or a duration ago (${LIFETIME_FORMAT}), not ${excerpt(text)}`);
  }
  return new Date(at);
}

function actorText(actor: AuditActor | undefined): string {
  if (!actor) return "-";
  const kind = enumName(AuditActorKind, actor.kind, "");
  if (actor.kind === AuditActorKind.SYSTEM) return `system:${actor.systemName}`;
  return `${kind.toLowerCase()}:${outside(actor.id)}`;
}

const shortAction = (action: string) => action.replace(/^axion\.infrastructure\.v1\./, "");

export const audit = commandBody((t) =>
  t
    .command(
      "list",
      "Your organization's audit trail, oldest first: every change asked of the API (refused ones too), SSH logins, system actors",
      (c) =>
        c
          .option("actor", { type: "string", describe: "a token, member or agent id, a system actor (worker, reconciler…) or an address" })
          .option("target", { type: "string", describe: "entries naming this id" })
          .option("action", {
            type: "string",
            describe: "a full method name (axion.infrastructure.v1.ClusterService/UpdateCluster) or ssh.login",
          })
          .option("since", { type: "string", describe: "from this time (ISO 8601) or this long ago (24h, 7d)" })
          .option("until", { type: "string", describe: "before this time (ISO 8601) or this long ago" })
          .option("outcome", { type: "string", choices: auditOutcomes, describe: "ok or a Connect error code" })
          .option("installation", {
            type: "boolean",
            describe: "the installation's chain (callers refused before naming an organization)",
          }),
      async (argv) => {
        const since = timeFlag("since", argv.since);
        const until = timeFlag("until", argv.until);
        const client = api().service(AuditService);
        const events = await listAll(async (pageToken) => {
          const r = await client.listAuditEvents({
            actor: argv.actor ?? "",
            target: argv.target ?? "",
            action: argv.action ?? "",
            since: since ? timestampFromDate(since) : undefined,
            until: until ? timestampFromDate(until) : undefined,
            outcome: argv.outcome ?? "",
            installation: argv.installation ?? false,
            pageSize: 500,
            pageToken,
          });
          return { items: r.events, next: r.nextPageToken };
        });
        if (isJson(argv)) return printJson({ events: events.map((e) => messageJson(AuditEventSchema, e)) });
        printTable(
          ["SEQ", "TIME", "ACTOR", "ACTION", "TARGETS", "FROM", "OUTCOME"],
          events.map((e) => [
            String(e.seq),
            time(e.time),
            actorText(e.actor),
            outside(shortAction(e.action) + (e.detail ? ` (${e.detail})` : "")),
            e.targetIds.map(outside).join(",") || "-",
            outside(e.clientAddress) || "-",
            e.outcome,
          ]),
        );
      },
    )
    .command(
      "verify",
      "Recompute the audit trail's hash chain; exit 1 naming the first changed, inserted or removed entry",
      (c) => c.option("installation", { type: "boolean", describe: "the installation's chain" }),
      async (argv) => {
        const r = await api()
          .service(AuditService)
          .verifyAuditTrail({ installation: argv.installation ?? false });
        if (isJson(argv)) printJson(messageJson(VerifyAuditTrailResponseSchema, r));
        else if (r.intact) {
          printFields([
            ["intact", "yes"],
            ["checked", String(r.checked)],
            ["checkpoint", String(r.checkpointSeq)],
            ["last seq", String(r.lastSeq)],
            ["last hash", r.lastHash],
          ]);
        }
        if (!r.intact) throw CliError.failed(`audit trail broken at sequence ${r.brokenSeq}: entry ${outside(r.problem)}`);
      },
    )
    .demandCommand(1, "name an audit command: list, verify"),
);
