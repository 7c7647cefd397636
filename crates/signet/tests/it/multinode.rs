//! Several processes on one PostgreSQL store, killed and disconnected
//! mid-run.
//!
//! - `three_nodes_two_workers_survive_sigkills`: three `signet serve`
//!   nodes and two example workers on one schema (of the machine's server,
//!   `SIGNET_TEST_DATABASE_URL`); 20 000 tasks enqueued over HTTP spread
//!   across the nodes, and a schedule firing every second; mid-run one
//!   worker and the leading node are SIGKILLed. Every task then succeeded
//!   exactly once, every due time of the schedule fired exactly once, and
//!   leadership moved to another node.
//! - `processes_reconnect_after_postgres_restarts`: one node and one worker
//!   on a private PostgreSQL cluster (initdb in a temp dir, never the shared
//!   server), restarted twice with `pg_ctl restart -m fast` mid-run; both
//!   processes stay up and every task succeeds exactly once.
//!
//! Enqueues carry an `Idempotency-Key`, so a request whose node died before
//! answering is sent again to another node without making a second task.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signet_postgres::{PostgresOptions, PostgresStore};
use signet_store::{Store, TaskFilter, TaskRow, TaskState};

use super::serve::worker_or_skip;
use super::support::{json, must_not_skip, only_env, Guard, Server};

const HMAC_KEY: &str = "k1:bXVsdGlub2RlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchIQ==";
/// The role `signet serve` elects a leader for.
const SERVICES_ROLE: &str = "services";
/// The queue the enqueued tasks go to.
const TASK_QUEUE: &str = "mn";
/// The queue the schedule fires into.
const CRON_QUEUE: &str = "mn-cron";
/// Tries of one enqueue, 50 ms apart, before the test gives up (a node
/// restarting its database connections answers 503 meanwhile).
const RETRIES: u32 = 600;
/// Longest wait for the queues to drain after the last enqueue.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

fn signing_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SIGNET_SIGNING_KEYS", HMAC_KEY),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
    ]
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `SIGNET_TEST_DATABASE_URL`, or `None` after printing why the test is
/// skipped (failing instead under CI).
pub(crate) fn test_database_url(test: &str) -> Option<String> {
    match std::env::var("SIGNET_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                !must_not_skip(),
                "{test}: SIGNET_TEST_DATABASE_URL is not set, and CI requires the PostgreSQL tests"
            );
            eprintln!("SKIPPED {test}: SIGNET_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// A schema name no other run uses.
pub(crate) fn fresh_schema(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        rand::random::<u32>() & 0x0fff_ffff
    )
}

/// The test's own connection to the store, and the schema it drops when the
/// test ends (also when it fails).
pub(crate) struct TestStore {
    pub(crate) store: Arc<PostgresStore>,
    runtime: tokio::runtime::Runtime,
}

impl TestStore {
    pub(crate) fn open(url: &str, schema: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let options = PostgresOptions {
            schema: Some(schema.to_owned()),
            pool_size: 4,
            ..PostgresOptions::default()
        };
        let store = runtime
            .block_on(PostgresStore::connect(url, options))
            .unwrap_or_else(|e| panic!("cannot open the test schema {schema}: {e}"));
        Self {
            store: Arc::new(store),
            runtime,
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Every task of `queue`, newest first.
    fn tasks(&self, queue: &str) -> Vec<TaskRow> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .block_on(self.store.list_tasks(TaskFilter {
                    queue: Some(queue.to_owned()),
                    state: None,
                    include_internal: false,
                    limit: 1000,
                    cursor: cursor.take(),
                }))
                .expect("list tasks");
            out.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }

    /// Tasks of `queue` not yet in a final state.
    fn unfinished(&self, queue: &str) -> u64 {
        let counts = self.block_on(self.store.counts()).expect("counts");
        counts
            .iter()
            .filter(|c| c.queue == queue)
            .flat_map(|c| c.counts.iter())
            .filter(|(state, _)| !state.is_final())
            .map(|(_, n)| *n)
            .sum()
    }

    /// Waits until `queue` holds `expected` tasks (at least) and none is
    /// unfinished.
    pub(super) fn wait_drained(&self, queue: &str, expected: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let counts = self.block_on(self.store.counts()).expect("counts");
            let total: u64 = counts
                .iter()
                .filter(|c| c.queue == queue)
                .flat_map(|c| c.counts.iter())
                .map(|(_, n)| *n)
                .sum();
            let open = self.unfinished(queue);
            if open == 0 && total >= expected as u64 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queue {queue} did not drain within {within:?}: {total} tasks, {open} unfinished: {counts:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.block_on(self.store.danger_drop_schema()) {
            eprintln!("could not drop the test schema: {e}");
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
            addr: addr.to_owned(),
        })
    }

    /// One request; `Err` on any transport problem (the node died).
    fn request(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        extra_header: Option<(&str, &str)>,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let extra = extra_header.map_or_else(String::new, |(k, v)| format!("{k}: {v}\r\n"));
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let broken =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(broken("connection closed before the status line"));
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| broken("no status line"))?;
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(broken("connection closed in the headers"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| broken("response without Content-Length"))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Sends `POST /v1/tasks` for every index `first, first + step, …` below
/// `count`, starting at node `home` and moving to the next node whenever a
/// node stops answering. Returns (index, task id) pairs.
#[allow(clippy::too_many_arguments)]
fn enqueue_range(
    addrs: &[String],
    key: &str,
    home: usize,
    first: usize,
    step: usize,
    count: usize,
    done: &AtomicUsize,
    tag: &str,
) -> Vec<(usize, String)> {
    let mut node = home;
    let mut conn: Option<Conn> = None;
    let mut out = Vec::new();
    for i in (first..count).step_by(step) {
        let body = format!(
            r#"{{"queue":"{TASK_QUEUE}","task":"text.stats","args":{{"text":"task number {i}"}}}}"#
        );
        let idem = format!("{tag}-{i}");
        let mut failures = 0;
        let id = loop {
            if conn.is_none() {
                conn = Conn::open(&addrs[node]).ok();
            }
            let result = match conn.as_mut() {
                Some(c) => c.request(
                    "POST",
                    "/v1/tasks",
                    key,
                    Some(("Idempotency-Key", &idem)),
                    &body,
                ),
                None => Err(std::io::Error::other("connect failed")),
            };
            match result {
                Ok((201 | 200, text)) => {
                    break json(&text)["id"]
                        .as_str()
                        .expect("the task has an id")
                        .to_owned();
                }
                Ok((status, text)) if status >= 500 || status == 429 => {
                    failures += 1;
                    assert!(
                        failures < RETRIES,
                        "task {i}: {status} {text} (still after {RETRIES} tries)"
                    );
                    conn = None;
                    node = (node + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok((status, text)) => panic!("enqueue {i} was refused: {status} {text}"),
                Err(_) => {
                    failures += 1;
                    assert!(failures < RETRIES, "task {i}: no node answers");
                    conn = None;
                    node = (node + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        out.push((i, id));
        done.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// Starts `threads` enqueuing threads, spread over the nodes, for `count`
/// tasks in all.
fn spawn_producers(
    addrs: Vec<String>,
    key: String,
    threads: usize,
    count: usize,
    done: Arc<AtomicUsize>,
    tag: &'static str,
) -> Vec<std::thread::JoinHandle<Vec<(usize, String)>>> {
    let addrs = Arc::new(addrs);
    (0..threads)
        .map(|t| {
            let addrs = Arc::clone(&addrs);
            let key = key.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                enqueue_range(&addrs, &key, t % addrs.len(), t, threads, count, &done, tag)
            })
        })
        .collect()
}

/// Joins the producers and returns index → task id, checking that every
/// index got exactly one id.
fn join_producers(
    handles: Vec<std::thread::JoinHandle<Vec<(usize, String)>>>,
    count: usize,
) -> HashMap<usize, String> {
    let mut ids = HashMap::new();
    for handle in handles {
        for (i, id) in handle.join().expect("a producer thread panicked") {
            assert!(ids.insert(i, id).is_none(), "index {i} enqueued twice");
        }
    }
    assert_eq!(ids.len(), count, "some enqueues did not finish");
    ids
}

/// Checks that `rows` (every task of the queue) are exactly the enqueued
/// tasks, each once and succeeded.
fn assert_each_succeeded_once(rows: &[TaskRow], enqueued: &HashMap<usize, String>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        *seen.entry(row.id()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "task ids stored more than once: {twice:?}"
    );
    let mut lost = Vec::new();
    for (i, id) in enqueued {
        if !seen.contains_key(id.as_str()) {
            lost.push((i, id));
        }
    }
    assert!(
        lost.is_empty(),
        "{} enqueued tasks are missing: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(
        rows.len(),
        enqueued.len(),
        "the queue holds tasks nobody enqueued"
    );
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        *by_state.entry(format!("{:?}", row.state)).or_default() += 1;
    }
    let not_succeeded: Vec<_> = rows
        .iter()
        .filter(|r| r.state != TaskState::Succeeded)
        .take(5)
        .map(|r| {
            (
                r.id().to_owned(),
                r.state,
                r.last_error.clone(),
                r.dead_detail.clone(),
            )
        })
        .collect();
    assert!(
        not_succeeded.is_empty(),
        "not every task succeeded: {by_state:?}; for example {not_succeeded:?}"
    );
    for row in rows {
        assert!(
            row.result.is_some(),
            "{} succeeded without a result",
            row.id()
        );
        assert!(row.lease_owner.is_none(), "{} still leased", row.id());
    }
}

/// Starts a worker on `queues` of the store.
pub(super) fn start_worker(
    bin: &Path,
    url: &str,
    schema: &str,
    queues: &str,
    outbox: &Path,
) -> Guard {
    let mut cmd = Command::new(bin);
    cmd.args(["--database-url", url, "--database-schema", schema])
        .args(["--queue", queues, "--concurrency", "32"])
        .args(["--lease-ms", "2000", "--poll-ms", "20"])
        .arg("--outbox")
        .arg(outbox)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    only_env(&mut cmd, &[]);
    cmd.envs(signing_env());
    Guard(Some(cmd.spawn().expect("start the example worker")))
}

/// Fails the test if the process has exited, saying how.
fn assert_running(guard: &mut Guard, what: &str) {
    let child = guard
        .0
        .as_mut()
        .expect("the process was stopped by the test");
    if let Some(status) = child.try_wait().expect("poll the child") {
        panic!(
            "{what} exited ({status}); if it is the example worker refusing a postgres:// URL, \
             target/ holds a stale build: run cargo build -p signet-example-worker"
        );
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a process.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Running tasks of [`TASK_QUEUE`] whose lease owner starts with `owner`.
fn running_under(store: &TestStore, owner: &str) -> HashSet<String> {
    let page = store
        .block_on(store.store.list_tasks(TaskFilter {
            queue: Some(TASK_QUEUE.to_owned()),
            state: Some(TaskState::Running),
            include_internal: false,
            limit: 1000,
            cursor: None,
        }))
        .expect("list running tasks");
    page.items
        .iter()
        .filter(|r| {
            r.lease_owner
                .as_deref()
                .is_some_and(|o| o.starts_with(owner))
        })
        .map(|r| r.id().to_owned())
        .collect()
}

/// Freezes the worker (SIGSTOP) at a moment it holds running tasks of
/// [`TASK_QUEUE`], so a SIGKILL next surely orphans them; returns their ids.
/// A statement the worker sent just before it froze may still land, so only
/// tasks still running under it a second later count. The worker's id
/// starts with `worker-<pid>-`.
fn freeze_holding_tasks(store: &TestStore, worker: &mut Guard) -> HashSet<String> {
    let pid = worker.0.as_ref().expect("the worker runs").id();
    let owner = format!("worker-{pid}-");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        signal(pid, "STOP");
        let first = running_under(store, &owner);
        if !first.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
            let held: HashSet<String> = running_under(store, &owner)
                .intersection(&first)
                .cloned()
                .collect();
            if !held.is_empty() {
                return held;
            }
        }
        signal(pid, "CONT");
        assert!(
            Instant::now() < deadline,
            "the worker {pid} never held a running task"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many of `rows` ran more than once (their first worker died or
/// lost the lease).
fn rerun(rows: &[TaskRow]) -> usize {
    rows.iter().filter(|r| r.attempt > 1).count()
}

/// Starts a node on the store.
pub(crate) fn start_node(url: &str, schema: &str, node_id: &str) -> (Server, Option<String>) {
    start_node_with(url, schema, node_id, &[], &[])
}

/// Starts a node on the store with more variables and arguments.
pub(crate) fn start_node_with(
    url: &str,
    schema: &str,
    node_id: &str,
    env: &[(&str, &str)],
    extra: &[&str],
) -> (Server, Option<String>) {
    let mut vars = signing_env();
    vars.extend_from_slice(env);
    let mut args = vec![
        "--database-schema",
        schema,
        "--node-id",
        node_id,
        "--leader-ttl",
        "3s",
        "--rate-limit-per-key",
        "0",
        "--rate-limit-per-ip",
        "0",
        "--shutdown-grace",
        "5s",
    ];
    args.extend_from_slice(extra);
    Server::start(url, &vars, &args)
}

/// The fire time in a schedule task's idempotency key
/// `schedule:<id>:<unix ms>`.
fn fire_time(row: &TaskRow, schedule_id: &str) -> i64 {
    let key = row
        .idempotency_key
        .as_deref()
        .unwrap_or_else(|| panic!("schedule task {} has no idempotency key", row.id()));
    key.strip_prefix(&format!("schedule:{schedule_id}:"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{key:?} is not a key of schedule {schedule_id}"))
}

/// Creates a schedule firing a `text.stats` task into [`CRON_QUEUE`] every
/// second; returns its id and first due time (unix ms).
fn create_every_second_schedule(node: &Server) -> (String, i64) {
    let (status, body) = node.http(
        "POST",
        "/v1/schedules",
        Some(&format!(
            r#"{{"name":"every-second","cron":"* * * * * *","task":{{"queue":"{CRON_QUEUE}","task":"text.stats","args":{{"text":"tick"}}}}}}"#
        )),
    );
    assert_eq!(status, 201, "{body}");
    let schedule = json(&body);
    (
        schedule["id"].as_str().unwrap().to_owned(),
        schedule["next_fire_at_ms"].as_i64().unwrap(),
    )
}

/// Checks that every due time of the schedule from `first_due` to now
/// fired exactly once and its task succeeded, and that nothing else fired;
/// pauses the schedule. Returns how many due times fired.
fn check_every_second_schedule(
    store: &TestStore,
    node: &Server,
    schedule_id: &str,
    first_due: i64,
) -> usize {
    // The schedule: wait until every due time up to now has been handled
    // (the stored next due time is past it), then pause it and let the
    // fired tasks finish. At least a few due times are looked at.
    while now_ms() < first_due + 4000 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = now_ms();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = node.http("GET", &format!("/v1/schedules/{schedule_id}"), None);
        assert_eq!(status, 200, "{body}");
        if json(&body)["next_fire_at_ms"]
            .as_i64()
            .is_some_and(|next| next > end)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not catch up with {end}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = node.http("POST", &format!("/v1/schedules/{schedule_id}/pause"), None);
    assert_eq!(status, 200, "{body}");
    store.wait_drained(CRON_QUEUE, 1, Duration::from_secs(30));

    // Every due time from the first to `end` fired exactly once, and
    // nothing else fired.
    let fired = store.tasks(CRON_QUEUE);
    let mut times: BTreeMap<i64, usize> = BTreeMap::new();
    for row in &fired {
        assert_eq!(
            row.state,
            TaskState::Succeeded,
            "schedule task {:?}",
            row.id()
        );
        *times.entry(fire_time(row, schedule_id)).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "due times fired more than once: {twice:?}"
    );
    let mut missing = Vec::new();
    let mut due = first_due;
    while due <= end {
        if !times.contains_key(&due) {
            missing.push(due);
        }
        due += 1000;
    }
    assert!(
        missing.is_empty(),
        "due times between {first_due} and {end} that never fired: {missing:?} (fired: {:?})",
        times.keys().collect::<Vec<_>>()
    );
    for t in times.keys() {
        assert!(
            *t >= first_due && (t - first_due) % 1000 == 0,
            "fired for {t}, which is not a due time of the schedule"
        );
    }
    assert!(
        times.len() >= 3,
        "the run was too short to see the schedule fire: {times:?}"
    );
    times.len()
}

#[test]
fn three_nodes_two_workers_survive_sigkills() {
    const TEST: &str = "three_nodes_two_workers_survive_sigkills";
    const TASKS: usize = 20_000;
    let Some(url) = test_database_url(TEST) else {
        return;
    };
    let Some(worker_bin) = worker_or_skip(TEST) else {
        return;
    };
    let started = Instant::now();
    let schema = fresh_schema("it_multinode");
    let store = TestStore::open(&url, &schema);
    let dir = tempfile::tempdir().unwrap();

    // The first node finds no API key and prints one; the others share it.
    let node_ids = ["node-a", "node-b", "node-c"];
    let (first, key) = start_node(&url, &schema, node_ids[0]);
    let key = key.expect("a new store prints an admin key");
    let mut nodes = vec![first];
    for id in &node_ids[1..] {
        let (mut node, _) = start_node(&url, &schema, id);
        node.key.clone_from(&key);
        nodes.push(node);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let mut workers: Vec<Guard> = (0..2)
        .map(|_| {
            start_worker(
                &worker_bin,
                &url,
                &schema,
                &format!("{TASK_QUEUE},{CRON_QUEUE}"),
                &dir.path().join("outbox"),
            )
        })
        .collect();

    let (schedule_id, first_due) = create_every_second_schedule(&nodes[1]);

    let done = Arc::new(AtomicUsize::new(0));
    let producers = spawn_producers(
        addrs.clone(),
        key.clone(),
        6,
        TASKS,
        Arc::clone(&done),
        "mn",
    );

    // A third of the way in, SIGKILL one worker and the leading node.
    while done.load(Ordering::Relaxed) < TASKS / 3 {
        assert!(
            !producers.iter().all(|p| p.is_finished()),
            "the producers stopped early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let lease = store
        .block_on(store.store.leader(SERVICES_ROLE))
        .expect("read the leader lease")
        .expect("some node leads");
    let leader = node_ids
        .iter()
        .position(|id| *id == lease.holder)
        .unwrap_or_else(|| panic!("the lease names an unknown node {:?}", lease.holder));
    let orphans = freeze_holding_tasks(&store, &mut workers[0]);
    workers[0].kill();
    nodes[leader].process.guard.kill();
    eprintln!(
        "{TEST}: killed a worker holding {} tasks and the leader {} (term {}) after {} enqueues, {:?} in",
        orphans.len(),
        lease.holder,
        lease.term,
        done.load(Ordering::Relaxed),
        started.elapsed()
    );

    // Another node takes the lease with a later term and says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_lease = loop {
        let now = store
            .block_on(store.store.leader(SERVICES_ROLE))
            .expect("read the leader lease");
        if let Some(l) = now {
            if l.holder != lease.holder && l.term > lease.term && l.expires_at_ms > now_ms() {
                break l;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no other node took the lead within 30 s of killing {}",
            lease.holder
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let successor = node_ids
        .iter()
        .position(|id| *id == new_lease.holder)
        .expect("the new leader is one of the nodes");
    assert_ne!(successor, leader);
    let announcement = format!("leadership: this node leads (term {});", new_lease.term);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if nodes[successor]
            .process
            .drain()
            .iter()
            .any(|l| l.trim().starts_with(&announcement))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not print {announcement:?}",
            new_lease.holder
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let enqueued = join_producers(producers, TASKS);
    eprintln!("{TEST}: {TASKS} tasks enqueued in {:?}", started.elapsed());
    assert_running(&mut workers[1], "the surviving worker");
    store.wait_drained(TASK_QUEUE, TASKS, DRAIN_TIMEOUT);
    eprintln!("{TEST}: tasks drained at {:?}", started.elapsed());

    // Every enqueued task succeeded once; those the killed worker held ran
    // again elsewhere.
    let rows = store.tasks(TASK_QUEUE);
    assert_each_succeeded_once(&rows, &enqueued);
    for row in rows.iter().filter(|r| orphans.contains(r.id())) {
        assert!(
            row.attempt >= 2,
            "{} was running on the killed worker yet finished in attempt {}",
            row.id(),
            row.attempt
        );
    }

    // Every due time fired once, through the leader's death.
    let live = nodes
        .iter()
        .position(|n| n.process.guard.0.is_some())
        .unwrap();
    let fired = check_every_second_schedule(&store, &nodes[live], &schedule_id, first_due);

    workers[1].terminate(Duration::from_secs(15));
    for node in &mut nodes {
        if node.process.guard.0.is_some() {
            node.process.guard.terminate(Duration::from_secs(15));
        }
    }
    eprintln!(
        "{TEST}: {} tasks ({} run again after the SIGKILL) and {} schedule runs checked in {:?}",
        rows.len(),
        rerun(&rows),
        fired,
        started.elapsed()
    );
}

/// A PostgreSQL cluster of this test alone: initdb in a temp dir, trust
/// authentication, listening on 127.0.0.1 on a free port with its socket in
/// the temp dir. Stopped (immediately) when dropped.
struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    /// Runs the tools as `postgres` (initdb refuses root).
    as_postgres: bool,
    port: u16,
    running: bool,
    // Last: removed after the server stopped.
    dir: tempfile::TempDir,
}

impl PrivateCluster {
    /// The newest `/usr/lib/postgresql/<version>/bin` with initdb and pg_ctl.
    fn find_bin() -> Option<PathBuf> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("pg_ctl").exists())
                    .then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    fn running_as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    /// A command running `tool` of the cluster's binaries.
    fn tool(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn run(&self, what: &str, mut cmd: Command) {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}): {}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Creates and starts the cluster; `Err` says why it cannot.
    fn start() -> Result<Self, String> {
        let bin = Self::find_bin().ok_or("no /usr/lib/postgresql/*/bin with initdb and pg_ctl")?;
        let as_postgres = Self::running_as_root();
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        if as_postgres {
            let has_user = Command::new("id")
                .args(["-u", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !has_user {
                return Err(
                    "running as root, and there is no postgres user to run initdb as".into(),
                );
            }
            let status = Command::new("chown")
                .args(["postgres:", &dir.path().display().to_string()])
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "chown of the temp dir to postgres failed ({status})"
                ));
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut cluster = Self {
            bin,
            data: dir.path().join("data"),
            as_postgres,
            port,
            running: false,
            dir,
        };
        let mut initdb = cluster.tool("initdb");
        initdb.arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        cluster.run("initdb", initdb);
        // In the config file, so a restart keeps them.
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 100\n",
            cluster.dir.path().display()
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        file.write_all(settings.as_bytes())
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        let mut start = cluster.tool("pg_ctl");
        start
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(cluster.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        cluster.running = true;
        cluster.run("pg_ctl start", start);
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: every connection is closed, the server
    /// comes back on the same port.
    fn restart(&self) {
        let mut restart = self.tool("pg_ctl");
        restart
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-m", "fast", "restart"]);
        self.run("pg_ctl restart", restart);
    }

    /// `pg_ctl stop -m fast`, `down` with no server at all (connections
    /// are refused), then `pg_ctl start`.
    fn outage(&self, down: Duration) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-m", "fast", "stop"]);
        self.run("pg_ctl stop", stop);
        std::thread::sleep(down);
        let mut start = self.tool("pg_ctl");
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        self.run("pg_ctl start", start);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-w", "-t", "30", "-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn processes_reconnect_after_postgres_restarts() {
    const TEST: &str = "processes_reconnect_after_postgres_restarts";
    const TASKS: usize = 4_000;
    let Some(worker_bin) = worker_or_skip(TEST) else {
        return;
    };
    let cluster = match PrivateCluster::start() {
        Ok(cluster) => cluster,
        Err(why) => {
            assert!(
                !must_not_skip(),
                "{TEST}: a private PostgreSQL cluster cannot be started: {why}"
            );
            eprintln!("SKIPPED {TEST}: a private PostgreSQL cluster cannot be started: {why}");
            return;
        }
    };
    let url = cluster.url();
    let schema = fresh_schema("it_restart");
    let store = TestStore::open(&url, &schema);
    let dir = tempfile::tempdir().unwrap();

    let (mut node, key) = start_node(&url, &schema, "node-r");
    let key = key.expect("a new store prints an admin key");
    let mut worker = start_worker(
        &worker_bin,
        &url,
        &schema,
        &format!("{TASK_QUEUE},{CRON_QUEUE}"),
        &dir.path().join("outbox"),
    );
    let (schedule_id, first_due) = create_every_second_schedule(&node);

    let done = Arc::new(AtomicUsize::new(0));
    let producers = spawn_producers(
        vec![node.addr.clone()],
        key.clone(),
        4,
        TASKS,
        Arc::clone(&done),
        "restart",
    );
    let mut restarted_ms = 0;
    // Twice: a restart, then a stop of a few seconds (connections refused
    // meanwhile); the second finds connections made after the first.
    for third in 1..=2 {
        while done.load(Ordering::Relaxed) < TASKS * third / 3 {
            assert!(
                !producers.iter().all(|p| p.is_finished()),
                "the producers stopped early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let at = done.load(Ordering::Relaxed);
        if third == 1 {
            cluster.restart();
            eprintln!("{TEST}: PostgreSQL restarted after {at} enqueues");
        } else {
            cluster.outage(Duration::from_secs(5));
            eprintln!("{TEST}: PostgreSQL stopped for 5 s after {at} enqueues");
        }
        restarted_ms = now_ms();
        assert!(
            at < TASKS,
            "the restart came after the last enqueue; the test proves nothing"
        );
    }

    let enqueued = join_producers(producers, TASKS);
    // Both processes lived through it (rather than being restarted).
    assert_running(&mut worker, "the worker");
    assert_running(&mut node.process.guard, "signet serve");
    store.wait_drained(TASK_QUEUE, TASKS, DRAIN_TIMEOUT);
    assert_running(&mut worker, "the worker");
    assert_running(&mut node.process.guard, "signet serve");
    let (status, body) = node.http("GET", "/readyz", None);
    assert_eq!(status, 200, "{body}");

    let rows = store.tasks(TASK_QUEUE);
    assert_each_succeeded_once(&rows, &enqueued);

    eprintln!(
        "{TEST}: {} tasks succeeded once ({} run again after a lost connection)",
        rows.len(),
        rerun(&rows)
    );

    // The node still leads: it renewed its lease after the last restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lease = store
            .block_on(store.store.leader(SERVICES_ROLE))
            .expect("read the leader lease");
        if lease
            .as_ref()
            .is_some_and(|l| l.holder == "node-r" && l.expires_at_ms > restarted_ms + 3000)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not renew its leader lease after the restart: {lease:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The scheduler fired every due time once across the restarts.
    check_every_second_schedule(&store, &node, &schedule_id, first_due);

    worker.terminate(Duration::from_secs(15));
    node.process.guard.terminate(Duration::from_secs(15));
}
