//! Verification of claimed tasks, before any handler runs.
//!
//! A whole claimed batch is verified at once with
//! [`signet_sign::envelope::verify_batch`] (Ed25519 batch verification, with
//! a fallback that names the bad signatures). What the rows say is not
//! trusted: the algorithm and key id stored beside an envelope are checked
//! against the ring by the verifier.

use std::sync::Arc;

use signet_sign::envelope::{verify_batch, EnvelopeCheck};
use signet_sign::{Algorithm, KeyRing, SigningConfig};
use signet_store::TaskRow;
use tokio::sync::OwnedSemaphorePermit;

use crate::claim::Claimed;

/// How a worker treats signatures.
pub(crate) enum Verifier {
    /// Verify every signed task with the ring; unsigned tasks pass only when
    /// signing is not required.
    Keys { ring: Arc<KeyRing>, required: bool },
    /// Dev mode: nothing is verified.
    Dev,
}

/// The result of checking one row.
pub(crate) type Check = Result<(), signet_sign::Error>;

impl Verifier {
    /// From a parsed signing configuration. The worker keeps only the
    /// verifying half of the keys.
    pub(crate) fn from_config(config: &SigningConfig) -> Self {
        if config.dev {
            Verifier::Dev
        } else {
            Verifier::keys(&config.ring, config.required)
        }
    }

    /// Verification with the verifying half of `ring`; `required` refuses
    /// unsigned rows.
    pub(crate) fn keys(ring: &KeyRing, required: bool) -> Self {
        Verifier::Keys {
            ring: Arc::new(ring.verify_only()),
            required,
        }
    }

    /// Whether an Ed25519 batch is big enough to move off the async threads.
    pub(crate) fn is_heavy(&self, rows: &[TaskRow]) -> bool {
        const HEAVY_BATCH: usize = 32;
        matches!(self, Verifier::Keys { .. })
            && rows.len() >= HEAVY_BATCH
            && rows
                .iter()
                .any(|r| matches!(&r.signature, Some(s) if s.alg == Algorithm::Ed25519))
    }

    /// Checks a claimed batch, off the async threads when it is heavy; each
    /// row comes back with its check. `None` when the verification task
    /// failed (a bug): the batch is dropped with its permits, and the
    /// leases expire so the rescuer hands the rows out again.
    pub(crate) async fn check_claimed(
        self: &Arc<Self>,
        batch: Vec<Claimed>,
    ) -> Option<Vec<(Claimed, Check)>> {
        let (rows, slots): (Vec<TaskRow>, Vec<OwnedSemaphorePermit>) =
            batch.into_iter().map(|c| (c.row, c.slot)).unzip();
        let (checks, rows) = if self.is_heavy(&rows) {
            let verifier = Arc::clone(self);
            match tokio::task::spawn_blocking(move || (verifier.check(&rows), rows)).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!(error = %e, "signature verification task failed; the batch will be rescued after its lease expires");
                    return None;
                }
            }
        } else {
            (self.check(&rows), rows)
        };
        Some(
            rows.into_iter()
                .zip(slots)
                .map(|(row, slot)| Claimed { row, slot })
                .zip(checks)
                .collect(),
        )
    }

    /// Checks every row; the result is in the same order as `rows`.
    pub(crate) fn check(&self, rows: &[TaskRow]) -> Vec<Check> {
        let (ring, required) = match self {
            Verifier::Dev => return rows.iter().map(|_| Ok(())).collect(),
            Verifier::Keys { ring, required } => (ring, *required),
        };
        let mut out: Vec<Check> = Vec::with_capacity(rows.len());
        // Signed rows go to the batch verifier; remember where each result goes.
        let mut items = Vec::with_capacity(rows.len());
        let mut slots = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match &row.signature {
                None if required => out.push(Err(signet_sign::Error::missing(
                    "the task is unsigned and this worker requires signatures",
                ))),
                None => out.push(Ok(())),
                // No key to check with and signing not required: treated like
                // an unsigned task (the worker warned about this at start).
                Some(_) if ring.is_empty() && !required => out.push(Ok(())),
                Some(sig) => {
                    // Fail closed: replaced by the verifier's answer below.
                    out.push(Err(signet_sign::Error::malformed(
                        "the signature could not be checked",
                    )));
                    slots.push(i);
                    items.push(EnvelopeCheck {
                        envelope: &row.envelope,
                        signature: Some((sig.alg, sig.key_id.as_str(), sig.sig.as_slice())),
                    });
                }
            }
        }
        if !items.is_empty() {
            for (slot, result) in slots.into_iter().zip(verify_batch(&items, ring)) {
                out[slot] = result.map(|_key_id| ());
            }
        }
        out
    }
}
