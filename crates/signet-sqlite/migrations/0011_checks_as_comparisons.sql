-- Signet schema version 11: the same tables, columns, rows and rules, with
-- every list of three or more allowed values that a write evaluates spelled
-- as comparisons (`x = 'a' OR x = 'b' OR …`) instead of `x IN ('a', 'b', …)`.
--
-- SQLite evaluates an IN list of three or more constants by building a
-- temporary b-tree of the list (its own page cache, a zeroed page) every
-- time a statement runs; two or fewer it compares directly. The CHECK on
-- tasks.state, the predicate of the tasks_claim index and the CHECKs on
-- task_events.kind and .outcome built seven such b-trees for every
-- delivered message (insert, outcome, attempt event): a third of the
-- store writer's instructions per delivery (callgrind), and as much per
-- task. The comparisons accept exactly the same values.
--
-- A CHECK cannot be changed in place: both tables are rebuilt with the
-- same columns, in the same order, and their rows (and rowids) copied
-- unchanged, as version 8 rebuilt task_events. Nothing references tasks
-- or task_events by foreign key, trigger or view.

CREATE TABLE tasks_v11 (
    id                  TEXT    NOT NULL UNIQUE,
    queue               TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    args                BLOB    NOT NULL,
    -- JSON object of lower-case header name -> value.
    headers             TEXT    NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    not_before_ms       INTEGER,
    expires_at_ms       INTEGER,
    max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
    callback_url        TEXT,
    sig_alg             TEXT,
    sig_key_id          TEXT,
    sig                 BLOB,
    state               TEXT    NOT NULL CHECK (
                            state = 'scheduled' OR state = 'available' OR state = 'running'
                            OR state = 'retryable' OR state = 'succeeded' OR state = 'dead'
                            OR state = 'cancelled'),
    priority            INTEGER NOT NULL,
    attempt             INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    run_at_ms           INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_expires_at_ms INTEGER,
    last_error          TEXT,
    dead_reason         TEXT,
    dead_detail         TEXT,
    result              BLOB,
    idempotency_key     TEXT,
    updated_at_ms       INTEGER NOT NULL,
    finished_at_ms      INTEGER,
    callback_sent_at_ms INTEGER,
    attempt_offset      INTEGER NOT NULL DEFAULT 0 CHECK (attempt_offset >= 0),
    attempt_started_at_ms INTEGER,
    attempt_worker      TEXT,
    event_seq           INTEGER NOT NULL DEFAULT 0 CHECK (event_seq >= 0),
    idempotency_scope   TEXT,
    idempotency_kind    TEXT,
    idempotency_fingerprint TEXT,
    CHECK ((sig_alg IS NULL) = (sig_key_id IS NULL) AND (sig_alg IS NULL) = (sig IS NULL))
);

INSERT INTO tasks_v11 (rowid, id, queue, name, args, headers, created_at_ms, not_before_ms,
                       expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig,
                       state, priority, attempt, run_at_ms, lease_owner, lease_expires_at_ms,
                       last_error, dead_reason, dead_detail, result, idempotency_key,
                       updated_at_ms, finished_at_ms, callback_sent_at_ms, attempt_offset,
                       attempt_started_at_ms, attempt_worker, event_seq, idempotency_scope,
                       idempotency_kind, idempotency_fingerprint)
    SELECT rowid, id, queue, name, args, headers, created_at_ms, not_before_ms,
           expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig,
           state, priority, attempt, run_at_ms, lease_owner, lease_expires_at_ms,
           last_error, dead_reason, dead_detail, result, idempotency_key,
           updated_at_ms, finished_at_ms, callback_sent_at_ms, attempt_offset,
           attempt_started_at_ms, attempt_worker, event_seq, idempotency_scope,
           idempotency_kind, idempotency_fingerprint
    FROM tasks ORDER BY rowid;

DROP TABLE tasks;
ALTER TABLE tasks_v11 RENAME TO tasks;

-- The indexes of versions 1, 2 and 4, as they were, but for the claim
-- index's predicate (spelled as the claim statement spells it, so the
-- planner still matches them; signet_sqlite::tasks::CLAIMABLE).
CREATE INDEX tasks_claim ON tasks (queue, priority DESC, run_at_ms, id, state)
    WHERE state = 'available' OR state = 'scheduled' OR state = 'retryable';
CREATE INDEX tasks_lease ON tasks (lease_expires_at_ms, queue) WHERE state = 'running';
CREATE INDEX tasks_finished ON tasks (state, finished_at_ms, id, queue)
    WHERE finished_at_ms IS NOT NULL;
CREATE INDEX tasks_callbacks ON tasks (finished_at_ms, id)
    WHERE callback_url IS NOT NULL AND callback_sent_at_ms IS NULL
      AND state IN ('succeeded', 'dead');
CREATE UNIQUE INDEX tasks_idempotency
    ON tasks (idempotency_scope, idempotency_kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE task_events_v11 (
    task_id       TEXT    NOT NULL,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    kind          TEXT    NOT NULL CHECK (
                      kind = 'attempt' OR kind = 'replayed' OR kind = 'resigned'
                      OR kind = 'cancelled' OR kind = 'dead-lettered' OR kind = 'retried-now'
                      OR kind = 'resent'),
    at_ms         INTEGER NOT NULL,
    attempt       INTEGER CHECK (attempt >= 1),
    worker        TEXT,
    started_at_ms INTEGER,
    outcome       TEXT    CHECK (
                      outcome = 'succeeded' OR outcome = 'retry' OR outcome = 'dead'
                      OR outcome = 'lease-expired'),
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

INSERT INTO task_events_v11 (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, outcome,
                             error, status, latency_ms, response_body, actor, reason, detail,
                             from_key_id, to_key_id)
    SELECT task_id, seq, kind, at_ms, attempt, worker, started_at_ms, outcome,
           error, status, latency_ms, response_body, actor, reason, detail,
           from_key_id, to_key_id
    FROM task_events;

DROP TABLE task_events;
ALTER TABLE task_events_v11 RENAME TO task_events;
