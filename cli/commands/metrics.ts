import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Argv } from "yargs";
import { counted } from "../../core/kernel/plural.js";
import { AgentService, ListMetricsResponseSchema, type MetricsSample } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import { api } from "../client.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { messageJson, outside, printJson, printTable, sparkline } from "../output.js";
import { resolveServer } from "../resolve.js";

/** 30s, 15m, 1h, 7d. */
export function parseSince(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text);
  if (!m) throw CliError.usage(`--since must look like 30s, 15m, 1h or 7d, not "${text.slice(0, 40)}"`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}

type Series = { name: string; unit: string; values: number[] };

function series(samples: MetricsSample[]): Series[] {
  const pct = (used: bigint, total: bigint) => (total > 0n ? (Number(used) / Number(total)) * 100 : 0);
  const out: Series[] = [
    { name: "cpu", unit: "%", values: samples.map((s) => s.metrics?.cpuPercent ?? 0) },
    { name: "memory", unit: "%", values: samples.map((s) => pct(s.metrics?.memoryUsedBytes ?? 0n, s.metrics?.memoryTotalBytes ?? 0n)) },
    { name: "load1", unit: "", values: samples.map((s) => s.metrics?.load1 ?? 0) },
  ];
  const mounts = [...new Set(samples.flatMap((s) => s.metrics?.disks.map((d) => d.mount) ?? []))].sort();
  for (const mount of mounts) {
    out.push({
      name: `disk ${mount}`,
      unit: "%",
      values: samples.map((s) => {
        const d = s.metrics?.disks.find((x) => x.mount === mount);
        return d ? pct(d.usedBytes, d.totalBytes) : 0;
      }),
    });
  }
  return out;
}

/** At most `width` points, each the mean of its bucket. */
function downsample(values: number[], width: number): number[] {
  if (values.length <= width) return values;
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    const bucket = values.slice(Math.floor((i * values.length) / width), Math.floor(((i + 1) * values.length) / width));
    out.push(bucket.reduce((a, b) => a + b, 0) / bucket.length);
  }
  return out;
}

const fmt = (v: number, unit: string) => `${v.toFixed(unit === "%" ? 1 : 2)}${unit ? ` ${unit}` : ""}`;

export function metricsCommand(y: Argv): Argv {
  return y.command(
    "metrics <server>",
    "The agent's metrics over a time window: a small table and a sparkline per metric",
    (c) =>
      c
        .positional("server", { type: "string", demandOption: true })
        .option("since", { type: "string", default: "1h", describe: "window up to now: 30s, 15m, 1h, 7d" })
        .option("limit", { type: "number", default: 1000, describe: "at most this many samples" }),
    async (argv) => {
      const client = api();
      const since = parseSince(argv.since);
      const server = await resolveServer(client, argv.server);
      const now = new Date();
      const r = await client.service(AgentService).listMetrics({
        id: server.id,
        startTime: timestampFromDate(new Date(now.getTime() - since)),
        endTime: timestampFromDate(now),
        limit: Math.max(1, Math.min(argv.limit, 10_000)),
      });
      const samples = [...r.samples].sort((a, b) =>
        a.sampleTime && b.sampleTime ? timestampDate(a.sampleTime).getTime() - timestampDate(b.sampleTime).getTime() : 0,
      );
      if (isJson(argv)) return printJson({ server_id: server.id, ...(messageJson(ListMetricsResponseSchema, r) as object) });
      if (samples.length === 0) {
        process.stdout.write(
          `No metrics from ${outside(server.name)} in the last ${argv.since} (is its agent installed? axion agents status ${outside(server.name)})\n`,
        );
        return;
      }
      process.stdout.write(`${outside(server.name)}: ${counted(samples.length, "sample")} in the last ${argv.since}\n`);
      printTable(
        ["METRIC", "LAST", "MIN", "MAX", "TREND"],
        series(samples).map((s) => [
          s.name,
          fmt(s.values.at(-1) ?? 0, s.unit),
          fmt(Math.min(...s.values), s.unit),
          fmt(Math.max(...s.values), s.unit),
          sparkline(downsample(s.values, 40)),
        ]),
      );
    },
  );
}
