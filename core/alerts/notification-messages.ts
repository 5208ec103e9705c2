import type { NotificationChannelKind } from "../kernel/kinds.js";
import { displaySafe } from "../kernel/text.js";

/** What an alert notice says, the same for every channel kind. */
export interface AlertNotice {
  /** The delivery id: the dedupe id, the same on every attempt. */
  id: string;
  event: "firing" | "resolved" | "test";
  alertId?: string;
  rule: string;
  summary: string;
  serverId?: string;
  serverName?: string;
  since?: string;
  firedAt?: string;
  resolvedAt?: string;
  details?: Record<string, unknown>;
}

const headline: Record<AlertNotice["event"], string> = {
  firing: ":rotating_light: FIRING",
  resolved: ":white_check_mark: RESOLVED",
  test: ":test_tube: TEST",
};

/**
 * Outside text (a host's words in a status reason, a server's name) as Slack mrkdwn shows it
 * literally: control and bidi characters escaped (core/kernel/text.ts), then &, < and > written as
 * entities, as Slack documents for text that must not become a mention (`<!channel>`, `<@U…>`)
 * or a link (`<https://…|click>`).
 */
export function slackText(text: string): string {
  return displaySafe(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Every string in a webhook notice with its control and bidi characters escaped; the rest as it is. */
function webhookSafe(value: unknown): unknown {
  if (typeof value === "string") return displaySafe(value);
  if (Array.isArray(value)) return value.map(webhookSafe);
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [displaySafe(k), webhookSafe(v)]));
  return value;
}

/** The JSON body a channel receives: the notice itself (webhook) or a Slack incoming-webhook message. */
export function messageFor(kind: NotificationChannelKind, notice: AlertNotice): Record<string, unknown> {
  if (kind === "webhook") return webhookSafe({ type: `alert.${notice.event}`, ...notice }) as Record<string, unknown>;
  const where = notice.serverName ? ` on ${slackText(notice.serverName)}` : "";
  // A flapping server's notice says so first: it is one notice for many ups and downs.
  const head = notice.rule === "server_flapping" && notice.event === "firing" ? ":repeat: FLAPPING" : headline[notice.event];
  const text = `${head} ${slackText(notice.rule)}${where}: ${slackText(notice.summary)}`;
  const context = [
    `dedupe id ${slackText(notice.id)}`,
    notice.since && `since ${slackText(notice.since)}`,
    notice.resolvedAt && `resolved ${slackText(notice.resolvedAt)}`,
  ]
    .filter(Boolean)
    .join(" · ");
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      { type: "context", elements: [{ type: "mrkdwn", text: context }] },
    ],
  };
}
