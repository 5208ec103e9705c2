CREATE TABLE "metric_rollups" (
	"server_id" uuid NOT NULL,
	"resolution_seconds" integer NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"samples" integer NOT NULL,
	"avg" jsonb NOT NULL,
	"min" jsonb NOT NULL,
	"max" jsonb NOT NULL,
	CONSTRAINT "metric_rollups_server_id_resolution_seconds_bucket_pk" PRIMARY KEY("server_id","resolution_seconds","bucket")
);
--> statement-breakpoint
CREATE TABLE "metric_samples_raw" (
	"server_id" uuid NOT NULL,
	"sampled_at" timestamp with time zone NOT NULL,
	"cpu_percent" double precision NOT NULL,
	"memory_used_bytes" bigint NOT NULL,
	"memory_total_bytes" bigint NOT NULL,
	"load1" double precision NOT NULL,
	"load5" double precision NOT NULL,
	"load15" double precision NOT NULL,
	"uptime_seconds" bigint NOT NULL,
	"disks" text NOT NULL
);
--> statement-breakpoint
DROP INDEX "agents_last_heartbeat_at_idx";--> statement-breakpoint
ALTER TABLE "metric_rollups" ADD CONSTRAINT "metric_rollups_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "metric_rollups_resolution_bucket_idx" ON "metric_rollups" USING btree ("resolution_seconds","bucket");--> statement-breakpoint
CREATE INDEX "metric_samples_raw_server_id_sampled_at_idx" ON "metric_samples_raw" USING btree ("server_id","sampled_at");--> statement-breakpoint
CREATE INDEX "metric_samples_raw_sampled_at_brin" ON "metric_samples_raw" USING brin ("sampled_at");