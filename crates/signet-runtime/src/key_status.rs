//! Where each key of a ring stands in a rotation, beside the pending work
//! signed with it: the one rule for "safe to retire".

use signet_sign::{Algorithm, KeyRing};
use signet_store::KeyUsage;

/// Where a key stands in a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// Signs new work.
    Active,
    /// Signs beside the active key during a rotation overlap.
    Overlap,
    /// Listed after the active key: added, not activated yet.
    New,
    /// Listed before the active key (or in a ring without one): verifies only.
    Old,
}

impl KeyRole {
    /// Its name: `active`, `overlap`, `new` or `verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Active => "active",
            KeyRole::Overlap => "overlap",
            KeyRole::New => "new",
            KeyRole::Old => "verify",
        }
    }
}

/// The role of every key of `ring`, in ring order. `signet keys add`
/// appends, so a key after the active one was added and not activated yet.
pub fn key_roles(ring: &KeyRing) -> Vec<(String, Algorithm, KeyRole, bool)> {
    let active = ring.active().map(|k| k.id().as_str().to_owned());
    let signers: Vec<String> = ring
        .signers()
        .iter()
        .map(|k| k.id().as_str().to_owned())
        .collect();
    let active_at = ring
        .keys()
        .iter()
        .position(|k| Some(k.id().as_str()) == active.as_deref());
    ring.keys()
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let id = k.id().as_str().to_owned();
            let role = if Some(&id) == active.as_ref() {
                KeyRole::Active
            } else if signers.contains(&id) {
                KeyRole::Overlap
            } else if active_at.is_some_and(|a| i > a) {
                KeyRole::New
            } else {
                KeyRole::Old
            };
            (id, k.algorithm(), role, k.can_sign())
        })
        .collect()
}

/// One key id's standing: `signet keys status`, `signet keys retire` and
/// `GET /v1/keys/status` all read it from here.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// `None` for unsigned work.
    pub key_id: Option<String>,
    /// Its algorithm; `None` for unsigned work.
    pub algorithm: Option<Algorithm>,
    /// Its role in this process's ring; `None` when not in it.
    pub role: Option<KeyRole>,
    /// Pending tasks signed with it.
    pub tasks: u64,
    /// Pending messages signed with it (at rest).
    pub messages: u64,
}

impl KeyStatus {
    /// Neither active nor overlapping nor new, in the ring, and nothing
    /// pending is signed with it.
    pub fn safe_to_retire(&self) -> bool {
        self.key_id.is_some() && self.role == Some(KeyRole::Old) && self.tasks + self.messages == 0
    }

    /// What to do about the key.
    pub fn advice(&self) -> &'static str {
        let pending = self.tasks + self.messages > 0;
        match (&self.key_id, self.role) {
            (None, _) => "unsigned work",
            (Some(_), Some(KeyRole::Active)) => "active: signs new work",
            (Some(_), Some(KeyRole::Overlap)) => {
                "overlap: signs beside the active key; not safe to retire"
            }
            (Some(_), Some(KeyRole::New)) => {
                "new: not active yet; activate it when workers know it"
            }
            (Some(_), None) if pending => "NOT IN THE RING: this work will fail verification",
            (Some(_), _) if pending => "keep: pending work is signed with it",
            (Some(_), _) => "safe to retire",
        }
    }
}

/// Merges the store's pending counts with the ring's keys (which may
/// have none pending), in ring order, then keys only pending work names,
/// unsigned last.
pub fn key_status(usage: Vec<KeyUsage>, ring: &KeyRing) -> Vec<KeyStatus> {
    let mut out: Vec<KeyStatus> = key_roles(ring)
        .into_iter()
        .map(|(id, alg, role, _)| KeyStatus {
            key_id: Some(id),
            algorithm: Some(alg),
            role: Some(role),
            tasks: 0,
            messages: 0,
        })
        .collect();
    let mut unknown = Vec::new();
    for u in usage {
        match out
            .iter_mut()
            .find(|s| s.key_id.is_some() && s.key_id == u.key_id)
        {
            Some(s) => {
                s.tasks += u.tasks;
                s.messages += u.messages;
            }
            None => unknown.push(KeyStatus {
                key_id: u.key_id,
                algorithm: u.alg,
                role: None,
                tasks: u.tasks,
                messages: u.messages,
            }),
        }
    }
    unknown.sort_by(|a, b| match (&a.key_id, &b.key_id) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    });
    out.extend(unknown);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_sign::keyfile::generate_key;
    use signet_sign::{KeyFile, KeyId};

    fn ring(ids: &[&str], active: &str, overlap: &[&str]) -> KeyRing {
        let mut file = KeyFile::generate(&KeyId::new(ids[0]).unwrap());
        for id in &ids[1..] {
            file.add(
                &KeyId::new(*id).unwrap(),
                &generate_key(Algorithm::HmacSha256),
            )
            .unwrap();
        }
        file.activate(&KeyId::new(active).unwrap(), false).unwrap();
        for id in overlap {
            // Overlap: activate the overlapping key, then the active one with --overlap.
            file.activate(&KeyId::new(*id).unwrap(), false).unwrap();
            file.activate(&KeyId::new(active).unwrap(), true).unwrap();
        }
        file.signing_config().unwrap().ring
    }

    fn usage(id: Option<&str>, tasks: u64, messages: u64) -> KeyUsage {
        KeyUsage {
            key_id: id.map(str::to_owned),
            alg: id.map(|_| Algorithm::HmacSha256),
            tasks,
            messages,
        }
    }

    fn view(rows: &[KeyStatus]) -> Vec<(Option<&str>, u64, u64, &str, bool)> {
        rows.iter()
            .map(|r| {
                (
                    r.key_id.as_deref(),
                    r.tasks,
                    r.messages,
                    r.advice(),
                    r.safe_to_retire(),
                )
            })
            .collect()
    }

    #[test]
    fn status_merges_the_ring_with_pending_work_and_advises() {
        let ring = ring(&["older", "old", "new"], "new", &["old"]);
        let rows = key_status(
            vec![
                usage(Some("old"), 3, 1),
                usage(None, 1, 0),
                usage(Some("gone"), 2, 0),
            ],
            &ring,
        );
        assert_eq!(
            view(&rows),
            vec![
                (Some("older"), 0, 0, "safe to retire", true),
                (
                    Some("old"),
                    3,
                    1,
                    "overlap: signs beside the active key; not safe to retire",
                    false
                ),
                (Some("new"), 0, 0, "active: signs new work", false),
                (
                    Some("gone"),
                    2,
                    0,
                    "NOT IN THE RING: this work will fail verification",
                    false
                ),
                (None, 1, 0, "unsigned work", false),
            ]
        );
    }

    #[test]
    fn a_freshly_added_key_is_not_safe_to_retire() {
        // k1 active, k2 just added: the old code called k2 "safe to retire".
        let ring = ring(&["k1", "k2"], "k1", &[]);
        let rows = key_status(vec![usage(Some("k1"), 5, 0)], &ring);
        assert_eq!(
            view(&rows),
            vec![
                (Some("k1"), 5, 0, "active: signs new work", false),
                (
                    Some("k2"),
                    0,
                    0,
                    "new: not active yet; activate it when workers know it",
                    false
                ),
            ]
        );
    }

    #[test]
    fn pending_messages_alone_keep_a_key() {
        let ring = ring(&["k1", "k2"], "k2", &[]);
        let rows = key_status(vec![usage(Some("k1"), 0, 2)], &ring);
        assert_eq!(rows[0].advice(), "keep: pending work is signed with it");
        assert!(!rows[0].safe_to_retire());
    }
}
