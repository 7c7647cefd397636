//! The `SIGNET_…` variables `signet` reads, derived from where they are
//! declared: the `env = …` of every flag of every subcommand (clap), the
//! variables `signet-sign` declares (signing, `SIGNET_DEV`, the master key,
//! `SIGNET_TEST_DATABASE_URL`), `SIGNET_KEYS_FILE` from the runtime, and
//! the example worker's (see [`WORKER_PREFIX`]). Any other `SIGNET_…`
//! variable is reported once at start with the closest known name.

use clap::CommandFactory as _;

use crate::cli::Cli;

/// The example worker's own flags read `SIGNET_WORKER_…` variables (it
/// shares `SIGNET_DATABASE_URL`, `SIGNET_DATABASE_SCHEMA` and
/// `SIGNET_NODE_ID` with `signet`); a shell that runs both sets them.
/// `tests/it/serve.rs` checks every variable in the worker's `--help` is
/// known here.
pub(crate) const WORKER_PREFIX: &str = "SIGNET_WORKER_";

/// Every variable a flag of `cmd` or of its subcommands reads.
fn flag_variables(cmd: &clap::Command, into: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
            if !into.iter().any(|k| k == name) {
                into.push(name.to_owned());
            }
        }
    }
    for sub in cmd.get_subcommands() {
        flag_variables(sub, into);
    }
}

/// The variables `signet` knows, besides the shared ones `signet-sign`
/// adds itself (see [`signet_sign::config::shared_variables`]).
pub(crate) fn known() -> Vec<String> {
    let mut names = Vec::new();
    flag_variables(&Cli::command(), &mut names);
    names.push(signet_runtime::KEYS_FILE_VAR.to_owned());
    names
}

/// Warnings for the `SIGNET_…` variables in `env` that nothing reads.
pub(crate) fn unknown<'a>(env: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let known = known();
    let names: Vec<&str> = env
        .into_iter()
        .filter(|n| !n.starts_with(WORKER_PREFIX))
        .collect();
    signet_sign::config::unknown_variables(names, known.iter().map(String::as_str))
}

/// Prints one `WARN` line per unknown `SIGNET_…` variable of this process.
pub(crate) fn warn_unknown() {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    for warning in unknown(names.iter().map(String::as_str)) {
        eprintln!("WARN {warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_shared_variables_are_known() {
        let known = known();
        for name in [
            "SIGNET_LISTEN",
            "SIGNET_DATABASE_URL",
            "SIGNET_API_KEY",
            "SIGNET_KEYS_FILE",
        ] {
            assert!(known.iter().any(|k| k == name), "{name} missing: {known:?}");
        }
        let warnings = unknown([
            "SIGNET_MASTERKEY",
            "SIGNET_MASTER_KEY",
            "SIGNET_SIGNING_KEYS",
            "SIGNET_DEV",
            "SIGNET_TEST_DATABASE_URL",
            "SIGNET_WORKER_QUEUES",
            "SIGNET_LISTEN",
            "HOME",
        ]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("SIGNET_MASTERKEY")
                && warnings[0].contains("closest known name is SIGNET_MASTER_KEY"),
            "{warnings:?}"
        );
    }
}
