-- Per-target limits that hold for every node on the database
-- (signet_store::limits, docs/deploy.md). Mirrors the SQLite schema of the
-- same version.

-- A target's rate bucket: the time its next send time is free (unix µs),
-- and how many send times the last take handed out (the take reads it
-- back to know its first one).
CREATE TABLE target_rates (
    target_id    TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    next_free_us BIGINT NOT NULL,
    granted      BIGINT NOT NULL CHECK (granted >= 0)
);

-- A target's concurrency slots in use: slot numbers below the target's
-- max_concurrency, each held by one delivery until it is released or its
-- lease expires (a dead node's slots come back then).
CREATE TABLE target_slots (
    target_id     TEXT   COLLATE "C" NOT NULL,
    slot          BIGINT NOT NULL CHECK (slot >= 0),
    holder        TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (target_id, slot)
);

-- A deleted target's limit rows go with it.
CREATE FUNCTION targets_limits_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM target_rates WHERE target_id = OLD.id;
    DELETE FROM target_slots WHERE target_id = OLD.id;
    RETURN OLD;
END;
$$;

CREATE TRIGGER targets_limits_deleted AFTER DELETE ON targets
    FOR EACH ROW EXECUTE FUNCTION targets_limits_deleted();
