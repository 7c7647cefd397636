//! The state one dispatcher's deliveries share.

use std::sync::Arc;

use signet_sign::KeyRing;
use signet_store::Store;
use tokio::sync::{broadcast, Semaphore};

use super::events::DeliveryEvent;
use super::limits::Limits;
use crate::claim::Leases;
use crate::clock::Clock;
use crate::delivery::HttpClient;
use crate::message::RetrySchedule;
use crate::targets::TargetCache;
use crate::verify::Verifier;

pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) verifier: Arc<Verifier>,
    pub(super) ring: Arc<KeyRing>,
    pub(super) targets: TargetCache,
    pub(super) http: HttpClient,
    pub(super) retry: RetrySchedule,
    pub(super) worker_id: Arc<str>,
    pub(super) leases: Leases,
    pub(super) limits: Limits,
    pub(super) events: broadcast::Sender<DeliveryEvent>,
    /// One permit per outcome queued for the settler or being written
    /// (`settle::UNSETTLED_PER_SLOT` per delivery slot).
    pub(super) unsettled: Arc<Semaphore>,
}
