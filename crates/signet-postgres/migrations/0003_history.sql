-- Signet schema version 3 (PostgreSQL): append-only histories. Mirrors
-- the SQLite schema of the same version.
--
-- Every attempt of a task or message and every operator act on it (replay,
-- re-sign, cancel) and refusal before it ran (kill) is one row of
-- task_events, written by the same statement as the change it records. No
-- statement updates a row of task_events; rows are deleted only with their
-- task, by the statement that deletes it (prune, purge). There is no
-- foreign key: its check would cost a probe of tasks per event on the
-- completion path, and the deletes are explicit.

-- Attempts made before the last replay: history numbers are
-- attempt_offset + attempt and go on across replays.
ALTER TABLE tasks ADD COLUMN attempt_offset BIGINT NOT NULL DEFAULT 0
    CHECK (attempt_offset >= 0);

-- When the current attempt was claimed (its start in the history).
ALTER TABLE tasks ADD COLUMN attempt_started_at_ms BIGINT;

-- The worker of the last attempt that succeeded. A task's successful
-- attempt is not written to task_events: a succeeded task is final, so its
-- row keeps that attempt (number, this worker, attempt_started_at_ms,
-- finished_at_ms) unchanged for good, and reading the history adds it as
-- its last event (seq = event_seq). This keeps the completion path one
-- UPDATE. Deliveries (with their HTTP exchange) are written as events.
ALTER TABLE tasks ADD COLUMN attempt_worker TEXT;

-- Events recorded so far: the statement that records an event increments
-- it (under the row lock) and the event takes the new value as its seq.
ALTER TABLE tasks ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0 CHECK (event_seq >= 0);

CREATE TABLE task_events (
    task_id       TEXT    COLLATE "C" NOT NULL,
    -- The event's place in its task's history: 1, 2, 3, …
    seq           BIGINT  NOT NULL CHECK (seq >= 1),
    kind          TEXT    NOT NULL CHECK (kind IN
                      ('attempt', 'replayed', 'resigned', 'cancelled', 'dead-lettered')),
    at_ms         BIGINT  NOT NULL,
    attempt       BIGINT  CHECK (attempt >= 1),
    worker        TEXT,
    started_at_ms BIGINT,
    outcome       TEXT    CHECK (outcome IN ('succeeded', 'retry', 'dead', 'lease-expired')),
    error         TEXT,
    status        INTEGER CHECK (status BETWEEN 0 AND 65535),
    latency_ms    BIGINT  CHECK (latency_ms >= 0),
    response_body BYTEA,
    actor         TEXT,
    reason        TEXT,
    detail        TEXT,
    from_key_id   TEXT,
    to_key_id     TEXT,
    CHECK ((kind = 'attempt') = (attempt IS NOT NULL AND outcome IS NOT NULL)),
    PRIMARY KEY (task_id, seq)
);

-- The delivery attempts of version 2 become attempt events, in attempt
-- order (see the SQLite migration for how their outcome is derived).
INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, started_at_ms, outcome, error,
                         status, latency_ms, response_body)
    SELECT a.task_id, a.attempt, 'attempt', a.started_at_ms + a.latency_ms, a.attempt, a.started_at_ms,
           CASE WHEN a.status BETWEEN 200 AND 299 THEN 'succeeded'
                WHEN t.state = 'dead' AND a.attempt >= t.attempt THEN 'dead'
                ELSE 'retry' END,
           a.error, a.status, a.latency_ms, a.response_body
    FROM attempts AS a LEFT JOIN tasks AS t ON t.id = a.task_id
    ORDER BY a.task_id, a.attempt;

UPDATE tasks SET event_seq = m.n
    FROM (SELECT task_id, MAX(attempt) AS n FROM attempts GROUP BY task_id) AS m
    WHERE tasks.id = m.task_id;

DROP TABLE attempts;
