import type { Connection } from "@temporalio/client";
import proto from "@temporalio/proto";
import { customSearchAttributes } from "./search-attributes.js";

const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
const typeOf: Record<string, number> = { KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD };

/**
 * Registers the custom search attributes on an external Temporal server (the dev
 * server gets them from temporal-dev.yml). Idempotent: only missing ones are added.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = customSearchAttributes.filter((a) => !(a.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((a) => [a.name, typeOf[a.type] ?? IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
}
