CREATE TABLE "alert_transitions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"alert_id" uuid NOT NULL,
	"state" text NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "alert_transitions" ADD CONSTRAINT "alert_transitions_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alert_transitions_alert_id_idx" ON "alert_transitions" USING btree ("alert_id");--> statement-breakpoint
CREATE INDEX "alerts_owner_id_id_idx" ON "alerts" USING btree ("owner_id","id");--> statement-breakpoint
CREATE INDEX "alerts_server_id_idx" ON "alerts" USING btree ("server_id");--> statement-breakpoint
-- The history of the alerts already kept, from their timestamps (status rules wait in pending first).
INSERT INTO "alert_transitions" ("id", "alert_id", "state", "at")
SELECT gen_random_uuid(), a.id, t.state, t.at FROM "alerts" a
CROSS JOIN LATERAL (VALUES
  ('pending', CASE WHEN a.rule IN ('server_offline', 'server_unreachable', 'hostkey_mismatch') THEN a.since END),
  ('firing', CASE WHEN a.state IN ('firing', 'resolved') THEN a.fired_at END),
  ('notified', CASE WHEN a.state = 'notified' THEN coalesce(a.fired_at, a.created_at) END),
  (a.state, CASE WHEN a.state IN ('resolved', 'dropped') THEN a.ended_at END)
) AS t(state, at)
WHERE t.at IS NOT NULL;

