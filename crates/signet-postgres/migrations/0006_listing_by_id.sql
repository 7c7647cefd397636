-- Task listings walk the primary key backwards instead (ids are UUIDv7,
-- so id order is creation order): the two listing indexes of version 5
-- cost every enqueue, and on PostgreSQL every state change, a write each
-- (measured: queue throughput on PostgreSQL fell by about a third).
DROP INDEX IF EXISTS tasks_newest_user;
DROP INDEX IF EXISTS tasks_newest;
