//! `inboxgrove events list`: the event log, oldest first (a log read forward from `--since`), as
//! a table or, with `--json`, one object a line: `kind`, `at` (Unix seconds), `mailbox` (its
//! address, null for system mail or a deleted mailbox), `peer` (the other party's address),
//! `message_id` (of our message the event is about; null when unknown), and for `bounced` its
//! `class`. Without `--workspace` every workspace's events are listed (the operator's view).

use clap::Subcommand;
use serde::Serialize;

use super::mailbox::find_mailbox;
use super::{cli_access, text_table};
use crate::app::App;
use crate::events::{self, Event, Filter, Kind};
use crate::mta::bounce::BounceClass;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print events, oldest first.
    #[command(visible_alias = "ls")]
    List {
        /// Only this workspace's events (name or id).
        #[arg(long)]
        workspace: Option<String>,
        /// Only events of this kind.
        #[arg(long, value_parser = Kind::names())]
        kind: Option<String>,
        /// Only events of this mailbox (its address).
        #[arg(long, value_name = "EMAIL")]
        mailbox: Option<String>,
        /// Only events at or after this time (Unix seconds).
        #[arg(long, value_name = "UNIX")]
        since: Option<i64>,
        /// The most events printed.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
}

/// One event as `--json` prints it.
#[derive(Debug, Serialize)]
struct JsonEvent<'a> {
    kind: Kind,
    at: i64,
    mailbox: Option<&'a str>,
    peer: &'a str,
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<BounceClass>,
}

impl<'a> From<&'a Event> for JsonEvent<'a> {
    fn from(event: &'a Event) -> JsonEvent<'a> {
        JsonEvent {
            kind: event.kind,
            at: event.at,
            mailbox: event.mailbox.as_deref(),
            peer: &event.peer,
            message_id: Some(event.message_id.as_str()).filter(|id| !id.is_empty()),
            class: event.class,
        }
    }
}

pub async fn run(app: App, command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::List { workspace, kind, mailbox, since, limit, json } = command;
    let workspace = match workspace {
        Some(wanted) => Some(cli_access(&app, Some(wanted)).await?.workspace.id),
        None => None,
    };
    let mailbox_id = match mailbox {
        Some(email) => {
            let (owner, found) = find_mailbox(&app, &email).await?;
            if workspace.is_some_and(|ws| ws != owner) {
                anyhow::bail!("The mailbox {email} is not in that workspace");
            }
            Some(found.id)
        }
        None => None,
    };
    let kind = kind.as_deref().map(str::parse::<Kind>).transpose()?;
    let filter = Filter { workspace, kind, mailbox_id, since, queue_id: None };
    let found = app.store.read(move |conn| events::in_order(conn, &filter, limit)).await?;
    if json {
        let mut out = String::new();
        for event in &found {
            out.push_str(&serde_json::to_string(&JsonEvent::from(event))?);
            out.push('\n');
        }
        print!("{out}");
    } else {
        print!("{}", table(&found));
    }
    Ok(())
}

fn table(found: &[Event]) -> String {
    let cells: Vec<[String; 6]> = found
        .iter()
        .map(|e| {
            let kind = match e.class {
                Some(class) => format!("{} ({class})", e.kind),
                None => e.kind.to_string(),
            };
            let mailbox = e.mailbox.clone().unwrap_or_else(|| "-".into());
            let detail = e.detail.replace(['\r', '\n'], " ");
            [crate::clock::format_unix(e.at), kind, mailbox, e.peer.clone(), e.message_id.clone(), detail]
        })
        .collect();
    text_table(["AT", "KIND", "MAILBOX", "PEER", "MESSAGE-ID", "DETAIL"], &cells, "(no events)")
}
