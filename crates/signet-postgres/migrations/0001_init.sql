-- Signet schema version 1 (PostgreSQL): tasks (signed envelope + delivery
-- state) and API keys. Mirrors the SQLite schema of the same version.
--
-- Ids, queue and names sort by their bytes (COLLATE "C"), as on SQLite,
-- whatever the database's locale.
--
-- The envelope columns (id .. callback_url) and the signature columns
-- (sig_alg, sig_key_id, sig) are written once at enqueue and never updated.

CREATE TABLE tasks (
    id                  TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    queue               TEXT    COLLATE "C" NOT NULL,
    name                TEXT    NOT NULL,
    args                BYTEA   NOT NULL,
    -- JSON object of lower-case header name -> value.
    headers             TEXT    NOT NULL,
    created_at_ms       BIGINT  NOT NULL,
    not_before_ms       BIGINT,
    expires_at_ms       BIGINT,
    max_attempts        BIGINT  NOT NULL CHECK (max_attempts >= 1),
    callback_url        TEXT,
    sig_alg             TEXT,
    sig_key_id          TEXT,
    sig                 BYTEA,
    state               TEXT    NOT NULL CHECK (state IN
                            ('scheduled', 'available', 'running', 'retryable',
                             'succeeded', 'dead', 'cancelled')),
    priority            INTEGER NOT NULL,
    attempt             BIGINT  NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    run_at_ms           BIGINT  NOT NULL,
    lease_owner         TEXT,
    lease_expires_at_ms BIGINT,
    last_error          TEXT,
    dead_reason         TEXT,
    dead_detail         TEXT,
    result              BYTEA,
    idempotency_key     TEXT,
    updated_at_ms       BIGINT  NOT NULL,
    finished_at_ms      BIGINT,
    CHECK ((sig_alg IS NULL) = (sig_key_id IS NULL) AND (sig_alg IS NULL) = (sig IS NULL))
);

-- As on SQLite, every index is partial so a state change touches few
-- index entries.

-- Claims: due tasks of one queue, best first.
CREATE INDEX tasks_claim ON tasks (queue, priority DESC, run_at_ms, id)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- Rescue of expired leases; running tasks per queue.
CREATE INDEX tasks_lease ON tasks (lease_expires_at_ms, queue) WHERE state = 'running';

-- Dead-letter listing (newest first), pruning, finished tasks per queue.
-- finished_at_ms is set exactly when a task is in a final state.
CREATE INDEX tasks_finished ON tasks (state, finished_at_ms, id, queue)
    WHERE finished_at_ms IS NOT NULL;

-- Idempotency: one task per key while it is retained.
CREATE UNIQUE INDEX tasks_idempotency ON tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE api_keys (
    id            TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    name          TEXT   NOT NULL,
    scope         TEXT   NOT NULL,
    hash          TEXT   NOT NULL UNIQUE,
    prefix        TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
