import type { NotificationChannelKind } from "./kinds.js";

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

/** The JSON body a channel receives: the notice itself (webhook) or a Slack incoming-webhook message. */
export function messageFor(kind: NotificationChannelKind, notice: AlertNotice): Record<string, unknown> {
  if (kind === "webhook") return { type: `alert.${notice.event}`, ...notice };
  const where = notice.serverName ? ` on ${notice.serverName}` : "";
  const text = `${headline[notice.event]} ${notice.rule}${where}: ${notice.summary}`;
  const context = [`dedupe id ${notice.id}`, notice.since && `since ${notice.since}`, notice.resolvedAt && `resolved ${notice.resolvedAt}`]
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
