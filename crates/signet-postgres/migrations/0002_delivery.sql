-- Signet schema version 2 (PostgreSQL): HTTP delivery and scheduling.
-- Callbacks owed by finished tasks, delivery attempts of messages, targets
-- with sealed secrets, cron schedules, and leader leases. Mirrors the
-- SQLite schema of the same version.

-- When the callback of a finished task was handed off (NULL: still owed,
-- if the task has a callback_url and finished succeeded or dead).
ALTER TABLE tasks ADD COLUMN callback_sent_at_ms BIGINT;

-- Tasks finished before this version never owed a callback (nothing sent
-- them): count them as handed off, so an upgrade does not send a burst of
-- late callbacks, and prune can still delete them.
UPDATE tasks SET callback_sent_at_ms = finished_at_ms
    WHERE callback_url IS NOT NULL AND finished_at_ms IS NOT NULL;

CREATE INDEX tasks_callbacks ON tasks (finished_at_ms, id)
    WHERE callback_url IS NOT NULL AND callback_sent_at_ms IS NULL
      AND state IN ('succeeded', 'dead');

-- One row per delivery attempt of a message; recording an attempt again
-- replaces its row. Unlike SQLite, the foreign key is kept: it refuses
-- attempts of unknown tasks in the same statement, and the cascade (one
-- primary-key probe per deleted task) deletes attempts with their task.
CREATE TABLE attempts (
    task_id       TEXT    COLLATE "C" NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt       BIGINT  NOT NULL CHECK (attempt >= 1),
    started_at_ms BIGINT  NOT NULL,
    latency_ms    BIGINT  NOT NULL CHECK (latency_ms >= 0),
    status        INTEGER CHECK (status BETWEEN 0 AND 65535),
    error         TEXT,
    response_body BYTEA   NOT NULL,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE targets (
    id                 TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    name               TEXT    COLLATE "C" NOT NULL,
    url_prefix         TEXT,
    sealed_secrets     BYTEA   NOT NULL,
    secret_fingerprint TEXT    NOT NULL,
    rate_limit_per_s   BIGINT CHECK (rate_limit_per_s >= 1),
    max_concurrency    BIGINT CHECK (max_concurrency >= 1),
    https_only         BOOLEAN NOT NULL,
    created_at_ms      BIGINT  NOT NULL,
    updated_at_ms      BIGINT  NOT NULL,
    CONSTRAINT targets_name UNIQUE (name)
);

CREATE TABLE schedules (
    id               TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    name             TEXT    COLLATE "C" NOT NULL,
    cron             TEXT    NOT NULL,
    timezone         TEXT    NOT NULL,
    payload          BYTEA   NOT NULL,
    catch_up         TEXT    NOT NULL CHECK (catch_up IN ('skip', 'once')),
    paused           BOOLEAN NOT NULL,
    next_fire_at_ms  BIGINT,
    last_fired_at_ms BIGINT,
    created_at_ms    BIGINT  NOT NULL,
    updated_at_ms    BIGINT  NOT NULL,
    CONSTRAINT schedules_name UNIQUE (name)
);

-- Due schedules, earliest first.
CREATE INDEX schedules_due ON schedules (next_fire_at_ms, id)
    WHERE NOT paused AND next_fire_at_ms IS NOT NULL;

-- Node-wide roles (scheduler, rescuer, pruner, callbacks). A resigned lease
-- keeps its row (expired), so the term keeps counting holders.
CREATE TABLE leader_leases (
    name          TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    holder        TEXT   NOT NULL,
    term          BIGINT NOT NULL CHECK (term >= 1),
    expires_at_ms BIGINT NOT NULL
);
