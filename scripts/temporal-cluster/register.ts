/**
 * up.sh's last step: waits for the real Temporal server's frontend, registers the namespace
 * (a test bed's job: in production the namespace is given), adds our custom search attributes
 * (temporal/ensure-search-attributes.ts, the code the API runs against an external server) and
 * returns once a visibility query on them answers in that namespace.
 *   node --import tsx scripts/temporal-cluster/register.ts ADDRESS NAMESPACE SERVER_PID
 */
import { Connection } from "@temporalio/client";
import { msToTs } from "@temporalio/common/lib/time.js";
import proto from "@temporalio/proto";
import { ensureSearchAttributes } from "../../temporal/ensure-search-attributes.js";
import { workflowRoleAttribute } from "../../temporal/search-attributes.js";

const [address, namespace, pidText] = process.argv.slice(2);
if (!address || !namespace || !pidText) throw new Error("usage: register.ts ADDRESS NAMESPACE SERVER_PID");
const pid = Number(pidText);
const deadline = Date.now() + 120_000;

const alive = () => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Retries `step` until it resolves; fails at once when the server process is gone, or at the deadline. */
async function until<T>(what: string, step: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (!alive()) throw new Error(`the Temporal server (pid ${pid}) exited while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`the Temporal server at ${address}: no ${what} within 120 s`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const isAlreadyExists = (error: unknown) => (error as { code?: number }).code === 6;

const connection = await until("frontend", () => Connection.connect({ address, connectTimeout: 1000 }));
try {
  await until("namespace registration", async () => {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs("3 days"),
        description: "Axion Infra (registered by scripts/temporal-cluster/up.sh)",
      });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  });
  await until("search attributes", () => ensureSearchAttributes(connection, namespace));
  // Answered only once the frontend knows the namespace and the attribute (its caches refresh on their own).
  await until("visibility query on our search attributes", () =>
    connection.workflowService.listWorkflowExecutions({ namespace, query: `${workflowRoleAttribute.name} = "operation"`, pageSize: 1 }),
  );
  const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace });
  if (namespaceInfo?.state !== proto.temporal.api.enums.v1.NamespaceState.NAMESPACE_STATE_REGISTERED)
    throw new Error(`namespace ${namespace} is not in the registered state`);
} finally {
  await connection.close();
}
