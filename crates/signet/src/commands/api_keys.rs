//! `signet api-keys create|ls|revoke`: bearer keys for the HTTP API.
//!
//! A key's secret (`sk_…`) is printed once by `create`, alone on stdout, and
//! stored only as its SHA-256 hash; `ls` never shows the secret or the hash.

use std::process::ExitCode;

use serde_json::{json, Value};
use signet_server::Scope;
use signet_server::{create_api_key, validate_name};
use signet_store::ApiKeyId;

use crate::commands::{block_on, finish, now_ms};
use crate::output::{format_ms, format_opt_ms, print_json, printable, Table};
use crate::store_url::DatabaseArgs;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a key and print its secret (once) on stdout.
    Create {
        /// A name people recognise (who or what uses the key).
        #[arg(long)]
        name: String,
        /// admin (everything), work (a worker: claim and settle tasks over
        /// HTTP, enqueue and read), publish (enqueue and read) or read (GET
        /// routes).
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List keys: id, name, scope, prefix, created, revoked. Never the secret.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a key by id (`key_…`). Servers stop accepting it within seconds.
    /// An unknown or already revoked key exits 1.
    Revoke {
        /// The key id, as `ls` shows it.
        id: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse()
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    finish("api-keys", block_on(api_keys(cmd)))
}

async fn api_keys(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create { name, scope, db } => {
            validate_name(&name).map_err(anyhow::Error::msg)?;
            let store = db.open().await?;
            let key = create_api_key(store.as_ref(), &name, scope, now_ms()).await?;
            store.close().await?;
            eprintln!(
                "created API key {} ({scope}); the secret below is shown once, store it now",
                key.record.id
            );
            println!("{}", key.secret.expose_secret());
            Ok(())
        }
        Command::Ls { json, db } => {
            let store = db.open().await?;
            let keys = store.list_api_keys().await?;
            store.close().await?;
            if json {
                let items: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "name": k.name,
                            "scope": k.scope,
                            "prefix": k.prefix,
                            "created_at_ms": k.created_at_ms,
                            "revoked_at_ms": k.revoked_at_ms,
                        })
                    })
                    .collect();
                return print_json(&Value::Array(items), false);
            }
            if keys.is_empty() {
                println!("no API keys; create one with `signet api-keys create --name NAME --scope admin|work|publish|read`");
                return Ok(());
            }
            let mut table = Table::new(&["ID", "NAME", "SCOPE", "PREFIX", "CREATED", "REVOKED"]);
            for k in &keys {
                table.row(vec![
                    k.id.clone(),
                    printable(&k.name),
                    k.scope.clone(),
                    format!("{}…", k.prefix),
                    format_ms(k.created_at_ms),
                    format_opt_ms(k.revoked_at_ms),
                ]);
            }
            print!("{}", table.render());
            Ok(())
        }
        Command::Revoke { id, db } => {
            ApiKeyId::parse(&id)
                .map_err(|e| anyhow::anyhow!("{e}; `signet api-keys ls` shows the ids"))?;
            let store = db.open().await?;
            let now = now_ms();
            let result = store.revoke_api_key(&id, now).await;
            store.close().await?;
            match result {
                // Revoking a revoked key keeps its first revocation time:
                // nothing changed.
                Ok(k) if k.revoked_at_ms.is_some_and(|at| at != now) => {
                    Err(crate::commands::Negative(format!(
                        "API key {} ({}) was already revoked at {}; nothing changed",
                        k.id,
                        printable(&k.name),
                        format_opt_ms(k.revoked_at_ms)
                    ))
                    .into())
                }
                Ok(k) => {
                    println!("revoked {} ({})", k.id, printable(&k.name));
                    Ok(())
                }
                Err(e) if e.is_not_found() => Err(crate::commands::Negative(format!(
                    "no API key {id}; `signet api-keys ls` shows the ids"
                ))
                .into()),
                Err(e) => Err(e.into()),
            }
        }
    }
}
