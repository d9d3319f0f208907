CREATE TABLE `admin_actions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`actor_id` integer,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target_user_id` integer,
	`target_worker_id` integer,
	`target` text NOT NULL,
	`reason` text NOT NULL,
	`details` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `admin_actions_user` ON `admin_actions` (`target_user_id`,`id`);--> statement-breakpoint
CREATE INDEX `admin_actions_worker` ON `admin_actions` (`target_worker_id`,`id`);--> statement-breakpoint
ALTER TABLE `users` ADD `suspended_at` integer;--> statement-breakpoint
ALTER TABLE `workers` ADD `trusted` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `workers` ADD `paused_at` integer;--> statement-breakpoint
ALTER TABLE `workers` ADD `paused_reason` text;