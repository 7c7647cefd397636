//! Shared pieces of the end-to-end tests: child processes that are killed
//! when a test ends early, a `signet serve` launcher that reads the banner,
//! line-printing helper processes (receivers), and a tiny HTTP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child process may take to print its first line.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Kills a child process if the test ends early.
pub(crate) struct Guard(pub(crate) Option<Child>);

impl Guard {
    /// Sends SIGTERM and waits up to `grace` for the exit status.
    pub(crate) fn terminate(&mut self, grace: Duration) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("process already stopped");
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > grace {
                let _ = child.kill();
                panic!("process did not exit within {grace:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no grace.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process whose stdout lines arrive on a channel.
pub(crate) struct LineProcess {
    pub(crate) guard: Guard,
    lines: mpsc::Receiver<String>,
}

impl LineProcess {
    /// Spawns `cmd` with stdout piped (stderr inherited).
    pub(crate) fn spawn(mut cmd: Command) -> std::io::Result<Self> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            guard: Guard(Some(child)),
            lines,
        })
    }

    /// The next line, waiting up to `timeout`; `None` on timeout or exit.
    pub(crate) fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Reads lines until `pick` returns `Some`, within [`START_TIMEOUT`].
    pub(crate) fn wait_for<T>(&self, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            let left = START_TIMEOUT
                .checked_sub(started.elapsed())
                .unwrap_or_else(|| panic!("{what} did not arrive in time"));
            let line = self
                .next_line(left)
                .unwrap_or_else(|| panic!("{what}: the process printed nothing more"));
            if let Some(found) = pick(line.trim()) {
                return found;
            }
        }
    }

    /// Every line that arrived so far, without waiting.
    pub(crate) fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

/// A running `signet serve`: its address and the admin key from its banner.
pub(crate) struct Server {
    pub(crate) process: LineProcess,
    pub(crate) addr: String,
    pub(crate) key: String,
}

impl Server {
    /// Starts `signet serve --listen 127.0.0.1:0 --database-url URL` with
    /// `env` (no other `SIGNET_*` variable is inherited) and reads the
    /// banner. `key` is `None` when the store already has API keys (the
    /// banner prints a new one only for an empty store).
    pub(crate) fn start(url: &str, env: &[(&str, &str)], extra: &[&str]) -> (Self, Option<String>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
            .args(extra);
        only_env(&mut cmd, env);
        let process = LineProcess::spawn(cmd).expect("start signet serve");
        let mut key = None;
        let addr = process.wait_for("the serve banner", |line| {
            if let Some(rest) = line.strip_prefix("api key: ") {
                key = Some(rest.to_owned());
            }
            line.strip_prefix("listening on http://").map(str::to_owned)
        });
        // The key line may follow the address line.
        if key.is_none() {
            let deadline = Instant::now() + Duration::from_millis(500);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match process.next_line(left) {
                    Some(line) => {
                        if let Some(rest) = line.trim().strip_prefix("api key: ") {
                            key = Some(rest.to_owned());
                            break;
                        }
                    }
                    None => break,
                }
            }
        }
        let server = Self {
            process,
            addr,
            key: key.clone().unwrap_or_default(),
        };
        (server, key)
    }

    /// One request with this server's admin key.
    pub(crate) fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(&self.addr, method, path, &self.key, body)
    }
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> (u16, String) {
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, request.as_bytes(), Duration::from_secs(10))
}

/// Writes one whole HTTP/1.1 request (which asks to close the connection)
/// over a fresh connection to `addr`, reads the answer to the end, and
/// returns (status, body); a read waits at most `timeout`.
pub(crate) fn exchange(addr: &str, request: &[u8], timeout: Duration) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Parses JSON or fails the test showing the text.
pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Whether a test that needs an outside tool should fail rather than skip
/// when the tool is missing: always in CI.
pub(crate) fn must_not_skip() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs `signet ARGS` on a terminal (`script` from util-linux gives it
/// one), with only `env` of the `SIGNET_*` variables: waits until the
/// terminal shows `prompt`, runs `meanwhile`, types `answer` and Enter,
/// and returns everything the terminal showed and the exit code. `None`
/// when `script` is not installed (outside CI, where it must be).
pub(crate) fn on_terminal(
    args: &[&str],
    env: &[(&str, &str)],
    prompt: &str,
    meanwhile: impl FnOnce(),
    answer: &str,
) -> Option<(String, i32)> {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_signet"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
        // `script -c` runs the command with $SHELL: the quoting is POSIX.
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    only_env(&mut cmd, env);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_not_skip() => {
            eprintln!("skipped: `script` (util-linux) is not installed");
            return None;
        }
        Err(e) => panic!("cannot run `script` (util-linux; .ci/run installs it): {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Killed and reaped however this ends.
    let mut guard = Guard(Some(child));
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text =
        |shown: &Mutex<Vec<u8>>| String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    let exited = |guard: &mut Guard| guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text(&shown).contains(prompt) {
        if Instant::now() > deadline || exited(&mut guard).is_some() {
            panic!("the terminal never showed {prompt:?}: {}", text(&shown));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    meanwhile();
    stdin
        .write_all(format!("{answer}\n").as_bytes())
        .expect("type the answer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = exited(&mut guard) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the command did not end after the answer: {}",
            text(&shown)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    reader.join().expect("the terminal reader");
    Some((text(&shown), status.code().unwrap_or(-1)))
}

/// Leaves `cmd` only `env` of the `SIGNET_*` variables: the ones this test
/// process has (a developer's shell, CI) are removed first.
pub(crate) fn only_env(cmd: &mut Command, env: &[(&str, &str)]) {
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGNET_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
}
