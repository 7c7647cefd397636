-- Signet schema version 2: HTTP delivery and scheduling.
--
-- Messages are task rows (queue 'signet:messages'); what they add lives in
-- the tables below. Attempts belong to a task but have no foreign key: the
-- store deletes them in the same operation as their task (prune, purge),
-- as the conformance suite checks, rather than rely on a cascade that only
-- runs on connections with PRAGMA foreign_keys on.

-- When the callback of a finished task was handed off (the callback message
-- was enqueued). NULL on a finished task with a callback_url: still owed.
-- Replay sets it back to NULL.
ALTER TABLE tasks ADD COLUMN callback_sent_at_ms INTEGER;

-- Tasks finished before this version never owed a callback (nothing sent
-- them): count them as handed off, so an upgrade does not send a burst of
-- late callbacks, and prune can still delete them.
UPDATE tasks SET callback_sent_at_ms = finished_at_ms
    WHERE callback_url IS NOT NULL AND finished_at_ms IS NOT NULL;

-- Callbacks owed, oldest finished first. Small: a task leaves it as soon as
-- its callback is handed off.
CREATE INDEX tasks_callbacks ON tasks (finished_at_ms, id)
    WHERE callback_url IS NOT NULL AND callback_sent_at_ms IS NULL
      AND state IN ('succeeded', 'dead');

-- One row per delivery attempt of a message; recording an attempt again
-- replaces its row.
CREATE TABLE attempts (
    task_id       TEXT    NOT NULL,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    started_at_ms INTEGER NOT NULL,
    latency_ms    INTEGER NOT NULL CHECK (latency_ms >= 0),
    status        INTEGER CHECK (status BETWEEN 0 AND 65535),
    error         TEXT,
    response_body BLOB    NOT NULL,
    PRIMARY KEY (task_id, attempt)
);

-- Registered receivers. sealed_secrets is encrypted by the runtime under
-- the master key before it reaches the store.
CREATE TABLE targets (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    url_prefix         TEXT,
    sealed_secrets     BLOB    NOT NULL,
    secret_fingerprint TEXT    NOT NULL,
    rate_limit_per_s   INTEGER CHECK (rate_limit_per_s >= 1),
    max_concurrency    INTEGER CHECK (max_concurrency >= 1),
    https_only         INTEGER NOT NULL CHECK (https_only IN (0, 1)),
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL
);

CREATE TABLE schedules (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    cron             TEXT    NOT NULL,
    timezone         TEXT    NOT NULL,
    -- JSON, as the API accepted it; opaque to the store.
    payload          BLOB    NOT NULL,
    catch_up         TEXT    NOT NULL CHECK (catch_up IN ('skip', 'once')),
    paused           INTEGER NOT NULL CHECK (paused IN (0, 1)),
    next_fire_at_ms  INTEGER,
    last_fired_at_ms INTEGER,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

-- Due schedules, earliest first; paused and finished ones are not in it.
CREATE INDEX schedules_due ON schedules (next_fire_at_ms, id)
    WHERE paused = 0 AND next_fire_at_ms IS NOT NULL;

-- Node-wide roles (scheduler, rescuer, pruner, callbacks). A resigned lease
-- keeps its row (expired), so the term keeps counting holders.
CREATE TABLE leader_leases (
    name          TEXT    NOT NULL PRIMARY KEY,
    holder        TEXT    NOT NULL,
    term          INTEGER NOT NULL CHECK (term >= 1),
    expires_at_ms INTEGER NOT NULL
);
