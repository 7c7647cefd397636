//! `signet keys generate|status`: make signing keys, and see which keys
//! pending tasks still need.

use std::process::ExitCode;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use signet_sign::standard::format_secret;
use signet_sign::{Algorithm, Ed25519SecretKey, HmacSecret, KeyId, KeyMaterial, SigningConfig};

use crate::commands::{block_on, finish};
use crate::output::{print_json, Table};
use crate::store_url::DatabaseArgs;

/// Length of generated HMAC secrets, in bytes.
pub(crate) const GENERATED_HMAC_LEN: usize = 32;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Generate a signing key and print it ready to paste.
    Generate(GenerateArgs),
    /// Pending tasks per signing key id: retire a key once its count is 0.
    Status(StatusArgs),
}

/// How `keys generate` prints the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `SIGNET_SIGNING_*=` lines for the environment or a .env file.
    Env,
    /// Standard Webhooks secrets: `whsec_…`, or `whsk_…` and `whpk_…`.
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

/// Arguments of `signet keys status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Print JSON: [{"key_id": ..., "algorithm": ..., "pending": ...}].
    #[arg(long)]
    json: bool,
}

pub(crate) fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    text.parse::<Algorithm>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Generate(args) => finish("keys generate", generate(&args)),
        Command::Status(args) => finish("keys status", block_on(status(args))),
    }
}

/// A default key id: `k` + today's date + a short random suffix, so two keys
/// made the same day (a rotation) still differ.
fn default_key_id() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let suffix: u16 = rand::random();
    format!(
        "k{:04}{:02}{:02}-{suffix:04x}",
        today.year(),
        u8::from(today.month()),
        today.day()
    )
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let id = KeyId::new(args.id.clone().unwrap_or_else(default_key_id)).context("bad --id")?;
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
        (Algorithm::Ed25519, Format::Standard) => {
            eprintln!("# whsk_ signs (keep it secret); whpk_ verifies (give it to receivers)")
        }
        _ => eprintln!("# key {id}: keep it secret; producers and workers both need it"),
    }
    Ok(())
}

/// One line of `keys status`.
#[derive(Debug, PartialEq, Eq)]
struct KeyStatus {
    /// `None` for unsigned tasks.
    key_id: Option<String>,
    algorithm: Option<Algorithm>,
    pending: u64,
    /// Whether the key is in this process's `SIGNET_SIGNING_*` configuration.
    configured: bool,
    /// Whether it is the configured active (signing) key.
    active: bool,
    /// Whether any keys were configured at all (else "not configured" means nothing).
    config_known: bool,
}

impl KeyStatus {
    /// What to do about the key.
    fn advice(&self) -> &'static str {
        match (&self.key_id, self.active, self.pending) {
            (None, _, _) => "unsigned tasks",
            (Some(_), true, _) => "active: signs new tasks",
            (Some(_), false, 0) => "safe to retire",
            (Some(_), false, _) if self.configured || !self.config_known => {
                "keep: pending tasks need it"
            }
            (Some(_), false, _) => "NOT CONFIGURED: these tasks will fail verification",
        }
    }
}

/// Merges the store's pending counts with the configured keys (which may
/// have none pending), ordered by key id, unsigned last.
fn merge_status(
    usage: Vec<signet_store::KeyUsage>,
    configured: &[(String, Algorithm)],
    active: Option<&str>,
) -> Vec<KeyStatus> {
    let mut out: Vec<KeyStatus> = usage
        .into_iter()
        .map(|u| KeyStatus {
            configured: u
                .key_id
                .as_deref()
                .is_some_and(|id| configured.iter().any(|(c, _)| c == id)),
            active: u.key_id.is_some() && u.key_id.as_deref() == active,
            config_known: !configured.is_empty(),
            key_id: u.key_id,
            algorithm: u.alg,
            pending: u.pending,
        })
        .collect();
    for (id, alg) in configured {
        if !out.iter().any(|s| s.key_id.as_deref() == Some(id)) {
            out.push(KeyStatus {
                key_id: Some(id.clone()),
                algorithm: Some(*alg),
                pending: 0,
                configured: true,
                active: Some(id.as_str()) == active,
                config_known: true,
            });
        }
    }
    out.sort_by(|a, b| match (&a.key_id, &b.key_id) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    });
    out
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    // The configured keys, if any: shown even with nothing pending. A broken
    // configuration does not stop the report; it is only mentioned.
    let (configured, active) = match SigningConfig::from_vars(std::env::vars()) {
        Ok(config) => (
            config
                .ring
                .keys()
                .iter()
                .map(|k| (k.id().as_str().to_owned(), k.algorithm()))
                .collect::<Vec<_>>(),
            config.ring.active().map(|k| k.id().as_str().to_owned()),
        ),
        Err(e) => {
            eprintln!(
                "warning: the SIGNET_SIGNING_* configuration does not parse ({}); showing the store's view only",
                e.message()
            );
            (Vec::new(), None)
        }
    };
    let store = args.db.open().await?;
    let usage = store.pending_by_key().await?;
    let rows = merge_status(usage, &configured, active.as_deref());
    if args.json {
        let items: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "key_id": r.key_id,
                    "algorithm": r.algorithm.map(|a| a.as_str()),
                    "pending": r.pending,
                    "configured": r.configured,
                    "active": r.active,
                    "safe_to_retire": r.key_id.is_some() && r.pending == 0 && !r.active,
                })
            })
            .collect();
        return print_json(&serde_json::Value::Array(items), false);
    }
    if rows.is_empty() {
        println!("no pending tasks and no configured keys");
    } else {
        let mut table = Table::new(&["KEY ID", "ALGORITHM", "PENDING", "STATUS"]);
        for r in &rows {
            table.row(vec![
                r.key_id.clone().unwrap_or_else(|| "(unsigned)".to_owned()),
                r.algorithm
                    .map_or_else(|| "-".to_owned(), |a| a.to_string()),
                r.pending.to_string(),
                r.advice().to_owned(),
            ]);
        }
        print!("{}", table.render());
    }
    println!(
        "A key is safe to retire once producers no longer sign with it and its pending count is 0 \
         (a key not listed has 0 pending tasks)."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_store::KeyUsage;

    #[test]
    fn status_merges_configured_keys_and_advises() {
        let usage = vec![
            KeyUsage {
                key_id: Some("old".into()),
                alg: Some(Algorithm::HmacSha256),
                pending: 3,
            },
            KeyUsage {
                key_id: None,
                alg: None,
                pending: 1,
            },
            KeyUsage {
                key_id: Some("gone".into()),
                alg: Some(Algorithm::HmacSha256),
                pending: 2,
            },
        ];
        let configured = vec![
            ("new".to_owned(), Algorithm::HmacSha256),
            ("old".to_owned(), Algorithm::HmacSha256),
            ("older".to_owned(), Algorithm::HmacSha256),
        ];
        let rows = merge_status(usage, &configured, Some("new"));
        let view: Vec<(Option<&str>, u64, &str)> = rows
            .iter()
            .map(|r| (r.key_id.as_deref(), r.pending, r.advice()))
            .collect();
        assert_eq!(
            view,
            vec![
                (
                    Some("gone"),
                    2,
                    "NOT CONFIGURED: these tasks will fail verification"
                ),
                (Some("new"), 0, "active: signs new tasks"),
                (Some("old"), 3, "keep: pending tasks need it"),
                (Some("older"), 0, "safe to retire"),
                (None, 1, "unsigned tasks"),
            ]
        );
    }

    #[test]
    fn without_configuration_pending_keys_are_kept() {
        let usage = vec![KeyUsage {
            key_id: Some("k1".into()),
            alg: Some(Algorithm::Ed25519),
            pending: 2,
        }];
        let rows = merge_status(usage, &[], None);
        assert_eq!(rows[0].advice(), "keep: pending tasks need it");
    }

    #[test]
    fn default_key_ids_are_valid() {
        KeyId::new(default_key_id()).unwrap();
    }
}
