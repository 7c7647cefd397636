-- Signet schema version 3: append-only histories.
--
-- Every attempt of a task or message and every operator act on it (replay,
-- re-sign, cancel) and refusal before it ran (kill) is one row of
-- task_events, written in the same transaction as the change it records.
-- No statement updates a row of task_events; rows are deleted only with
-- their task (prune, purge). Like attempts before it, the table has no
-- foreign key: the store deletes a task's events in the same operation as
-- the task.

-- Attempts made before the last replay: a replay moves `attempt` here and
-- resets `attempt` to 0 (it counts against max_attempts), so history
-- numbers (attempt_offset + attempt) go on across replays.
ALTER TABLE tasks ADD COLUMN attempt_offset INTEGER NOT NULL DEFAULT 0
    CHECK (attempt_offset >= 0);

-- When the current attempt was claimed (its start in the history).
ALTER TABLE tasks ADD COLUMN attempt_started_at_ms INTEGER;

-- The worker of the last attempt that succeeded. A task's successful
-- attempt is not written to task_events: a succeeded task is final, so its
-- row keeps that attempt (number, this worker, attempt_started_at_ms,
-- finished_at_ms) unchanged for good, and reading the history adds it as
-- its last event (seq = event_seq). This keeps the completion path one
-- UPDATE. Deliveries (with their HTTP exchange) are written as events.
ALTER TABLE tasks ADD COLUMN attempt_worker TEXT;

-- Events recorded so far: the statement that records an event increments
-- it and the event takes the new value as its seq.
ALTER TABLE tasks ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0 CHECK (event_seq >= 0);

-- WITHOUT ROWID, keyed by (task, seq): one b-tree to write per event, and
-- a task's history is one range of it.
CREATE TABLE task_events (
    task_id       TEXT    NOT NULL,
    -- The event's place in its task's history: 1, 2, 3, …
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    kind          TEXT    NOT NULL CHECK (kind IN
                      ('attempt', 'replayed', 'resigned', 'cancelled', 'dead-lettered')),
    at_ms         INTEGER NOT NULL,
    -- attempt: its number (from 1), worker, start, outcome, error.
    attempt       INTEGER CHECK (attempt >= 1),
    worker        TEXT,
    started_at_ms INTEGER,
    outcome       TEXT    CHECK (outcome IN ('succeeded', 'retry', 'dead', 'lease-expired')),
    error         TEXT,
    -- attempt of a message: the HTTP exchange (latency set when there was one).
    status        INTEGER CHECK (status BETWEEN 0 AND 65535),
    latency_ms    INTEGER CHECK (latency_ms >= 0),
    response_body BLOB,
    -- replayed, resigned, cancelled: who.
    actor         TEXT,
    -- dead-lettered: why.
    reason        TEXT,
    detail        TEXT,
    -- resigned: the key ids of the old and the new signature.
    from_key_id   TEXT,
    to_key_id     TEXT,
    CHECK ((kind = 'attempt') = (attempt IS NOT NULL AND outcome IS NOT NULL)),
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

-- The delivery attempts of version 2 become attempt events, in attempt
-- order (seq = the attempt number). What came of each was not stored: a 2xx answer succeeded, the
-- last attempt of a dead message died, every other one was retried.
INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, started_at_ms, outcome, error,
                         status, latency_ms, response_body)
    SELECT a.task_id, a.attempt, 'attempt', a.started_at_ms + a.latency_ms, a.attempt, a.started_at_ms,
           CASE WHEN a.status BETWEEN 200 AND 299 THEN 'succeeded'
                WHEN t.state = 'dead' AND a.attempt >= t.attempt THEN 'dead'
                ELSE 'retry' END,
           a.error, a.status, a.latency_ms, a.response_body
    FROM attempts AS a LEFT JOIN tasks AS t ON t.id = a.task_id
    ORDER BY a.task_id, a.attempt;

UPDATE tasks SET event_seq = (SELECT MAX(attempt) FROM attempts WHERE task_id = tasks.id)
    WHERE id IN (SELECT task_id FROM attempts);

DROP TABLE attempts;
