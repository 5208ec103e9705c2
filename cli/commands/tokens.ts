import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { roleProto } from "../../api/enum-mapping.js";
import { type Role, roles } from "../../core/kernel/kinds.js";
import { LIFETIME_FORMAT, lifetimeMs } from "../../core/kernel/lifetime.js";
import { excerpt } from "../../core/kernel/text.js";
import { type Token, TokenSchema, TokenService } from "../../gen/axion/infrastructure/v1/token_service_pb.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { ago, messageJson, outside, printJson, printTable, time } from "../output.js";
import { allClusters, listAll, pick, resolveCluster } from "../resolve.js";

const allTokens = (client: Api) =>
  listAll(async (pageToken) => {
    const r = await client.service(TokenService).listTokens({ pageSize: 500, pageToken });
    return { items: r.tokens, next: r.nextPageToken };
  });

function state(t: Token): string {
  if (t.revokeTime) return "revoked";
  if (t.expireTime && Number(t.expireTime.seconds) * 1000 < Date.now()) return "expired";
  return "active";
}

/** `--expires-in` (30m, 12h, 7d): the expiry it sets, from now. `--expires` is its old spelling, still read. */
export function expiryFrom(argv: { "expires-in"?: string; expires?: string }): Date | undefined {
  if (argv.expires !== undefined && argv["expires-in"] !== undefined)
    throw CliError.usage("give --expires-in only (--expires is its old name)");
  if (argv.expires !== undefined) process.stderr.write("axion: --expires is deprecated, use --expires-in (same values)\n");
  const flag = argv.expires !== undefined ? "--expires" : "--expires-in";
  const text = argv.expires ?? argv["expires-in"];
  if (text === undefined) return undefined;
  const ms = lifetimeMs(text);
  if (ms === undefined) throw CliError.usage(`${flag}: ${LIFETIME_FORMAT}, not ${excerpt(text)}`);
  return new Date(Date.now() + ms);
}

export const tokens = commandBody((t) =>
  t
    .command(
      "list",
      "List your tokens",
      (c) => c,
      async (argv) => {
        const client = api();
        const tokens = await allTokens(client);
        if (isJson(argv)) return printJson({ tokens: tokens.map((t) => messageJson(TokenSchema, t)) });
        // A cluster the caller cannot see (outside its own clusters) is shown by its id.
        const names = tokens.some((t) => t.clusterIds.length > 0)
          ? new Map((await allClusters(client)).map((c) => [c.id, c.name]))
          : new Map<string, string>();
        printTable(
          ["ID", "LABEL", "PREFIX", "ROLE", "CLUSTERS", "STATE", "CREATED", "EXPIRES", "LAST USED", "CURRENT"],
          tokens.map((t) => [
            t.id,
            t.label || "-",
            `${t.prefix}…`,
            roleProto.fromProto(t.role) ?? "-",
            t.clusterIds.length === 0 ? "all" : t.clusterIds.map((id) => outside(names.get(id) ?? id)).join(","),
            state(t),
            time(t.createTime),
            t.expireTime ? time(t.expireTime) : "never",
            ago(t.lastUseTime),
            t.current ? "*" : "",
          ]),
        );
      },
    )
    .command(
      "create <label>",
      "Create a token; it is shown once",
      (c) =>
        c
          .positional("label", { type: "string", demandOption: true })
          .option("expires-in", { type: "string", describe: "lifetime: 30m, 12h, 7d (default: never)" })
          .option("role", { choices: roles, describe: "at most your token's role (default: your token's role)" })
          .option("cluster", {
            type: "string",
            array: true,
            describe: "limit the token to these clusters, names or ids (default: your token's clusters)",
          })
          .option("expires", { type: "string", hidden: true }),
      async (argv) => {
        const expiry = expiryFrom(argv);
        const expireTime = expiry ? timestampFromDate(expiry) : undefined;
        const client = api();
        const clusterIds = await Promise.all(
          (argv.cluster ?? []).flatMap((c) => c.split(",")).map(async (c) => (await resolveCluster(client, c)).id),
        );
        const role = argv.role === undefined ? undefined : roleProto.toProto(argv.role as Role);
        const r = await client.service(TokenService).createToken({ label: argv.label, expireTime, role, clusterIds });
        if (isJson(argv)) {
          return printJson({ token: r.token ? messageJson(TokenSchema, r.token) : null, bearer_token: r.bearerToken });
        }
        process.stderr.write(`Token "${outside(argv.label ?? "")}" created (${r.token?.id}). It is shown only this once:\n`);
        process.stdout.write(`${r.bearerToken}\n`);
      },
    )
    .command(
      "revoke <token>",
      "Revoke a token by id or label",
      (c) => c.positional("token", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const token = pick(
          "token",
          argv.token,
          (await allTokens(client)).map((t) => Object.assign(t, { name: t.label })),
        );
        const r = await client.service(TokenService).revokeToken({ id: token.id });
        if (isJson(argv)) return printJson({ token: r.token ? messageJson(TokenSchema, r.token) : null });
        process.stdout.write(`Token ${outside(token.label || token.id)} revoked\n`);
      },
    )
    .demandCommand(1, "name a tokens command: list, create, revoke"),
);
