-- Tokens made before roles existed (the AXION_ADMIN_TOKEN one included) become admin with no cluster limit;
-- the default only fills existing rows: every new token names its role.
ALTER TABLE "api_tokens" ADD COLUMN "role" text DEFAULT 'admin' NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ALTER COLUMN "role" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "cluster_ids" uuid[];--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "created_by_token_id" uuid;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_created_by_token_id_api_tokens_id_fk" FOREIGN KEY ("created_by_token_id") REFERENCES "public"."api_tokens"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_tokens_created_by_token_id_idx" ON "api_tokens" USING btree ("created_by_token_id");