//! The walk targets and schedules share: records with a unique name that
//! are created, read by id and by name, listed by name, updated (all but id
//! and `created_at_ms`) and deleted. `targets.rs` and `schedules.rs` each
//! describe their record with [`Named`] and a [`Plan`], and call [`walk`].

use std::fmt;

use async_trait::async_trait;

use super::{assert_conflict, assert_invalid, assert_not_found};
use crate::{Store, StoreResult};

/// A kind of named record and the store calls that keep it.
#[async_trait]
pub(super) trait Named: Clone + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// What the record is called in failure messages ("target").
    const KIND: &'static str;

    /// A valid record named `name`, with a fresh id.
    fn fresh(name: &str) -> Self;
    /// A well-formed id of this kind that no record has.
    fn unknown_id() -> String;
    /// The record's id.
    fn id(&self) -> &str;
    /// The record's name.
    fn name(&self) -> &str;
    /// The record's creation time.
    fn created_at_ms(&self) -> i64;
    /// The same record under another id.
    fn with_id(self, id: &str) -> Self;
    /// The same record under another name.
    fn with_name(self, name: &str) -> Self;
    /// The same record with another creation time.
    fn with_created_at_ms(self, at_ms: i64) -> Self;

    /// `create_*`.
    async fn create(s: &dyn Store, record: Self) -> StoreResult<()>;
    /// Read by id.
    async fn by_id(s: &dyn Store, id: &str) -> StoreResult<Option<Self>>;
    /// Read by name.
    async fn by_name(s: &dyn Store, name: &str) -> StoreResult<Option<Self>>;
    /// `list_*`.
    async fn list(s: &dyn Store) -> StoreResult<Vec<Self>>;
    /// `update_*`.
    async fn update(s: &dyn Store, record: Self) -> StoreResult<()>;
    /// `delete_*`.
    async fn delete(s: &dyn Store, id: &str) -> StoreResult<()>;
}

/// Implements [`Named`] for a record type with public `id`, `name` and
/// `created_at_ms` fields: its kind, how to make a fresh one, the id type
/// of its kind, and the six store calls that keep it.
macro_rules! named_record {
    (
        $record:ty, $kind:literal,
        fresh($name:ident) => $fresh:expr,
        id: $id:ty,
        calls: $create:ident, $by_id:ident, $by_name:ident, $list:ident, $update:ident, $delete:ident $(,)?
    ) => {
        #[async_trait::async_trait]
        impl $crate::testkit::named::Named for $record {
            const KIND: &'static str = $kind;

            fn fresh($name: &str) -> Self {
                $fresh
            }
            fn unknown_id() -> String {
                <$id>::generate().to_string()
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn created_at_ms(&self) -> i64 {
                self.created_at_ms
            }
            fn with_id(self, id: &str) -> Self {
                Self {
                    id: id.to_owned(),
                    ..self
                }
            }
            fn with_name(self, name: &str) -> Self {
                Self {
                    name: name.to_owned(),
                    ..self
                }
            }
            fn with_created_at_ms(self, at_ms: i64) -> Self {
                Self {
                    created_at_ms: at_ms,
                    ..self
                }
            }

            async fn create(s: &dyn $crate::Store, record: Self) -> $crate::StoreResult<()> {
                s.$create(record).await
            }
            async fn by_id(s: &dyn $crate::Store, id: &str) -> $crate::StoreResult<Option<Self>> {
                s.$by_id(id).await
            }
            async fn by_name(
                s: &dyn $crate::Store,
                name: &str,
            ) -> $crate::StoreResult<Option<Self>> {
                s.$by_name(name).await
            }
            async fn list(s: &dyn $crate::Store) -> $crate::StoreResult<Vec<Self>> {
                s.$list().await
            }
            async fn update(s: &dyn $crate::Store, record: Self) -> $crate::StoreResult<()> {
                s.$update(record).await
            }
            async fn delete(s: &dyn $crate::Store, id: &str) -> $crate::StoreResult<()> {
                s.$delete(id).await
            }
        }
    };
}
pub(super) use named_record;

/// The records one walk uses.
pub(super) struct Plan<R> {
    /// Created first, with every optional field set.
    pub(super) a: R,
    /// Created second, with a name that sorts before `a`'s.
    pub(super) b: R,
    /// Records `create` must refuse as `Invalid`, each with what is wrong.
    pub(super) refused: Vec<(&'static str, R)>,
    /// `a` with every field but its id and `created_at_ms` changed, its
    /// name included. (The walk changes `created_at_ms` too, which an
    /// update must ignore.)
    pub(super) changed: R,
    /// Another update of a stored record that keeps its name.
    pub(super) same_name: fn(&R) -> R,
    /// An update `update` must refuse as `Invalid` (what is wrong, and how
    /// to make it from a stored record).
    pub(super) bad_update: (&'static str, fn(&R) -> R),
}

/// Create, read, list, update and delete `plan`'s records on an empty
/// store; names are unique throughout, and every refused call stores
/// nothing.
pub(super) async fn walk<R: Named>(s: &dyn Store, plan: Plan<R>) {
    let kind = R::KIND;
    let Plan {
        a,
        b,
        refused,
        changed,
        same_name,
        bad_update,
    } = plan;
    assert!(R::list(s).await.expect("list").is_empty());
    R::create(s, a.clone()).await.expect("create a");
    R::create(s, b.clone()).await.expect("create b");

    assert_eq!(R::by_id(s, a.id()).await.expect(kind), Some(a.clone()));
    assert_eq!(
        R::by_name(s, b.name()).await.expect("by name"),
        Some(b.clone())
    );
    assert_eq!(R::by_id(s, &R::unknown_id()).await.expect("unknown"), None);
    assert_eq!(R::by_name(s, "nobody").await.expect("unknown"), None);
    assert_eq!(
        R::list(s).await.expect("list"),
        vec![b.clone(), a.clone()],
        "by name"
    );

    // Conflicts and refusals store nothing.
    let dup = R::fresh(a.name());
    assert_conflict(
        &format!("a second {kind} with the same name"),
        R::create(s, dup.clone()).await,
    );
    assert_eq!(R::by_id(s, dup.id()).await.expect(kind), None);
    assert_conflict(
        &format!("a second {kind} with the same id"),
        R::create(s, R::fresh("another").with_id(a.id())).await,
    );
    assert_eq!(R::by_name(s, "another").await.expect("by name"), None);
    for (what, record) in refused {
        assert_invalid(what, R::create(s, record).await);
    }
    assert_eq!(R::list(s).await.expect("list").len(), 2);

    // Update replaces everything but id and created_at_ms.
    let changed = changed.with_created_at_ms(a.created_at_ms() + 999);
    R::update(s, changed.clone()).await.expect("update");
    let want = changed.with_created_at_ms(a.created_at_ms());
    assert_eq!(R::by_id(s, a.id()).await.expect(kind), Some(want.clone()));
    assert_eq!(R::by_name(s, a.name()).await.expect("old name"), None);
    assert_eq!(
        R::by_name(s, want.name()).await.expect("new name"),
        Some(want.clone())
    );
    assert_conflict(
        &format!("renaming onto another {kind}'s name"),
        R::update(s, same_name(&want).with_name(b.name())).await,
    );
    assert_eq!(R::by_id(s, a.id()).await.expect(kind), Some(want.clone()));
    let kept = same_name(&want);
    R::update(s, kept.clone())
        .await
        .expect("update keeping its own name");
    assert_eq!(R::by_id(s, a.id()).await.expect(kind), Some(kept.clone()));
    assert_not_found(
        &format!("update an unknown {kind}"),
        R::update(s, R::fresh("ghost")).await,
    );
    assert_eq!(R::by_name(s, "ghost").await.expect("by name"), None);
    let (what, bad) = bad_update;
    assert_invalid(what, R::update(s, bad(&kept)).await);
    assert_eq!(R::by_id(s, a.id()).await.expect(kind), Some(kept.clone()));

    // Delete.
    R::delete(s, b.id()).await.expect("delete");
    assert_eq!(R::by_id(s, b.id()).await.expect(kind), None);
    assert_eq!(R::by_name(s, b.name()).await.expect("by name"), None);
    assert_not_found("delete twice", R::delete(s, b.id()).await);
    assert_eq!(R::list(s).await.expect("list"), vec![kept]);
    R::create(s, R::fresh(b.name()))
        .await
        .unwrap_or_else(|e| panic!("a deleted {kind}'s name is free again: {e}"));
}
