//! `signet queues`: how many tasks each queue holds in each state.
//! Signet's own queue (`signet:messages`: messages and callbacks) only with
//! `--all` or `--queue signet:messages`.

use std::process::ExitCode;

use serde_json::{json, Map, Value};
use signet_store::TaskState;

use crate::commands::{block_on, finish};
use crate::output::{print_json, Table};
use crate::store_url::DatabaseArgs;

/// Arguments of `signet queues`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Only this queue (Signet's own `signet:messages` included).
    #[arg(long)]
    queue: Option<String>,
    /// Also count messages and callbacks (Signet's own queue
    /// `signet:messages`).
    #[arg(long, conflicts_with = "queue")]
    all: bool,
    /// Print JSON: [{"queue": ..., "counts": {"available": 3, ...}, "total": ...}].
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("queues", block_on(queues(args)))
}

async fn queues(args: Args) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let mut counts = store.counts().await?;
    let internal_hidden =
        args.queue.is_none() && !args.all && counts.iter().any(|c| c.is_internal());
    counts.retain(|c| c.is_listed(args.queue.as_deref(), args.all));
    counts.sort_by(|a, b| a.queue.cmp(&b.queue));
    if args.json {
        let items: Vec<Value> = counts
            .iter()
            .map(|q| {
                let per_state: Map<String, Value> = TaskState::ALL
                    .iter()
                    .map(|s| (s.as_str().to_owned(), json!(q.count(*s))))
                    .collect();
                let total: u64 = TaskState::ALL.iter().map(|s| q.count(*s)).sum();
                json!({ "queue": q.queue, "counts": per_state, "total": total })
            })
            .collect();
        return print_json(&Value::Array(items), false);
    }
    if counts.is_empty() {
        if let Some(queue) = &args.queue {
            println!("queue {queue:?} holds no tasks");
            return Ok(());
        }
        if internal_hidden {
            println!("no tasks yet; messages and callbacks: `signet queues --all`");
            return Ok(());
        }
        println!(
            "no tasks yet; enqueue one with `signet enqueue --queue Q --task NAME --args '{{}}'`"
        );
        return Ok(());
    }
    let mut columns = vec!["QUEUE"];
    columns.extend(TaskState::ALL.iter().map(|s| s.as_str()));
    columns.push("total");
    let mut table = Table::new(&columns);
    for q in &counts {
        let mut cells = vec![q.queue.clone()];
        cells.extend(TaskState::ALL.iter().map(|s| q.count(*s).to_string()));
        cells.push(
            TaskState::ALL
                .iter()
                .map(|s| q.count(*s))
                .sum::<u64>()
                .to_string(),
        );
        table.row(cells);
    }
    print!("{}", table.render());
    Ok(())
}
