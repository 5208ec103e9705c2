import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, type DescMessage, type DescMethod, type MessageInitShape, toBinary, toJsonString } from "@bufbuild/protobuf";
import { count } from "drizzle-orm";
import { excerpt, hasUnsafeCharacters } from "../core/kernel/text.js";
import { clusters, operations, servers } from "../db/schema.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { RequirementsService } from "../gen/axion/infrastructure/v1/requirements_service_pb.js";
import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { type RawAnswer, type RawProtocol, sendRawRpc } from "./support/raw-rpc.js";

/**
 * Exact input: a typo is refused, not obeyed. Unknown enum names and numbers, unknown fields and
 * integers written as anything but plain decimal are InvalidArgument naming the field, in every
 * protocol and codec; the refusal quotes at most a short escaped excerpt of the value.
 */
const wireForms: { protocol: RawProtocol; json: boolean }[] = [
  { protocol: "connect", json: true },
  { protocol: "connect", json: false },
  { protocol: "grpc", json: true },
  { protocol: "grpc", json: false },
  { protocol: "grpc-web", json: true },
  { protocol: "grpc-web", json: false },
];
const formName = (f: { protocol: RawProtocol; json: boolean }) => `${f.protocol}+${f.json ? "json" : "proto"}`;

/** An unknown field number 99 (a varint, 3) appended to a binary message: how a field this server does not know arrives. */
const withUnknownField = (bytes: Uint8Array) => Buffer.concat([bytes, Buffer.from([0x98, 0x06, 0x03])]);

let api: TestApi;
let token: string;
let clusterId: string;
let serverId: string;

before(async () => {
  api = await startTestApi();
  const owner = await api.newOwner();
  token = owner.token;
  const clients = api.clients(token);
  clusterId = (await clients.clusters.createCluster({ name: "exact" })).cluster!.id;
  serverId = (
    await clients.servers.createServer({
      clusterId,
      name: "exact-1",
      host: "10.66.0.1",
      credential: { method: { case: "password", value: "secret" } },
    })
  ).server!.id;
});
after(async () => {
  await api?.close();
});

const rows = async () => {
  const db = api.database.db;
  const [c] = await db.select({ n: count() }).from(clusters);
  const [s] = await db.select({ n: count() }).from(servers);
  const [o] = await db.select({ n: count() }).from(operations);
  return { clusters: c?.n, servers: s?.n, operations: o?.n };
};

/** Expects InvalidArgument naming `field` first, a short message without unsafe characters, and nothing written. */
async function refused(answer: Promise<RawAnswer>, field: string, what: string): Promise<RawAnswer> {
  const before = await rows();
  const a = await answer;
  assert.equal(a.code, "InvalidArgument", `${what}: ${a.code} ${a.message}`);
  assert.ok(a.message.startsWith(`${field}:`), `${what}: the message names ${field}: ${a.message}`);
  assert.ok(a.message.length <= 300, `${what}: a short message (${a.message.length} characters)`);
  assert.ok(!hasUnsafeCharacters(a.message), `${what}: no unsafe character in ${JSON.stringify(a.message)}`);
  assert.deepEqual(await rows(), before, `${what}: nothing written`);
  return a;
}

const send = (method: DescMethod, body: Buffer | string, form: { protocol: RawProtocol; json: boolean }) =>
  sendRawRpc(api.baseUrl, token, method, body, form);

/** A request in the form's codec: JSON text as written, or the message's protobuf bytes. */
function body<D extends DescMessage>(desc: D, json: string, binary: MessageInitShape<D>, form: { json: boolean }): Buffer | string {
  return form.json ? json : Buffer.from(toBinary(desc, create(desc, binary)));
}

describe("typos are refused in every protocol", () => {
  for (const form of wireForms) {
    test(`${formName(form)}: a misspelt or undeclared enum value is InvalidArgument naming the field`, async () => {
      const setup = ServerService.method.setupDeployKey;
      await refused(
        send(
          setup,
          body(setup.input, `{"id":"${serverId}","action":"DEPLOY_KEY_ACTION_REMVOE"}`, { id: serverId, action: 99 as never }, form),
          form,
        ),
        "action",
        "SetupDeployKey action",
      );
      const list = ServerService.method.listServers;
      const a = await refused(
        send(list, body(list.input, '{"statuses":["SERVER_STATUS_OFLINE"]}', { statuses: [42 as never] }, form), form),
        "statuses[0]",
        "ListServers statuses",
      );
      assert.match(a.message, /SERVER_STATUS_OFFLINE/, "the refusal lists the values there are");
      await refused(
        send(list, body(list.input, '{"statuses":["SERVER_STATUS_UNSPECIFIED"]}', { statuses: [0] }, form), form),
        "statuses[0]",
        "UNSPECIFIED in a list",
      );
      const start = RolloutService.method.startRollout;
      await refused(
        send(
          start,
          body(
            start.input,
            `{"kind":"ROLLOUT_KIND_CONFIGURE","target":{"selector":"role=web"},"strategy":{"busyPolicy":"BUSY_SERVER_POLICY_WAITT"}}`,
            { kind: 1, target: { selector: "role=web" }, strategy: { busyPolicy: 7 as never } },
            form,
          ),
          form,
        ),
        "strategy.busy_policy",
        "StartRollout busy policy",
      );
    });

    test(`${formName(form)}: an unknown field is InvalidArgument naming it, at the top and nested`, async () => {
      const createCluster = ClusterService.method.createCluster;
      const top = form.json
        ? '{"name":"typo-1","descriptoin":"x"}'
        : withUnknownField(toBinary(createCluster.input, create(createCluster.input, { name: "typo-1" })));
      await refused(send(createCluster, top, form), form.json ? "descriptoin" : "99", "unknown top-level field");
      const start = RolloutService.method.startRollout;
      if (form.json) {
        await refused(
          send(start, '{"kind":"ROLLOUT_KIND_CONFIGURE","target":{"selector":"role=web"},"strategy":{"canarySise":1}}', form),
          "strategy.canarySise",
          "unknown nested field",
        );
      } else {
        const strategy = withUnknownField(new Uint8Array());
        const outer = Buffer.concat([
          Buffer.from(toBinary(start.input, create(start.input, { kind: 1, target: { selector: "role=web" } }))),
          Buffer.from([(3 << 3) | 2, strategy.length]),
          strategy,
        ]);
        const fieldNumber = start.input.fields.find((f) => f.name === "strategy")?.number;
        assert.equal(fieldNumber, 3, "strategy is field 3 of StartRolloutRequest");
        await refused(send(start, outer, form), "strategy.99", "unknown nested field");
      }
    });
  }
});

describe("numbers are plain decimal integers", () => {
  const createServer = ServerService.method.createServer;
  let hosts = 0;
  const serverJson = (port: string, name: string) =>
    `{"clusterId":"${clusterId}","name":"${name}","host":"10.66.1.${++hosts}","sshPort":${port},"credential":{"password":"secret"}}`;
  for (const port of ['"0x16"', '"1e1"', '"22.0"', "22.0", "1e1", '" 22"', '"+22"', '"022"', "-22", "65536", '""']) {
    test(`ssh_port ${port} is InvalidArgument naming ssh_port, over Connect and gRPC`, async () => {
      for (const form of wireForms.filter((f) => f.json)) {
        await refused(
          send(createServer, serverJson(port, `p-${form.protocol}`), form),
          "ssh_port",
          `ssh_port ${port} over ${formName(form)}`,
        );
      }
    });
  }

  test('ssh_port as 2222 or "2222" is stored as 2222', async () => {
    for (const [port, name] of [
      ["2222", "plain-number"],
      ['"2222"', "plain-string"],
    ] as const) {
      const a = await send(createServer, serverJson(port, name), wireForms[0]!);
      assert.equal(a.code, "ok", `${port}: ${a.message}`);
    }
    const stored = await api.clients(token).servers.listServers({});
    assert.deepEqual(
      stored.servers.filter((s) => s.name.startsWith("plain-")).map((s) => s.sshPort),
      [2222, 2222],
    );
  });

  test("ssh_port 0 is refused on create as on update; absent means 22", async () => {
    const form = wireForms[0]!;
    await refused(send(createServer, serverJson("0", "zero-port"), form), "ssh_port", "ssh_port 0 on create");
    const update = ServerService.method.updateServer;
    await refused(send(update, `{"id":"${serverId}","sshPort":0}`, form), "ssh_port", "ssh_port 0 on update");
    const a = await send(
      createServer,
      `{"clusterId":"${clusterId}","name":"default-port","host":"10.66.2.1","credential":{"password":"secret"}}`,
      form,
    );
    assert.equal(a.code, "ok", a.message);
    const stored = (await api.clients(token).servers.listServers({})).servers.find((s) => s.name === "default-port");
    assert.equal(stored?.sshPort, 22);
  });
});

describe("a refusal quotes little of the input, escaped, and names the field", () => {
  const requirements = RequirementsService.method.calculateSystemRequirements;
  test("a 900 KB value in cpuMillis is answered in a few hundred bytes naming the field, in every protocol", async () => {
    const huge = "9".repeat(900_000);
    for (const form of wireForms.filter((f) => f.json)) {
      const a = await refused(
        send(requirements, `{"services":[{"name":"web","requests":{"cpuMillis":"${huge}"}}]}`, form),
        "services[0].requests.cpu_millis",
        `900 KB over ${formName(form)}`,
      );
      assert.ok(a.size < 1024, `${formName(form)}: answered in ${a.size} bytes`);
    }
  });

  test("control characters, ESC [2J, C1, U+202E and lone surrogates in a refused value come back escaped", async () => {
    const hostile = ["\u0000", "\u001b[2J", "\u009b31m", "\u202e", "\ud800"];
    for (const value of hostile) {
      const text = JSON.stringify(`web${value}`);
      for (const form of wireForms.filter((f) => f.json)) {
        await refused(
          send(requirements, `{"services":[{"name":"web","requests":{"cpuMillis":${text}}}]}`, form),
          "services[0].requests.cpu_millis",
          `${JSON.stringify(value)} in an integer over ${formName(form)}`,
        );
        await refused(send(ServerService.method.listServers, `{"statuses":[${text}]}`, form), "statuses[0]", "in an enum");
        await refused(send(ClusterService.method.createCluster, `{"name":"x",${text}:1}`, form), excerpt(`web${value}`), "in a key");
      }
    }
  });

  test("a malformed Timestamp or Duration names its field", async () => {
    const createToken = TokenService.method.createToken;
    for (const form of wireForms.filter((f) => f.json)) {
      await refused(send(createToken, '{"label":"t","expireTime":"tomorrow\\u001b[2J"}', form), "expire_time", "a Timestamp");
      await refused(
        send(RolloutService.method.startRollout, '{"kind":"ROLLOUT_KIND_CONFIGURE","strategy":{"batchPause":"10 minutes"}}', form),
        "strategy.batch_pause",
        "a Duration",
      );
    }
  });

  test("invalid UTF-8 in a binary string names the field", async () => {
    const createCluster = ClusterService.method.createCluster;
    const good = Buffer.from(toBinary(createCluster.input, create(createCluster.input, { name: "utf8-x", description: "ab" })));
    // The description's two bytes "ab" become 0xC3 0x28, not UTF-8.
    const bad = Buffer.from(good);
    bad.set([0xc3, 0x28], bad.length - 2);
    for (const form of wireForms.filter((f) => !f.json)) await refused(send(createCluster, bad, form), "description", "invalid UTF-8");
  });

  test("a JSON body that is not JSON at all is InvalidArgument on the request, echoing nothing", async () => {
    for (const form of wireForms.filter((f) => f.json)) {
      await refused(send(ClusterService.method.createCluster, '{"name": "\u001b[2J', form), "request", "not JSON");
    }
  });
});

test("the requests a correct client sends still pass in every protocol", async () => {
  const list = ServerService.method.listServers;
  for (const form of wireForms) {
    const request = create(list.input, { statuses: [3, 4], pageSize: 10 });
    const a = await send(list, form.json ? toJsonString(list.input, request) : Buffer.from(toBinary(list.input, request)), form);
    assert.equal(a.code, "ok", `${formName(form)}: ${a.message}`);
  }
});
