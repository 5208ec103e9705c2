import {
  type NotificationChannel,
  NotificationChannelSchema,
  NotificationService,
} from "../../gen/axion/infrastructure/v1/notification_service_pb.js";
import { channelKindFromName, channelKindName, channelKindNames } from "../alerts.js";
import { channelSecretsFrom } from "../channel-secrets.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { messageJson, outside, printFields, printJson, printTable, time } from "../output.js";
import { pick } from "../resolve.js";

const allChannels = async (client: Api) => (await client.service(NotificationService).listNotificationChannels({})).channels;

/** A channel by name, id or unique id prefix. */
const resolveChannel = async (client: Api, handle: string): Promise<NotificationChannel> =>
  pick("notification channel", handle, await allChannels(client));

const stdinOption = (what: string) => ({ type: "boolean", describe: `read the ${what} from stdin (else an echo-off prompt)` }) as const;

export const channels = commandBody((t) =>
  t
    .command(
      "list",
      "Your notification channels (the URL's path and the secret are never shown)",
      (c) => c,
      async (argv) => {
        const found = await allChannels(api());
        if (isJson(argv)) return printJson({ channels: found.map((ch) => messageJson(NotificationChannelSchema, ch)) });
        printTable(
          ["NAME", "KIND", "TARGET", "ID", "CREATED"],
          found.map((ch) => [ch.name, channelKindName(ch.kind), ch.target, ch.id, time(ch.createTime)]),
        );
      },
    )
    .command(
      "create <name>",
      "Add a webhook or Slack channel: every alert notice goes to it (URL and secret from stdin or a prompt, never arguments)",
      (c) =>
        c
          .positional("name", { type: "string", demandOption: true })
          .option("kind", { type: "string", choices: channelKindNames, default: "webhook", describe: "webhook (signed JSON) or slack" })
          .option("url-stdin", stdinOption("URL (first line)"))
          .option("secret-stdin", stdinOption("webhook's signing secret (the line after the URL, if both)")),
      async (argv) => {
        const kind = argv.kind as "webhook" | "slack";
        const { url, secret } = await channelSecretsFrom(argv.name, kind, argv);
        const r = await api()
          .service(NotificationService)
          .createNotificationChannel({ name: argv.name, kind: channelKindFromName(kind), url, secret });
        const ch = r.channel;
        if (!ch) return;
        if (isJson(argv)) return printJson({ channel: messageJson(NotificationChannelSchema, ch) });
        printFields([
          ["id", ch.id],
          ["name", ch.name],
          ["kind", channelKindName(ch.kind)],
          ["target", ch.target],
          ["created", time(ch.createTime)],
        ]);
      },
    )
    .command(
      "test <channel>",
      "Send a test message now and show the receiver's answer (exit 1 if not delivered)",
      (c) => c.positional("channel", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const ch = await resolveChannel(client, argv.channel);
        const r = await client.service(NotificationService).testNotificationChannel({ id: ch.id });
        if (isJson(argv)) printJson({ delivered: r.delivered, http_status: r.httpStatus, error: r.error });
        else if (r.delivered) process.stdout.write(`Channel ${outside(ch.name)}: delivered (HTTP ${r.httpStatus})\n`);
        if (!r.delivered) throw CliError.failed(`channel ${outside(ch.name)}: not delivered: ${outside(r.error)}`);
      },
    )
    .command(
      "delete <channel>",
      "Delete a channel (its notices go with it)",
      (c) => c.positional("channel", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const ch = await resolveChannel(client, argv.channel);
        await client.service(NotificationService).deleteNotificationChannel({ id: ch.id });
        if (isJson(argv)) return printJson({ deleted: { id: ch.id, name: ch.name } });
        process.stdout.write(`Channel ${outside(ch.name)} deleted\n`);
      },
    )
    .demandCommand(1, "name a channels command: list, create, test, delete"),
);
