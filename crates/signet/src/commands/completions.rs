//! `signet completions <shell>`: prints a completion script for bash, zsh,
//! fish, elvish or PowerShell to stdout, generated from the same command
//! definitions the parser uses (so it never lists a command that is gone).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::commands::finish;

/// Arguments of `signet completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("completions", print(args.shell))
}

/// The completion script for `shell`.
fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "signet", &mut out);
    out
}

fn print(shell: Shell) -> anyhow::Result<()> {
    // Generated into memory first: the generator panics on a write error,
    // and stdout may be a closed pipe.
    let script = script(shell);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        // The reader stopped early (`| head`): nothing is wrong.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write the completion script to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_completes_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(script(shell)).expect("UTF-8 script");
            for command in ["serve", "migrate", "dlq", "completions"] {
                assert!(script.contains(command), "{shell}: no {command}");
            }
        }
        let fish = String::from_utf8(script(Shell::Fish)).expect("UTF-8 script");
        assert!(
            fish.contains("complete -c signet -n \"__fish_signet_needs_command\""),
            "{fish:.300}"
        );
        let bash = String::from_utf8(script(Shell::Bash)).expect("UTF-8 script");
        assert!(bash.contains("complete -F _signet"), "{bash:.200}");
    }
}
