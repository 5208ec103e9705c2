import { create, type DescField } from "@bufbuild/protobuf";
import {
  type AlertRules,
  AlertRulesSchema,
  NotificationService,
  type ResourceRule,
  ResourceRuleSchema,
} from "../../gen/axion/infrastructure/v1/notification_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { messageJson, printJson, printTable } from "../output.js";

/** The rules as the message declares them: a rule added to AlertRules shows here without a change. */
const ruleFields = AlertRulesSchema.fields;
const ruleNames = ruleFields.map((f) => f.name);

type Rules = Record<string, boolean | ResourceRule | { enabled?: boolean } | undefined>;
const ruleValue = (rules: AlertRules, field: DescField) => (rules as unknown as Rules)[field.localName];
const isResourceRule = (field: DescField) => field.fieldKind === "message" && field.message.typeName === ResourceRuleSchema.typeName;

function rows(rules: AlertRules): string[][] {
  return ruleFields.map((f) => {
    const v = ruleValue(rules, f);
    if (typeof v === "boolean") return [f.name, v ? "on" : "off", "-", "-"];
    if (!isResourceRule(f)) return [f.name, (v as { enabled?: boolean } | undefined)?.enabled ? "on" : "off", "-", "-"];
    const r = (v as ResourceRule | undefined) ?? create(ResourceRuleSchema);
    return [f.name, r.enabled ? "on" : "off", `${r.thresholdPercent}%`, `${r.sustainedSeconds}s`];
  });
}

function show(rules: AlertRules | undefined, argv: object) {
  if (!rules) return;
  if (isJson(argv)) return printJson({ rules: messageJson(AlertRulesSchema, rules) });
  printTable(["RULE", "ENABLED", "THRESHOLD", "SUSTAINED"], rows(rules));
}

export const alertRules = commandBody((t) =>
  t
    .command(
      "list",
      "Your alert rules (the service's defaults until you set one)",
      (c) => c,
      async (argv) => show((await api().service(NotificationService).getAlertRules({})).rules, argv),
    )
    .command(
      "set <rule>",
      "Change one rule: turn it on or off; for disk and memory also the threshold and how long it must hold",
      (c) =>
        c
          .positional("rule", { type: "string", choices: ruleNames, demandOption: true })
          .option("enabled", { type: "boolean", describe: "on (--enabled) or off (--no-enabled)" })
          .option("threshold", { type: "number", describe: "percent above which usage alerts (disk, memory)" })
          .option("sustained", { type: "number", describe: "seconds every sample must be above the threshold (disk, memory)" }),
      async (argv) => {
        const field = ruleFields.find((f) => f.name === argv.rule) as DescField;
        if (argv.enabled === undefined && argv.threshold === undefined && argv.sustained === undefined) {
          throw CliError.usage("give --enabled, --no-enabled, --threshold or --sustained");
        }
        const client = api().service(NotificationService);
        const rules = (await client.getAlertRules({})).rules ?? create(AlertRulesSchema);
        const current = ruleValue(rules, field);
        const target = rules as unknown as Rules;
        if (!isResourceRule(field)) {
          if (argv.threshold !== undefined || argv.sustained !== undefined) {
            throw CliError.usage(`${argv.rule} has no threshold: only --enabled or --no-enabled`);
          }
          target[field.localName] =
            field.fieldKind === "scalar"
              ? argv.enabled
              : { ...(current as object), enabled: argv.enabled ?? (current as { enabled?: boolean })?.enabled };
        } else {
          const r = (current as ResourceRule | undefined) ?? create(ResourceRuleSchema);
          target[field.localName] = {
            ...r,
            enabled: argv.enabled ?? r.enabled,
            thresholdPercent: argv.threshold ?? r.thresholdPercent,
            sustainedSeconds: argv.sustained ?? r.sustainedSeconds,
          };
        }
        show((await client.updateAlertRules({ rules })).rules, argv);
      },
    )
    .demandCommand(1, "name an alert-rules command: list, set"),
);
