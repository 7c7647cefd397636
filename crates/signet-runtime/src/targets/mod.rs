//! Targets: registered receivers, each with its own signing secret(s),
//! limits and URL rules.
//!
//! A target's secrets are a list — the current secret first, then earlier
//! ones that still sign until their expiry (the overlap after a rotation, so
//! receivers can roll their configuration without losing a delivery). The
//! list is serialised and sealed with XChaCha20-Poly1305 under the master key
//! (`SIGNET_MASTER_KEY`, [`signet_sign::sealed`]), with the target id as
//! associated data, so the database never holds a secret in clear and a
//! sealed list copied to another target does not open.
//!
//! A generated secret is `whsec_` + base64 of 32 random bytes: a Standard
//! Webhooks secret that also works, used as-is, for the Stripe, GitHub,
//! Stromboli and Krafter profiles. It is returned once, at creation or
//! rotation; afterwards only its fingerprint is shown.
//!
//! The master key may carry earlier keys (`SIGNET_MASTER_KEY_PREVIOUS`):
//! secrets sealed under them open, new seals use the current key, and
//! [`TargetService::reseal`] moves every row to the current key.
//!
//! Files: this one (the [`TargetService`] and a target's URL rules,
//! [`check_url`]), `secret` (the secret types and the sealed list),
//! `reseal` (re-sealing under the current key) and
//! `cache` (the one short-lived cache through which publishing and the
//! dispatcher read targets).

mod cache;
mod reseal;
mod secret;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use signet_sign::sealed::{
    MasterKey, KEYED_FINGERPRINT_PREFIX, MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR,
};
use signet_store::rules;
use signet_store::{Store, StoreError, TargetId, TargetRecord};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::schedules::ScheduleService;
use crate::ssrf::SsrfPolicy;

pub(crate) use cache::{CachedTarget, Lookup, TargetCache};
pub use reseal::{ResealFailure, ResealOptions, ResealPage, ResealReport, DEFAULT_RESEAL_BATCH};
use secret::{open, seal};
pub use secret::{TargetSecret, TargetSecrets, GENERATED_SECRET_BYTES};

/// How long the previous secret keeps signing after a rotation, by default.
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Most secrets kept per target (the current one and earlier ones still in
/// their overlap).
const MAX_SECRETS: usize = 16;

/// A target to register.
#[derive(Debug)]
pub struct NewTarget {
    /// Unique name: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub name: String,
    /// Messages for the target must have a URL starting with this.
    pub url_prefix: Option<String>,
    /// The secret; generated when `None`.
    pub secret: Option<TargetSecret>,
    /// Deliveries per second, at most.
    pub rate_limit_per_s: Option<u32>,
    /// Deliveries in flight, at most.
    pub max_concurrency: Option<u32>,
    /// Refuse `http://` URLs.
    pub https_only: bool,
}

/// Changes to a target. `None` leaves a field as it is; for the optional
/// fields, `Some(None)` clears them.
#[derive(Debug, Default)]
pub struct TargetPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new URL prefix, or none.
    pub url_prefix: Option<Option<String>>,
    /// A new rate limit, or none.
    pub rate_limit_per_s: Option<Option<u32>>,
    /// A new concurrency limit, or none.
    pub max_concurrency: Option<Option<u32>>,
    /// Refuse `http://` URLs, or not.
    pub https_only: Option<bool>,
}

/// What still uses a target (see [`TargetService::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetUsage {
    /// Messages not finished (scheduled, available, running, retryable)
    /// that name the target.
    pub pending_messages: u64,
    /// Schedules whose message names the target.
    pub schedules: u64,
    /// Queues bound to a push endpoint with the target's secret.
    pub push_queues: u64,
}

impl TargetUsage {
    /// Whether nothing uses the target.
    pub fn is_empty(&self) -> bool {
        self.pending_messages == 0 && self.schedules == 0 && self.push_queues == 0
    }
}

impl fmt::Display for TargetUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pending message(s), {} schedule(s) and {} push queue(s)",
            self.pending_messages, self.schedules, self.push_queues
        )
    }
}

/// What [`TargetService::delete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetDeletion {
    /// Deleted; what still named it (left without a target).
    Deleted(TargetUsage),
    /// Not deleted: these still use it (delete with `force` anyway).
    InUse(TargetUsage),
}

/// A secret of a target that still signs, as shown: its fingerprint and
/// when it stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningSecret {
    /// The keyed fingerprint (`hmac:…`, see [`TargetSecret::fingerprint`]).
    pub fingerprint: String,
    /// The current secret (the one rotation replaces).
    pub current: bool,
    /// When it stops signing (unix ms): the end of its rotation overlap;
    /// `None` for the current secret.
    pub stops_at_ms: Option<i64>,
}

/// Registers, changes, rotates and opens targets. Cheap to clone.
#[derive(Clone)]
pub struct TargetService {
    inner: Arc<Inner>,
    /// The policy the dispatcher delivers under, to refuse a `url_prefix`
    /// whose host is an IP literal it would refuse; `None` leaves it to
    /// delivery.
    ssrf: Option<SsrfPolicy>,
}

struct Inner {
    store: Arc<dyn Store>,
    master: Option<MasterKey>,
    clock: Arc<dyn Clock>,
    /// Serialises read-modify-write of a target's secrets in this process.
    rotation: tokio::sync::Mutex<()>,
    /// Bumped by every change made through this service, so caches of
    /// targets in this process drop what they hold at once.
    generation: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for TargetService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetService")
            .field("master_key", &self.inner.master)
            .finish_non_exhaustive()
    }
}

impl TargetService {
    /// Targets on `store`, sealed under `master` (without one, targets can
    /// be read but none can be created, rotated or used to sign).
    pub fn new(store: Arc<dyn Store>, master: Option<MasterKey>) -> Self {
        Self::with_clock(store, master, Arc::new(SystemClock))
    }

    /// Like [`TargetService::new`] with a clock (tests).
    pub fn with_clock(
        store: Arc<dyn Store>,
        master: Option<MasterKey>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                master,
                clock,
                rotation: tokio::sync::Mutex::new(()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
            ssrf: None,
        }
    }

    /// Refuses a `url_prefix` whose host is an IP literal `policy` refuses
    /// (give it the policy the dispatcher delivers under), at create and
    /// when a patch changes the prefix: every message for such a target
    /// could only be dead-lettered.
    pub fn ssrf_policy(mut self, policy: SsrfPolicy) -> Self {
        self.ssrf = Some(policy);
        self
    }

    /// A `url_prefix` the SSRF guard would refuse at every delivery, as a
    /// `url_prefix` field error (see [`TargetService::ssrf_policy`]).
    fn refuse_prefix_early(&self, prefix: Option<&str>) -> Result<(), RuntimeError> {
        let (Some(policy), Some(prefix)) = (&self.ssrf, prefix) else {
            return Ok(());
        };
        policy.refuse_early("url_prefix", &rules::http_url("url_prefix", prefix)?)
    }

    /// Whether a master key is configured.
    pub fn has_master_key(&self) -> bool {
        self.inner.master.is_some()
    }

    /// The master key's fingerprint, safe to print.
    pub fn master_key_fingerprint(&self) -> Option<String> {
        self.inner.master.as_ref().map(MasterKey::fingerprint)
    }

    /// The fingerprints of the earlier master keys that still open
    /// (`SIGNET_MASTER_KEY_PREVIOUS`), safe to print.
    pub fn previous_master_key_fingerprints(&self) -> Vec<String> {
        self.inner
            .master
            .as_ref()
            .map(MasterKey::previous_fingerprints)
            .unwrap_or_default()
    }

    fn master(&self) -> Result<&MasterKey, RuntimeError> {
        self.inner.master.as_ref().ok_or_else(|| {
            RuntimeError::MasterKey(format!(
                "target secrets are sealed under {MASTER_KEY_VAR}, which is not set; set it to the base64 of 32 random bytes (for example `head -c 32 /dev/urandom | base64`) and restart"
            ))
        })
    }

    /// Which changes this service has made: a cache of targets read
    /// through it is stale once this moves.
    pub(crate) fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Checks at start-up that the master key opens the stored targets:
    /// every target's secrets are opened. Fails with a
    /// [`RuntimeError::MasterKey`] naming the first target that does not
    /// open (a wrong key, or targets but no key). Returns how many targets
    /// were checked.
    ///
    /// A target whose stored fingerprint is a legacy unkeyed one
    /// (`sha256:…`, which can confirm a guessed secret offline) gets its
    /// keyed fingerprint (`hmac:…`) written here, so the unkeyed ones are
    /// gone after the first start of this version.
    pub async fn verify_master_key(&self) -> Result<usize, RuntimeError> {
        let targets = self.inner.store.list_targets().await?;
        if targets.is_empty() {
            return Ok(0);
        }
        let Some(master) = self.inner.master.as_ref() else {
            return Err(RuntimeError::MasterKey(format!(
                "{} target(s) have sealed secrets but {MASTER_KEY_VAR} is not set; start with the master key they were sealed with",
                targets.len()
            )));
        };
        for t in &targets {
            if let Err(e) = master.open(&t.sealed_secrets, t.id.as_bytes()) {
                let why = if e.is_unknown_key() {
                    format!(
                        "{MASTER_KEY_VAR} (fingerprint {}) is not the key target secrets were sealed with{}; start with the key that sealed them (during a master key rotation: the new key as {MASTER_KEY_VAR} and the old one in {MASTER_KEY_PREVIOUS_VAR})",
                        master.fingerprint(),
                        match master.previous_fingerprints() {
                            p if p.is_empty() => String::new(),
                            p => format!(", nor is any of {MASTER_KEY_PREVIOUS_VAR} ({})", p.join(", ")),
                        }
                    )
                } else {
                    format!(
                        "the sealed secrets of target {} ({}) do not open: {}",
                        t.name,
                        t.id,
                        e.message()
                    )
                };
                return Err(RuntimeError::MasterKey(why));
            }
        }
        for t in &targets {
            if !t.secret_fingerprint.starts_with(KEYED_FINGERPRINT_PREFIX) {
                self.upgrade_fingerprint(master, t).await?;
            }
        }
        Ok(targets.len())
    }

    /// Replaces a target's legacy unkeyed fingerprint with the keyed one of
    /// its current secret. Serialised with rotations in this process; a
    /// target changed since it was read (another node rotated it, and wrote
    /// a keyed fingerprint) is left alone.
    async fn upgrade_fingerprint(
        &self,
        master: &MasterKey,
        read: &TargetRecord,
    ) -> Result<(), RuntimeError> {
        let _guard = self.inner.rotation.lock().await;
        let Some(mut t) = self.inner.store.target(&read.id).await? else {
            return Ok(());
        };
        if t.sealed_secrets != read.sealed_secrets
            || t.secret_fingerprint.starts_with(KEYED_FINGERPRINT_PREFIX)
        {
            return Ok(());
        }
        let secrets = open(master, &t)?;
        let Some(current) = secrets.current() else {
            return Ok(());
        };
        t.secret_fingerprint = current.fingerprint(master, &t.id);
        self.inner.store.update_target(t.clone()).await?;
        self.bump();
        tracing::info!(target_id = %t.id, name = %t.name, fingerprint = %t.secret_fingerprint, "target secret fingerprint upgraded to a keyed one");
        Ok(())
    }

    /// The fingerprint `secret` has (or would have) as a secret of target
    /// `target_id`: keyed by the master key, see
    /// [`TargetSecret::fingerprint`].
    pub fn fingerprint(
        &self,
        target_id: &str,
        secret: &TargetSecret,
    ) -> Result<String, RuntimeError> {
        Ok(secret.fingerprint(self.master()?, target_id))
    }

    /// A target by id (`tgt_…`) or, failing that, by name.
    pub async fn find(&self, id_or_name: &str) -> Result<Option<TargetRecord>, RuntimeError> {
        if TargetId::parse(id_or_name).is_ok() {
            if let Some(t) = self.inner.store.target(id_or_name).await? {
                return Ok(Some(t));
            }
        }
        if rules::target_name(id_or_name).is_err() {
            return Ok(None);
        }
        Ok(self.inner.store.target_by_name(id_or_name).await?)
    }

    /// A target by id.
    pub async fn get(&self, id: &str) -> Result<Option<TargetRecord>, RuntimeError> {
        if TargetId::parse(id).is_err() {
            return Ok(None);
        }
        Ok(self.inner.store.target(id).await?)
    }

    /// All targets, by name.
    pub async fn list(&self) -> Result<Vec<TargetRecord>, RuntimeError> {
        Ok(self.inner.store.list_targets().await?)
    }

    /// Registers a target. Returns it and its secret (the only time the
    /// secret is returned). A name in use is a
    /// [`StoreError::Conflict`].
    pub async fn create(
        &self,
        new: NewTarget,
    ) -> Result<(TargetRecord, TargetSecret), RuntimeError> {
        rules::target_name(&new.name)?;
        rules::target_url_prefix(new.url_prefix.as_deref(), new.https_only)?;
        self.refuse_prefix_early(new.url_prefix.as_deref())?;
        rules::target_limit("rate_limit_per_s", new.rate_limit_per_s)?;
        rules::target_limit("max_concurrency", new.max_concurrency)?;
        let master = self.master()?;
        let secret = new.secret.unwrap_or_else(TargetSecret::generate);
        let now = self.inner.clock.now_ms();
        let id = TargetId::generate().to_string();
        let sealed = seal(master, &id, &[(&secret, None)])?;
        let record = TargetRecord {
            secret_fingerprint: secret.fingerprint(master, &id),
            id,
            name: new.name,
            url_prefix: new.url_prefix,
            sealed_secrets: sealed,
            rate_limit_per_s: new.rate_limit_per_s,
            max_concurrency: new.max_concurrency,
            https_only: new.https_only,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.inner.store.create_target(record.clone()).await?;
        self.bump();
        tracing::info!(target_id = %record.id, name = %record.name, fingerprint = %record.secret_fingerprint, "target registered");
        Ok((record, secret))
    }

    /// Changes a target's fields (not its secret: see
    /// [`TargetService::rotate`]).
    pub async fn update(&self, id: &str, patch: TargetPatch) -> Result<TargetRecord, RuntimeError> {
        let _guard = self.inner.rotation.lock().await;
        let mut t = self.require(id).await?;
        if let Some(name) = patch.name {
            rules::target_name(&name)?;
            t.name = name;
        }
        // Only a new prefix meets the SSRF guard here: a stored one is no
        // reason to refuse a change of limits.
        let new_prefix = patch.url_prefix.is_some();
        if let Some(prefix) = patch.url_prefix {
            t.url_prefix = prefix;
        }
        if let Some(rate) = patch.rate_limit_per_s {
            rules::target_limit("rate_limit_per_s", rate)?;
            t.rate_limit_per_s = rate;
        }
        if let Some(n) = patch.max_concurrency {
            rules::target_limit("max_concurrency", n)?;
            t.max_concurrency = n;
        }
        if let Some(https) = patch.https_only {
            t.https_only = https;
        }
        rules::target_url_prefix(t.url_prefix.as_deref(), t.https_only)?;
        if new_prefix {
            self.refuse_prefix_early(t.url_prefix.as_deref())?;
        }
        t.updated_at_ms = self.inner.clock.now_ms().max(t.updated_at_ms);
        self.inner.store.update_target(t.clone()).await?;
        self.bump();
        Ok(t)
    }

    /// Replaces the current secret with `secret` (generated when `None`).
    /// The secrets it replaces keep signing beside it for `overlap`
    /// (default [`DEFAULT_ROTATION_OVERLAP`]; `0` stops them at once).
    /// Returns the target and the new secret (the only time it is returned).
    pub async fn rotate(
        &self,
        id: &str,
        secret: Option<TargetSecret>,
        overlap: Option<Duration>,
    ) -> Result<(TargetRecord, TargetSecret), RuntimeError> {
        let overlap = overlap.unwrap_or(DEFAULT_ROTATION_OVERLAP);
        rules::rotation_overlap(overlap)?;
        let master = self.master()?;
        let _guard = self.inner.rotation.lock().await;
        let mut t = self.require(id).await?;
        let old = open(master, &t)?;
        let now = self.inner.clock.now_ms();
        let until = now.saturating_add(duration_ms(overlap));
        let secret = secret.unwrap_or_else(TargetSecret::generate);
        let mut entries: Vec<(&TargetSecret, Option<i64>)> = vec![(&secret, None)];
        for (s, expires) in &old.entries {
            // An earlier secret stops at the overlap's end, or sooner if it
            // was already due to.
            let expires = Some(expires.map_or(until, |at| at.min(until)));
            if expires.is_some_and(|at| at > now) && entries.len() < MAX_SECRETS {
                entries.push((s, expires));
            }
        }
        t.sealed_secrets = seal(master, &t.id, &entries)?;
        t.secret_fingerprint = secret.fingerprint(master, &t.id);
        t.updated_at_ms = now.max(t.updated_at_ms);
        self.inner.store.update_target(t.clone()).await?;
        self.bump();
        tracing::info!(target_id = %t.id, name = %t.name, fingerprint = %t.secret_fingerprint, overlap_s = overlap.as_secs(), "target secret rotated");
        Ok((t, secret))
    }

    /// What still uses a target: messages not finished that name it,
    /// schedules whose message names it (by id or name), and queues bound
    /// to a push endpoint with it.
    pub async fn usage(&self, target: &TargetRecord) -> Result<TargetUsage, RuntimeError> {
        let pending_messages = self
            .inner
            .store
            .pending_messages_for_target(&target.id)
            .await?;
        let schedules = ScheduleService::with_clock(
            Arc::clone(&self.inner.store),
            Arc::clone(&self.inner.clock),
        )
        .using_target(target)
        .await?
        .len();
        let push_queues = self
            .inner
            .store
            .list_push_bindings()
            .await?
            .iter()
            .filter(|b| b.target_id == target.id)
            .count();
        Ok(TargetUsage {
            pending_messages,
            schedules: u64::try_from(schedules).unwrap_or(u64::MAX),
            push_queues: u64::try_from(push_queues).unwrap_or(u64::MAX),
        })
    }

    /// Deletes a target, unless something still uses it and `force` is
    /// false: then nothing is deleted and the answer is
    /// [`TargetDeletion::InUse`] with what uses it. Deleted with `force`,
    /// messages still naming it are dead-lettered with `target-refused`
    /// when their turn comes, and its schedules' due times are given up
    /// ([`ScheduleService::target_missing`] flags them).
    pub async fn delete(&self, id: &str, force: bool) -> Result<TargetDeletion, RuntimeError> {
        let target = self.require(id).await?;
        let usage = self.usage(&target).await?;
        if !force && !usage.is_empty() {
            return Ok(TargetDeletion::InUse(usage));
        }
        self.inner.store.delete_target(&target.id).await?;
        self.bump();
        tracing::info!(target_id = %target.id, name = %target.name, pending_messages = usage.pending_messages, schedules = usage.schedules, "target deleted");
        Ok(TargetDeletion::Deleted(usage))
    }

    /// The secrets of `target` that still sign now: the current one first
    /// (it has no end), then earlier ones with the time their overlap ends
    /// (unix ms). Fingerprints only, never a secret.
    pub fn signing_secrets(
        &self,
        target: &TargetRecord,
    ) -> Result<Vec<SigningSecret>, RuntimeError> {
        let master = self.master()?;
        let secrets = open(master, target)?;
        let now = self.inner.clock.now_ms();
        Ok(secrets
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (_, stops))| secret::signs_at(*stops, now))
            .map(|(i, (secret, stops))| SigningSecret {
                fingerprint: secret.fingerprint(master, &target.id),
                current: i == 0,
                stops_at_ms: *stops,
            })
            .collect())
    }

    /// Opens a target's secrets.
    pub fn open(&self, target: &TargetRecord) -> Result<TargetSecrets, RuntimeError> {
        open(self.master()?, target)
    }

    async fn require(&self, id: &str) -> Result<TargetRecord, RuntimeError> {
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::not_found("target", id).into())
    }
}

/// Whether `url` may be used with `target` (its `url_prefix` and
/// `https_only`); the error names the rule and, for the prefix, what does
/// not match (scheme, host, port or path).
///
/// A `url_prefix` is an origin and a path, not a string prefix: the scheme,
/// host and port must be equal (a default port counts as given, so
/// `https://a.example` and `https://a.example:443` are one origin), and the
/// path must be the prefix's path or lie under it on a segment boundary
/// (`/hooks` admits `/hooks` and `/hooks/x`, not `/hooksevil`). As a plain
/// string prefix, `http://localhost` admitted `http://localhost.evil.example/`
/// and `http://127.0.0.1:1889` admitted port 18894, so a publish key could
/// make a target's secret sign requests to other hosts. A query in a
/// prefix (only a row stored before prefixes were refused one could have
/// it) must be matched exactly.
pub(crate) fn check_url(target: &TargetRecord, url: &url::Url) -> Result<(), String> {
    if target.https_only && url.scheme() != "https" {
        return Err(format!(
            "target {} accepts https:// URLs only, got {}://",
            target.name,
            url.scheme()
        ));
    }
    let Some(prefix_text) = &target.url_prefix else {
        return Ok(());
    };
    let refuse = |what: &str, got: String, want: String| {
        Err(format!(
            "the URL's {what} {got} does not match target {}'s url_prefix {prefix_text} ({what} {want})",
            target.name
        ))
    };
    let Ok(prefix) = url::Url::parse(prefix_text) else {
        return Err(format!(
            "target {}'s url_prefix {prefix_text} is not a URL; fix it (PATCH the target) before publishing to it",
            target.name
        ));
    };
    if url.scheme() != prefix.scheme() {
        return refuse(
            "scheme",
            format!("{}://", url.scheme()),
            format!("{}://", prefix.scheme()),
        );
    }
    if url.host() != prefix.host() {
        let show = |u: &url::Url| u.host_str().unwrap_or("(none)").to_owned();
        return refuse("host", show(url), show(&prefix));
    }
    if url.port_or_known_default() != prefix.port_or_known_default() {
        let show = |u: &url::Url| {
            u.port_or_known_default()
                .map_or_else(|| "(none)".to_owned(), |p| p.to_string())
        };
        return refuse("port", show(url), show(&prefix));
    }
    if !path_within(url.path(), prefix.path()) {
        return refuse(
            "path",
            url.path().to_owned(),
            format!("{} or below it", prefix.path()),
        );
    }
    if let Some(query) = prefix.query() {
        if url.query() != Some(query) {
            return refuse(
                "query",
                url.query().unwrap_or("(none)").to_owned(),
                query.to_owned(),
            );
        }
    }
    Ok(())
}

/// Whether `path` is `prefix` or below it on a segment boundary. A prefix
/// ending in `/` (the root included) admits everything under it.
fn path_within(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(prefix: &str) -> TargetRecord {
        TargetRecord {
            url_prefix: Some(prefix.into()),
            ..signet_store::testkit::new_target("t")
        }
    }

    mod service {
        use std::sync::Arc;

        use serde_json::value::RawValue;
        use signet_sign::sealed::MasterKey;
        use signet_store::{Store, TargetRecord};

        use super::super::*;
        use crate::clock::ManualClock;
        use crate::message::MessageSpec;
        use crate::schedules::{NewSchedule, SchedulePayload, ScheduleService};

        /// 2030-01-01T00:00:00Z.
        const NOW: i64 = 1_893_456_000_000;

        struct Setup {
            store: Arc<dyn Store>,
            targets: TargetService,
            clock: Arc<ManualClock>,
            _dir: tempfile::TempDir,
        }

        fn setup() -> Setup {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("signet.db").display());
            let store: Arc<dyn Store> = Arc::new(
                signet_sqlite::SqliteStore::open(&url, signet_sqlite::SqliteConfig::default())
                    .unwrap(),
            );
            let clock = Arc::new(ManualClock::new(NOW));
            let targets = TargetService::with_clock(
                Arc::clone(&store),
                Some(MasterKey::from_bytes([7; 32])),
                clock.clone(),
            );
            Setup {
                store,
                targets,
                clock,
                _dir: dir,
            }
        }

        fn new_target(name: &str) -> NewTarget {
            NewTarget {
                name: name.into(),
                url_prefix: None,
                secret: None,
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            }
        }

        #[tokio::test]
        async fn signing_secrets_list_the_overlap_and_drop_what_ended() {
            let s = setup();
            let (t, first) = s.targets.create(new_target("orders")).await.unwrap();
            let shown = s.targets.signing_secrets(&t).unwrap();
            assert_eq!(
                shown,
                vec![SigningSecret {
                    fingerprint: t.secret_fingerprint.clone(),
                    current: true,
                    stops_at_ms: None,
                }]
            );
            let (t, second) = s
                .targets
                .rotate(&t.id, None, Some(Duration::from_secs(60)))
                .await
                .unwrap();
            let shown = s.targets.signing_secrets(&t).unwrap();
            assert_eq!(
                shown,
                vec![
                    SigningSecret {
                        fingerprint: second.fingerprint(&MasterKey::from_bytes([7; 32]), &t.id),
                        current: true,
                        stops_at_ms: None,
                    },
                    SigningSecret {
                        fingerprint: first.fingerprint(&MasterKey::from_bytes([7; 32]), &t.id),
                        current: false,
                        stops_at_ms: Some(NOW + 60_000),
                    },
                ]
            );
            assert_eq!(shown[0].fingerprint, t.secret_fingerprint);
            let text = format!("{shown:?}");
            assert!(
                !text.contains(first.expose_secret()) && !text.contains(second.expose_secret())
            );
            // Once the overlap ends, only the current secret signs.
            s.clock.set(NOW + 60_000);
            assert_eq!(s.targets.signing_secrets(&t).unwrap().len(), 1);
        }

        #[tokio::test]
        async fn a_target_in_use_is_kept_unless_forced_and_its_schedules_are_flagged() {
            let s = setup();
            let (t, _) = s.targets.create(new_target("orders")).await.unwrap();
            let (other, _) = s.targets.create(new_target("billing")).await.unwrap();
            let schedules = ScheduleService::with_clock(Arc::clone(&s.store), s.clock.clone());
            let mut made = Vec::new();
            for (name, target) in [
                ("by-name", "orders"),
                ("by-id", t.id.as_str()),
                ("other", "billing"),
            ] {
                let message = format!(r#"{{"url":"https://example.com/h","target":"{target}"}}"#);
                made.push(
                    schedules
                        .create(NewSchedule {
                            name: name.into(),
                            cron: "@daily".into(),
                            timezone: None,
                            payload: SchedulePayload::Message(
                                RawValue::from_string(message).unwrap(),
                            ),
                            catch_up: None,
                            paused: false,
                        })
                        .await
                        .unwrap(),
                );
            }
            let usage = TargetUsage {
                pending_messages: 0,
                schedules: 2,
                push_queues: 0,
            };
            assert_eq!(s.targets.usage(&t).await.unwrap(), usage);
            assert_eq!(
                s.targets.delete(&t.id, false).await.unwrap(),
                TargetDeletion::InUse(usage)
            );
            for m in &made {
                assert!(!schedules.target_missing(m).await.unwrap(), "{}", m.name);
            }
            assert_eq!(
                s.targets.delete(&t.id, true).await.unwrap(),
                TargetDeletion::Deleted(usage)
            );
            let missing: Vec<bool> = {
                let mut v = Vec::new();
                for m in &made {
                    v.push(schedules.target_missing(m).await.unwrap());
                }
                v
            };
            assert_eq!(missing, [true, true, false]);
            // A target nothing uses goes without force.
            s.store.delete_schedule(&made[2].id).await.unwrap();
            assert_eq!(
                s.targets.delete(&other.id, false).await.unwrap(),
                TargetDeletion::Deleted(TargetUsage::default())
            );
            let e = s.targets.delete(&other.id, false).await.unwrap_err();
            assert!(e.to_string().contains("not found"), "{e}");
        }

        /// The store finds a message's target by these bytes in its args.
        #[test]
        fn a_stored_message_spec_holds_the_store_marker() {
            let mut spec = MessageSpec::post("https://example.com/", Some("{}".into()));
            spec.target = Some("tgt_0123456789abcdefghjkmnpqrs".into());
            let args = serde_json::to_vec(&spec).unwrap();
            let marker = TargetRecord::message_marker("tgt_0123456789abcdefghjkmnpqrs");
            assert!(args.windows(marker.len()).any(|w| w == marker.as_slice()));
        }
    }

    fn check(prefix: &str, url: &str) -> Result<(), String> {
        check_url(&target(prefix), &url::Url::parse(url).unwrap())
    }

    #[test]
    fn url_prefixes_compare_origin_and_path_segments() {
        // What a string prefix let through: another host, another port,
        // a sibling path.
        let e = check("http://localhost", "http://localhost.evil.example/").unwrap_err();
        assert!(e.contains("host localhost.evil.example"), "{e}");
        let e = check("http://127.0.0.1:1889", "http://127.0.0.1:18894/").unwrap_err();
        assert!(e.contains("port 18894"), "{e}");
        let e = check("https://a.example/hooks", "https://a.example/hooksevil").unwrap_err();
        assert!(e.contains("path /hooksevil"), "{e}");
        let e = check("https://a.example/", "http://a.example/").unwrap_err();
        assert!(e.contains("scheme http://"), "{e}");
        let e = check("https://a.example/", "https://a.example.evil/").unwrap_err();
        assert!(e.contains("host"), "{e}");
        assert!(check("https://a.example/hooks/", "https://a.example/hooks").is_err());
        assert!(check("https://a.example/h?x=1", "https://a.example/h?x=2").is_err());
        // What it must admit.
        for (prefix, url) in [
            ("http://localhost", "http://localhost/"),
            ("http://localhost", "http://localhost/any/path?q=1"),
            ("http://127.0.0.1:1889", "http://127.0.0.1:1889/x"),
            ("https://a.example/hooks", "https://a.example/hooks"),
            ("https://a.example/hooks", "https://a.example/hooks/orders"),
            ("https://a.example/hooks/", "https://a.example/hooks/orders"),
            ("https://A.Example:443/", "https://a.example/x"),
            ("https://a.example/", "https://a.example:443/x"),
            ("http://a.example:80", "http://a.example/x"),
            ("https://a.example/h?x=1", "https://a.example/h?x=1"),
        ] {
            assert_eq!(check(prefix, url), Ok(()), "{prefix} should admit {url}");
        }
    }
}
