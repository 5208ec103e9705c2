import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Token, TokenSchema, TokenService } from "../../gen/axion/infrastructure/v1/token_service_pb.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { ago, messageJson, outside, printJson, printTable, time } from "../output.js";
import { listAll, pick } from "../resolve.js";

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

/** 30d, 12h, 90m: a lifetime from now. */
export function parseLifetime(text: string): Date {
  const m = /^(\d+)([mhd])$/.exec(text);
  if (!m) throw CliError.usage(`--expires must look like 90m, 12h or 30d, not "${text.slice(0, 40)}"`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "m" | "h" | "d"];
  return new Date(Date.now() + Number(m[1]) * unit);
}

export const tokens = commandBody((t) =>
  t
    .command(
      "list",
      "List your tokens",
      (c) => c,
      async (argv) => {
        const tokens = await allTokens(api());
        if (isJson(argv)) return printJson({ tokens: tokens.map((t) => messageJson(TokenSchema, t)) });
        printTable(
          ["ID", "LABEL", "PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED", "CURRENT"],
          tokens.map((t) => [
            t.id,
            t.label || "-",
            `${t.prefix}…`,
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
          .option("expires", { type: "string", describe: "lifetime, e.g. 30d, 12h, 90m (default: never)" }),
      async (argv) => {
        const expireTime = argv.expires ? timestampFromDate(parseLifetime(argv.expires)) : undefined;
        const r = await api().service(TokenService).createToken({ label: argv.label, expireTime });
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
