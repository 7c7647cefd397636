//! Paused queues: a queue an operator paused is skipped by every claim, on
//! every node, until it is resumed. The claim statement itself checks the
//! store's list (no per-node cache), so a pause or resume holds everywhere
//! at the next claim. Running work is not touched.

use crate::history::check_actor;
use crate::rules;
use crate::StoreError;

/// A paused queue, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PausedQueue {
    /// The queue (any [`queue_name`](crate::rules::queue_name), Signet's own
    /// `signet:messages` included: pausing it holds every HTTP delivery).
    pub queue: String,
    /// When it was paused, unix ms.
    pub paused_at_ms: i64,
    /// Who paused it (an API key id, the CLI), 1 to
    /// [`MAX_ACTOR_LEN`](crate::history::MAX_ACTOR_LEN) bytes.
    pub paused_by: String,
    /// Why, when the operator said ([`pause_reason`](crate::rules::pause_reason)).
    pub reason: Option<String>,
}

impl PausedQueue {
    /// Checks what every backend refuses with
    /// [`StoreError::Invalid`] before pausing:
    /// a queue that is not a [`queue_name`](crate::rules::queue_name), an
    /// actor [`check_actor`] refuses, a reason
    /// [`pause_reason`](crate::rules::pause_reason) refuses.
    pub fn validate(queue: &str, actor: &str, reason: Option<&str>) -> Result<(), StoreError> {
        let field = |e: crate::FieldError| {
            StoreError::invalid(format!("pausing a queue: {}: {}", e.field(), e.message()))
        };
        rules::queue_name(queue).map_err(field)?;
        if let Some(reason) = reason {
            rules::pause_reason(reason).map_err(field)?;
        }
        check_actor(actor)
    }
}
