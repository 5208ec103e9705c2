ALTER TABLE "server_credentials" ADD COLUMN "become_envelope" text;--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "become_password_set" boolean DEFAULT false NOT NULL;