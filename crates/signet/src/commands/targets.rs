//! `signet targets ls|show`: registered receivers, read straight from the
//! store. Never a secret: the secrets still signing are listed by their
//! keyed fingerprint, each with the time it stops (the end of a rotation's
//! overlap). Listing them opens the sealed secrets, so it needs the master
//! key the server uses (`SIGNET_MASTER_KEY`, or the key file beside a SQLite
//! database); without it the rest is shown.
//!
//! `show --json` prints what `GET /v1/targets/{id}` answers (the server's
//! [`TargetView`]), `ls --json` what `GET /v1/targets` answers.
//!
//! `signet targets reseal` re-seals every target's secrets under the
//! current master key, after `SIGNET_MASTER_KEY` became the new key and
//! `SIGNET_MASTER_KEY_PREVIOUS` holds the old one (docs/keys.md): batch by
//! batch, each row swapped only if unchanged, printing progress and a
//! summary. Safe to interrupt and run again; a target no key opens is named
//! by id and makes the exit status 1.

use std::process::ExitCode;

use serde_json::json;
use signet_runtime::{ResealOptions, ResealReport, TargetService, DEFAULT_RESEAL_BATCH};
use signet_server::TargetView;
use signet_sign::sealed::{MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR};
use signet_store::TargetRecord;

use crate::commands::{block_on, finish, Negative};
use crate::output::{format_ms, outln, print_json, printable, Table};
use crate::store_url::DatabaseArgs;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List targets: name, id, URL prefix, how many secrets sign now, the
    /// current fingerprint.
    Ls {
        /// Print JSON, as `GET /v1/targets` answers: {"items": [...]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Show one target and the secrets still signing (by fingerprint), with
    /// the time each stops.
    Show {
        /// The target id (`tgt_…`) or name.
        target: String,
        /// Print JSON, as `GET /v1/targets/{id}` answers.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Re-seal every target's secrets under the current master key
    /// (SIGNET_MASTER_KEY), opening them with it or with a key of
    /// SIGNET_MASTER_KEY_PREVIOUS. Safe to interrupt and run again.
    Reseal {
        /// Only count what would be re-sealed (every row is opened); change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
        /// Targets read and re-sealed per batch (1-10000).
        #[arg(long, default_value_t = DEFAULT_RESEAL_BATCH,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    let name = match &cmd {
        Command::Ls { .. } => "targets ls",
        Command::Show { .. } => "targets show",
        Command::Reseal { .. } => "targets reseal",
    };
    finish(name, block_on(targets(cmd)))
}

/// Targets on `db`'s store, opened with the master key when it loads.
async fn service(db: &DatabaseArgs) -> anyhow::Result<TargetService> {
    // The same keys every command on this database uses; without a master
    // key, targets are read but their secrets cannot be opened.
    let master = match crate::commands::keys::load(db, false) {
        Ok(keys) => keys.master_key,
        Err(e) => {
            eprintln!("WARN {e:#}; targets are shown without the secrets still signing");
            None
        }
    };
    Ok(TargetService::new(db.open().await?, master))
}

/// `t` as the API shows it: with its secrets when the master key opens
/// them; without, the rest, and a warning that says why.
fn view(service: &TargetService, t: &TargetRecord) -> TargetView {
    if !service.has_master_key() {
        return TargetView::new(t, None);
    }
    match service.signing_secrets(t) {
        Ok(secrets) => TargetView::new(t, Some(&secrets)),
        Err(e) => {
            eprintln!(
                "warning: the secrets of target {} cannot be listed: {e}",
                printable(&t.name)
            );
            TargetView::new(t, None)
        }
    }
}

/// `signet targets reseal`.
async fn reseal(dry_run: bool, batch: u32, db: &DatabaseArgs) -> anyhow::Result<()> {
    // Unlike ls and show, re-sealing needs the master key: no fallback.
    let Some(master) = crate::commands::keys::load(db, false)?.master_key else {
        return Err(anyhow::anyhow!(
            "{MASTER_KEY_VAR} is not set (nor in the key file); set it to the new master key and {MASTER_KEY_PREVIOUS_VAR} to the old one, as on the nodes"
        ));
    };
    let fingerprint = master.fingerprint();
    let previous = master.previous_fingerprints();
    let service = TargetService::new(db.open().await?, Some(master));
    outln!(
        "{} target secrets under master key {fingerprint}{}",
        if dry_run { "checking" } else { "re-sealing" },
        if previous.is_empty() {
            format!(" (no {MASTER_KEY_PREVIOUS_VAR} set: only rows already under it open)")
        } else {
            format!(", opening with it or {}", previous.join(", "))
        }
    );
    let verb = if dry_run { "to re-seal" } else { "resealed" };
    // Progress is printed as each batch lands; a failed write (a closed
    // pipe) stops the output, not the re-seal, and is returned after.
    let mut printing = Ok(());
    let report = service
        .reseal(ResealOptions { batch, dry_run }, |p: &ResealReport| {
            if printing.is_ok() {
                printing = crate::output::emit(&format!(
                    "{verb} {}/{} ({} already under the current key, {} failed)\n",
                    p.resealed + p.already_current,
                    p.total,
                    p.already_current,
                    p.failed.len()
                ));
            }
        })
        .await?;
    printing?;
    for f in &report.failed {
        eprintln!("target {}: {}", f.target_id, f.reason);
    }
    let summary = format!(
        "{} target(s): {} {}, {} already under master key {fingerprint}, {} gone meanwhile, {} failed",
        report.total,
        report.resealed,
        if dry_run { "would be re-sealed" } else { "re-sealed" },
        report.already_current,
        report.gone,
        report.failed.len()
    );
    outln!("{summary}");
    if !report.is_complete() {
        return Err(Negative(format!(
            "{} target(s) could not be re-sealed (listed above by id): no configured master key opens them; add the key that sealed them to {MASTER_KEY_PREVIOUS_VAR} and run this again",
            report.failed.len()
        ))
        .into());
    }
    if !dry_run && !previous.is_empty() {
        outln!(
            "every target is under the current master key: once no node still runs with the old key as {MASTER_KEY_VAR}, remove {MASTER_KEY_PREVIOUS_VAR} from every node"
        );
    }
    Ok(())
}

async fn targets(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Reseal { dry_run, batch, db } => reseal(dry_run, batch, &db).await,
        Command::Ls { json, db } => {
            let service = service(&db).await?;
            let views: Vec<TargetView> = service
                .list()
                .await?
                .iter()
                .map(|t| view(&service, t))
                .collect();
            if json {
                return print_json(&json!({ "items": views }), false);
            }
            if views.is_empty() {
                outln!("no targets yet; register one with `POST /v1/targets` (see the README)");
                return Ok(());
            }
            let mut table = Table::new(&["NAME", "ID", "URL PREFIX", "SECRETS", "FINGERPRINT"]);
            for v in &views {
                table.row(vec![
                    printable(&v.name),
                    v.id.clone(),
                    v.url_prefix.as_deref().map_or("-".to_owned(), printable),
                    v.secrets
                        .as_ref()
                        .map_or("?".to_owned(), |s| s.len().to_string()),
                    v.secret_fingerprint.clone(),
                ]);
            }
            crate::output::emit(&table.render())?;
            if !service.has_master_key() {
                eprintln!("{}", NO_MASTER_KEY);
            }
            Ok(())
        }
        Command::Show { target, json, db } => {
            let service = service(&db).await?;
            let Some(t) = service.find(&target).await? else {
                return Err(Negative(format!(
                    "no target {:?}; `signet targets ls` lists them",
                    printable(&target)
                ))
                .into());
            };
            let v = view(&service, &t);
            if json {
                return print_json(&serde_json::to_value(&v)?, true);
            }
            outln!("target {} ({})", printable(&v.name), v.id);
            let mut table = Table::new(&["FIELD", "VALUE"]);
            let limit = |n: Option<u32>| n.map_or("none".to_owned(), |n| n.to_string());
            table.row(vec![
                "url prefix".into(),
                v.url_prefix.as_deref().map_or("none".to_owned(), printable),
            ]);
            table.row(vec!["https only".into(), v.https_only.to_string()]);
            table.row(vec!["rate limit/s".into(), limit(v.rate_limit_per_s)]);
            table.row(vec!["max concurrency".into(), limit(v.max_concurrency)]);
            table.row(vec!["created".into(), format_ms(t.created_at_ms)]);
            table.row(vec!["updated".into(), format_ms(t.updated_at_ms)]);
            crate::output::emit(&table.render())?;
            match &v.secrets {
                None => {
                    outln!("current secret: {}", v.secret_fingerprint);
                    eprintln!("{}", NO_MASTER_KEY);
                }
                Some(secrets) => {
                    outln!("secrets signing now (by fingerprint):");
                    for s in secrets {
                        match s.stops_at_ms {
                            None => outln!("  {}  current", s.fingerprint),
                            Some(at) => outln!("  {}  stops {}", s.fingerprint, format_ms(at)),
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Said when the secrets cannot be opened here.
const NO_MASTER_KEY: &str = "note: the secrets still signing are listed only with the master key the server uses; set SIGNET_MASTER_KEY (or run where the key file beside the database is)";
