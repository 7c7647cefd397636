//! `signet verify`: check a signed request.
//!
//! Exit 0 prints `valid` and the key that matched (and any warnings);
//! exit 1 prints one line saying why the request is not valid;
//! exit 2 is a usage or key error (bad `--secret`, malformed `--header`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use signet_sign::profiles::{VerifyOptions, DEFAULT_TOLERANCE_SECS};

use crate::commands::sign::{now_secs, read_body, KeyArgs};
use crate::commands::{finish, Negative};

/// Arguments of `signet verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    keys: KeyArgs,
    /// A received header as `Name: value`; repeat for each header.
    #[arg(long = "header", value_name = "'Name: value'", required = true)]
    headers: Vec<String>,
    /// Unix seconds to check freshness against (default: now).
    #[arg(long)]
    now: Option<i64>,
    /// Accepted clock difference in seconds, both directions.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECS, value_parser = clap::value_parser!(i64).range(0..))]
    tolerance: i64,
    /// Read the body from this file instead of stdin.
    #[arg(long)]
    body_file: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> ExitCode {
    // A negative answer goes to stdout as one line: it is the command's output.
    match verify(args) {
        Err(e) if e.downcast_ref::<Negative>().is_some() => {
            println!("invalid: {e}");
            ExitCode::from(1)
        }
        other => finish("verify", other),
    }
}

/// Parses `Name: value` (the value may be empty; the name may not).
fn parse_header(text: &str, position: usize) -> anyhow::Result<(String, String)> {
    let Some((name, value)) = text.split_once(':') else {
        bail!("--header {position} has no ':'; write it as 'Name: value'");
    };
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        bail!("--header {position} has an invalid name {name:?}; write it as 'Name: value'");
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        bail!("--header {position} ({name}) has a value with CR, LF or NUL");
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn verify(args: Args) -> anyhow::Result<()> {
    let keys = args.keys.parse()?;
    let headers = args
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| parse_header(h, i + 1))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = read_body(args.body_file.as_ref())?;
    let options = VerifyOptions {
        now: args.now.unwrap_or_else(now_secs),
        tolerance_secs: args.tolerance,
    };
    match args.keys.profile.verify(&keys, &headers, &body, &options) {
        Ok(verified) => {
            println!("valid: signed with {}", verified.key_label);
            for warning in &verified.warnings {
                println!("warning: {warning}");
            }
            Ok(())
        }
        Err(e) if e.is_verification() => Err(Negative(e.message().to_owned()).into()),
        Err(e) => bail!("{}", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_or_say_how_to_write_them() {
        assert_eq!(
            parse_header("webhook-id: msg_1", 1).unwrap(),
            ("webhook-id".to_owned(), "msg_1".to_owned())
        );
        assert_eq!(
            parse_header("Stripe-Signature:t=1,v1=ab", 1).unwrap(),
            ("Stripe-Signature".to_owned(), "t=1,v1=ab".to_owned())
        );
        assert_eq!(parse_header("x-empty:", 1).unwrap().1, "");
        for bad in ["no colon", ": value", "bad name: v", "x: a\nb"] {
            let err = parse_header(bad, 3).unwrap_err().to_string();
            assert!(err.contains("--header 3"), "{err}");
        }
    }
}
