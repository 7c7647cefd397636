//! Targets: the named-record walk of [`named`], with what a target holds.

use std::sync::Arc;

use super::named::{self, Plan};
use super::{new_target, T0};
use crate::{ScheduleId, Store, TargetId, TargetRecord};

named::named_record!(
    TargetRecord, "target",
    fresh(name) => new_target(name),
    id: TargetId,
    calls: create_target, target, target_by_name, list_targets, update_target, delete_target,
);

/// Targets: create, read by id and name, list by name, update, delete;
/// names are unique.
pub(super) async fn targets(store: Arc<dyn Store>) {
    let mut a = new_target("zeta-billing");
    a.url_prefix = Some("https://billing.example.com/hooks/".into());
    a.sealed_secrets = (0..=255u8).collect();
    a.secret_fingerprint = "whsec_ab12".into();
    a.rate_limit_per_s = Some(50);
    a.max_concurrency = Some(4);
    a.https_only = true;
    let mut b = new_target("alpha.orders:v2");
    b.created_at_ms = T0 + 1;
    b.updated_at_ms = T0 + 1;
    let refused = vec![
        ("schedule id", {
            let mut t = new_target("x1");
            t.id = ScheduleId::generate().to_string();
            t
        }),
        ("empty name", new_target("")),
        ("name with a space", new_target("two words")),
        ("empty sealed secrets", {
            let mut t = new_target("x2");
            t.sealed_secrets.clear();
            t
        }),
        ("rate limit 0", {
            let mut t = new_target("x3");
            t.rate_limit_per_s = Some(0);
            t
        }),
        ("concurrency 0", {
            let mut t = new_target("x4");
            t.max_concurrency = Some(0);
            t
        }),
    ];
    let changed = TargetRecord {
        name: "zeta-billing-eu".into(),
        url_prefix: None,
        sealed_secrets: vec![9; 48],
        secret_fingerprint: "whsec_cd34".into(),
        rate_limit_per_s: None,
        max_concurrency: Some(1),
        https_only: false,
        updated_at_ms: T0 + 100,
        ..a.clone()
    };
    let plan = Plan {
        a,
        b,
        refused,
        changed,
        same_name: |stored| TargetRecord {
            https_only: true,
            updated_at_ms: T0 + 300,
            ..stored.clone()
        },
        bad_update: ("update with empty sealed secrets", |stored| TargetRecord {
            sealed_secrets: Vec::new(),
            ..stored.clone()
        }),
    };
    named::walk(&*store, plan).await;
}
