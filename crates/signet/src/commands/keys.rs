//! `signet keys generate|ls|add|activate|retire|status`: make signing
//! keys, edit the key ring, and see which keys pending work still needs.
//!
//! Every subcommand but `generate` finds the keys with [`load`] (the
//! runtime's one loader, `signet_runtime::load_keys`). With a key file,
//! `add`, `activate` and `retire` edit it (atomically, mode 0600); when the
//! `SIGNET_SIGNING_*` variables configure the keys, they print the
//! variable lines to change instead.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use signet_runtime::{
    key_roles, key_status, load_keys, save_key_file, KeyRequest, KeyRole, KeySource, LoadedKeys,
};
use signet_sign::keyfile::{generate_key, GENERATED_HMAC_LEN};
use signet_sign::standard::format_secret;
use signet_sign::{Algorithm, Ed25519SecretKey, HmacSecret, KeyFile, KeyId, KeyMaterial};

use crate::commands::{block_on, finish};
use crate::output::{print_json, Table};
use crate::store_url::{backend, Backend, DatabaseArgs};

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Generate a signing key and print it ready to paste.
    Generate(GenerateArgs),
    /// List the keys of the ring and where they come from (no secrets).
    Ls(LsArgs),
    /// Generate a key and add it to the ring, not active yet.
    Add(AddArgs),
    /// Make a key the one that signs.
    Activate(ActivateArgs),
    /// Remove a key from the ring, once nothing pending needs it.
    Retire(RetireArgs),
    /// Per key: active, overlapping, pending tasks and messages, and
    /// whether it is safe to retire.
    Status(StatusArgs),
}

/// How `keys generate` prints the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `SIGNET_SIGNING_*=` lines for the environment or a .env file.
    Env,
    /// A webhook secret for a target and its receivers (Standard Webhooks:
    /// `whsec_…`, or `whsk_…` and `whpk_…`); it signs no tasks.
    Standard,
}

/// Arguments of `signet keys generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// hmac-sha256 or ed25519.
    #[arg(long, value_parser = parse_algorithm, default_value = "hmac-sha256")]
    algorithm: Algorithm,
    /// The key id (1 to 64 of A-Z a-z 0-9 . _ -). Default: k<date>-<random>.
    #[arg(long)]
    id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Env)]
    format: Format,
}

/// Arguments of `signet keys ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print JSON: {"source": ..., "keys": [{"key_id", "algorithm", "role", "can_sign"}]}.
    #[arg(long)]
    json: bool,
}

/// Arguments of `signet keys add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// hmac-sha256 or ed25519.
    #[arg(long, value_parser = parse_algorithm, default_value = "hmac-sha256")]
    algorithm: Algorithm,
    /// The key id (1 to 64 of A-Z a-z 0-9 . _ -). Default: k<date>-<random>.
    #[arg(long)]
    id: Option<String>,
}

/// Arguments of `signet keys activate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ActivateArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The key to sign with from now on.
    id: String,
    /// Keep the key that was active signing beside the new one
    /// (SIGNET_SIGNING_OVERLAP_KEYS), so HTTP receivers that know only its
    /// secret keep verifying. Activating the active key again without
    /// --overlap ends the overlap.
    #[arg(long)]
    overlap: bool,
}

/// Arguments of `signet keys retire`.
#[derive(Debug, clap::Args)]
pub(crate) struct RetireArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// The key to remove from the ring.
    id: String,
    /// Retire it even though pending work is signed with it or it still
    /// signs during an overlap: that work will be dead-lettered
    /// signature-invalid/unknown-key.
    #[arg(long)]
    force: bool,
}

/// Arguments of `signet keys status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    api: crate::api::ApiArgs,
    /// Print JSON, as `GET /v1/keys/status` answers: {"signing",
    /// "active_key_id", "keys": [{"key_id", "alg", "active", "overlap",
    /// "new", "in_ring", "pending_tasks", "pending_messages", "pending",
    /// "safe_to_retire", "advice"}]}.
    #[arg(long)]
    json: bool,
}

pub(crate) fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    text.parse::<Algorithm>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Generate(args) => finish("keys generate", generate(&args)),
        Command::Ls(args) => finish("keys ls", ls(&args)),
        Command::Add(args) => finish("keys add", add(&args)),
        Command::Activate(args) => finish("keys activate", activate(&args)),
        Command::Retire(args) => finish("keys retire", block_on(retire(args))),
        Command::Status(args) => finish("keys status", block_on(status(args))),
    }
}

/// The key id `--id` gives, or a fresh default one.
fn key_id(id: Option<&String>) -> anyhow::Result<KeyId> {
    match id {
        Some(id) => KeyId::new(id.clone()).context("bad --id"),
        None => Ok(signet_runtime::default_key_id()),
    }
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let id = key_id(args.id.as_ref())?;
    let lines = match (args.algorithm, args.format) {
        (Algorithm::HmacSha256, Format::Env) => {
            let secret = HmacSecret::generate(GENERATED_HMAC_LEN);
            vec![
                "SIGNET_SIGNING_ALGORITHM=hmac-sha256".to_owned(),
                format!(
                    "SIGNET_SIGNING_KEYS={id}:{}",
                    STANDARD.encode(secret.secret_bytes())
                ),
                format!("SIGNET_SIGNING_ACTIVE_KEY={id}"),
            ]
        }
        (Algorithm::Ed25519, Format::Env) => {
            let key = Ed25519SecretKey::generate();
            vec![
                "SIGNET_SIGNING_ALGORITHM=ed25519".to_owned(),
                format!(
                    "SIGNET_SIGNING_PRIVATE_KEYS={id}:{}",
                    STANDARD.encode(key.secret_bytes().as_slice())
                ),
                format!(
                    "SIGNET_SIGNING_PUBLIC_KEYS={id}:{}",
                    STANDARD.encode(key.public_key().to_bytes())
                ),
                format!("SIGNET_SIGNING_ACTIVE_KEY={id}"),
            ]
        }
        (Algorithm::HmacSha256, Format::Standard) => {
            let secret = KeyMaterial::Hmac(HmacSecret::generate(GENERATED_HMAC_LEN));
            vec![format_secret(&secret)]
        }
        (Algorithm::Ed25519, Format::Standard) => {
            let key = KeyMaterial::Ed25519Private(Ed25519SecretKey::generate());
            vec![format_secret(&key), format_secret(&key.to_verifying())]
        }
    };
    for line in lines {
        println!("{line}");
    }
    match (args.algorithm, args.format) {
        (Algorithm::Ed25519, Format::Env) => eprintln!(
            "# key {id}: producers need PRIVATE_KEYS; verify-only workers need only PUBLIC_KEYS"
        ),
        // A whsec_/whsk_ secret signs webhooks for a target; it has no id
        // and is not a task-signing key (that is --format env).
        (Algorithm::HmacSha256, Format::Standard) => eprintln!(
            "# a webhook secret (Standard Webhooks): give it to a target (\"secret\" in POST /v1/targets) and to its receiver (signet receive --secret); keep it secret. It does not sign tasks: for a signing key use --format env"
        ),
        (Algorithm::Ed25519, Format::Standard) => eprintln!(
            "# a webhook key pair (Standard Webhooks): whsk_ signs, as a target's \"secret\" in POST /v1/targets (keep it secret); whpk_ verifies (give it to receivers). It does not sign tasks: for a signing key use --format env"
        ),
        (Algorithm::HmacSha256, Format::Env) => {
            eprintln!("# key {id}: keep it secret; producers and workers both need it")
        }
    }
    Ok(())
}

/// The keys of a command on the store `db` names: the runtime's one
/// loader, with the key file beside the database when it is an embedded
/// one. Warnings go to stderr, and a line when the key file was just
/// created; `unsigned` is the command's `--unsigned`.
pub(crate) fn load(db: &DatabaseArgs, unsigned: bool) -> anyhow::Result<LoadedKeys> {
    let keys = load_for_banner(db, unsigned)?;
    if let KeySource::File {
        path,
        created: true,
        ..
    } = &keys.source
    {
        eprintln!(
            "created the key file {} (mode 0600): every signet command and worker on this database reads it; keep it secret and back it up",
            path.display()
        );
    }
    Ok(keys)
}

/// Like [`load`], for a command whose banner says where the keys came
/// from (`signet serve`): only the warnings go to stderr.
pub(crate) fn load_for_banner(db: &DatabaseArgs, unsigned: bool) -> anyhow::Result<LoadedKeys> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let database_file = match backend(&db.database_url)? {
        Backend::Sqlite => match signet_sqlite::parse_url(&db.database_url) {
            Ok(signet_sqlite::Location::File(path)) => Some(path),
            _ => None,
        },
        Backend::Postgres => None,
    };
    let keys = load_keys(&KeyRequest {
        env: &env,
        database_file: database_file.as_deref(),
        unsigned,
    })
    .map_err(|e| anyhow!(crate::commands::config_message(e)))?;
    for warning in keys.warnings.iter().chain(&keys.signing.warnings) {
        eprintln!("WARN {warning}");
    }
    Ok(keys)
}

fn ls(args: &LsArgs) -> anyhow::Result<()> {
    let keys = load(&args.db, false)?;
    let rows = key_roles(&keys.signing.ring);
    if args.json {
        let items: Vec<_> = rows
            .iter()
            .map(|(id, alg, role, can_sign)| {
                json!({"key_id": id, "algorithm": alg.as_str(), "role": role.as_str(), "can_sign": can_sign})
            })
            .collect();
        return print_json(
            &json!({"source": keys.source.to_string(), "keys": items}),
            false,
        );
    }
    println!("{}", keys.describe());
    if rows.is_empty() {
        println!("no keys");
        return Ok(());
    }
    let mut table = Table::new(&["KEY ID", "ALGORITHM", "ROLE", "CAN SIGN"]);
    for (id, alg, role, can_sign) in &rows {
        table.row(vec![
            id.clone(),
            alg.to_string(),
            role.as_str().to_owned(),
            if *can_sign { "yes" } else { "no (public key)" }.to_owned(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// Applies `edit` to the key file, or prints the variable lines to change
/// when variables configure the keys. `done` describes the change.
fn edit_ring(
    keys: &LoadedKeys,
    edit: impl FnOnce(&mut KeyFile) -> anyhow::Result<()>,
    done: &str,
) -> anyhow::Result<()> {
    match &keys.source {
        KeySource::File { path, .. } => {
            let mut warnings = Vec::new();
            let mut file = signet_runtime::read_key_file(path, &mut warnings)
                .map_err(|e| anyhow!("{e}"))?;
            edit(&mut file)?;
            save_key_file(path, &file).map_err(|e| anyhow!("{e}"))?;
            println!("{}: {done}", path.display());
            eprintln!(
                "restart the processes that use it (serve, workers) so they load the new ring"
            );
            Ok(())
        }
        KeySource::Environment => {
            let before = KeyFile::from_vars(std::env::vars());
            let mut after = KeyFile::parse(&before.render()).map_err(|e| anyhow!("{e}"))?;
            edit(&mut after)?;
            after
                .signing_config()
                .map_err(|e| anyhow!("the changed variables would not load: {e}"))?;
            eprintln!(
                "the SIGNET_SIGNING_* variables configure the keys here, so nothing was written: {done} by changing these lines wherever the variables are set (every producer, worker and serve), then restart them:"
            );
            let changes = before.changes_to(&after);
            if changes.is_empty() {
                eprintln!("(no line changes: the variables already say this)");
            }
            for line in changes {
                println!("{}", line.as_str());
            }
            Ok(())
        }
        KeySource::Unsigned | KeySource::Nothing => bail!(
            "there is no key ring to edit here: set {} to a key file, or use an embedded (SQLite) database, which gets one",
            signet_runtime::KEYS_FILE_VAR
        ),
    }
}

fn add(args: &AddArgs) -> anyhow::Result<()> {
    let id = key_id(args.id.as_ref())?;
    let keys = load(&args.db, false)?;
    let material = generate_key(args.algorithm);
    edit_ring(
        &keys,
        |file| file.add(&id, &material).map_err(|e| anyhow!("{e}")),
        &format!(
            "added {} key {id} (not active: workers must know it first; then `signet keys activate {id}`)",
            args.algorithm
        ),
    )
}

fn activate(args: &ActivateArgs) -> anyhow::Result<()> {
    let id = KeyId::new(args.id.clone()).context("bad key id")?;
    let keys = load(&args.db, false)?;
    let mut previous = None;
    let outcome = if args.overlap {
        "; the previous key keeps signing beside it until you run this again without --overlap"
    } else {
        ""
    };
    edit_ring(
        &keys,
        |file| {
            previous = file
                .activate(&id, args.overlap)
                .map_err(|e| anyhow!("{e}"))?;
            Ok(())
        },
        &format!("{id} is the active key{outcome}"),
    )?;
    if let Some(previous) = previous {
        eprintln!(
            "{previous} no longer signs new work{}; retire it once `signet keys status` says it is safe",
            if args.overlap { " (after the overlap)" } else { "" }
        );
    }
    Ok(())
}

async fn retire(args: RetireArgs) -> anyhow::Result<()> {
    let id = KeyId::new(args.id.clone()).context("bad key id")?;
    let keys = load(&args.db, false)?;
    let store = args.db.open().await?;
    let usage = store.pending_by_key().await?;
    let _ = store.close().await;
    let rows = key_status(usage, &keys.signing.ring);
    let Some(row) = rows
        .iter()
        .find(|r| r.key_id.as_deref() == Some(id.as_str()))
    else {
        bail!("key {id} is not in the ring; `signet keys ls` lists the keys");
    };
    if row.role == Some(KeyRole::Active) {
        bail!("key {id} is the active key and signs new work; activate another key first (`signet keys activate <id>`), then retire {id} once `signet keys status` says it is safe");
    }
    let mut blockers = Vec::new();
    if row.tasks > 0 || row.messages > 0 {
        blockers.push(format!(
            "{} pending task(s) and {} pending message(s) are signed with it and would be dead-lettered signature-invalid/unknown-key",
            row.tasks, row.messages
        ));
    }
    if row.role == Some(KeyRole::Overlap) {
        let active = keys
            .signing
            .ring
            .active()
            .map_or_else(String::new, |k| k.id().as_str().to_owned());
        blockers.push(format!(
            "it still signs beside the active key (overlap); end the overlap with `signet keys activate {active}`"
        ));
    }
    if !blockers.is_empty() {
        if !args.force {
            bail!(
                "refusing to retire {id}: {}. Wait until the work has run (`signet keys status` says when it is safe), or pass --force to retire it anyway",
                blockers.join("; ")
            );
        }
        eprintln!(
            "WARN retiring {id} anyway (--force): {}",
            blockers.join("; ")
        );
    }
    edit_ring(
        &keys,
        |file| file.retire(&id).map_err(|e| anyhow!("{e}")),
        &format!("retired {id}"),
    )
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    // On the database a broken key configuration does not stop the
    // report: it is mentioned, and the store's view is shown.
    let api = args.api.open(crate::api::Keys::IfAvailable).await?;
    let report = api.send(crate::api::Call::get("/v1/keys/status")).await?;
    if args.json {
        return print_json(&report, false);
    }
    let text = crate::task_view::text;
    match report["active_key_id"].as_str() {
        Some(id) if report["signing"] == true => println!("signing with key {id}"),
        _ => println!("not signing: no active key that can sign"),
    }
    let keys = report["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if keys.is_empty() {
        println!("no keys and no pending work");
    } else {
        let mut table = Table::new(&["KEY ID", "ALGORITHM", "TASKS", "MESSAGES", "STATUS"]);
        for k in keys {
            table.row(vec![
                k["key_id"].as_str().unwrap_or("(unsigned)").to_owned(),
                text(k, "alg"),
                text(k, "pending_tasks"),
                text(k, "pending_messages"),
                text(k, "advice"),
            ]);
        }
        print!("{}", table.render());
    }
    println!(
        "TASKS and MESSAGES count pending work signed with each key. A key is safe to retire when it is neither active, overlapping nor new and nothing pending is signed with it."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_ids_are_valid() {
        key_id(None).unwrap();
        assert!(key_id(Some(&"bad id".to_owned())).is_err());
    }
}
