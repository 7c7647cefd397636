//! End to end through the real binaries: `signet serve` on `127.0.0.1:0`
//! with a temp SQLite file and HMAC keys, a task enqueued over HTTP, the
//! example worker (`signet-example-worker`) running it from the same store,
//! the task seen `succeeded` over HTTP, then SIGTERM and a clean exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{http, json, Guard, Server};

const HMAC_KEY: &str = "k1:ZTJlLXRlc3Qta2V5LXdpdGgtMzItYnl0ZXMtb2YtZW50cm9weQ==";
const TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The example worker binary next to the `signet` binary, built once per
/// test run so a binary left by an older checkout (which may refuse a newer
/// schema) is never used; the build is a no-op when it is up to date.
pub(crate) fn worker_binary() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_worker).clone()
}

/// The example worker binary, or `None` after printing why `test` is
/// skipped (failing instead under CI, where it must build).
pub(crate) fn worker_or_skip(test: &str) -> Option<PathBuf> {
    match worker_binary() {
        Ok(path) => Some(path),
        Err(why) => {
            assert!(
                !super::support::must_not_skip(),
                "{test}: the example worker cannot be built: {why}"
            );
            eprintln!("SKIPPED {test}: the example worker cannot be built: {why}");
            None
        }
    }
}

fn build_worker() -> Result<PathBuf, String> {
    let signet = Path::new(env!("CARGO_BIN_EXE_signet"));
    let profile_dir = signet.parent().ok_or("signet binary has no directory")?;
    let worker = profile_dir.join(format!(
        "signet-example-worker{}",
        std::env::consts::EXE_SUFFIX
    ));
    let target_dir = profile_dir.parent().ok_or("target directory not found")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "signet-example-worker"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !worker.exists() {
        return Err(format!(
            "cargo build -p signet-example-worker failed ({status})"
        ));
    }
    Ok(worker)
}

#[test]
fn serve_enqueue_work_and_shut_down() {
    let Some(worker_bin) = worker_or_skip("serve_enqueue_work_and_shut_down") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e2e.db").display());

    let (mut server, key) = Server::start(
        &url,
        &[
            ("SIGNET_SIGNING_KEYS", HMAC_KEY),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
        ],
        &["--shutdown-grace", "5s"],
    );
    let key = key.expect("a new store prints an admin key");
    let addr = server.addr.clone();
    assert!(key.starts_with("sk_"));

    let (status, body) = http(&addr, "GET", "/readyz", &key, None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/tasks",
        &key,
        Some(r#"{"queue":"e2e","task":"text.stats","args":{"text":"hello signed world"}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let task = json(&body);
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["signature"]["key_id"], "k1");

    let worker = Command::new(&worker_bin)
        .args(["--database-url", &url, "--queue", "e2e", "--poll-ms", "20"])
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .env("SIGNET_SIGNING_KEYS", HMAC_KEY)
        .env("SIGNET_SIGNING_ACTIVE_KEY", "k1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example worker");
    let _worker = Guard(Some(worker));

    let started = Instant::now();
    let task = loop {
        let (status, body) = http(&addr, "GET", &format!("/v1/tasks/{id}"), &key, None);
        assert_eq!(status, 200, "{body}");
        let task = json(&body);
        match task["state"].as_str() {
            Some("succeeded") => break task,
            Some("dead" | "cancelled") => panic!("task ended {}: {body}", task["state"]),
            _ => {}
        }
        assert!(
            started.elapsed() < TASK_TIMEOUT,
            "task did not succeed in time: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(task["result"]["words"], 3, "{task}");
    assert_eq!(task["attempt"], 1);

    // SIGTERM: the server finishes, closes the store and exits 0.
    let status = server.process.guard.terminate(Duration::from_secs(20));
    assert!(status.success(), "signet serve exited with {status}");
}

fn signet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(args)
        .output()
        .expect("run signet")
}

#[test]
fn api_keys_create_ls_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());

    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        "ci deploy",
        "--scope",
        "publish",
        "--database-url",
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim_end_matches('\n');
    assert!(
        secret.starts_with("sk_") && !secret.contains('\n'),
        "stdout is the key alone: {stdout:?}"
    );

    let out = signet(&["api-keys", "ls", "--json", "--database-url", &url]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(secret), "ls shows the secret: {text}");
    let keys = json(&text);
    let key = &keys[0];
    assert_eq!(key["name"], "ci deploy");
    assert_eq!(key["scope"], "publish");
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert!(key.get("hash").is_none(), "ls shows the hash: {text}");
    assert!(key["revoked_at_ms"].is_null());
    let id = key["id"].as_str().unwrap().to_owned();

    let out = signet(&["api-keys", "ls", "--database-url", &url]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(&id) && !table.contains(secret), "{table}");

    let out = signet(&["api-keys", "revoke", &id, "--database-url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = json(
        &String::from_utf8(signet(&["api-keys", "ls", "--json", "--database-url", &url]).stdout)
            .unwrap(),
    );
    assert!(keys[0]["revoked_at_ms"].is_i64());

    // Unknown id: a negative answer (1); bad scope or id form: usage (2).
    let out = signet(&[
        "api-keys",
        "revoke",
        "key_0190000000007000800000000000dead",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = signet(&["api-keys", "revoke", "nonsense", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(2));
    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        "x",
        "--scope",
        "root",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        " ",
        "--scope",
        "read",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_refuses_bad_configuration_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bad.db").display());
    for (var, value, expect) in [
        (
            "SIGNET_TRUSTED_PROXIES",
            "10.0.0.0/8,bogus",
            "SIGNET_TRUSTED_PROXIES",
        ),
        (
            "SIGNET_SIGNING_KEYS",
            "k1:not-base64!",
            "SIGNET_SIGNING_KEYS",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .env(var, value)
            .output()
            .expect("run signet serve");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
        assert!(
            !stderr.contains("not-base64!"),
            "the secret was echoed: {stderr}"
        );
    }
}

#[test]
fn serve_puts_metrics_behind_the_metrics_token_without_printing_it() {
    const TOKEN: &str = "scrape-t0ken-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("metrics.db").display());
    let (mut server, key) = Server::start(
        &url,
        &[
            ("SIGNET_SIGNING_KEYS", HMAC_KEY),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
            ("SIGNET_METRICS_TOKEN", TOKEN),
        ],
        &[],
    );
    let key = key.expect("a new store prints an admin key");
    let addr = server.addr.clone();
    let (status, body) = http(&addr, "GET", "/metrics", &key, None);
    assert_eq!(status, 401, "an API key is not the metrics token: {body}");
    assert!(!body.contains(TOKEN), "{body}");
    let (status, body) = http(&addr, "GET", "/metrics", TOKEN, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("signet_http_requests_total"), "{body}");
    let status = server.process.guard.terminate(Duration::from_secs(20));
    assert!(status.success(), "signet serve exited with {status}");
    for line in server.process.drain() {
        assert!(!line.contains(TOKEN), "the token was printed: {line}");
    }
}

#[test]
fn a_metrics_token_on_the_command_line_is_warned_about_never_printed() {
    const TOKEN: &str = "scrape-t0ken-on-argv";
    let run = crate::signet(
        &[
            "serve",
            "--metrics-token",
            TOKEN,
            "--database-url",
            "nosuch://x",
        ],
        b"",
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("--metrics-token on the command line shows in the process list")
            && run.stderr.contains("prefer SIGNET_METRICS_TOKEN"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains(TOKEN), "{run:#?}");
    let quiet = crate::signet_env(
        &["serve", "--database-url", "nosuch://x"],
        b"",
        &[("SIGNET_METRICS_TOKEN", TOKEN)],
    );
    assert_eq!(quiet.code, 2, "{quiet:#?}");
    assert!(!quiet.stderr.contains("process list"), "{quiet:#?}");
}

/// `program args` in `dir`, stdin closed, with no inherited `SIGNET_*`,
/// `NO_COLOR` or `RUST_LOG`.
fn clean_command(program: &Path, args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGNET_") || k == "NO_COLOR" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs `program` in `dir` (no inherited `SIGNET_*` or `NO_COLOR`) with
/// stdout and stderr both piped into one file, waits until that output
/// holds every line of `ready`, makes one HTTP round trip to `addr_of`'s
/// address when given (so the first service passes have run), then sends
/// SIGTERM and returns how it exited and everything it printed.
fn run_until(
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
    ready: &[&str],
) -> (std::process::ExitStatus, String) {
    let log = dir.join("output.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = clean_command(program, args, dir);
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    cmd.envs(env.iter().copied());
    let mut guard = Guard(Some(cmd.spawn().expect("start the process")));
    let started = Instant::now();
    let read = || String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    while !ready.iter().all(|r| read().contains(r)) {
        assert!(
            started.elapsed() < super::support::START_TIMEOUT,
            "{program:?} never printed {ready:?}:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(addr) = read()
        .lines()
        .find_map(|l| l.trim().strip_prefix("listening on http://"))
    {
        let (status, _) = http(addr, "GET", "/healthz", "", None);
        assert!(status > 0);
    }
    let status = guard.terminate(Duration::from_secs(20));
    (status, read())
}

/// `signet serve --listen 127.0.0.1:0` in a fresh directory, as the
/// README's walk-through starts it, until both roles are led; then SIGTERM.
fn first_start(extra: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    let (status, out) = run_until(
        Path::new(env!("CARGO_BIN_EXE_signet")),
        &args,
        dir.path(),
        env,
        &[
            "leadership: this node leads",
            "leadership (maintenance): this node leads",
        ],
    );
    assert!(
        status.success(),
        "signet serve exited with {status}:\n{out}"
    );
    out
}

/// The lines of `output` that contain `needle` (ASCII case ignored).
fn lines_with<'a>(output: &'a str, needle: &str) -> Vec<&'a str> {
    let needle = needle.to_ascii_lowercase();
    output
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains(&needle))
        .collect()
}

#[test]
fn a_first_start_tells_the_truth_once() {
    // Keys created beside the database: nothing is wrong, so no ERROR and
    // no WARN; the key file's creation is said once.
    let out = first_start(&[], &[]);
    assert!(!out.contains('\x1b'), "colour on a pipe:\n{out}");
    assert!(lines_with(&out, "ERROR").is_empty(), "{out}");
    assert!(lines_with(&out, "WARN").is_empty(), "{out}");
    assert_eq!(lines_with(&out, "signet.keys (").len(), 1, "{out}");
    assert_eq!(
        lines_with(&out, "creat").len(),
        2,
        "the key file and the admin key:\n{out}"
    );
    // Stopping says so; there is no other node.
    assert!(out.contains("leadership: shutting down"), "{out}");
    assert!(
        out.contains("leadership (maintenance): shutting down"),
        "{out}"
    );
    assert!(lines_with(&out, "another node").is_empty(), "{out}");

    // --unsigned: signing off is one line; no callback is owed, so no ERROR.
    let out = first_start(&["--unsigned"], &[]);
    assert!(!out.contains('\x1b'), "colour on a pipe:\n{out}");
    assert!(lines_with(&out, "ERROR").is_empty(), "{out}");
    assert_eq!(lines_with(&out, "unsigned").len(), 1, "{out}");
    assert_eq!(lines_with(&out, "WARN").len(), 1, "{out}");

    // Dev mode: one line says signatures are not verified.
    let out = first_start(&[], &[("SIGNET_DEV", "1")]);
    assert!(lines_with(&out, "ERROR").is_empty(), "{out}");
    assert_eq!(lines_with(&out, "NOT verified").len(), 1, "{out}");
    assert_eq!(lines_with(&out, "WARN").len(), 1, "{out}");
}

#[test]
fn unknown_variables_are_named_with_the_closest_known_one() {
    let out = first_start(
        &["--unsigned"],
        &[
            ("SIGNET_MASTERKEY", "not-a-key"),
            ("SIGNET_TEST_DATABASE_URL", "postgres://x"),
            ("SIGNET_LISTEN", "127.0.0.1:0"),
        ],
    );
    let named = lines_with(&out, "SIGNET_MASTERKEY");
    assert_eq!(named.len(), 1, "reported once:\n{out}");
    assert!(
        named[0].starts_with("WARN ")
            && named[0].contains("closest known name is SIGNET_MASTER_KEY"),
        "{out}"
    );
    assert!(!out.contains("not-a-key"), "a value was printed:\n{out}");
    assert!(
        lines_with(&out, "not a Signet variable").len() == 1,
        "{out}"
    );

    // Any command, once; known ones (every flag's, the worker's) pass.
    let mut env = vec![("SIGNET_SIGNING_ACTIV_KEY", "k1")];
    let worker_vars: Vec<String> = worker_or_skip("unknown_variables_…")
        .map(|bin| {
            let help = Command::new(bin).arg("--help").output().unwrap();
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            help.split("[env: ")
                .skip(1)
                .filter_map(|rest| rest.split(['=', ']']).next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    env.extend(worker_vars.iter().map(|v| (v.as_str(), "1")));
    let run = crate::signet_env(&["keys", "generate"], b"", &env);
    run.ok();
    let warnings = lines_with(&run.stderr, "not a Signet variable");
    assert_eq!(warnings.len(), 1, "{:#?}", run);
    assert!(
        warnings[0].contains("SIGNET_SIGNING_ACTIV_KEY")
            && warnings[0].contains("closest known name is SIGNET_SIGNING_ACTIVE_KEY"),
        "{run:#?}"
    );
}

#[test]
fn serve_help_names_every_variable() {
    let help = signet(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // Each option's block (from one `--flag` line to the next) names its
    // variable; --help itself has none.
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with("--") || line.trim_start().starts_with("-h,") {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    let flags: Vec<&String> = blocks.iter().filter(|b| !b.contains("--help")).collect();
    assert!(flags.len() > 20, "{help}");
    for block in flags {
        assert!(block.contains("[env: SIGNET_"), "no variable:\n{block}");
    }
    for var in [
        "SIGNET_SIGNING_KEYS",
        "SIGNET_SIGNING_PRIVATE_KEYS",
        "SIGNET_SIGNING_ACTIVE_KEY",
        "SIGNET_MASTER_KEY",
        "SIGNET_KEYS_FILE",
        "SIGNET_DEV",
    ] {
        assert!(help.contains(var), "{var} missing:\n{help}");
    }
}

#[test]
fn the_example_worker_logs_without_colour_and_names_unknown_variables() {
    let Some(worker_bin) = worker_or_skip("the_example_worker_logs_without_colour") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Whether it had installed its signal handler yet does not matter here.
    let (_, out) = run_until(
        &worker_bin,
        &["--database-url", "sqlite://./w.db", "--outbox", "./outbox"],
        dir.path(),
        &[("SIGNET_MASTERKEY", "not-a-key")],
        &["keys from"],
    );
    assert!(!out.contains('\x1b'), "colour on a pipe:\n{out}");
    let named = lines_with(&out, "SIGNET_MASTERKEY");
    assert_eq!(named.len(), 1, "{out}");
    assert!(named[0].contains("SIGNET_MASTER_KEY"), "{out}");
    assert!(!out.contains("not-a-key"), "{out}");
}

/// `signet serve` in a fresh directory with `extra` arguments, expected to
/// stop before serving: how it exited and what it printed.
fn refused_start(extra: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend(extra);
    let out = clean_command(Path::new(env!("CARGO_BIN_EXE_signet")), &args, dir.path())
        .output()
        .expect("run signet serve");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

#[test]
fn serve_names_the_ca_certificates_its_deliveries_trust() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("company-ca.pem");
    std::fs::write(&path, format!("{}{}", ca.pem(), ca.pem())).unwrap();
    let out = first_start(&["--delivery-ca-file", path.to_str().unwrap()], &[]);
    assert!(
        out.contains(&format!(
            "HTTPS deliveries trust 2 CA certificate(s) from {} besides the public web roots",
            path.display()
        )),
        "{out}"
    );
}

#[test]
fn a_delivery_ca_file_that_cannot_be_used_stops_serve_with_its_path() {
    let (status, out) = refused_start(&["--delivery-ca-file", "/nonexistent/ca.pem"]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(
            "--delivery-ca-file (SIGNET_DELIVERY_CA_FILE): cannot read /nonexistent/ca.pem"
        ),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let (status, out) = refused_start(&["--delivery-ca-file", empty.to_str().unwrap()]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("holds no certificate") && out.contains("BEGIN CERTIFICATE"),
        "{out}"
    );
}
