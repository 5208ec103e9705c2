-- Hand-written (drizzle-kit has no table storage parameters): room on each page, so the per-heartbeat update of an agent row stays HOT. Set before the type change, whose table rewrite then packs the pages to it.
ALTER TABLE "agents" SET (fillfactor = 70);--> statement-breakpoint
ALTER TABLE "agents" ALTER COLUMN "latest_metrics" SET DATA TYPE text;
