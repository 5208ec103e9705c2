import { AlertSchema, GetAlertResponseSchema, NotificationService } from "../../gen/axion/infrastructure/v1/notification_service_pb.js";
import {
  alertKindFromName,
  alertKindName,
  alertKindNames,
  alertStateFromName,
  alertStateName,
  alertStateNames,
  allAlerts,
  channelKindName,
  deliveryStatusName,
} from "../alerts.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { messageJson, printFields, printJson, printTable, statusText, time } from "../output.js";
import { pick, resolveServer } from "../resolve.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const alerts = commandBody((t) =>
  t
    .command(
      "list",
      "Your alerts, newest first: pending, firing, resolved, dropped within the grace period, one-shot notices",
      (c) =>
        c
          .option("server", { type: "string", describe: "only alerts about this server (name or id)" })
          .option("kind", { type: "string", choices: alertKindNames, describe: "only alerts of this kind" })
          .option("state", { type: "string", choices: alertStateNames, describe: "only alerts in this state" }),
      async (argv) => {
        const client = api();
        const serverId = argv.server === undefined ? undefined : (await resolveServer(client, argv.server)).id;
        const found = await allAlerts(client, {
          serverId,
          kind: argv.kind === undefined ? undefined : alertKindFromName(argv.kind),
          state: argv.state === undefined ? undefined : alertStateFromName(argv.state),
        });
        if (isJson(argv)) return printJson({ alerts: found.map((a) => messageJson(AlertSchema, a)) });
        printTable(
          ["ID", "KIND", "STATE", "SERVER", "SINCE", "SUMMARY"],
          found.map((a) => [
            a.id,
            alertKindName(a.kind),
            statusText(alertStateName(a.state)),
            a.serverName || "-",
            time(a.sinceTime),
            a.summary,
          ]),
        );
      },
    )
    .command(
      "get <alert>",
      "An alert with each state it entered and its notices per channel (id or a unique id prefix)",
      (c) => c.positional("alert", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const id = uuid.test(argv.alert)
          ? argv.alert
          : pick(
              "alert",
              argv.alert,
              (await allAlerts(client)).map((a) => ({ id: a.id, name: a.id })),
            ).id;
        const r = await client.service(NotificationService).getAlert({ id });
        if (isJson(argv)) return printJson(messageJson(GetAlertResponseSchema, r));
        const a = r.alert;
        if (!a) return;
        printFields([
          ["id", a.id],
          ["kind", alertKindName(a.kind)],
          ["state", statusText(alertStateName(a.state))],
          ["server", a.serverName || "-"],
          ["subject", a.subject],
          ["summary", a.summary],
          ["since", time(a.sinceTime)],
          ["fired", time(a.fireTime)],
          ["ended", time(a.endTime)],
        ]);
        process.stdout.write("\nHistory\n");
        printTable(
          ["STATE", "AT"],
          r.history.map((h) => [statusText(alertStateName(h.state)), time(h.time)]),
        );
        process.stdout.write("\nNotices\n");
        printTable(
          ["CHANNEL", "KIND", "NOTICE", "STATUS", "ATTEMPTS", "DELIVERED", "LAST ERROR"],
          r.deliveries.map((d) => [
            d.channelName,
            channelKindName(d.channelKind),
            alertStateName(d.event),
            statusText(deliveryStatusName(d.status)),
            String(d.attempts),
            time(d.deliverTime),
            d.lastError || "-",
          ]),
          "(none: no channel was told)",
        );
      },
    )
    .demandCommand(1, "name an alerts command: list, get"),
);
