-- Signet schema version 12: a delivered message keeps its successful
-- attempt on its row, as a succeeded task already does (version 3), with
-- the HTTP exchange in three new columns, instead of writing an attempt
-- event row. Delivering then ends in one UPDATE instead of a read, an
-- update and an insert into task_events: the store writer's largest item
-- per delivered message, and one row fewer in task_events per message.
--
-- The history reads the same (signet_store::history::complete_history adds
-- the kept attempt after the stored events). A resend, the one change that
-- takes a row out of 'succeeded', first writes the kept attempt as its
-- event. Rows delivered before this version already have their event (their
-- event_seq is not above it), so nothing is added twice.
ALTER TABLE tasks ADD COLUMN attempt_status INTEGER;
ALTER TABLE tasks ADD COLUMN attempt_latency_ms INTEGER;
ALTER TABLE tasks ADD COLUMN attempt_response_body BLOB;
