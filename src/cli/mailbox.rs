//! `inboxgrove mailbox ...`: creating mailboxes, exporting them for sequencers, their settings.

use clap::Subcommand;

use super::{cli_access, find_domain, print_bytes};
use crate::app::App;
use crate::error::Error;
use crate::mailbox::export::{self, ExportFormat};
use crate::mailbox::{self, Changes, Status, create};

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// Create N mailboxes on a domain; prints their credentials as CSV, once.
    Create {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Print a domain's mailboxes as CSV for a sequencer (without passwords).
    Export {
        #[arg(long)]
        domain: String,
        #[arg(long, value_parser = ["instantly", "smartlead"])]
        format: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Change a mailbox's settings.
    Set {
        email: String,
        #[arg(long)]
        daily_limit: Option<u32>,
        /// Messages per minute the mailbox may submit (0: no limit).
        #[arg(long)]
        per_minute: Option<u32>,
        #[arg(long, value_parser = ["active", "warming", "paused"])]
        status: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

pub async fn run(app: App, command: MailboxCommand) -> anyhow::Result<()> {
    match command {
        MailboxCommand::Create { domain, count, workspace } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let issued = create::create_bulk(&app, &access, domain.id, count, false).await?;
            let rows: Vec<(String, String)> = issued.credentials.into_iter().map(|c| (c.email, c.password)).collect();
            print_bytes(&export::write_credentials_csv(&rows))?;
            eprintln!("{} mailboxes created on {}; these passwords are not shown again", rows.len(), domain.name);
        }
        MailboxCommand::Export { domain, format, workspace } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let format: ExportFormat = format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (ws, id) = (access.workspace.id, domain.id);
            let mailboxes = app.store.read(move |conn| mailbox::list(conn, ws, Some(id))).await?;
            let csv =
                export::write_csv(format, &mailbox::server_settings(&app.config), &mailbox::export_rows(&mailboxes));
            print_bytes(&csv)?;
        }
        MailboxCommand::Set { email, daily_limit, per_minute, status, display_name } => {
            let (ws, found) = find_mailbox(&app, &email).await?;
            let access = cli_access(&app, Some(ws.to_string())).await?;
            let status = status.map(|s| s.parse::<Status>()).transpose()?;
            let changes = Changes { display_name, daily_limit, per_minute, status };
            let updated = mailbox::update(&app, &access, found.id, changes).await?;
            eprintln!(
                "{}: display name \"{}\", daily limit {}, per minute {}, status {}",
                updated.address, updated.display_name, updated.daily_limit, updated.per_minute, updated.status
            );
        }
    }
    Ok(())
}

/// A mailbox by address, in whichever workspace, with that workspace's id.
pub async fn find_mailbox(app: &App, email: &str) -> anyhow::Result<(i64, mailbox::Mailbox)> {
    let lookup = email.to_string();
    app.store.read(move |conn| mailbox::find_by_address(conn, &lookup)).await.map_err(|e| match e {
        Error::NotFound => anyhow::anyhow!("no mailbox {email}"),
        other => other.into(),
    })
}
