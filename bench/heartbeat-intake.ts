/**
 * CPU cost of the heartbeat intake per heartbeat, in-process (not a test):
 * the proto parser + normaliser alone (what the previous commit did) against
 * parser + validator + normaliser (core/agents/heartbeat-intake.ts), on the body the
 * load generator sends.
 *
 *   node --import tsx bench/heartbeat-intake.ts [--count 200000]
 */

import { parseArgs } from "node:util";
import { fromJsonString, toJson } from "@bufbuild/protobuf";
import { heartbeatRecord, parseHeartbeatJson } from "../core/agents/heartbeat-intake.js";
import { HeartbeatRequestSchema, MetricsSchema } from "../gen/axion/infrastructure/v1/agent_service_pb.js";

const { values } = parseArgs({ options: { count: { type: "string", default: "200000" } } });
const count = Number(values.count);
const body = JSON.stringify({
  serverId: "01937c2d-0f4e-7a55-8b1c-2d3e4f5a6b7c",
  sampleTime: new Date().toISOString(),
  metrics: {
    cpuPercent: 12.5,
    memoryUsedBytes: "1048576000",
    memoryTotalBytes: "8388608000",
    disks: [{ mount: "/", usedBytes: "5368709120", totalBytes: "42949672960" }],
    load1: 0.42,
    load5: 0.36,
    load15: 0.3,
    uptimeSeconds: "86400",
  },
});
const now = Date.now();
const variants: Record<string, () => unknown> = {
  "parse + normalise (before)": () => {
    const req = fromJsonString(HeartbeatRequestSchema, body);
    return toJson(MetricsSchema, req.metrics!);
  },
  "parse + validate + normalise (intake)": () => heartbeatRecord("01937c2d-0f4e-7a55-8b1c-2d3e4f5a6b7c", parseHeartbeatJson(body), now),
};
for (let round = 0; round < 2; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const start = process.cpuUsage();
    for (let i = 0; i < count; i++) run();
    const used = process.cpuUsage(start);
    if (round === 1) console.log(`${name.padEnd(40)} ${(((used.user + used.system) / count) * 1000).toFixed(0)} ns of CPU per heartbeat`);
  }
}
