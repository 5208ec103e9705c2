ALTER TABLE "operations" ADD COLUMN "result" jsonb;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "provider" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "provider_server_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "operations_one_running_per_server_key" ON "operations" USING btree ("server_id") WHERE "operations"."status" = 'RUNNING' and "operations"."kind" <> 'test_connection';