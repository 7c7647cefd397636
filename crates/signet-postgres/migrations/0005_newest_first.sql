-- Version 5 first built two listing indexes on tasks, by creation time.
-- Measured before release, they cost every enqueue (and, on PostgreSQL,
-- every state change) two more index writes, and building them would
-- have blocked writes to a large tasks table during the upgrade; task
-- listings go by id instead. The version stays (its number is taken);
-- it changes nothing. A database that ran the first form has the indexes
-- dropped by version 6.
SELECT 1;
