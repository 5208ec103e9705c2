import { badAnswer, oneLine } from "./answer.js";

/** `uname -m`: a machine name (x86_64, aarch64, riscv64, …), at most 32 characters. */
export const machineOf = (raw: Buffer): string => oneLine("uname -m", raw, 32, /^[a-z0-9_]+$/, "a machine name");

/** The agent build for each machine name a kernel reports: the only way a host's answer selects a local file. */
const agentBuilds = new Map<string, "amd64" | "arm64">([
  ["x86_64", "amd64"],
  ["amd64", "amd64"],
  ["aarch64", "arm64"],
  ["arm64", "arm64"],
]);

/** The agent build for the host's `uname -m`; any other answer is an error naming the fact. */
export function agentArchOf(raw: Buffer): "amd64" | "arm64" {
  const machine = raw.toString("utf8").replace(/\n$/, "");
  const arch = agentBuilds.get(machine);
  if (!arch) throw badAnswer("uname -m", "no agent is built for this architecture", machine);
  return arch;
}
