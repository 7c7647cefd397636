//! `signet sign`: sign a body with a profile and print the headers to send.
//!
//! Only the headers go to stdout, one per line as `Name: value`, so the
//! output can be fed to `curl -H @-` or to `signet verify --header`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use rand::distributions::Alphanumeric;
use rand::Rng as _;
use signet_sign::config::MIN_HMAC_SECRET_LEN;
use signet_sign::profiles::{ProfileKey, SignRequest};
use signet_sign::Profile;
use signet_store::rules;

use crate::commands::finish;

/// Largest body read from stdin or a file (64 MiB): a body this large is a
/// mistake (a wrong file) rather than a webhook.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Arguments of `signet sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) keys: KeyArgs,
    /// Message id (default: a fresh `msg_…`).
    #[arg(long)]
    id: Option<String>,
    /// Unix seconds to sign with (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
    /// Read the body from this file instead of stdin.
    #[arg(long)]
    body_file: Option<PathBuf>,
}

/// The profile and keys, shared by `sign` and `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArgs {
    /// Wire format: standard, svix, stromboli, krafter, inngest, stem, github, stripe.
    #[arg(long, default_value = "standard", value_parser = parse_profile)]
    pub(crate) profile: Profile,
    /// A key in the profile's form (whsec_…, whsk_…, whpk_…, a plain secret,
    /// signkey-…, id:base64). Repeat for several keys (rotation).
    #[arg(long = "secret", value_name = "S", required = true)]
    pub(crate) secrets: Vec<String>,
}

impl KeyArgs {
    /// Parses every `--secret`; the error names its position, never its text.
    ///
    /// A Standard Webhooks secret (`standard`, `svix`) is held to the
    /// server's own rule for a target secret ([`rules::target_secret`]): a
    /// `whsec_` of 2 bytes would verify here and every delivery a server
    /// signs would then fail as `mismatch`, since no server accepts it. The
    /// other profiles' secrets belong to other systems, so an HMAC key below
    /// [`MIN_HMAC_SECRET_LEN`] bytes is warned about on stderr, not refused.
    pub(crate) fn parse(&self) -> anyhow::Result<Vec<ProfileKey>> {
        let total = self.secrets.len();
        let profile = self.profile;
        let mut keys = Vec::with_capacity(total);
        for (i, text) in self.secrets.iter().enumerate() {
            let which = format!("--secret {} of {total}", i + 1);
            let key = profile.parse_key(text).map_err(|e| {
                anyhow::anyhow!(
                    "{which} is not a valid {} key: {}",
                    profile.as_str(),
                    e.message()
                )
            })?;
            if matches!(profile, Profile::Standard | Profile::Svix) && key.can_sign() {
                rules::target_secret(text.trim()).map_err(|e| {
                    anyhow::anyhow!(
                        "{which} is refused, as a Signet server refuses it as a target secret: {}; make one with `signet keys generate --format standard`",
                        e.message()
                    )
                })?;
            }
            if let Some(len) = key.hmac_len().filter(|n| *n < MIN_HMAC_SECRET_LEN) {
                eprintln!(
                    "warning: {which} is an HMAC key of {len} bytes; Signet's own keys and target secrets hold at least {MIN_HMAC_SECRET_LEN}, so a short one is only right for another system's secret"
                );
            }
            keys.push(key);
        }
        Ok(keys)
    }
}

pub(crate) fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse::<Profile>().map_err(|e| e.to_string())
}

/// Reads the body from `--body-file` or stdin.
pub(crate) fn read_body(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    match file {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open --body-file {}", path.display()))?;
            f.take(MAX_BODY_BYTES + 1)
                .read_to_end(&mut body)
                .with_context(|| format!("cannot read --body-file {}", path.display()))?;
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading the body from stdin; end it with Ctrl-D (or pass --body-file)");
            }
            std::io::stdin()
                .lock()
                .take(MAX_BODY_BYTES + 1)
                .read_to_end(&mut body)
                .context("cannot read the body from stdin")?;
        }
    }
    if body.len() as u64 > MAX_BODY_BYTES {
        bail!("the body is larger than {MAX_BODY_BYTES} bytes; is it the right file?");
    }
    Ok(body)
}

/// A fresh message id: `msg_` and 24 random letters and digits.
fn fresh_id() -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("msg_{tail}")
}

/// The wall clock in unix seconds.
pub(crate) fn now_secs() -> i64 {
    crate::commands::now_ms().div_euclid(1000)
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("sign", sign(args))
}

fn sign(args: Args) -> anyhow::Result<()> {
    let keys = args.keys.parse()?;
    let body = read_body(args.body_file.as_ref())?;
    let id = args.id.unwrap_or_else(fresh_id);
    let timestamp = args.timestamp.unwrap_or_else(now_secs);
    let request = SignRequest {
        id: &id,
        timestamp,
        body: &body,
    };
    let headers = args
        .keys
        .profile
        .sign(&keys, &request)
        .map_err(|e| anyhow::anyhow!("cannot sign: {}", e.message()))?;
    let mut out = std::io::stdout().lock();
    for (name, value) in headers {
        writeln!(out, "{name}: {value}")?;
    }
    Ok(())
}
