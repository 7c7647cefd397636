-- Task listings, newest first (`signet tasks ls`, `GET /v1/tasks`): each
-- shape of the listing reads one index in order and stops after its page.
-- Mirrors the SQLite migration of the same version.

-- One named queue (Signet's own included), newest first.
CREATE INDEX tasks_newest ON tasks (queue, created_at_ms, id);

-- Every queue but Signet's own (messages and callbacks), newest first: the
-- default listing. The predicate is the one the listing query spells out.
CREATE INDEX tasks_newest_user ON tasks (created_at_ms, id)
    WHERE queue <> 'signet:messages';
