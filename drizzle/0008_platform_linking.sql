ALTER TABLE "platform_logins" ADD COLUMN "link_user_id" text;--> statement-breakpoint
ALTER TABLE "platforms" ADD COLUMN "trusted" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "platform_logins" ADD CONSTRAINT "platform_logins_link_user_id_users_id_fk" FOREIGN KEY ("link_user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;