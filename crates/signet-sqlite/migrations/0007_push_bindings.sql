-- Push queues: a queue bound to an HTTP endpoint is drained by the
-- dispatcher, each task POSTed to `url` and signed with the target's
-- secret (docs/push-queues.md). One binding per queue.
CREATE TABLE push_bindings (
    queue                   TEXT    NOT NULL PRIMARY KEY,
    url                     TEXT    NOT NULL,
    target_id               TEXT    NOT NULL,
    timeout_ms              INTEGER NOT NULL CHECK (timeout_ms BETWEEN 1000 AND 300000),
    concurrency             INTEGER NOT NULL CHECK (concurrency BETWEEN 1 AND 1000),
    require_signed_response INTEGER NOT NULL CHECK (require_signed_response IN (0, 1)),
    created_at_ms           INTEGER NOT NULL,
    updated_at_ms           INTEGER NOT NULL
);
