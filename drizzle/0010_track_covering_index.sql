-- A track reads time, latitude, longitude and altitude of a device's range: with them in the
-- index that orders the device's points, the read is an index-only scan, not a heap page per
-- few rows. Drizzle's schema cannot declare INCLUDE, so this migration is written by hand; the
-- index keeps its name, columns and uniqueness (the arbiter of a point sent again).
DROP INDEX "positions_device_time_key";--> statement-breakpoint
CREATE UNIQUE INDEX "positions_device_time_key" ON "positions" USING btree ("device_id","timestamp" DESC NULLS LAST) INCLUDE ("latitude","longitude","altitude");
