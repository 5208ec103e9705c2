import { roleProto } from "../../api/enum-mapping.js";
import { type Token, TokenSchema, TokenService } from "../../gen/axion/infrastructure/v1/token_service_pb.js";
import type { Api } from "../client.js";
import { api, apiClient } from "../client.js";
import { commandBody } from "../command.js";
import { configPath, normaliseApi, readConfig, writeConfig } from "../config.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { ago, messageJson, printFields, printJson, time } from "../output.js";
import { listAll } from "../resolve.js";
import { promptSecret, readStdin } from "../secrets.js";

async function currentToken(client: Api): Promise<Token | undefined> {
  const tokens = await listAll(async (pageToken) => {
    const r = await client.service(TokenService).listTokens({ pageSize: 500, pageToken });
    return { items: r.tokens, next: r.nextPageToken };
  });
  return tokens.find((t) => t.current);
}

function describeToken(t: Token | undefined): string {
  return t ? `token "${t.label || "(no label)"}" (${t.prefix}…)` : "a token";
}

export const login = commandBody(
  (c) =>
    c
      .option("api", { type: "string", demandOption: true, describe: "the API's URL, e.g. http://127.0.0.1:8080" })
      .option("token-stdin", { type: "boolean", default: false, describe: "read the token from stdin instead of a prompt" }),
  async (argv) => {
    const url = normaliseApi(argv.api);
    const token = argv["token-stdin"] ? readStdin("--token-stdin") : await promptSecret("Token: ", "pipe it with --token-stdin");
    if (!/^\S+$/.test(token)) throw CliError.usage("the token must be one word without spaces");
    const client = apiClient(url, token);
    const current = await currentToken(client);
    writeConfig({ ...readConfig(), api: url, token });
    if (isJson(argv)) {
      printJson({ api: url, config_file: configPath(), token: current ? messageJson(TokenSchema, current) : null });
    } else {
      process.stdout.write(`Logged in to ${url} with ${describeToken(current)}; saved in ${configPath()}\n`);
    }
  },
);

export const logout = commandBody(
  (c) => c,
  () => {
    const stored = readConfig();
    writeConfig({ api: stored.api });
    process.stdout.write(`Token removed from ${configPath()}\n`);
  },
);

export const whoami = commandBody(
  (c) => c,
  async (argv) => {
    const client = api();
    const current = await currentToken(client);
    const source = process.env.AXION_TOKEN?.trim() ? "AXION_TOKEN" : configPath();
    if (isJson(argv)) {
      printJson({ api: client.url, token_source: source, token: current ? messageJson(TokenSchema, current) : null });
      return;
    }
    printFields([
      ["api", client.url],
      ["token", current ? `${current.label || "(no label)"} (${current.prefix}…)` : "(admin token)"],
      ["from", source],
      ["role", current ? (roleProto.fromProto(current.role) ?? "-") : "-"],
      ["clusters", current ? (current.clusterIds.length === 0 ? "all" : current.clusterIds.join(",")) : "-"],
      ["created", current ? time(current.createTime) : "-"],
      ["expires", current?.expireTime ? time(current.expireTime) : "never"],
      ["last used", current ? ago(current.lastUseTime) : "-"],
    ]);
  },
);
