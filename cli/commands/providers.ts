import {
  type ProviderAccount,
  ProviderAccountSchema,
  ProviderAccountService,
} from "../../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { type GlobalOptions, globals, isJson } from "../context.js";
import { providerCredentialsFrom } from "../credentials.js";
import { CliError } from "../errors.js";
import { messageJson, outside, printFields, printJson, printTable, time } from "../output.js";
import { allProviderAccounts, kindFromName, kindName, kindNames, resolveProviderAccount } from "../provider-accounts.js";

/** The account as the API answers it: it never returns the credentials, so there is nothing secret to show. */
function show(account: ProviderAccount | undefined, argv: GlobalOptions) {
  if (!account) return;
  if (argv.output === "json") return printJson({ provider_account: messageJson(ProviderAccountSchema, account) });
  printFields([
    ["id", account.id],
    ["name", account.name],
    ["kind", kindName(account.kind)],
    ["servers", String(account.serverCount)],
    ["created", time(account.createTime)],
    ["updated", time(account.updateTime)],
  ]);
}

const passwordOption = {
  type: "boolean",
  describe: "read the password from stdin (else AXION_PROVIDER_PASSWORD, else a prompt with echo off)",
} as const;

export const providers = commandBody((t) =>
  t
    .command(
      "list",
      "List your provider accounts",
      (c) => c,
      async (argv) => {
        const accounts = await allProviderAccounts(api());
        if (isJson(argv)) return printJson({ provider_accounts: accounts.map((a) => messageJson(ProviderAccountSchema, a)) });
        printTable(
          ["NAME", "KIND", "SERVERS", "ID", "CREATED"],
          accounts.map((a) => [a.name, kindName(a.kind), String(a.serverCount), a.id, time(a.createTime)]),
        );
      },
    )
    .command(
      "get <account>",
      "Show a provider account (name or id)",
      (c) => c.positional("account", { type: "string", demandOption: true }),
      async (argv) => show(await resolveProviderAccount(api(), argv.account), globals(argv)),
    )
    .command(
      "create <name>",
      "Register an account at a VPS provider (the password is never an argument)",
      (c) =>
        c
          .positional("name", { type: "string", demandOption: true })
          .option("kind", { type: "string", choices: kindNames, default: "time4vps", describe: "the provider" })
          .option("username", { type: "string", demandOption: true, describe: "the provider login (Time4VPS: the client-area e-mail)" })
          .option("password-stdin", passwordOption),
      async (argv) => {
        const credentials = await providerCredentialsFrom(argv.username, argv["password-stdin"], argv.kind);
        const r = await api()
          .service(ProviderAccountService)
          .createProviderAccount({ name: argv.name, kind: kindFromName(argv.kind), credentials });
        show(r.providerAccount, globals(argv));
      },
    )
    .command(
      "update <account>",
      "Rename an account or replace its credentials (--username, with the password from stdin, the environment or a prompt)",
      (c) =>
        c
          .positional("account", { type: "string", demandOption: true })
          .option("name", { type: "string" })
          .option("username", { type: "string", describe: "new credentials: this login and a password" })
          .option("password-stdin", passwordOption),
      async (argv) => {
        if (argv["password-stdin"] && argv.username === undefined) {
          throw CliError.usage("give --username with the new password: the credentials are replaced together");
        }
        const client = api();
        const account = await resolveProviderAccount(client, argv.account);
        const credentials =
          argv.username === undefined
            ? undefined
            : await providerCredentialsFrom(argv.username, argv["password-stdin"], kindName(account.kind));
        const r = await client.service(ProviderAccountService).updateProviderAccount({ id: account.id, name: argv.name, credentials });
        show(r.providerAccount, globals(argv));
      },
    )
    .command(
      "delete <account>",
      "Delete a provider account (no server may name it)",
      (c) => c.positional("account", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const account = await resolveProviderAccount(client, argv.account);
        await client.service(ProviderAccountService).deleteProviderAccount({ id: account.id });
        if (isJson(argv)) return printJson({ deleted: { id: account.id, name: account.name } });
        process.stdout.write(`Provider account ${outside(account.name)} deleted\n`);
      },
    )
    .demandCommand(1, "name a providers command: list, get, create, update, delete"),
);
