-- uplink's tables now live in their own database (`database.uplink_schema`,
-- default `<app database>_uplink`), where the prefix that kept them apart
-- from the app's tables is no longer needed. Start-up moved an earlier
-- release's tables here before this runs.
RENAME TABLE uplink_client_progress TO client_progress,
             uplink_dead_letters TO dead_letters,
             uplink_dead_letter_users TO dead_letter_users;
