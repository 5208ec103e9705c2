// test lane: fast
import assert from "node:assert/strict";
import { test } from "node:test";
import { createConnectRouter } from "@connectrpc/connect";
import { permissionOf, permissionTables } from "../api/permissions.js";
import { type RoutedApiDeps, routes } from "../api/routes.js";

test("every routed RPC has a declared permission, and the tables name exactly the routed services", () => {
  const router = createConnectRouter();
  routes({} as RoutedApiDeps, {} as Parameters<typeof routes>[1], 1024)(router);
  const routed = router.handlers.map((h) => h.method).filter((m) => m.parent.typeName.startsWith("axion."));
  assert.ok(routed.length > 40, `routed ${routed.length}`);
  const undeclared = routed.filter((m) => !permissionOf(m)).map((m) => `${m.parent.typeName}/${m.name}`);
  assert.deepEqual(undeclared, []);
  const declaredServices = permissionTables.map(([service]) => service.typeName).sort();
  const routedServices = [...new Set(routed.map((m) => m.parent.typeName))].sort();
  assert.deepEqual(declaredServices, routedServices);
});

test("only agents' own calls are declared as agent calls; reads change nothing", () => {
  for (const [, table] of permissionTables) {
    for (const [method, permission] of table) {
      if (permission.role === "agent") assert.ok(["Register", "Heartbeat"].includes(method.name), method.name);
      if (/^(Get|List|Watch)/.test(method.name)) assert.equal(permission.changes, false, method.name);
    }
  }
});
