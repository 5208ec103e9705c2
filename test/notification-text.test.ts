import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { startAlerting } from "../core/alerts/alerting.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { NotificationChannelKind, NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

/**
 * A host's words reach a chat room as words: a status reason holding `<!channel>`, a user mention,
 * a disguised link, `&` and terminal escapes is delivered to a real HTTP receiver as Slack text
 * that mentions nobody and links nowhere, with no raw control character; the webhook notice too
 * carries no raw control character.
 */
const loopbackAllowed = createNetworkPolicy({ allow: [parseCidr("127.0.0.1/32")!, parseCidr("203.0.113.0/24")!] });
const hostile =
  "ssh: <!channel> <!here> <@U024BE7LH> <https://evil.example/login|click to fix> R&D \u001b[2J\u001b]52;c;aGk=\u0007 \u202etxt";

let api: TestApi;
let receiver: WebhookReceiver;

before(async () => {
  receiver = await startWebhookReceiver();
  api = await startTestApi({
    networkPolicy: loopbackAllowed,
    notifications: { maxChannelsPerOwner: 3, timeoutMs: 2000, defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 } },
  });
});
after(async () => {
  await api?.close();
  await receiver?.close();
});

test("a status reason with Slack control sequences and escapes is delivered as plain text", async () => {
  const owner = await api.newOwner();
  const clients = api.clients(owner.token);
  const clusterId = (await clients.clusters.createCluster({ name: "chat-c" })).cluster!.id;
  const server = (
    await clients.servers.createServer({
      clusterId,
      name: "web-1",
      host: "203.0.113.10",
      credential: { method: { case: "password", value: "not-used-here" } },
    })
  ).server!;
  const notifications = createClient(
    NotificationService,
    createConnectTransport({
      baseUrl: api.baseUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${owner.token}`);
          return next(req);
        },
      ],
    }),
  );
  await notifications.createNotificationChannel({ name: "chat", kind: NotificationChannelKind.SLACK, url: `${receiver.url}/slack` });
  await notifications.createNotificationChannel({
    name: "hook",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/hook`,
    secret: "whsec-Zq8vN3pL6tR1xY9w",
  });
  const alerting = startAlerting({
    db: api.database.db,
    cipher: createCredentialsCipher(testCredentialsKey),
    networkPolicy: loopbackAllowed,
    graceSeconds: 0,
    defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
    resourceIntervalSeconds: 3600,
    timeoutMs: 2000,
    retryInitialMs: 200,
    retryMaxMs: 5000,
    maxAttempts: 10,
    loop: false,
  });
  try {
    const from = receiver.received.length;
    await setServerStatus(api.database.db, server.id, "UNREACHABLE", hostile, { by: "fleet_check" });
    await alerting.runOnce();
    await alerting.runOnce();
    const received = (await receiver.waitFor(from + 2, 10_000)).slice(from);

    const slack = JSON.parse(received.find((r) => r.path === "/slack")!.body) as {
      text: string;
      blocks: { text?: { text: string }; elements?: { text: string }[] }[];
    };
    const texts = [slack.text, slack.blocks[0]?.text?.text ?? "", ...(slack.blocks[1]?.elements ?? []).map((e) => e.text)];
    for (const text of texts) {
      assert.ok(!/<[!@#]|<https?:/.test(text), `no mention, channel ping or link: ${text}`);
      assert.ok(!hasUnsafeCharacters(text), `no raw control character: ${JSON.stringify(text)}`);
    }
    assert.match(
      slack.text,
      /&lt;!channel&gt; &lt;!here&gt; &lt;@U024BE7LH&gt; &lt;https:\/\/evil\.example\/login\|click to fix&gt; R&amp;D/,
    );
    assert.match(slack.text, /\\u001b\[2J/, "the escape is shown as text");

    const hook = JSON.parse(received.find((r) => r.path === "/hook")!.body) as { summary: string; details: Record<string, unknown> };
    assert.ok(!hasUnsafeCharacters(JSON.stringify(hook)), "no raw control character anywhere in the webhook notice");
    assert.ok(!hasUnsafeCharacters(hook.summary), `the summary as a receiver reads it: ${JSON.stringify(hook.summary)}`);
    assert.match(hook.summary, /<!channel>/, "a webhook is JSON for programs: its text is not Slack-escaped");
  } finally {
    await alerting.stop();
  }
});
