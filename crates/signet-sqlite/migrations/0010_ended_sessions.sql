-- Console sessions that were signed out (crates/signet-server/src/ui/session.rs).
-- A session is a sealed cookie every node opens; signing out records its
-- random id here, and every console request looks it up, so a copy of the
-- cookie stops working on every node. A row is kept until the session
-- would have ended anyway (its lifetime), then the pruner deletes it.
CREATE TABLE ended_sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX ended_sessions_expiry ON ended_sessions (expires_at_ms);
