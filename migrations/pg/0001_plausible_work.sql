ALTER TABLE "balances" ADD COLUMN "unfunded" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "bounded_jobs" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workers" ADD COLUMN "flagged_at" bigint;