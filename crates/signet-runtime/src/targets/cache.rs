//! The one cache of targets: a target and its opened secrets, reused for a
//! short time by the services that look a target up for every message.
//!
//! Publishing looks targets up by id or name and remembers which signature
//! profiles the current secret was checked against; the dispatcher looks
//! them up by id and signs with the secrets (its per-target limits live
//! beside it, keyed by id, so they survive a refresh). An entry is reused
//! for the cache's TTL, so a change made on another node is seen within
//! it, and dropped at once when this process changes a target through the
//! same [`TargetService`] (its generation moves).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signet_sign::profiles::{ProfileKey, SignRequest};
use signet_sign::Profile;
use signet_store::TargetRecord;

use super::{TargetSecrets, TargetService};
use crate::error::RuntimeError;
use crate::message::SignatureProfile;

/// Most entries kept; past it, expired entries are dropped first.
const MAX_ENTRIES: usize = 4096;

/// How a cache finds a target from the key it is given.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lookup {
    /// By id (`tgt_…`) only: stored messages name their target by id.
    Id,
    /// By id or, failing that, by name: what a caller may give.
    IdOrName,
}

/// Targets read through a [`TargetService`], by the key they were asked
/// for.
pub(crate) struct TargetCache {
    targets: TargetService,
    lookup: Lookup,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    target: Arc<CachedTarget>,
    fetched: Instant,
    generation: u64,
}

/// A target as read, its opened secrets, and the profiles its current
/// secret was found to sign.
pub(crate) struct CachedTarget {
    pub(crate) record: TargetRecord,
    pub(crate) secrets: TargetSecrets,
    checked: Mutex<Vec<Profile>>,
    /// The secrets parsed for a profile, last asked for: which secrets
    /// (by position) signed then, and their keys. Parsed again only when
    /// another profile is asked for or a secret stops signing, not for
    /// every request.
    parsed: Mutex<Vec<ParsedKeys>>,
}

/// The keys of one profile for one set of signing secrets.
struct ParsedKeys {
    profile: SignatureProfile,
    signing: Vec<usize>,
    keys: Arc<[ProfileKey]>,
}

impl CachedTarget {
    /// Signs one request afresh at `now_ms` with every secret of the
    /// target that still signs (one signature per secret during a rotation
    /// overlap), in `profile`'s scheme: the headers to send. Messages for a
    /// target and push requests are signed here alone.
    pub(crate) fn sign(
        &self,
        profile: SignatureProfile,
        id: &str,
        now_ms: i64,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        let keys = self.keys(profile, now_ms);
        if keys.is_empty() {
            return Err(format!(
                "no secret of target {} can sign the {profile} profile",
                self.record.name
            ));
        }
        profile
            .profile()
            .sign(
                &keys,
                &SignRequest {
                    id,
                    timestamp: now_ms.div_euclid(1000),
                    body,
                },
            )
            .map_err(|e| format!("cannot sign: {}", e.message()))
    }

    /// The target's secrets that still sign at `now_ms`, parsed for
    /// `profile` (the ones it cannot use are left out), parsed once per
    /// profile and set of signing secrets for this entry.
    pub(crate) fn keys(&self, profile: SignatureProfile, now_ms: i64) -> Arc<[ProfileKey]> {
        // Compared without collecting: a hit allocates nothing.
        let current = |p: &ParsedKeys| {
            p.profile == profile
                && p.signing
                    .iter()
                    .copied()
                    .eq(self.secrets.signing_positions(now_ms))
        };
        if let Ok(parsed) = self.parsed.lock() {
            if let Some(p) = parsed.iter().find(|p| current(p)) {
                return Arc::clone(&p.keys);
            }
        }
        let signing: Vec<usize> = self.secrets.signing_positions(now_ms).collect();
        let keys: Arc<[ProfileKey]> = self
            .secrets
            .signing_at(now_ms)
            .filter_map(|s| profile.profile().parse_key(s.expose_secret()).ok())
            .collect();
        if let Ok(mut parsed) = self.parsed.lock() {
            parsed.retain(|p| p.profile != profile);
            parsed.push(ParsedKeys {
                profile,
                signing,
                keys: Arc::clone(&keys),
            });
        }
        keys
    }

    /// Runs `check` for `profile` unless it passed before for this entry.
    pub(crate) fn check_once<E>(
        &self,
        profile: Profile,
        check: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if self.checked.lock().is_ok_and(|c| c.contains(&profile)) {
            return Ok(());
        }
        check()?;
        if let Ok(mut checked) = self.checked.lock() {
            if !checked.contains(&profile) {
                checked.push(profile);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TargetCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetCache")
            .field("lookup", &self.lookup)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TargetCache {
    /// A cache over `targets` that finds keys by `lookup` and reuses an
    /// entry for `ttl`.
    pub(crate) fn new(targets: TargetService, lookup: Lookup, ttl: Duration) -> Self {
        Self {
            targets,
            lookup,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The target named by `key` with its secrets opened, from the cache
    /// or the store; `None` when there is no such target. Errors are the
    /// store's (reading) or the master key's (opening).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Arc<CachedTarget>>, RuntimeError> {
        // Read the generation before the target: a change that lands in
        // between leaves the entry stale, never the other way round.
        let generation = self.targets.generation();
        if let Ok(entries) = self.entries.lock() {
            if let Some(e) = entries.get(key) {
                if e.generation == generation && e.fetched.elapsed() < self.ttl {
                    return Ok(Some(Arc::clone(&e.target)));
                }
            }
        }
        let record = match self.lookup {
            Lookup::Id => self.targets.get(key).await?,
            Lookup::IdOrName => self.targets.find(key).await?,
        };
        let Some(record) = record else {
            return Ok(None);
        };
        let secrets = self.targets.open(&record)?;
        let target = Arc::new(CachedTarget {
            record,
            secrets,
            checked: Mutex::new(Vec::new()),
            parsed: Mutex::new(Vec::new()),
        });
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, e| e.fetched.elapsed() < ttl);
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    target: Arc::clone(&target),
                    fetched: Instant::now(),
                    generation,
                },
            );
        }
        Ok(Some(target))
    }
}

#[cfg(test)]
mod tests {
    use signet_sign::sealed::MasterKey;
    use signet_sqlite::{SqliteConfig, SqliteStore};
    use signet_store::Store;

    use super::*;
    use crate::targets::{NewTarget, TargetPatch};

    const LONG: Duration = Duration::from_secs(3600);

    fn service(store: &Arc<dyn Store>) -> TargetService {
        TargetService::new(Arc::clone(store), Some(MasterKey::from_bytes([7; 32])))
    }

    async fn setup() -> (tempfile::TempDir, Arc<dyn Store>, TargetService, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        let targets = service(&store);
        let (record, _) = targets
            .create(NewTarget {
                name: "billing".into(),
                url_prefix: None,
                secret: None,
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            })
            .await
            .unwrap();
        (dir, store, targets, record.id)
    }

    fn rename(name: &str) -> TargetPatch {
        TargetPatch {
            name: Some(name.into()),
            ..TargetPatch::default()
        }
    }

    #[tokio::test]
    async fn this_process_changes_are_seen_at_once_other_nodes_within_the_ttl() {
        let (_dir, store, targets, id) = setup().await;
        let cache = TargetCache::new(targets.clone(), Lookup::Id, LONG);
        let first = cache.get(&id).await.unwrap().unwrap();
        assert_eq!(first.record.name, "billing");
        assert!(first.secrets.current().is_some());
        // Reused while fresh.
        assert!(Arc::ptr_eq(&first, &cache.get(&id).await.unwrap().unwrap()));
        // A change through the same service drops the entry at once.
        targets.update(&id, rename("invoices")).await.unwrap();
        assert_eq!(
            cache.get(&id).await.unwrap().unwrap().record.name,
            "invoices"
        );
        // A change made elsewhere (another node's service) waits for the TTL.
        let elsewhere = service(&store);
        elsewhere.update(&id, rename("ledger")).await.unwrap();
        assert_eq!(
            cache.get(&id).await.unwrap().unwrap().record.name,
            "invoices"
        );
        let fresh = TargetCache::new(targets.clone(), Lookup::Id, Duration::ZERO);
        assert_eq!(fresh.get(&id).await.unwrap().unwrap().record.name, "ledger");
        // A deleted target is gone once the entry is dropped.
        targets.delete(&id, true).await.unwrap();
        assert!(cache.get(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lookups_by_id_ignore_names_and_checks_run_once_per_profile() {
        let (_dir, _store, targets, id) = setup().await;
        let by_id = TargetCache::new(targets.clone(), Lookup::Id, LONG);
        let by_name = TargetCache::new(targets.clone(), Lookup::IdOrName, LONG);
        assert!(by_id.get("billing").await.unwrap().is_none());
        let t = by_name.get("billing").await.unwrap().unwrap();
        assert_eq!(t.record.id, id);
        assert_eq!(by_name.get(&id).await.unwrap().unwrap().record.id, id);

        let runs = std::cell::Cell::new(0);
        let check = || {
            runs.set(runs.get() + 1);
            Ok::<(), ()>(())
        };
        t.check_once(Profile::Standard, check).unwrap();
        t.check_once(Profile::Standard, check).unwrap();
        assert_eq!(runs.get(), 1);
        t.check_once(Profile::Github, check).unwrap();
        assert_eq!(runs.get(), 2);
        // A failed check is not remembered.
        assert!(t.check_once(Profile::Stripe, || Err(())).is_err());
        t.check_once(Profile::Stripe, check).unwrap();
        assert_eq!(runs.get(), 3);
    }

    #[test]
    fn keys_are_parsed_once_per_profile_and_set_of_signing_secrets() {
        use crate::targets::TargetSecret;
        let current = TargetSecret::generate();
        let previous = TargetSecret::generate();
        let fresh = |s: &TargetSecret| Profile::Standard.parse_key(s.expose_secret()).unwrap();
        let expected_now = [fresh(&current), fresh(&previous)];
        let expected_later = [fresh(&current)];
        let t = CachedTarget {
            record: signet_store::testkit::new_target("x"),
            secrets: TargetSecrets {
                entries: vec![(current, None), (previous, Some(1_000))],
            },
            checked: Mutex::new(Vec::new()),
            parsed: Mutex::new(Vec::new()),
        };
        let request = SignRequest {
            id: "msg_1",
            timestamp: 1,
            body: b"{}",
        };
        let during = t.keys(SignatureProfile::Standard, 500);
        assert_eq!(during.len(), 2);
        assert!(
            Arc::ptr_eq(&during, &t.keys(SignatureProfile::Standard, 999)),
            "the same signing secrets: parsed once"
        );
        assert_eq!(
            Profile::Standard.sign(&during, &request).unwrap(),
            Profile::Standard.sign(&expected_now, &request).unwrap()
        );
        // The overlap ends: parsed again, one key.
        let after = t.keys(SignatureProfile::Standard, 1_000);
        assert_eq!(after.len(), 1);
        assert_eq!(
            Profile::Standard.sign(&after, &request).unwrap(),
            Profile::Standard.sign(&expected_later, &request).unwrap()
        );
        // Another profile has keys of its own.
        assert!(!Arc::ptr_eq(&after, &t.keys(SignatureProfile::Svix, 1_000)));
    }
}
