-- Queues and work an operator can steer: paused queues, and the operator
-- acts "retry now" and "resend" in task histories.

-- A queue listed here is paused: every claim (workers on the store, HTTP
-- workers, push-queue drains, message delivery for `signet:messages`)
-- skips it, on every process sharing the database, because the claim
-- statement itself checks this table. Resuming deletes the row. Running
-- work is not touched. A queue may be paused before it holds a task.
CREATE TABLE paused_queues (
    queue        TEXT    NOT NULL PRIMARY KEY,
    paused_at_ms INTEGER NOT NULL,
    -- Who paused it (an API key id, the CLI).
    paused_by    TEXT    NOT NULL,
    -- Why, when the operator said.
    reason       TEXT
) WITHOUT ROWID;

-- Two more kinds of history event: `retried-now` (a retryable task made
-- due at once) and `resent` (a delivered message sent again). SQLite
-- cannot change a CHECK in place, so task_events is rebuilt with the same
-- columns and rows; rows are copied unchanged (history stays append-only).
CREATE TABLE task_events_v8 (
    task_id       TEXT    NOT NULL,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    kind          TEXT    NOT NULL CHECK (kind IN
                      ('attempt', 'replayed', 'resigned', 'cancelled', 'dead-lettered',
                       'retried-now', 'resent')),
    at_ms         INTEGER NOT NULL,
    attempt       INTEGER CHECK (attempt >= 1),
    worker        TEXT,
    started_at_ms INTEGER,
    outcome       TEXT    CHECK (outcome IN ('succeeded', 'retry', 'dead', 'lease-expired')),
    error         TEXT,
    status        INTEGER CHECK (status BETWEEN 0 AND 65535),
    latency_ms    INTEGER CHECK (latency_ms >= 0),
    response_body BLOB,
    -- replayed, resigned, cancelled, retried-now, resent: who.
    actor         TEXT,
    reason        TEXT,
    detail        TEXT,
    from_key_id   TEXT,
    to_key_id     TEXT,
    CHECK ((kind = 'attempt') = (attempt IS NOT NULL AND outcome IS NOT NULL)),
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

INSERT INTO task_events_v8 (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, outcome,
                            error, status, latency_ms, response_body, actor, reason, detail,
                            from_key_id, to_key_id)
    SELECT task_id, seq, kind, at_ms, attempt, worker, started_at_ms, outcome,
           error, status, latency_ms, response_body, actor, reason, detail,
           from_key_id, to_key_id
    FROM task_events;

DROP TABLE task_events;
ALTER TABLE task_events_v8 RENAME TO task_events;
