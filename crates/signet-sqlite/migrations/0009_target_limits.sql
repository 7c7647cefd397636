-- Per-target limits that hold for every process on the database
-- (signet_store::limits, docs/deploy.md).

-- A target's rate bucket: the time its next send time is free (unix µs),
-- and how many send times the last take handed out (the take reads it
-- back to know its first one).
CREATE TABLE target_rates (
    target_id    TEXT    NOT NULL PRIMARY KEY,
    next_free_us INTEGER NOT NULL,
    granted      INTEGER NOT NULL CHECK (granted >= 0)
) WITHOUT ROWID;

-- A target's concurrency slots in use: slot numbers below the target's
-- max_concurrency, each held by one delivery until it is released or its
-- lease expires (a dead node's slots come back then).
CREATE TABLE target_slots (
    target_id     TEXT    NOT NULL,
    slot          INTEGER NOT NULL CHECK (slot >= 0),
    holder        TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (target_id, slot)
) WITHOUT ROWID;

-- A deleted target's limit rows go with it.
CREATE TRIGGER targets_limits_deleted AFTER DELETE ON targets
BEGIN
    DELETE FROM target_rates WHERE target_id = old.id;
    DELETE FROM target_slots WHERE target_id = old.id;
END;
