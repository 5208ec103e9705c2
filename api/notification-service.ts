import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type AlertDeliveryView, type AlertView, getAlert, listAlerts } from "../core/alerts/alert-history.js";
import { type AlertDefaults, type AlertRules, getAlertRules, updateAlertRules } from "../core/alerts/alert-rules.js";
import { sendToChannel } from "../core/alerts/notification-delivery.js";
import { messageFor } from "../core/alerts/notification-messages.js";
import {
  createNotificationChannel,
  deleteNotificationChannel,
  listNotificationChannels,
  type NotificationChannelView,
  type NotificationDeps,
  ownerChannelForSending,
} from "../core/alerts/notifications.js";
import { AppError } from "../core/kernel/errors.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import type { CredentialsCipher } from "../core/security/credentials-cipher.js";
import type { NetworkPolicy } from "../core/security/network-policy.js";
import { defaultNetworkPolicy } from "../core/security/network-policy.js";
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import {
  type Alert,
  type AlertDelivery,
  AlertDeliverySchema,
  type AlertRules as AlertRulesMessage,
  AlertRulesSchema,
  AlertSchema,
  AlertTransitionSchema,
  type NotificationChannel,
  NotificationChannelSchema,
  type NotificationService,
} from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { alertKindProto, alertStateProto, deliveryStatusProto, notificationChannelKindProto } from "./enum-mapping.js";
import { requireOwner } from "./owner.js";

export interface NotificationServiceDeps {
  db: Database;
  cipher: CredentialsCipher;
  networkPolicy?: NetworkPolicy;
  /** NOTIFICATION_CHANNELS_PER_OWNER, NOTIFICATION_TIMEOUT_MS, the rule defaults; the config defaults where absent. */
  notifications?: { maxChannelsPerOwner: number; timeoutMs: number; defaults: AlertDefaults };
}

/** Field by field: neither the URL's path nor the secret has a field to leak into. */
function channelMessage(row: NotificationChannelView): NotificationChannel {
  return create(NotificationChannelSchema, {
    id: row.id,
    name: row.name,
    kind: notificationChannelKindProto.toProto(row.kind),
    target: row.target,
    createTime: timestampFromDate(row.createdAt),
  });
}

function alertMessage(a: AlertView): Alert {
  return create(AlertSchema, {
    id: a.id,
    kind: alertKindProto.toProto(a.kind),
    state: alertStateProto.toProto(a.state),
    serverId: a.serverId ?? "",
    serverName: a.serverName ?? "",
    subject: a.subject,
    summary: a.summary,
    sinceTime: timestampFromDate(a.since),
    fireTime: a.firedAt ? timestampFromDate(a.firedAt) : undefined,
    endTime: a.endedAt ? timestampFromDate(a.endedAt) : undefined,
  });
}

function deliveryMessage(d: AlertDeliveryView): AlertDelivery {
  return create(AlertDeliverySchema, {
    channelId: d.channelId,
    channelName: d.channelName,
    channelKind: notificationChannelKindProto.toProto(d.channelKind),
    event: alertStateProto.toProto(d.event),
    status: deliveryStatusProto.toProto(d.status),
    attempts: d.attempts,
    lastError: d.lastError,
    createTime: timestampFromDate(d.createdAt),
    deliverTime: d.deliveredAt ? timestampFromDate(d.deliveredAt) : undefined,
  });
}

const rulesMessage = (rules: AlertRules): AlertRulesMessage => create(AlertRulesSchema, rules);

export function notificationService(deps: NotificationServiceDeps): ServiceImpl<typeof NotificationService> {
  const settings = deps.notifications ?? {
    maxChannelsPerOwner: 20,
    timeoutMs: 10_000,
    defaults: undefined as AlertDefaults | undefined,
  };
  const core: NotificationDeps = {
    db: deps.db,
    cipher: deps.cipher,
    networkPolicy: deps.networkPolicy ?? defaultNetworkPolicy(),
    maxChannelsPerOwner: settings.maxChannelsPerOwner,
  };
  return {
    async createNotificationChannel(req, ctx) {
      const channel = await createNotificationChannel(core, requireOwner(ctx), {
        name: req.name,
        kind: notificationChannelKindProto.fromProto(req.kind),
        url: req.url,
        secret: req.secret,
      });
      return { channel: channelMessage(channel) };
    },
    async listNotificationChannels(_req, ctx) {
      return { channels: (await listNotificationChannels(deps.db, requireOwner(ctx))).map(channelMessage) };
    },
    async testNotificationChannel(req, ctx) {
      const owner = requireOwner(ctx);
      const channel = await ownerChannelForSending(core, owner, req.id);
      const id = newId();
      const message = messageFor(channel.kind, {
        id,
        event: "test",
        rule: "test",
        summary: "a test message from Axion Infra: this channel receives alerts",
      });
      const outcome = await sendToChannel(core.networkPolicy, channel, id, message, settings.timeoutMs, owner.id);
      return { delivered: outcome.delivered, httpStatus: outcome.httpStatus, error: outcome.error ?? "" };
    },
    async deleteNotificationChannel(req, ctx) {
      await deleteNotificationChannel(deps.db, requireOwner(ctx), req.id);
      return {};
    },
    async listAlerts(req, ctx) {
      const page = parsePageRequest(req.pageSize, req.pageToken);
      const filter = {
        serverId: req.serverId || undefined,
        kind: alertKindProto.fromProto(req.kind),
        state: alertStateProto.fromProto(req.state),
      };
      if (req.kind !== 0 && !filter.kind) throw AppError.invalid("kind", "is not a known alert kind");
      if (req.state !== 0 && !filter.state) throw AppError.invalid("state", "is not a known alert state");
      const { items, nextPageToken } = await listAlerts(deps.db, requireOwner(ctx), filter, page);
      return { alerts: items.map(alertMessage), nextPageToken };
    },
    async getAlert(req, ctx) {
      const found = await getAlert(deps.db, requireOwner(ctx), req.id);
      return {
        alert: alertMessage(found.alert),
        history: found.history.map((h) =>
          create(AlertTransitionSchema, { state: alertStateProto.toProto(h.state), time: timestampFromDate(h.at) }),
        ),
        deliveries: found.deliveries.map(deliveryMessage),
      };
    },
    async getAlertRules(_req, ctx) {
      return { rules: rulesMessage(await getAlertRules(deps.db, requireOwner(ctx).id, settings.defaults)) };
    },
    async updateAlertRules(req, ctx) {
      const owner = requireOwner(ctx);
      if (!req.rules) throw AppError.invalid("rules", "are required");
      const { $typeName: _t, disk, memory, flapping, ...flags } = req.rules;
      if (!disk) throw AppError.invalid("rules.disk", "is required");
      if (!memory) throw AppError.invalid("rules.memory", "is required");
      const plain = (r: typeof disk) => ({
        enabled: r.enabled,
        thresholdPercent: r.thresholdPercent,
        sustainedSeconds: r.sustainedSeconds,
      });
      const flappingRule = flapping && {
        enabled: flapping.enabled,
        changes: flapping.changes,
        windowSeconds: flapping.windowSeconds,
        settleSeconds: flapping.settleSeconds,
      };
      return {
        rules: rulesMessage(
          await updateAlertRules(deps.db, owner.id, { ...flags, disk: plain(disk), memory: plain(memory), flapping: flappingRule }),
        ),
      };
    },
  };
}
