//! `signet keys generate|status`: make signing keys, and see which keys
//! pending tasks still need.

use std::process::ExitCode;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use signet_sign::{Algorithm, Ed25519SecretKey, HmacSecret, KeyId};

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
            let secret = HmacSecret::generate(GENERATED_HMAC_LEN);
            vec![format!("whsec_{}", STANDARD.encode(secret.secret_bytes()))]
        }
        (Algorithm::Ed25519, Format::Standard) => {
            let key = Ed25519SecretKey::generate();
            let public = key.public_key().to_bytes();
            let mut pair = zeroize::Zeroizing::new(Vec::with_capacity(64));
            pair.extend_from_slice(key.secret_bytes().as_slice());
            pair.extend_from_slice(&public);
            vec![
                format!("whsk_{}", STANDARD.encode(pair.as_slice())),
                format!("whpk_{}", STANDARD.encode(public)),
            ]
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

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let mut usage = store.pending_by_key().await?;
    usage.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    if args.json {
        let items: Vec<_> = usage
            .iter()
            .map(|u| {
                json!({
                    "key_id": u.key_id,
                    "algorithm": u.alg.map(|a| a.as_str()),
                    "pending": u.pending,
                    "safe_to_retire": u.key_id.is_some() && u.pending == 0,
                })
            })
            .collect();
        return print_json(&serde_json::Value::Array(items), false);
    }
    if usage.is_empty() {
        println!("no pending tasks: no key is needed by queued work");
    } else {
        let mut table = Table::new(&["KEY ID", "ALGORITHM", "PENDING"]);
        for u in &usage {
            table.row(vec![
                u.key_id.clone().unwrap_or_else(|| "(unsigned)".to_owned()),
                u.alg.map_or_else(|| "-".to_owned(), |a| a.to_string()),
                u.pending.to_string(),
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
