-- Signet schema version 11: a delivered message keeps its successful
-- attempt on its row, as a succeeded task already does (version 3), with
-- the HTTP exchange in three new columns, instead of writing an attempt
-- event row. Mirrors SQLite's version 12 (SQLite's version 11 rebuilt its
-- tables for a reason PostgreSQL does not have). Settling delivered
-- messages is then one UPDATE without an INSERT into task_events: one row
-- fewer in task_events per delivered message.
--
-- The history reads the same (signet_store::history::complete_history adds
-- the kept attempt after the stored events). A resend, the one change that
-- takes a row out of 'succeeded', first writes the kept attempt as its
-- event. Rows delivered before this version already have their event (their
-- event_seq is not above it), so nothing is added twice.
ALTER TABLE tasks
    ADD COLUMN attempt_status INT4,
    ADD COLUMN attempt_latency_ms INT8,
    ADD COLUMN attempt_response_body BYTEA;
