-- Idempotency keys scoped per caller and kind, bound to a request fingerprint
-- (signet_store::idempotency). Rows keyed before this migration go to the
-- scope 'legacy', which only the operator's own scopes ('local', 'system')
-- still find; their fingerprint is NULL, so they match any request.
ALTER TABLE tasks ADD COLUMN idempotency_scope TEXT;
ALTER TABLE tasks ADD COLUMN idempotency_kind TEXT;
ALTER TABLE tasks ADD COLUMN idempotency_fingerprint TEXT;

UPDATE tasks
   SET idempotency_scope = 'legacy',
       idempotency_kind = CASE WHEN substr(id, 1, 4) = 'msg_' THEN 'message' ELSE 'task' END
 WHERE idempotency_key IS NOT NULL;

DROP INDEX tasks_idempotency;
CREATE UNIQUE INDEX tasks_idempotency
    ON tasks (idempotency_scope, idempotency_kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
