-- Queues and work an operator can steer (PostgreSQL): paused queues, and
-- the operator acts "retry now" and "resend" in task histories. Mirrors the
-- SQLite schema of the same version.

-- A queue listed here is paused: every claim (workers on the store, HTTP
-- workers, push-queue drains, message delivery for `signet:messages`)
-- skips it, on every node, because the claim statement itself checks this
-- table. Resuming deletes the row (and notifies the queue's waiters).
-- Running work is not touched. A queue may be paused before it holds a task.
CREATE TABLE paused_queues (
    queue        TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    paused_at_ms BIGINT NOT NULL,
    -- Who paused it (an API key id, the CLI).
    paused_by    TEXT   NOT NULL,
    -- Why, when the operator said.
    reason       TEXT
);

-- Two more kinds of history event: `retried-now` (a retryable task made
-- due at once) and `resent` (a delivered message sent again). Every
-- existing row passed the narrower check, so it passes this one: NOT VALID
-- spares the upgrade a scan of task_events under an exclusive lock (new
-- rows are checked all the same).
ALTER TABLE task_events DROP CONSTRAINT task_events_kind_check;
ALTER TABLE task_events ADD CONSTRAINT task_events_kind_check CHECK (kind IN
    ('attempt', 'replayed', 'resigned', 'cancelled', 'dead-lettered', 'retried-now', 'resent'))
    NOT VALID;
