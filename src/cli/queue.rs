//! `inboxgrove queue ...`: the operator's view of the outbound queue, over all workspaces.

use clap::Subcommand;

use super::{print_list, text_table};
use crate::app::App;
use crate::error::Error;
use crate::mta::QueueStatus;
use crate::mta::queue::{self, QueueRow};

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Print the queue as a table, newest first.
    List {
        /// Only rows with this status.
        #[arg(long, value_parser = QueueStatus::names())]
        status: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Make a queued or deferred message due now (the running appliance picks it up).
    Retry {
        /// The queue row's id (the ID column of "queue list").
        id: i64,
    },
    /// Cancel a queued or deferred message.
    Cancel {
        /// The queue row's id (the ID column of "queue list").
        id: i64,
    },
}

pub async fn run(app: App, command: QueueCommand) -> anyhow::Result<()> {
    let not_found = |id: i64| {
        move |e: Error| match e {
            Error::NotFound => anyhow::anyhow!("No queue row {id}"),
            other => other.into(),
        }
    };
    match command {
        QueueCommand::List { status, json } => {
            let status = status.as_deref().map(str::parse::<QueueStatus>).transpose()?;
            // A chunk per read, so a long queue does not hold one reader for long.
            const CHUNK: i64 = 500;
            let mut rows = Vec::new();
            loop {
                let search =
                    queue::Search { status, limit: CHUNK, offset: i64::try_from(rows.len())?, ..Default::default() };
                let chunk = app.store.read(move |conn| queue::search(conn, None, &search)).await?;
                let last = i64::try_from(chunk.len())? < CHUNK;
                rows.extend(chunk);
                if last {
                    break;
                }
            }
            print_list(&rows, json, table)?;
        }
        QueueCommand::Retry { id } => {
            let row = queue::retry_now(&app, None, id).await.map_err(not_found(id))?;
            eprintln!("Message {} to {} is due now ({})", row.id, row.recipient, row.status);
        }
        QueueCommand::Cancel { id } => {
            let row = queue::cancel(&app, None, id).await.map_err(not_found(id))?;
            eprintln!("Message {} to {} cancelled", row.id, row.recipient);
        }
    }
    Ok(())
}

/// The queue as an aligned text table.
fn table(rows: &[QueueRow]) -> String {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let next = if r.is_pending() { crate::clock::format_unix(r.next_attempt_at) } else { "-".into() };
            let from = if r.mail_from.is_empty() { "<>".to_string() } else { r.mail_from.clone() };
            let reply = r.last_reply.replace(['\r', '\n'], " ");
            [r.id.to_string(), r.status.to_string(), r.attempts.to_string(), r.recipient.clone(), from, next, reply]
        })
        .collect();
    let header = ["ID", "STATUS", "ATTEMPTS", "RECIPIENT", "FROM", "NEXT ATTEMPT", "LAST REPLY"];
    text_table(header, &cells, "(the queue is empty)")
}
