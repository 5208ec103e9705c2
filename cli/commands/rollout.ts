import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Argv } from "yargs";
import { rolloutKindProto } from "../../api/enum-mapping.js";
import { counted } from "../../core/kernel/plural.js";
import { PlanOutcome, type RolloutKind, type ServerPlan } from "../../gen/axion/infrastructure/v1/plan_pb.js";
import {
  PlanRolloutResponseSchema,
  type Rollout,
  type RolloutAmount,
  RolloutAmountSchema,
  type RolloutBatch,
  RolloutSchema,
  RolloutService,
  RolloutStatus,
} from "../../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { type GlobalOptions, globals, isJson } from "../context.js";
import { CliError, Exit } from "../errors.js";
import { liveBlock } from "../live-block.js";
import { enumName, messageJson, outside, paint, printJson, printTable, statusText, tableFits, time } from "../output.js";
import { reconnecting } from "../reconnect.js";
import { allServers, listAll, pick, resolveCluster, resolveServer } from "../resolve.js";
import { renderRollout, rolloutEnded, rolloutKind, rolloutLog, rolloutStatus } from "../rollout-view.js";
import { parseSince } from "./metrics.js";

/** The rollout kinds as the command line spells them (deploy-key-add), with their proto values. */
const kinds = new Map(rolloutKindProto.names.map((name) => [name.replaceAll("_", "-"), rolloutKindProto.toProto(name)]));

/** 2 → a count, 25% → a percentage. */
function amount(text: string | undefined, flag: string): RolloutAmount | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(%?)$/.exec(text);
  if (!m) throw CliError.usage(`--${flag} must be a count (2) or a percentage (25%), not "${text.slice(0, 40)}"`);
  return create(RolloutAmountSchema, { value: { case: m[2] ? "percent" : "count", value: Number(m[1]) } });
}

type TargetArgs = {
  cluster?: string;
  selector?: string;
  servers?: string[];
  kind: string;
  canary?: number;
  batch?: string;
  "max-failures"?: string;
  "batch-pause"?: string;
  "pause-after-canary"?: boolean;
};

function targetOptions(c: Argv) {
  return c
    .positional("kind", { choices: [...kinds.keys()], demandOption: true, describe: "what to do on each server" })
    .option("cluster", { type: "string", describe: "the servers of this cluster (name or id)" })
    .option("selector", { alias: "l", type: "string", describe: "label selector: role=web,env!=dev" })
    .option("servers", { type: "string", array: true, describe: "these servers (names or ids)" })
    .option("canary", { type: "number", describe: "servers in the first batch (default 1; 0: no canary)" })
    .option("batch", { type: "string", describe: "servers per batch after the canary: 2 or 25% (default: the rest at once)" })
    .option("max-failures", { type: "string", describe: "stop after this many failed servers: 1 or 10% (default 1)" })
    .option("batch-pause", { type: "string", describe: "wait between batches, e.g. 30s" })
    .option("pause-after-canary", { type: "boolean", default: false, describe: "hold after the canary until axion rollout resume" });
}

async function request(client: Api, argv: TargetArgs) {
  if (!argv.cluster && !argv.selector && !argv.servers?.length)
    throw CliError.usage("name the targets: --cluster, --selector and/or --servers");
  const clusterId = argv.cluster ? (await resolveCluster(client, argv.cluster)).id : "";
  const serverIds = await Promise.all(
    (argv.servers ?? []).flatMap((s) => s.split(",")).map(async (s) => (await resolveServer(client, s)).id),
  );
  return {
    kind: kinds.get(argv.kind) as RolloutKind,
    target: { clusterId, selector: argv.selector ?? "", serverIds },
    strategy: {
      canarySize: argv.canary,
      batchSize: amount(argv.batch, "batch"),
      maxFailures: amount(argv["max-failures"], "max-failures"),
      batchPause: argv["batch-pause"]
        ? create(DurationSchema, { seconds: BigInt(Math.round(parseSince(argv["batch-pause"]) / 1000)) })
        : undefined,
      pauseAfterCanary: argv["pause-after-canary"] ?? false,
    },
  };
}

const allRollouts = (client: Api) =>
  listAll(async (pageToken) => {
    const r = await client.service(RolloutService).listRollouts({ pageSize: 500, pageToken });
    return { items: r.rollouts, next: r.nextPageToken };
  });

/** A rollout by full id or a unique id prefix: always as GetRollout answers it (a listed rollout leaves its servers out). */
async function resolveRollout(client: Api, handle: string): Promise<Rollout> {
  const get = async (id: string) => (await client.service(RolloutService).getRollout({ id })).rollout;
  try {
    const r = await get(handle);
    if (r) return r;
  } catch (error) {
    if (!(error instanceof ConnectError && (error.code === Code.NotFound || error.code === Code.InvalidArgument))) throw error;
  }
  const listed = pick(
    "rollout",
    handle,
    (await allRollouts(client)).map((r) => Object.assign(r, { name: r.id })),
  );
  const r = await get(listed.id);
  if (!r) throw CliError.failed("the API answered without a rollout");
  return r;
}

const outcome = (o: PlanOutcome) => enumName(PlanOutcome, o, "PLAN_OUTCOME").replace("would_change", "would change");

/** Follows a rollout until it ends: redrawn in place on a terminal, a line per change otherwise (rolloutLog); Ctrl-C stops watching only. */
async function watch(client: Api, id: string, json: boolean): Promise<Rollout> {
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once("SIGINT", onInterrupt);
  let latest: Rollout | undefined;
  const block = liveBlock();
  const log = rolloutLog();
  try {
    // An API restarting under the watch: a note on stderr, and the watch goes on where it was.
    const onRetry = (note: string) => process.stderr.write(`${note}\n`);
    const stream = reconnecting(() => client.service(RolloutService).watchRollout({ id }, { signal: abort.signal }), abort.signal, onRetry);
    for await (const m of stream) {
      if (!m.rollout) continue;
      latest = m.rollout;
      if (json) continue;
      if (!process.stdout.isTTY)
        process.stdout.write(
          log(latest)
            .map((l) => `${l}\n`)
            .join(""),
        );
      else if (rolloutEnded(latest)) block.end(renderRollout(latest));
      else block.draw(renderRollout(latest));
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    process.off("SIGINT", onInterrupt);
  }
  if (abort.signal.aborted)
    throw new CliError(
      `stopped watching; rollout ${id} keeps running. Pause or abort it with: axion rollout pause|abort ${id}`,
      Exit.interrupted,
    );
  if (!latest) throw CliError.failed(`rollout ${id}: the watch ended without a state`);
  return latest;
}

function finish(r: Rollout | undefined, argv: GlobalOptions, printed = false): void {
  if (!r) throw CliError.failed("the API answered without a rollout");
  if (argv.output === "json") printJson({ rollout: messageJson(RolloutSchema, r) });
  else if (!printed) process.stdout.write(`${renderRollout(r).join("\n")}\n`);
  if (r.status === RolloutStatus.FAILED || r.status === RolloutStatus.ABORTED) {
    throw CliError.failed(`rollout ${r.id} ${rolloutStatus(r)}${r.reason ? `: ${r.reason}` : ""}`);
  }
}

const idArg = { type: "string", demandOption: true, describe: "rollout id (or a unique prefix)" } as const;

export const rollout = commandBody((t) =>
  t
    .command(
      "plan <kind>",
      "The batches a rollout would run; with --checks, per server and step what would change (nothing changes)",
      (c) =>
        targetOptions(c).option("checks", {
          type: "boolean",
          default: true,
          describe: "connect to each server and read what would change",
        }),
      async (argv) => {
        const client = api();
        const req = await request(client, argv as TargetArgs);
        const r = await client
          .service(RolloutService)
          .planRollout({ ...req, checks: argv.checks })
          .catch(async (error) => {
            // An API without per-step checks still answers the batches.
            if (!(argv.checks && error instanceof ConnectError && error.code === Code.Unavailable && /checks/.test(error.rawMessage)))
              throw error;
            process.stderr.write(`note: ${outside(error.rawMessage)}; showing the batches only\n`);
            return client.service(RolloutService).planRollout({ ...req, checks: false });
          });
        if (isJson(argv)) return printJson(messageJson(PlanRolloutResponseSchema, r));
        const plans = r.batches.flatMap((b) => b.plans.map((p) => ({ batch: b, plan: p })));
        const steps = [...new Set(plans.flatMap(({ plan }) => plan.steps.map((s) => s.name)))];
        process.stdout.write(
          `${counted(r.total, "server")} in ${counted(r.batches.length, "batch")}; stops after ${r.maxFailures} failed\n`,
        );
        if (plans.length === 0) {
          const names = new Map((await allServers(client)).map((srv) => [srv.id, srv.name]));
          printTable(
            ["BATCH", "SERVERS"],
            r.batches.map((b) => [`${b.index + 1}${b.canary ? " (canary)" : ""}`, b.serverIds.map((id) => names.get(id) ?? id).join(", ")]),
          );
          return;
        }
        const reason = (plan: ServerPlan) => plan.reason || plan.steps.find((s) => s.outcome === PlanOutcome.CANNOT)?.detail || "";
        const head = (batch: RolloutBatch, plan: ServerPlan) => [
          plan.serverName,
          `${batch.index + 1}${batch.canary ? "*" : ""}`,
          statusText(outcome(plan.outcome)),
        ];
        const wide = {
          headers: ["SERVER", "BATCH", "PLAN", ...steps.map((s) => outside(s).toUpperCase()), "REASON"],
          rows: plans.map(({ batch, plan }) => [
            ...head(batch, plan),
            ...steps.map((name) => {
              const step = plan.steps.find((s) => s.name === name);
              return step ? statusText(outcome(step.outcome)) : "-";
            }),
            reason(plan),
          ]),
        };
        // A column per step is wider than a terminal for most kinds (configure has nine): there, the steps that would change.
        if (tableFits(wide.headers, wide.rows)) printTable(wide.headers, wide.rows);
        else
          printTable(
            ["SERVER", "BATCH", "PLAN", "WOULD CHANGE", "REASON"],
            plans.map(({ batch, plan }) => [
              ...head(batch, plan),
              plan.steps
                .filter((s) => s.outcome === PlanOutcome.WOULD_CHANGE)
                .map((s) => s.name)
                .join(",") || "-",
              reason(plan),
            ]),
          );
        if (plans.some(({ plan }) => plan.outcome === PlanOutcome.CANNOT))
          process.stderr.write(paint("yellow", "some servers cannot be rolled out (see REASON)\n", process.stderr));
      },
    )
    .command(
      "start <kind>",
      "Start a rollout",
      (c) => targetOptions(c).option("watch", { alias: "w", type: "boolean", default: false, describe: "follow it live until it ends" }),
      async (argv) => {
        const client = api();
        const r = (await client.service(RolloutService).startRollout(await request(client, argv as TargetArgs))).rollout;
        if (!r) throw CliError.failed("the API answered without a rollout");
        if (!argv.watch) {
          if (!isJson(argv)) process.stdout.write(`Rollout ${r.id} started; follow it with: axion rollout watch ${r.id}\n`);
          return finish(r, globals(argv), !isJson(argv));
        }
        finish(await watch(client, r.id, isJson(argv)), globals(argv), true);
      },
    )
    .command(
      "get <rollout>",
      "Show a rollout",
      (c) => c.positional("rollout", idArg),
      async (argv) => {
        const r = await resolveRollout(api(), argv.rollout);
        if (isJson(argv)) return printJson({ rollout: messageJson(RolloutSchema, r) });
        process.stdout.write(`${renderRollout(r).join("\n")}\n`);
      },
    )
    .command(
      "list",
      "List rollouts",
      (c) => c,
      async (argv) => {
        const rollouts = await allRollouts(api());
        if (isJson(argv)) return printJson({ rollouts: rollouts.map((r) => messageJson(RolloutSchema, r)) });
        printTable(
          ["ID", "KIND", "STATUS", "SERVERS", "FAILED", "STARTED", "REASON"],
          rollouts.map((r) => [
            r.id,
            rolloutKind(r),
            statusText(rolloutStatus(r)),
            String(r.counts?.total ?? 0),
            String(r.counts?.failed ?? 0),
            time(r.startTime),
            r.reason,
          ]),
        );
      },
    )
    .command(
      "watch <rollout>",
      "Follow a rollout live: a progress bar per batch and a line per server",
      (c) => c.positional("rollout", idArg),
      async (argv) => {
        const client = api();
        const r = await resolveRollout(client, argv.rollout);
        const json = isJson(argv);
        finish(rolloutEnded(r) ? r : await watch(client, r.id, json), globals(argv), !json && !rolloutEnded(r));
      },
    )
    .command(
      "pause <rollout>",
      "Hold a rollout after its running batch",
      (c) => c.positional("rollout", idArg),
      async (argv) => {
        const client = api();
        const r = await resolveRollout(client, argv.rollout);
        finish((await client.service(RolloutService).pauseRollout({ id: r.id })).rollout, globals(argv));
      },
    )
    .command(
      "resume <rollout>",
      "Continue a paused rollout",
      (c) => c.positional("rollout", idArg),
      async (argv) => {
        const client = api();
        const r = await resolveRollout(client, argv.rollout);
        finish((await client.service(RolloutService).resumeRollout({ id: r.id })).rollout, globals(argv));
      },
    )
    .command(
      "abort <rollout>",
      "Stop a rollout: running operations are cancelled, the rest is not touched",
      (c) => c.positional("rollout", idArg).option("reason", { type: "string", default: "aborted from the command line" }),
      async (argv) => {
        const client = api();
        const r = await resolveRollout(client, argv.rollout);
        const after = (await client.service(RolloutService).abortRollout({ id: r.id, reason: argv.reason })).rollout;
        if (isJson(argv)) return printJson({ rollout: after ? messageJson(RolloutSchema, after) : null });
        process.stdout.write(`Rollout ${r.id}: ${after ? rolloutStatus(after) : "?"}\n`);
      },
    )
    .demandCommand(1, "name a rollout command: plan, start, get, list, watch, pause, resume, abort"),
);
