import {
  type Alert,
  AlertKind,
  AlertState,
  NotificationChannelKind,
  NotificationDeliveryStatus,
  NotificationService,
} from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import type { Api } from "./client.js";
import { enumName } from "./output.js";
import { listAll } from "./resolve.js";

/** The enum names as the flags take them and the tables show them (server_unreachable, firing, webhook). */
const namesOf = (enumObject: Record<string, string | number>) =>
  Object.keys(enumObject)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
    .map((k) => k.toLowerCase());

const fromName = <E extends Record<string, string | number>>(enumObject: E, name: string) =>
  enumObject[name.toUpperCase() as keyof E] as E[keyof E];

export const alertKindNames = namesOf(AlertKind);
export const alertStateNames = namesOf(AlertState);
export const channelKindNames = namesOf(NotificationChannelKind);

export const alertKindName = (v: AlertKind) => enumName(AlertKind, v, "ALERT_KIND");
export const alertStateName = (v: AlertState) => enumName(AlertState, v, "ALERT_STATE");
export const channelKindName = (v: NotificationChannelKind) => enumName(NotificationChannelKind, v, "NOTIFICATION_CHANNEL_KIND");
export const deliveryStatusName = (v: NotificationDeliveryStatus) =>
  enumName(NotificationDeliveryStatus, v, "NOTIFICATION_DELIVERY_STATUS");

export const alertKindFromName = (name: string) => fromName(AlertKind, name);
export const alertStateFromName = (name: string) => fromName(AlertState, name);
export const channelKindFromName = (name: string) => fromName(NotificationChannelKind, name);

export const allAlerts = (api: Api, filter: { serverId?: string; kind?: AlertKind; state?: AlertState } = {}) =>
  listAll<Alert>(async (pageToken) => {
    const r = await api.service(NotificationService).listAlerts({ ...filter, pageSize: 500, pageToken });
    return { items: r.alerts, next: r.nextPageToken };
  });
