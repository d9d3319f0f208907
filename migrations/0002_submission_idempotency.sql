ALTER TABLE `requests` ADD `idempotency_key` text;--> statement-breakpoint
CREATE UNIQUE INDEX `requests_idempotency` ON `requests` (`user_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `transfers_entry` ON `transfers` (`entry_id`);