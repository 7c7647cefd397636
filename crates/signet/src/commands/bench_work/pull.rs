//! The worker process of `signet bench work --worker http`: a small Rust
//! client of the pull protocol (docs/worker-protocol.md), written as an SDK
//! in another language would be. Each of its claim loops, on its own
//! keep-alive connection, claims up to 100 tasks with a long poll, verifies
//! every task's signature over the envelope rebuilt from the answer (args
//! from `args_b64`) with the run's key ring, runs a trivial handler (the
//! args parsed as JSON), and reports the batch in one `complete` (a task
//! that fails verification: one `fail`, dead `signature-invalid`, never
//! run).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use signet_sign::{Algorithm, KeyRing, TaskEnvelope};

use super::http::{excerpt, Conn};

/// Most tasks one claim asks for (the protocol's limit).
const CLAIM_MAX: u64 = 100;
/// How long an empty claim waits for work, ms: short enough that a loop
/// sees the end of the run soon.
const CLAIM_WAIT_MS: u64 = 1000;
/// The lease asked for, ms.
const LEASE_MS: u64 = 30_000;

#[derive(Deserialize)]
struct ClaimAnswer {
    tasks: Vec<Claimed>,
}

#[derive(Deserialize)]
struct Claimed {
    lease: String,
    envelope: Envelope,
    signature: Option<Signature>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    queue: String,
    name: String,
    args_b64: String,
    headers: BTreeMap<String, String>,
    created_at_ms: i64,
    not_before_ms: Option<i64>,
    expires_at_ms: Option<i64>,
    max_attempts: u32,
    callback_url: Option<String>,
}

#[derive(Deserialize)]
struct Signature {
    alg: String,
    key_id: String,
    sig: String,
}

#[derive(Deserialize)]
struct Reports {
    items: Vec<serde_json::Value>,
}

/// What the loops did.
#[derive(Default)]
pub(crate) struct Counts {
    /// Tasks completed (the server answered `succeeded`).
    pub(crate) completed: AtomicU64,
    /// Tasks reported dead `signature-invalid`.
    pub(crate) refused: AtomicU64,
    /// Report items the server answered with an error.
    pub(crate) lost: AtomicU64,
}

/// The envelope as signed, rebuilt from a claimed task, and its args.
fn rebuild(env: Envelope) -> anyhow::Result<TaskEnvelope> {
    let args = STANDARD
        .decode(env.args_b64.as_bytes())
        .map_err(|e| anyhow!("task {}: args_b64 is not base64: {e}", env.id))?;
    Ok(TaskEnvelope {
        id: env.id,
        queue: env.queue,
        name: env.name,
        args,
        headers: env.headers,
        created_at_ms: env.created_at_ms,
        not_before_ms: env.not_before_ms,
        expires_at_ms: env.expires_at_ms,
        max_attempts: env.max_attempts,
        callback_url: env.callback_url,
    })
}

/// Checks a task's signature; `Err` is the `signature-invalid` detail,
/// starting with the verification outcome.
fn verify(
    envelope: &TaskEnvelope,
    signature: Option<&Signature>,
    ring: &KeyRing,
) -> Result<(), String> {
    let Some(sig) = signature else {
        return Err("missing: the task is not signed".to_owned());
    };
    let alg: Algorithm = sig
        .alg
        .parse()
        .map_err(|_| format!("malformed: unknown algorithm {:?}", sig.alg))?;
    let bytes = STANDARD
        .decode(sig.sig.as_bytes())
        .map_err(|e| format!("malformed: the signature is not base64: {e}"))?;
    envelope
        .verify(alg, &sig.key_id, &bytes, ring)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", e.reason()))
}

/// One claim loop, until `stop`: claim, verify, run, report.
pub(crate) async fn claim_loop(
    addr: String,
    api_key: String,
    queue: String,
    ring: Arc<KeyRing>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> anyhow::Result<()> {
    let mut conn = Conn::open(&addr, Some(&api_key)).await?;
    let claim = json!({
        "queues": [queue],
        "max": CLAIM_MAX,
        "wait_ms": CLAIM_WAIT_MS,
        "lease_ms": LEASE_MS,
    })
    .to_string()
    .into_bytes();
    while !stop.load(Ordering::Relaxed) {
        let (status, bytes) = conn.post("/v1/work/claim", claim.clone()).await?;
        if status != StatusCode::OK {
            bail!("a claim answered {status}: {}", excerpt(&bytes));
        }
        let answer: ClaimAnswer = serde_json::from_slice(&bytes)
            .context("a claim's answer is not the documented JSON")?;
        if answer.tasks.is_empty() {
            continue;
        }
        let mut done = Vec::with_capacity(answer.tasks.len());
        let mut refused = Vec::new();
        for task in answer.tasks {
            let envelope = rebuild(task.envelope)?;
            match verify(&envelope, task.signature.as_ref(), &ring) {
                Ok(()) => {
                    // The handler: the args as JSON, nothing else.
                    let _: serde::de::IgnoredAny = serde_json::from_slice(&envelope.args)
                        .with_context(|| format!("task {}: args are not JSON", envelope.id))?;
                    done.push(json!({ "lease": task.lease }));
                }
                Err(detail) => refused.push(json!({
                    "lease": task.lease,
                    "dead": true,
                    "reason": "signature-invalid",
                    "detail": detail,
                })),
            }
        }
        if !done.is_empty() {
            let n = report(&mut conn, "/v1/work/complete", done, &counts).await?;
            counts.completed.fetch_add(n, Ordering::Relaxed);
        }
        if !refused.is_empty() {
            let n = report(&mut conn, "/v1/work/fail", refused, &counts).await?;
            counts.refused.fetch_add(n, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Sends one batch report; answers how many items the server took.
async fn report(
    conn: &mut Conn,
    path: &str,
    items: Vec<serde_json::Value>,
    counts: &Counts,
) -> anyhow::Result<u64> {
    let body = json!({ "items": items }).to_string().into_bytes();
    let (status, bytes) = conn.post(path, body).await?;
    if status != StatusCode::OK {
        bail!("{path} answered {status}: {}", excerpt(&bytes));
    }
    let answer: Reports = serde_json::from_slice(&bytes)
        .with_context(|| format!("{path}: not the documented JSON"))?;
    let lost = answer
        .items
        .iter()
        .filter(|i| i.get("error").is_some())
        .count() as u64;
    counts.lost.fetch_add(lost, Ordering::Relaxed);
    Ok(answer.items.len() as u64 - lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_sign::{HmacSecret, Key, KeyId, KeyMaterial};

    fn envelope() -> Envelope {
        Envelope {
            id: "task_0190000000007000800000000000be01".into(),
            queue: "q".into(),
            name: "bench.work".into(),
            args_b64: STANDARD.encode(br#"{"i":1}"#),
            headers: BTreeMap::new(),
            created_at_ms: 1_700_000_000_000,
            not_before_ms: None,
            expires_at_ms: None,
            max_attempts: 3,
            callback_url: None,
        }
    }

    #[test]
    fn the_worker_verifies_what_was_signed_and_names_the_outcome() {
        let ring = KeyRing::single(Key::new(
            KeyId::new("k").unwrap(),
            KeyMaterial::Hmac(HmacSecret::new(vec![7u8; 32]).unwrap()),
        ));
        let env = rebuild(envelope()).unwrap();
        let signed = env.sign(&ring).unwrap();
        let good = Signature {
            alg: signed.alg.to_string(),
            key_id: "k".into(),
            sig: STANDARD.encode(&signed.sig),
        };
        assert_eq!(verify(&env, Some(&good), &ring), Ok(()));
        let mut tampered = env.clone();
        tampered.args = br#"{"i":2}"#.to_vec();
        let e = verify(&tampered, Some(&good), &ring).unwrap_err();
        assert!(e.starts_with("mismatch:"), "{e}");
        assert!(verify(&env, None, &ring)
            .unwrap_err()
            .starts_with("missing:"));
        let other = Signature {
            key_id: "nope".into(),
            ..good
        };
        let e = verify(&env, Some(&other), &ring).unwrap_err();
        assert!(e.starts_with("unknown-key:"), "{e}");
    }
}
