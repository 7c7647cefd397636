//! The `SIGNET_…` variables `signet` reads, derived from where they are
//! declared: the `env = …` of every flag of every subcommand (clap). Any
//! `SIGNET_…` variable that no Signet program reads
//! ([`signet_sign::config::shared_variables`], which also lists the other
//! programs' variables, so a shared environment raises no false alarm) is
//! reported once at start with the closest known name.

use clap::CommandFactory as _;

use crate::cli::Cli;

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
    let names: Vec<&str> = env.into_iter().collect();
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

    #[test]
    fn the_shared_list_names_every_flag_variable_and_nothing_else() {
        use signet_sign::config::PROGRAM_VARIABLES;
        let known = known();
        for name in &known {
            assert!(
                PROGRAM_VARIABLES.contains(&name.as_str()),
                "{name} is read by a signet flag but missing from PROGRAM_VARIABLES in signet-sign"
            );
        }
        // The rest of the list is the example worker's (checked by its own
        // test against its flags).
        for name in PROGRAM_VARIABLES {
            assert!(
                known.iter().any(|k| k == name) || name.starts_with("SIGNET_WORKER_"),
                "{name} is in PROGRAM_VARIABLES but no signet flag reads it"
            );
        }
    }
}
