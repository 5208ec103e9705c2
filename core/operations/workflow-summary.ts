import type { OperationKind } from "../kernel/kinds.js";
import { displaySafe } from "../kernel/text.js";

/** The longest server name a summary shows (a valid name has at most 63 characters). */
const maxNameLength = 63;

interface Target {
  kind: OperationKind;
  operationId: string;
  server: { id: string; name: string; host: string; sshPort: number };
  rolloutId?: string;
}

/** Outside text as the Web UI shows it: escaped, at most 63 characters. */
export const shownName = (text: string) => displaySafe(text.length > maxNameLength ? `${text.slice(0, maxNameLength)}…` : text);

/**
 * What the Temporal Web UI shows for an operation's workflow (its id names the server only by
 * UUID): the kind and the server's name, and the rollout that started it, e.g.
 * "bootstrap web-3 (rollout <id>)"; the details add where the server is and the operation's id.
 * Names and addresses are outside text: escaped and bounded.
 */
export function operationWorkflowMetadata(target: Target): { staticSummary: string; staticDetails: string } {
  const { kind, server } = target;
  const action = `${kind.replaceAll("_", " ")} ${shownName(server.name)}`;
  return {
    staticSummary: target.rolloutId ? `${action} (rollout ${target.rolloutId})` : action,
    staticDetails: `server ${shownName(server.name)} (${server.id}) at ${shownName(server.host)}:${server.sshPort}, operation ${target.operationId}`,
  };
}
