//! Re-sealing every target's secrets under the current master key: the
//! second half of a master key rotation (`SIGNET_MASTER_KEY_PREVIOUS`, then
//! `signet targets reseal`, docs/keys.md).
//!
//! The walk pages through the targets by id. Each row is swapped on its
//! own, only if its sealed bytes are still the ones read (a compare-and-swap
//! in the store), so a rotation another node makes meanwhile is never
//! overwritten: the row is read again and re-sealed from what it holds now.
//! Rows already under the current key are skipped and counted, so an
//! interrupted walk is finished by running it again. A row no key opens is
//! reported by id and the walk goes on.

use signet_sign::sealed::MasterKey;
use signet_store::TargetRecord;

use super::secret::{open, seal};
use super::TargetService;
use crate::error::RuntimeError;

/// Targets read per page, by default.
pub const DEFAULT_RESEAL_BATCH: u32 = 100;

/// How often a row changed by someone else between read and swap is read
/// again before it is reported (it will be re-sealed by a rerun).
const SWAP_ATTEMPTS: usize = 3;

/// How to re-seal.
#[derive(Clone, Copy, Debug)]
pub struct ResealOptions {
    /// Targets read (and swapped) per page; at least 1.
    pub batch: u32,
    /// Only count: open every row, change none.
    pub dry_run: bool,
}

impl Default for ResealOptions {
    fn default() -> Self {
        Self {
            batch: DEFAULT_RESEAL_BATCH,
            dry_run: false,
        }
    }
}

/// A target whose secrets could not be re-sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResealFailure {
    /// The target's id.
    pub target_id: String,
    /// Why (no secret, no key material: the key checks at most).
    pub reason: String,
}

/// Where a re-seal stands (after each page) or ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Targets there were when the walk started.
    pub total: u64,
    /// Targets looked at so far.
    pub checked: u64,
    /// Re-sealed under the current key (with `dry_run`: would be).
    pub resealed: u64,
    /// Already under the current key: skipped.
    pub already_current: u64,
    /// Deleted between read and swap: nothing to do.
    pub gone: u64,
    /// Not re-sealed, by id.
    pub failed: Vec<ResealFailure>,
}

impl ResealReport {
    /// Whether every target looked at is now (or, dry, could be) under the
    /// current key.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }

    /// Adds a page's counts to this report (`total` apart).
    pub fn add(&mut self, page: ResealReport) {
        self.checked += page.checked;
        self.resealed += page.resealed;
        self.already_current += page.already_current;
        self.gone += page.gone;
        self.failed.extend(page.failed);
    }
}

/// One page of a re-seal ([`TargetService::reseal_page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResealPage {
    /// What the page did (`total` 0: pages do not count the rest).
    pub report: ResealReport,
    /// The id the next page starts after; `None` after the last page.
    pub next: Option<String>,
}

/// What became of one row.
enum Outcome {
    Resealed,
    Current,
    Gone,
    Failed(String),
}

impl TargetService {
    /// Re-seals every target's secrets (the current one and those still in
    /// a rotation's overlap) under the current master key, page by page
    /// ([`TargetService::reseal_page`]), calling `progress` after each page.
    /// Rows no configured key opens are listed in the report's `failed`,
    /// not fatal; a store error stops the walk (what was swapped stays
    /// swapped: run it again).
    pub async fn reseal(
        &self,
        options: ResealOptions,
        mut progress: impl FnMut(&ResealReport),
    ) -> Result<ResealReport, RuntimeError> {
        self.master()?;
        let mut report = ResealReport {
            total: self.target_count(options.batch).await?,
            ..ResealReport::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = self.reseal_page(after.as_deref(), options).await?;
            report.add(page.report);
            report.total = report.total.max(report.checked);
            progress(&report);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    /// How many targets there are, read `batch` at a time.
    pub async fn target_count(&self, batch: u32) -> Result<u64, RuntimeError> {
        let batch = batch.max(1);
        let mut total = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .store
                .targets_after(after.as_deref(), batch)
                .await?;
            total += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == batch as usize => after = Some(last.id.clone()),
                _ => return Ok(total),
            }
        }
    }

    /// Re-seals one page: the first `options.batch` targets after the id
    /// `after` (from the start when `None`). The page's report counts only
    /// its rows (`total` 0); `next` is where the next page starts, `None`
    /// after the last. One walk of these pages is [`TargetService::reseal`];
    /// `POST /v1/targets/reseal` answers one page, so a client re-seals any
    /// number of targets in short requests and shows its progress.
    pub async fn reseal_page(
        &self,
        after: Option<&str>,
        options: ResealOptions,
    ) -> Result<ResealPage, RuntimeError> {
        let master = self.master()?;
        let batch = options.batch.max(1);
        let page = self.inner.store.targets_after(after, batch).await?;
        let mut report = ResealReport::default();
        for t in &page {
            report.checked += 1;
            match self.reseal_one(master, t, options.dry_run).await? {
                Outcome::Resealed => report.resealed += 1,
                Outcome::Current => report.already_current += 1,
                Outcome::Gone => report.gone += 1,
                Outcome::Failed(reason) => {
                    tracing::warn!(target_id = %t.id, %reason, "target secrets not re-sealed");
                    report.failed.push(ResealFailure {
                        target_id: t.id.clone(),
                        reason,
                    });
                }
            }
        }
        if report.resealed > 0 && !options.dry_run {
            self.bump();
            tracing::info!(
                resealed = report.resealed,
                already_current = report.already_current,
                failed = report.failed.len(),
                fingerprint = %master.fingerprint(),
                "target secrets re-sealed under the current master key"
            );
        }
        let next = match page.last() {
            Some(last) if page.len() == batch as usize => Some(last.id.clone()),
            _ => None,
        };
        Ok(ResealPage { report, next })
    }

    /// Re-seals one row, reading it again when it changed under us.
    async fn reseal_one(
        &self,
        master: &MasterKey,
        read: &TargetRecord,
        dry_run: bool,
    ) -> Result<Outcome, RuntimeError> {
        let _guard = self.inner.rotation.lock().await;
        let mut row = read.clone();
        for attempt in 0..SWAP_ATTEMPTS {
            if attempt > 0 {
                match self.inner.store.target(&read.id).await? {
                    Some(fresh) => row = fresh,
                    None => return Ok(Outcome::Gone),
                }
            }
            if master.is_current(&row.sealed_secrets) {
                return Ok(Outcome::Current);
            }
            let secrets = match open(master, &row) {
                Ok(secrets) => secrets,
                Err(e) => return Ok(Outcome::Failed(e.to_string())),
            };
            if dry_run {
                return Ok(Outcome::Resealed);
            }
            let entries: Vec<_> = secrets.entries.iter().map(|(s, e)| (s, *e)).collect();
            let sealed = seal(master, &row.id, &entries)?;
            let fingerprint = secrets.current().map_or_else(
                || row.secret_fingerprint.clone(),
                |s| s.fingerprint(master, &row.id),
            );
            if self
                .inner
                .store
                .swap_target_secrets(&row.id, &row.sealed_secrets, &sealed, &fingerprint)
                .await?
            {
                return Ok(Outcome::Resealed);
            }
        }
        Ok(Outcome::Failed(format!(
            "target {} changed {SWAP_ATTEMPTS} times while being re-sealed; run the re-seal again",
            read.id
        )))
    }
}
