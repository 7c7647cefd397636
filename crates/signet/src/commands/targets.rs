//! `signet targets ls|show|create|update|rotate|rm|reseal`: registered
//! receivers, on the database or, with `--url`, against a server, through
//! the API's routes (`/v1/targets…`), so `--json` prints what the API
//! answers and both modes refuse alike.
//!
//! Never a secret, except once: `create` and `rotate` print the new secret
//! (as the API answers them), to store at once. The secrets still signing
//! are listed by their keyed fingerprint, each with the time it stops (the
//! end of a rotation's overlap). On the database that needs the master key
//! the server uses (`SIGNET_MASTER_KEY`, or the key file beside a SQLite
//! database); without it `ls` and `show` show the rest.
//!
//! `signet targets reseal` re-seals every target's secrets under the
//! current master key, after `SIGNET_MASTER_KEY` became the new key and
//! `SIGNET_MASTER_KEY_PREVIOUS` holds the old one (docs/keys.md): batch by
//! batch, each row swapped only if unchanged. Safe to interrupt and run
//! again; a target no key opens is named by id and makes the exit status 1.
//! Against a server (`POST /v1/targets/reseal`) the server's keys are used.

use std::io::BufRead as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Map, Value};
use signet_sign::sealed::{MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR};

use crate::api::{segment, ApiArgs, Call, Keys};
use crate::commands::{block_on, finish, Negative};
use crate::output::{emit, outln, print_json, printable, Table};
use crate::task_view::text;
use crate::timearg::parse_duration;

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
        api: ApiArgs,
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
        api: ApiArgs,
    },
    /// Register a target. Its signing secret is printed once: store it now
    /// (the receiver verifies with it).
    Create(CreateArgs),
    /// Change a target's name, URL prefix or limits (the secret changes
    /// only by `rotate`).
    Update(UpdateArgs),
    /// Replace a target's secret: the new one is printed once; the old one
    /// keeps signing beside it for --overlap, so receivers can switch.
    Rotate(RotateArgs),
    /// Delete a target. Refused while pending messages, schedules or push
    /// queues use it, unless --force.
    Rm {
        /// The target id (`tgt_…`) or name.
        target: String,
        /// Delete even though something uses it: its pending messages are
        /// dead-lettered target-refused, its schedules fire nothing.
        #[arg(long)]
        force: bool,
        /// Print JSON, as `DELETE /v1/targets/{id}` answers (nothing when
        /// nothing used the target).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Re-seal every target's secrets under the current master key
    /// (SIGNET_MASTER_KEY), opening them with it or with a key of
    /// SIGNET_MASTER_KEY_PREVIOUS. Safe to interrupt and run again.
    Reseal {
        /// Only count what would be re-sealed (every row is opened); change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
        /// Targets read and re-sealed per batch (1-10000; default 100).
        #[arg(long)]
        batch: Option<u32>,
        /// Print JSON, as `POST /v1/targets/reseal` answers.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// The secret flag of `create` and `rotate`.
#[derive(Debug, clap::Args)]
struct SecretArgs {
    /// Read the secret from the first line of stdin instead of generating
    /// one (16-256 visible ASCII characters, e.g. a whsec_… secret); never
    /// on the command line, where other users see it.
    #[arg(long)]
    secret_stdin: bool,
}

impl SecretArgs {
    fn read(&self) -> anyhow::Result<Option<String>> {
        if !self.secret_stdin {
            return Ok(None);
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let secret = line.trim_end_matches(['\r', '\n']).to_owned();
        if secret.is_empty() {
            bail!("--secret-stdin: stdin gave no secret; pipe one line, e.g. `printf %s \"$SECRET\" | signet targets …`");
        }
        Ok(Some(secret))
    }
}

/// Arguments of `signet targets create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// Unique name: 1-128 of A-Z a-z 0-9 . _ : -
    name: String,
    /// Messages for this target must have a URL starting with this.
    #[arg(long)]
    url_prefix: Option<String>,
    /// Deliveries per second to this target, at most.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Deliveries in flight to this target, at most.
    #[arg(long)]
    max_concurrency: Option<u32>,
    /// Refuse http:// URLs.
    #[arg(long)]
    https_only: bool,
    #[command(flatten)]
    secret: SecretArgs,
    /// Print JSON, as `POST /v1/targets` answers (with the secret).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Arguments of `signet targets update`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
    /// The target id (`tgt_…`) or name.
    target: String,
    /// A new unique name.
    #[arg(long)]
    name: Option<String>,
    /// A new URL prefix.
    #[arg(long, conflicts_with = "no_url_prefix")]
    url_prefix: Option<String>,
    /// Remove the URL prefix.
    #[arg(long)]
    no_url_prefix: bool,
    /// A new rate limit (deliveries per second).
    #[arg(long, conflicts_with = "no_rate_limit")]
    rate_limit: Option<u32>,
    /// Remove the rate limit.
    #[arg(long)]
    no_rate_limit: bool,
    /// A new concurrency limit (deliveries in flight).
    #[arg(long, conflicts_with = "no_max_concurrency")]
    max_concurrency: Option<u32>,
    /// Remove the concurrency limit.
    #[arg(long)]
    no_max_concurrency: bool,
    /// Refuse http:// URLs (true) or not (false).
    #[arg(long, value_name = "BOOL")]
    https_only: Option<bool>,
    /// Print JSON, as `PATCH /v1/targets/{id}` answers.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Arguments of `signet targets rotate`.
#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The target id (`tgt_…`) or name.
    target: String,
    /// How long the replaced secret keeps signing beside the new one
    /// (default 24h, at most 30d; 0s stops it at once).
    #[arg(long, value_parser = parse_duration)]
    overlap: Option<Duration>,
    #[command(flatten)]
    secret: SecretArgs,
    /// Print JSON, as `POST /v1/targets/{id}/rotate-secret` answers (with
    /// the secret).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    let name = match &cmd {
        Command::Ls { .. } => "targets ls",
        Command::Show { .. } => "targets show",
        Command::Create(_) => "targets create",
        Command::Update(_) => "targets update",
        Command::Rotate(_) => "targets rotate",
        Command::Rm { .. } => "targets rm",
        Command::Reseal { .. } => "targets reseal",
    };
    finish(name, block_on(targets(cmd)))
}

/// The path of one target.
fn path(target: &str) -> String {
    format!("/v1/targets/{}", segment(target))
}

async fn targets(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Ls { json, api } => {
            let api = api.open(Keys::IfAvailable).await?;
            let list = api.send(Call::get("/v1/targets")).await?;
            if json {
                return print_json(&list, false);
            }
            print_list(&list)
        }
        Command::Show { target, json, api } => {
            let api = api.open(Keys::IfAvailable).await?;
            let v = api.send(Call::get(path(&target))).await?;
            if json {
                return print_json(&v, true);
            }
            print_target(&v)
        }
        Command::Create(args) => create(args).await,
        Command::Update(args) => update(args).await,
        Command::Rotate(args) => rotate(args).await,
        Command::Rm {
            target,
            force,
            json,
            api,
        } => {
            let api = api.open(Keys::IfAvailable).await?;
            let call = Call::delete(path(&target)).query("force", force.then_some("true"));
            let answer = api.send(call).await?;
            if json {
                if !answer.is_null() {
                    print_json(&answer, false)?;
                }
                return Ok(());
            }
            outln!("deleted target {}", printable(&target));
            if let Some(left) = answer.get("left_behind") {
                outln!(
                    "left behind: {} pending message(s) (dead-lettered target-refused when their turn comes), {} schedule(s) (fire nothing), {} push queue(s) (pushes fail until bound again)",
                    text(left, "pending_messages"),
                    text(left, "schedules"),
                    text(left, "push_queues")
                );
            }
            Ok(())
        }
        Command::Reseal {
            dry_run,
            batch,
            json,
            api,
        } => reseal(dry_run, batch, json, api).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    let optional = [
        ("url_prefix", args.url_prefix.map(Value::from)),
        ("rate_limit_per_s", args.rate_limit.map(Value::from)),
        ("max_concurrency", args.max_concurrency.map(Value::from)),
        ("secret", args.secret.read()?.map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            body.insert(key.into(), v);
        }
    }
    if args.https_only {
        body.insert("https_only".into(), json!(true));
    }
    let api = args.api.open(Keys::Required).await?;
    let v = api.send(Call::post("/v1/targets").body(&body)?).await?;
    print_with_secret(&v, args.json, "created")
}

async fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    if let Some(name) = args.name {
        body.insert("name".into(), json!(name));
    }
    let clearable = [
        (
            "url_prefix",
            args.url_prefix.map(Value::from),
            args.no_url_prefix,
        ),
        (
            "rate_limit_per_s",
            args.rate_limit.map(Value::from),
            args.no_rate_limit,
        ),
        (
            "max_concurrency",
            args.max_concurrency.map(Value::from),
            args.no_max_concurrency,
        ),
    ];
    for (key, value, clear) in clearable {
        match (value, clear) {
            (Some(v), _) => {
                body.insert(key.into(), v);
            }
            (None, true) => {
                body.insert(key.into(), Value::Null);
            }
            (None, false) => {}
        }
    }
    if let Some(https_only) = args.https_only {
        body.insert("https_only".into(), json!(https_only));
    }
    if body.is_empty() {
        bail!("nothing to change: give --name, --url-prefix, --rate-limit, --max-concurrency, --https-only or a --no-… flag");
    }
    let api = args.api.open(Keys::IfAvailable).await?;
    let v = api
        .send(Call::patch(path(&args.target)).body(&body)?)
        .await?;
    if args.json {
        return print_json(&v, true);
    }
    outln!(
        "updated target {} ({})",
        printable(&text(&v, "name")),
        text(&v, "id")
    );
    print_target(&v)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    if let Some(overlap) = args.overlap {
        body.insert("overlap_s".into(), json!(overlap.as_secs()));
    }
    if let Some(secret) = args.secret.read()? {
        body.insert("secret".into(), json!(secret));
    }
    let api = args.api.open(Keys::Required).await?;
    let call = Call::post(format!("{}/rotate-secret", path(&args.target))).body(&body)?;
    let v = api.send(call).await?;
    print_with_secret(&v, args.json, "rotated the secret of")
}

/// The answer of a create or rotate: the target, and its new secret once.
fn print_with_secret(v: &Value, json: bool, done: &str) -> anyhow::Result<()> {
    if json {
        return print_json(v, true);
    }
    outln!(
        "{done} target {} ({})",
        printable(&text(v, "name")),
        text(v, "id")
    );
    outln!("secret (shown once, store it now): {}", text(v, "secret"));
    print_target(v)
}

/// A list of targets as a table.
fn print_list(list: &Value) -> anyhow::Result<()> {
    let items = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.is_empty() {
        outln!("no targets yet; register one with `signet targets create NAME`");
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "ID", "URL PREFIX", "SECRETS", "FINGERPRINT"]);
    let mut unopened = false;
    for v in items {
        let secrets = v.get("secrets").and_then(Value::as_array);
        unopened |= secrets.is_none();
        table.row(vec![
            text(v, "name"),
            text(v, "id"),
            text(v, "url_prefix"),
            secrets.map_or("?".to_owned(), |s| s.len().to_string()),
            text(v, "secret_fingerprint"),
        ]);
    }
    emit(&table.render())?;
    if unopened {
        eprintln!("{NO_MASTER_KEY}");
    }
    Ok(())
}

/// One target as `name: value` lines and its secrets by fingerprint.
fn print_target(v: &Value) -> anyhow::Result<()> {
    let limit = |key: &str| match v.get(key).and_then(Value::as_u64) {
        Some(n) => n.to_string(),
        None => "none".to_owned(),
    };
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec![
        "url prefix".into(),
        v.get("url_prefix")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned(),
    ]);
    table.row(vec!["https only".into(), text(v, "https_only")]);
    table.row(vec!["rate limit/s".into(), limit("rate_limit_per_s")]);
    table.row(vec!["max concurrency".into(), limit("max_concurrency")]);
    table.row(vec!["created".into(), text(v, "created_at")]);
    table.row(vec!["updated".into(), text(v, "updated_at")]);
    emit(&table.render())?;
    match v.get("secrets").and_then(Value::as_array) {
        None => {
            outln!("current secret: {}", text(v, "secret_fingerprint"));
            eprintln!("{NO_MASTER_KEY}");
        }
        Some(secrets) => {
            outln!("secrets signing now (by fingerprint):");
            for s in secrets {
                match s.get("stops_at").and_then(Value::as_str) {
                    None => outln!("  {}  current", text(s, "fingerprint")),
                    Some(at) => outln!("  {}  stops {at}", text(s, "fingerprint")),
                }
            }
        }
    }
    Ok(())
}

/// `signet targets reseal`: batch after batch through
/// `POST /v1/targets/reseal`, printing the progress after each (to stderr
/// with `--json`, whose answer sums the batches in the API's shape).
async fn reseal(dry_run: bool, batch: Option<u32>, json: bool, api: ApiArgs) -> anyhow::Result<()> {
    // On the database re-sealing needs the master key: no fallback.
    let api = api.open(Keys::Required).await?;
    let mut sum: Option<Value> = None;
    let mut after: Option<String> = None;
    let verb = if dry_run { "to re-seal" } else { "resealed" };
    loop {
        let mut body = Map::new();
        body.insert("dry_run".into(), json!(dry_run));
        if let Some(b) = batch {
            body.insert("batch".into(), json!(b));
        }
        if let Some(a) = &after {
            body.insert("after".into(), json!(a));
        }
        let page = api
            .send(Call::post("/v1/targets/reseal").body(&body)?)
            .await?;
        match &mut sum {
            None => sum = Some(page.clone()),
            Some(s) => add_page(s, &page),
        }
        let s = sum.as_ref().unwrap_or(&page);
        let done = count(s, "resealed") + count(s, "already_current");
        let line = format!(
            "{verb} {done}/{} ({} already under the current key, {} failed)",
            count(s, "total").max(count(s, "checked")),
            count(s, "already_current"),
            s["failed"].as_array().map_or(0, Vec::len)
        );
        if json {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let r = sum.unwrap_or_default();
    let failed = r["failed"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if json {
        print_json(&r, false)?;
    } else {
        let master = text(&r, "master_key");
        let previous: Vec<&str> = r["previous_master_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for f in failed {
            eprintln!("target {}: {}", text(f, "target_id"), text(f, "reason"));
        }
        outln!(
            "{} target(s): {} {}, {} already under master key {master}, {} gone meanwhile, {} failed{}",
            text(&r, "total"),
            text(&r, "resealed"),
            if dry_run { "would be re-sealed" } else { "re-sealed" },
            text(&r, "already_current"),
            text(&r, "gone"),
            failed.len(),
            if previous.is_empty() {
                format!(" (no {MASTER_KEY_PREVIOUS_VAR} set: only secrets already under it open)")
            } else {
                format!(" (opened with it or {})", previous.join(", "))
            }
        );
        if failed.is_empty() && !dry_run && !previous.is_empty() {
            outln!(
                "every target is under the current master key: once no node still runs with the old key as {MASTER_KEY_VAR}, remove {MASTER_KEY_PREVIOUS_VAR} from every node"
            );
        }
    }
    if !failed.is_empty() {
        return Err(Negative(format!(
            "{} target(s) could not be re-sealed (listed above by id): no configured master key opens them; add the key that sealed them to {MASTER_KEY_PREVIOUS_VAR} and run this again",
            failed.len()
        ))
        .into());
    }
    Ok(())
}

/// A count of a re-seal answer (0 when absent).
fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// Adds the counts and failures of a batch's answer to `sum` (the first
/// batch's answer, which carries the total); `next_after` is the last's.
fn add_page(sum: &mut Value, page: &Value) {
    for key in ["checked", "resealed", "already_current", "gone"] {
        sum[key] = json!(count(sum, key) + count(page, key));
    }
    if let (Some(all), Some(more)) = (sum["failed"].as_array_mut(), page["failed"].as_array()) {
        all.extend(more.iter().cloned());
    }
    sum["next_after"] = page["next_after"].clone();
}

/// Said when the secrets cannot be opened where the answer came from.
const NO_MASTER_KEY: &str = "note: the secrets still signing are listed only with the master key the server uses; set SIGNET_MASTER_KEY (or run where the key file beside the database is)";
