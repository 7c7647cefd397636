//! `signet bench deliver`: signed HTTP delivery end to end.
//!
//! Publishers put N messages for one target (its own `whsec_` secret,
//! sealed under a fresh master key) into a durable store, `concurrency`
//! calls at a time, each a batch of `--batch` messages as
//! `POST /v1/messages/batch` would publish them (`--batch 1`: one message
//! per call, as `POST /v1/messages`); the dispatcher claims them, signs
//! each attempt (Standard Webhooks) and POSTs it over real loopback sockets
//! to a receiver in this process, which verifies every signature with
//! `signet_sign::receiver` (tolerance window and replay guard on) and
//! answers 200.
//!
//! First `--warmup` messages (1 000 by default, as the Node sender in
//! `../shared/peers` warms up) are published and delivered unmeasured, so
//! connections, caches and the allocator are warm; then the measured run.
//!
//! Reported: deliveries per second (messages / wall time from the first
//! publish to the last verified delivery) and the publish→delivery latency
//! of each message (from just before its publish call to the moment the
//! receiver verified it). The store is checked afterwards: every message
//! succeeded. The last line printed is one JSON object, for scripts.

use axum::serve::ListenerExt as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Router;
use serde_json::json;
use signet_runtime::{
    MessageProducer, NewMessage, NewTarget, Producer, Shutdown, SsrfPolicy, TargetSecret,
    TargetService, MAX_BATCH_MESSAGES,
};
use signet_sign::receiver::{VerifiedWebhook, Verifier, WebhookRejection};
use signet_sign::sealed::MasterKey;
use signet_sign::Profile;
use signet_store::{IdempotencyScope, TaskState, MESSAGE_QUEUE};
use tokio::net::TcpListener;

use crate::commands::bench_queue::{
    batch_size, bench_url, pace, process_cpu_secs, since, thread_times, BenchStore,
};
use crate::commands::finish;
use crate::store_url::redact;

/// Default number of messages.
const DEFAULT_MESSAGES: usize = 20_000;
/// Default publishers in flight.
const DEFAULT_CONCURRENCY: usize = 64;
/// Default messages per publish call in a flood.
const DEFAULT_BATCH: usize = 100;
/// Default body size in bytes.
const DEFAULT_BODY_BYTES: usize = 256;
/// Default messages delivered before the measured run.
const DEFAULT_WARMUP: usize = 1_000;
/// Give up when no delivery was verified for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `signet bench deliver`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Messages to publish and deliver.
    #[arg(long, default_value_t = DEFAULT_MESSAGES, value_parser = at_least_one)]
    messages: usize,
    /// Messages published and delivered before the measured run, not
    /// counted in its figures (0: none).
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    warmup: usize,
    /// Publish calls in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = at_least_one)]
    concurrency: usize,
    /// Messages per publish call, 1 to 1000 (1 = one call per message, as
    /// `POST /v1/messages`; more = one `POST /v1/messages/batch`). Default:
    /// 100, or 5 ms worth of messages per publisher with --rate.
    #[arg(long, value_parser = batch_of)]
    batch: Option<usize>,
    /// Deliveries the dispatcher has in flight at once.
    #[arg(long, default_value_t = signet_runtime::dispatcher::DEFAULT_DELIVERY_CONCURRENCY, value_parser = at_least_one)]
    dispatch_concurrency: usize,
    /// Publish at this many messages per second in total instead of as
    /// fast as the publishers can: latency at a load the system sustains,
    /// rather than the backlog of a flood.
    #[arg(long, value_parser = at_least_one)]
    rate: Option<usize>,
    /// Size of each message's JSON body, in bytes (at least 16).
    #[arg(long, default_value_t = DEFAULT_BODY_BYTES)]
    body_bytes: usize,
    /// Store to use (default: a fresh SQLite file in a temporary directory,
    /// deleted after). With postgres://…, the run uses a fresh schema of
    /// that database and drops it after.
    #[arg(long)]
    database_url: Option<String>,
}

/// A batch size the publisher takes.
fn batch_of(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_MESSAGES).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a batch size of 1 to {MAX_BATCH_MESSAGES}"
        )),
    }
}

/// A count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("bench deliver", bench(args))
}

fn bench(args: Args) -> anyhow::Result<()> {
    if args.body_bytes < 16 {
        bail!("--body-bytes must be at least 16");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(bench_async(args))
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// When each message id was verified, first time only.
    at: HashMap<String, Instant>,
    /// Verified deliveries of an id already seen (the replay guard's 200).
    duplicates: usize,
    /// Requests that did not verify, with the first reason.
    rejected: usize,
    first_rejection: Option<String>,
}

#[derive(Clone)]
struct Receiver {
    verifier: Verifier,
    seen: Arc<Mutex<Seen>>,
    verified: Arc<AtomicUsize>,
}

impl axum::extract::FromRef<Receiver> for Verifier {
    fn from_ref(state: &Receiver) -> Self {
        state.verifier.clone()
    }
}

async fn receive(
    State(rx): State<Receiver>,
    hook: Result<VerifiedWebhook, WebhookRejection>,
) -> StatusCode {
    let now = Instant::now();
    let mut seen = match rx.seen.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    match hook {
        Ok(hook) => {
            let id = hook.id.unwrap_or_default();
            if seen.at.insert(id, now).is_some() {
                seen.duplicates += 1;
            } else {
                rx.verified.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::OK
        }
        Err(rejection) if rejection.is_duplicate() => {
            seen.duplicates += 1;
            StatusCode::OK
        }
        Err(rejection) => {
            seen.rejected += 1;
            if seen.first_rejection.is_none() {
                seen.first_rejection = Some(rejection.message());
            }
            rejection.status()
        }
    }
}

/// How the bench publishes: `concurrency` calls at a time, each of
/// `batch` messages for one target.
struct Plan {
    messages: MessageProducer,
    url: String,
    target: String,
    concurrency: usize,
    batch: usize,
    body_bytes: usize,
}

/// One message as a producer sends it to `POST /v1/messages`: built as
/// text directly, as a client does, not through a `serde_json::Value`.
#[derive(serde::Serialize)]
struct MessageJson<'a> {
    url: &'a str,
    target: &'a str,
    body: String,
    headers: &'a serde_json::Value,
}

impl Plan {
    /// Publishes messages `range` (their bodies numbered by it), at `rate`
    /// messages per second in total if given. Returns when each message's
    /// publish call started, by message id.
    async fn publish(
        &self,
        range: std::ops::Range<usize>,
        rate: Option<usize>,
    ) -> anyhow::Result<HashMap<String, Instant>> {
        let begun = tokio::time::Instant::now();
        let next = Arc::new(AtomicUsize::new(range.start));
        let headers = Arc::new(json!({"Content-Type": "application/json"}));
        let mut publishers = Vec::with_capacity(self.concurrency);
        for _ in 0..self.concurrency {
            let messages = self.messages.clone();
            let next = Arc::clone(&next);
            let url = self.url.clone();
            let target = self.target.clone();
            let headers = Arc::clone(&headers);
            let (start, end, batch, body_bytes) =
                (range.start, range.end, self.batch, self.body_bytes);
            let interval = rate.map(|rate| Duration::from_secs_f64(1.0 / rate as f64));
            publishers.push(tokio::spawn(async move {
                let mut published = Vec::new();
                loop {
                    let first = next.fetch_add(batch, Ordering::Relaxed);
                    if first >= end {
                        break;
                    }
                    if let Some(interval) = interval {
                        // Message n is due at n × interval after the start;
                        // a batch goes when its first message is due.
                        let due = interval.mul_f64((first - start) as f64);
                        tokio::time::sleep_until(begun + due).await;
                    }
                    let mut messages_of_call = Vec::with_capacity(batch);
                    for n in first..end.min(first + batch) {
                        let json = serde_json::to_string(&MessageJson {
                            url: &url,
                            target: &target,
                            body: body_of(n, body_bytes),
                            headers: &headers,
                        })?;
                        messages_of_call
                            .push(NewMessage::from_json(&json).map_err(|e| anyhow!("{e}"))?);
                    }
                    let at = Instant::now();
                    let out = if messages_of_call.len() == 1 {
                        let message = messages_of_call
                            .pop()
                            .ok_or_else(|| anyhow!("an empty batch"))?;
                        vec![messages
                            .publish(message, None)
                            .await
                            .map_err(|e| anyhow!("publish failed: {e}"))?]
                    } else {
                        messages
                            .publish_batch_as(messages_of_call, IdempotencyScope::Local)
                            .await
                            .map_err(|e| anyhow!("publish failed: {e}"))?
                    };
                    published.extend(out.into_iter().map(|e| (e.task.id().to_owned(), at)));
                }
                anyhow::Ok(published)
            }));
        }
        let mut published_at = HashMap::with_capacity(range.len());
        for p in publishers {
            let list = p.await.map_err(|e| anyhow!("publisher task: {e}"))??;
            published_at.extend(list);
        }
        Ok(published_at)
    }
}

/// Waits until the receiver has verified `count` messages in all; fails
/// (and stops the services) when none was verified for [`STALL_TIMEOUT`].
async fn wait_verified(
    verified: &AtomicUsize,
    count: usize,
    services: &Shutdown,
) -> anyhow::Result<()> {
    let mut last = 0;
    let mut last_progress = Instant::now();
    loop {
        let now = verified.load(Ordering::Relaxed);
        if now >= count {
            return Ok(());
        }
        if now != last {
            last = now;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_TIMEOUT {
            services.trigger();
            bail!(
                "no delivery was verified for {} s ({now} of {count} done); see the messages with `signet tasks ls --queue {MESSAGE_QUEUE}`",
                STALL_TIMEOUT.as_secs(),
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The `q` quantile of sorted `values` (nearest rank).
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    values[rank - 1]
}

/// A JSON body of about `bytes` bytes.
fn body_of(n: usize, bytes: usize) -> String {
    let head = format!(r#"{{"n":{n},"pad":""#);
    let pad = bytes.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

async fn bench_async(args: Args) -> anyhow::Result<()> {
    // Keep the temporary directory alive until the end of the run.
    let (_tmp, url) = bench_url(args.database_url.as_deref())?;
    let opened = BenchStore::open(&url).await?;
    let store = opened.store();

    // The target and its secret, sealed under a master key of this run.
    let targets = TargetService::new(Arc::clone(&store), Some(MasterKey::generate()));
    let secret = TargetSecret::generate();
    let key = Profile::Standard
        .parse_key(secret.expose_secret())
        .map_err(|e| anyhow!("the generated secret: {}", e.message()))?;
    let name = format!("bench-{:08x}", rand::random::<u32>());
    let (target, _) = targets
        .create(NewTarget {
            name: name.clone(),
            url_prefix: None,
            secret: Some(secret),
            rate_limit_per_s: None,
            max_concurrency: None,
            https_only: false,
        })
        .await
        .map_err(|e| anyhow!("cannot create the bench target: {e}"))?;

    // The receiver, verifying every request.
    let verifier = Verifier::profile(Profile::Standard, vec![key])
        .map_err(|e| anyhow!("the receiver's verifier: {}", e.message()))?;
    let seen = Arc::new(Mutex::new(Seen {
        at: HashMap::with_capacity(args.messages),
        ..Seen::default()
    }));
    let verified = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot listen on 127.0.0.1 for the receiver")?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(receive).with_state(Receiver {
        verifier,
        seen: Arc::clone(&seen),
        verified: Arc::clone(&verified),
    });
    let services = Shutdown::new();
    let receiver = {
        let mut stop = services.signal();
        tokio::spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.triggered().await })
                .await
        })
    };

    // The dispatcher: loopback is allowed for this run only.
    let ring = crate::commands::bench_queue::bench_ring(signet_sign::Algorithm::HmacSha256)?;
    let dispatcher = signet_runtime::Dispatcher::builder(Arc::clone(&store))
        .key_ring(&ring, true)
        .targets(targets.clone())
        .ssrf_policy(SsrfPolicy::parse_allowed("127.0.0.1/32")?)
        .concurrency(args.dispatch_concurrency)
        .poll_interval(Duration::from_millis(5))
        .build()
        .map_err(|e| anyhow!("cannot build the dispatcher: {e}"))?;
    let dispatcher = tokio::spawn(dispatcher.run(services.signal()));

    let producer = Producer::with_ring(Arc::clone(&store), Arc::new(ring.duplicate()), true)
        .map_err(|e| anyhow!("{e}"))?;
    let messages = MessageProducer::new(producer, targets);

    println!(
        "signet bench deliver: {} messages of {} bytes, store {} ({})",
        args.messages,
        args.body_bytes,
        redact(&url),
        opened.describe()
    );
    let pace = pace(args.rate, "messages");
    let batch = batch_size(args.batch, args.rate, args.concurrency, DEFAULT_BATCH);
    println!(
        "  {} publish calls in flight {pace}, {batch} message(s) per call, dispatcher concurrency {}, receiver http://{addr} verifying Standard Webhooks signatures",
        args.concurrency, args.dispatch_concurrency
    );

    let plan = Plan {
        messages: messages.clone(),
        url: format!("http://{addr}/hooks/bench"),
        target: target.id.clone(),
        concurrency: args.concurrency,
        batch,
        body_bytes: args.body_bytes,
    };
    // Warm-up: delivered and verified before the clock starts, as the Node
    // sender's first 1 000 are.
    if args.warmup > 0 {
        plan.publish(0..args.warmup, None).await?;
        wait_verified(&verified, args.warmup, &services).await?;
        println!("  warmed up with {} delivered messages", args.warmup);
    }
    let cpu_before = process_cpu_secs();
    let threads_before = thread_times();
    let writer_mark = opened.writer_mark();
    let expected = args.warmup + args.messages;

    let started = Instant::now();
    let published_at = plan.publish(args.warmup..expected, args.rate).await?;
    let publish_wall = started.elapsed();
    wait_verified(&verified, expected, &services).await?;
    let wall = started.elapsed();
    // Let the dispatcher record the last outcomes before it stops.
    let settle = Instant::now();
    let mut succeeded = 0;
    while settle.elapsed() < Duration::from_secs(30) {
        succeeded = store
            .counts()
            .await?
            .iter()
            .find(|q| q.queue == MESSAGE_QUEUE)
            .map_or(0, |q| q.count(TaskState::Succeeded));
        if succeeded >= expected as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    services.trigger();
    dispatcher
        .await
        .map_err(|e| anyhow!("dispatcher task: {e}"))?
        .map_err(|e| anyhow!("dispatcher: {e}"))?;
    receiver
        .await
        .map_err(|e| anyhow!("receiver task: {e}"))?
        .context("the receiver's listener failed")?;
    let stats = opened.stats(wall, writer_mark);
    let cpu = process_cpu_secs()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let threads = since(thread_times(), &threads_before);
    opened.finish().await;

    let seen = std::mem::take(&mut *seen.lock().map_err(|_| anyhow!("the receiver panicked"))?);
    let mut latencies_ms: Vec<f64> = published_at
        .iter()
        .filter_map(|(id, at)| {
            seen.at
                .get(id)
                .map(|got| got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies_ms.sort_unstable_by(f64::total_cmp);
    let missing = published_at
        .keys()
        .filter(|id| !seen.at.contains_key(*id))
        .count();
    let verified = published_at.len() - missing;
    // A message counts once it was both verified by the receiver and
    // recorded as succeeded by the store (the warm-up's were, before the
    // measured run began).
    let succeeded = usize::try_from(succeeded)
        .unwrap_or(usize::MAX)
        .saturating_sub(args.warmup);
    let failed = args
        .messages
        .saturating_sub(verified.min(succeeded))
        .max(missing);
    let per_s = args.messages as f64 / wall.as_secs_f64().max(1e-9);
    let p50 = quantile(&latencies_ms, 0.50);
    let p99 = quantile(&latencies_ms, 0.99);

    println!("  {stats}");
    if let Some(cpu) = cpu {
        println!(
            "  process CPU: {cpu:.2} s over {:.2} s wall ({:.0}% of one core)",
            wall.as_secs_f64(),
            100.0 * cpu / wall.as_secs_f64().max(1e-9)
        );
    }
    for t in threads.iter().take(3) {
        println!(
            "  thread {:<16} on CPU {:.2} s, waiting for a CPU {:.2} s (of {:.2} s wall)",
            t.name,
            t.on_cpu,
            t.waiting_for_cpu,
            wall.as_secs_f64()
        );
    }
    println!(
        "  published in {:.2} s ({:.0} messages/s); all verified after {:.2} s",
        publish_wall.as_secs_f64(),
        args.messages as f64 / publish_wall.as_secs_f64().max(1e-9),
        wall.as_secs_f64()
    );
    println!(
        "  receiver: {verified} verified, {} duplicate(s) answered 200, {} rejected{}",
        seen.duplicates,
        seen.rejected,
        seen.first_rejection
            .as_deref()
            .map_or_else(String::new, |r| format!(" (first: {r})"))
    );
    println!(
        "  store: {succeeded} of {} messages succeeded",
        args.messages
    );
    println!("deliveries/s: {per_s:.0}");
    println!("publish→delivery latency: p50 {p50:.2} ms, p99 {p99:.2} ms");
    println!(
        "{}",
        json!({
            "deliveries_per_s": (per_s * 10.0).round() / 10.0,
            "p50_ms": (p50 * 100.0).round() / 100.0,
            "p99_ms": (p99 * 100.0).round() / 100.0,
            "verified": verified,
            "failed": failed,
        })
    );
    if failed > 0 || seen.rejected > 0 {
        bail!("{failed} message(s) were not delivered and verified; the figures above are not a clean run");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_of_the_asked_size() {
        for (n, bytes) in [(0, 16), (7, 256), (123_456, 1024)] {
            let body = body_of(n, bytes);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["n"], n);
            assert_eq!(body.len(), bytes, "{body}");
        }
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
