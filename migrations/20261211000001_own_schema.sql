-- uplink's tables now live in their own schema (`database.uplink_schema`,
-- default `uplink`), where the prefix that kept them apart from the app's
-- tables is no longer needed. Start-up moved an earlier release's tables
-- here before this runs.
ALTER TABLE uplink_client_progress RENAME TO client_progress;
ALTER TABLE uplink_dead_letters RENAME TO dead_letters;
