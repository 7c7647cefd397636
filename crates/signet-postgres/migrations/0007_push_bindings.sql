-- Push queues: a queue bound to an HTTP endpoint is drained by the
-- dispatcher, each task POSTed to `url` and signed with the target's
-- secret (docs/push-queues.md). One binding per queue. Mirrors the SQLite
-- schema of the same version.
CREATE TABLE push_bindings (
    queue                   TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    url                     TEXT    NOT NULL,
    target_id               TEXT    COLLATE "C" NOT NULL,
    timeout_ms              BIGINT  NOT NULL CHECK (timeout_ms BETWEEN 1000 AND 300000),
    concurrency             BIGINT  NOT NULL CHECK (concurrency BETWEEN 1 AND 1000),
    require_signed_response BOOLEAN NOT NULL,
    created_at_ms           BIGINT  NOT NULL,
    updated_at_ms           BIGINT  NOT NULL
);
