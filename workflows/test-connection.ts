import type { ConnectionTestResult, OperationInput } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { probeActivities, recordActivities } from "./proxies.js";

/** TestServerConnection: one classified attempt. Only a host key mismatch changes the server's status (set by the SSH layer). */
export async function testConnectionWorkflow(input: OperationInput): Promise<ConnectionTestResult> {
  const progress = new ProgressTracker(input, "test_connection");
  return runOperation(
    input,
    progress,
    async () => {
      const result = await progress.step("connect", async () => {
        const r = await probeActivities.testConnection({ serverId: input.serverId });
        return { ...r, changed: false, detail: r.outcome };
      });
      const { changed: _c, detail: _d, ...answer } = result;
      if (answer.outcome === "unreachable" || answer.outcome === "timeout") {
        await recordActivities.setServerStatus({
          serverId: input.serverId,
          status: "UNREACHABLE",
          reason: `connection test: ${answer.message}`,
          actor: { by: "connection_test" },
        });
      }
      return answer;
    },
    { markServerOnFailure: false },
  );
}
