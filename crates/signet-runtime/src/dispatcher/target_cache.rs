//! Targets and their opened secrets, reused for a short time so a rotation
//! or a change of limits is seen within it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signet_store::TargetRecord;

use crate::targets::{TargetSecrets, TargetService};

/// Targets read from the store, by id.
pub(super) struct TargetCache {
    targets: TargetService,
    ttl: Duration,
    entries: Mutex<HashMap<String, CachedTarget>>,
}

struct CachedTarget {
    record: Arc<TargetRecord>,
    secrets: Arc<TargetSecrets>,
    fetched: Instant,
}

pub(super) type OpenedTarget = (Arc<TargetRecord>, Arc<TargetSecrets>);

impl TargetCache {
    pub(super) fn new(targets: TargetService, ttl: Duration) -> Self {
        Self {
            targets,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A target and its opened secrets, from the cache or the store; `None`
    /// when it does not exist. A store or master-key problem is an error (the
    /// attempt fails and is retried: it is not the message's fault).
    pub(super) async fn get(&self, id: &str) -> Result<Option<OpenedTarget>, String> {
        if let Ok(cache) = self.entries.lock() {
            if let Some(c) = cache.get(id) {
                if c.fetched.elapsed() < self.ttl {
                    return Ok(Some((Arc::clone(&c.record), Arc::clone(&c.secrets))));
                }
            }
        }
        let record = match self.targets.get(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("target {id} could not be read: {e}")),
        };
        let secrets = self.targets.open(&record).map_err(|e| e.to_string())?;
        let (record, secrets) = (Arc::new(record), Arc::new(secrets));
        if let Ok(mut cache) = self.entries.lock() {
            cache.insert(
                id.to_owned(),
                CachedTarget {
                    record: Arc::clone(&record),
                    secrets: Arc::clone(&secrets),
                    fetched: Instant::now(),
                },
            );
        }
        Ok(Some((record, secrets)))
    }
}
