//! Integration tests of the `signet` binary: each module runs the built
//! binary as a user would.

mod cli_keys;
mod cli_queue;
mod deliver_e2e;
mod input_rules;
mod key_names;
mod migrate;
mod multinode;
mod noops;
mod quickstart;
mod receive;
mod remote;
mod reseal;
mod rotation;
mod schedules;
mod serve;
mod steer;
mod support;
mod target_limits;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use support::only_env;

/// What a run of the binary printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// stdout lines.
    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `signet` with `args`, feeding `stdin`, in a clean signing
/// environment (no inherited `SIGNET_*` variables).
pub(crate) fn signet(args: &[&str], stdin: &[u8]) -> Run {
    signet_env(args, stdin, &[])
}

/// Like [`signet`], with extra environment variables.
pub(crate) fn signet_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    only_env(&mut cmd, env);
    let mut child = cmd.spawn().expect("spawn signet");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        // The command may exit before reading (usage errors): ignore EPIPE.
        let _ = pipe.write_all(stdin);
    }
    Run::from_output(child.wait_with_output().expect("wait for signet"))
}
