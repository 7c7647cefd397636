//! Binding a queue to an endpoint: the checks (one place for the API and
//! the CLI) and the store writes.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{rules, PushBinding, Store, TargetRecord};

use crate::clock::{Clock, SystemClock};
use crate::delivery::DEFAULT_REQUEST_TIMEOUT;
use crate::error::RuntimeError;
use crate::ssrf::SsrfPolicy;
use crate::targets::{check_url, TargetService};

/// Pushes in flight per binding per node when a binding names none.
pub const DEFAULT_PUSH_CONCURRENCY: u32 = 10;
/// Time an endpoint gets to answer when a binding names none: the
/// dispatcher's delivery timeout.
pub const DEFAULT_PUSH_TIMEOUT: Duration = DEFAULT_REQUEST_TIMEOUT;

/// What a caller asks for when binding a queue (`PUT /v1/queues/{queue}/push`,
/// `signet queues bind`).
#[derive(Clone, Debug, Default)]
pub struct NewBinding {
    /// Where each task is POSTed (`http://` or `https://`).
    pub url: String,
    /// The target whose secret signs the requests: its id (`tgt_…`) or name.
    pub target: String,
    /// Time the endpoint gets to answer, ms (default [`DEFAULT_PUSH_TIMEOUT`]).
    pub timeout_ms: Option<u64>,
    /// Pushes in flight per node (default [`DEFAULT_PUSH_CONCURRENCY`]).
    pub concurrency: Option<u64>,
    /// Answers must be signed with the target's secret.
    pub require_signed_response: bool,
}

/// Binds queues to endpoints, reads and removes bindings. Cheap to clone.
#[derive(Clone)]
pub struct PushService {
    store: Arc<dyn Store>,
    targets: TargetService,
    ssrf: SsrfPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PushService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushService")
            .field("ssrf", &self.ssrf)
            .finish_non_exhaustive()
    }
}

impl PushService {
    /// The service on `store`; `targets` finds the target a binding names,
    /// `ssrf` is the policy the dispatcher delivers under (a URL whose host
    /// is an IP literal it refuses is refused at once).
    pub fn new(store: Arc<dyn Store>, targets: TargetService, ssrf: SsrfPolicy) -> Self {
        Self {
            store,
            targets,
            ssrf,
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Binds `queue` to an endpoint, or replaces its binding. Each refusal
    /// names its field: `queue` (Signet's own queues cannot be bound),
    /// `url` (not an http(s) URL, refused by the SSRF guard, or outside the
    /// target's `url_prefix` / `https_only`), `target` (unknown),
    /// `timeout_ms`, `concurrency`. Returns the binding and its target.
    pub async fn bind(
        &self,
        queue: &str,
        new: NewBinding,
    ) -> Result<(PushBinding, TargetRecord), RuntimeError> {
        rules::task_queue(queue)?;
        let url = rules::http_url("url", &new.url)?;
        self.ssrf.refuse_early("url", &url)?;
        let target = self.targets.find(&new.target).await?.ok_or_else(|| {
            RuntimeError::field(
                "target",
                format!(
                    "no target {:?}; give a target id (tgt_…) or name from `signet targets ls`, or register one with `signet targets create`",
                    rules::excerpt(&new.target)
                ),
            )
        })?;
        check_url(&target, &url).map_err(|m| RuntimeError::field("url", m))?;
        let default_timeout = u64::try_from(DEFAULT_PUSH_TIMEOUT.as_millis()).unwrap_or(30_000);
        let now = self.clock.now_ms();
        let binding = PushBinding {
            queue: queue.to_owned(),
            url: url.to_string(),
            target_id: target.id.clone(),
            // Out of range even as u32: `check` names the field.
            timeout_ms: u32::try_from(new.timeout_ms.unwrap_or(default_timeout))
                .unwrap_or(u32::MAX),
            concurrency: u32::try_from(
                new.concurrency
                    .unwrap_or(u64::from(DEFAULT_PUSH_CONCURRENCY)),
            )
            .unwrap_or(u32::MAX),
            require_signed_response: new.require_signed_response,
            created_at_ms: now,
            updated_at_ms: now,
        };
        binding.check()?;
        let stored = self.store.put_push_binding(binding).await?;
        tracing::info!(queue = %stored.queue, target_id = %stored.target_id, concurrency = stored.concurrency, timeout_ms = stored.timeout_ms, signed_answers = stored.require_signed_response, "queue bound to a push endpoint");
        Ok((stored, target))
    }

    /// The binding of `queue`, if any.
    pub async fn get(&self, queue: &str) -> Result<Option<PushBinding>, RuntimeError> {
        rules::queue_name(queue)?;
        Ok(self.store.push_binding(queue).await?)
    }

    /// Every binding, by queue.
    pub async fn list(&self) -> Result<Vec<PushBinding>, RuntimeError> {
        Ok(self.store.list_push_bindings().await?)
    }

    /// Unbinds `queue`: its tasks stay queued for pull workers. No
    /// binding: [`StoreError::NotFound`](signet_store::StoreError::NotFound).
    pub async fn unbind(&self, queue: &str) -> Result<(), RuntimeError> {
        rules::queue_name(queue)?;
        self.store.delete_push_binding(queue).await?;
        tracing::info!(%queue, "queue unbound from its push endpoint");
        Ok(())
    }

    /// The target a binding names, if it still exists.
    pub async fn target_of(
        &self,
        binding: &PushBinding,
    ) -> Result<Option<TargetRecord>, RuntimeError> {
        self.targets.get(&binding.target_id).await
    }
}
