CREATE TABLE "admin_actions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"actor_id" integer,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target_user_id" integer,
	"target_worker_id" integer,
	"target" text NOT NULL,
	"reason" text NOT NULL,
	"details" text DEFAULT '{}' NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "suspended_at" bigint;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "trusted" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "paused_at" bigint;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "paused_reason" text;--> statement-breakpoint
CREATE INDEX "admin_actions_user" ON "admin_actions" USING btree ("target_user_id","id");--> statement-breakpoint
CREATE INDEX "admin_actions_worker" ON "admin_actions" USING btree ("target_worker_id","id");