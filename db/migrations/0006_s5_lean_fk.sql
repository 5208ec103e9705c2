-- Hand-written (drizzle-kit has no table storage parameters): room on each page, so the per-heartbeat update of an agent row stays HOT. Set before the type change, whose table rewrite then packs the pages to it.
ALTER TABLE "agents" SET (fillfactor = 70);--> statement-breakpoint
UPDATE "rollout_servers" SET "operation_id" = NULL WHERE "operation_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "operations" WHERE "operations"."id" = "rollout_servers"."operation_id");--> statement-breakpoint
ALTER TABLE "agents" ALTER COLUMN "latest_metrics" SET DATA TYPE text;--> statement-breakpoint
ALTER TABLE "rollout_servers" ADD CONSTRAINT "rollout_servers_operation_id_operations_id_fk" FOREIGN KEY ("operation_id") REFERENCES "public"."operations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rollout_servers_operation_id_idx" ON "rollout_servers" USING btree ("operation_id");