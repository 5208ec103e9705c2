import { badAnswer } from "./answer.js";

/** What the agent check answers: "ok" or what differs (activities/host-scripts.ts agentStateScript prints one of these). */
export const agentStates = ["ok", "not installed", "binary differs", "service not running", "api url differs"] as const;
export type AgentState = (typeof agentStates)[number];

export function agentStateOf(stdout: string): AgentState {
  const text = stdout.trim();
  const state = agentStates.find((s) => s === text);
  if (!state) throw badAnswer("agent state (sha256sum, systemctl)", "answered none of its known states", text);
  return state;
}
