//! `inboxgrove mailbox ...`: creating mailboxes, exporting them for sequencers, their settings.
//! Passwords are printed only right after creation or a reset (they are stored as hashes), as
//! `email,password` CSV or directly as a sequencer's import file.

use clap::Subcommand;

use super::{
    access_for_address, cli_access, find_domain, list_scope, print_bytes, print_deployment_warnings, print_json,
    print_list, text_table,
};
use crate::app::App;
use crate::error::Error;
use crate::mailbox::create::{self, Issued};
use crate::mailbox::export::{self, ExportFormat};
use crate::mailbox::{self, Changes, Mailbox, Status};
use crate::workspaces::Access;

/// The file formats credentials can be printed in.
const CREDENTIAL_FORMATS: [&str; 3] = ["plain", "instantly", "smartlead"];

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// List mailboxes (of one domain, or of the workspace).
    #[command(visible_alias = "ls")]
    List {
        /// Only the mailboxes of this domain.
        #[arg(long)]
        domain: Option<String>,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Print one mailbox's settings.
    Show {
        /// The mailbox's address.
        email: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Create N mailboxes on a domain; prints their credentials, once.
    #[command(name = "add", visible_alias = "create")]
    Create {
        /// The domain the mailboxes are created on.
        #[arg(long)]
        domain: String,
        /// How many mailboxes.
        #[arg(long)]
        count: usize,
        /// Messages a day each may send (0 to 10000); without it, the workspace's default daily limit.
        #[arg(long, value_name = "N")]
        daily_limit: Option<u32>,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// plain: "email,password" CSV; instantly, smartlead: that sequencer's import file, with the passwords.
        #[arg(long, default_value = "plain", value_parser = CREDENTIAL_FORMATS)]
        format: String,
    },
    /// Print a domain's mailboxes as CSV for a sequencer (without passwords; role mailboxes are
    /// never exported).
    Export {
        /// The domain whose mailboxes are exported.
        #[arg(long)]
        domain: String,
        /// The sequencer's import format.
        #[arg(long, value_parser = ["instantly", "smartlead"])]
        format: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Change a mailbox's settings (values equal to the current ones change nothing).
    Set {
        /// The mailbox's address.
        email: String,
        /// Messages a day it may send.
        #[arg(long)]
        daily_limit: Option<u32>,
        /// Messages per minute the mailbox may submit (0: no limit).
        #[arg(long)]
        per_minute: Option<u32>,
        /// Whether it sends (active), warms up (warming) or is held (paused).
        #[arg(long, value_parser = ["active", "warming", "paused"])]
        status: Option<String>,
        /// The name shown in its From header.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Give a mailbox a new password (the old one stops working) and print it, once.
    ResetPassword {
        /// The mailbox's address.
        email: String,
        /// plain: "email,password" CSV; instantly, smartlead: that sequencer's import file.
        #[arg(long, default_value = "plain", value_parser = CREDENTIAL_FORMATS)]
        format: String,
    },
    /// Remove a mailbox with its folders and mail.
    #[command(visible_alias = "rm")]
    Remove {
        /// The mailbox's address.
        email: String,
    },
}

pub async fn run(app: App, command: MailboxCommand) -> anyhow::Result<()> {
    match command {
        MailboxCommand::List { domain, workspace, json } => {
            let (access, domain_id) = list_scope(&app, workspace, domain).await?;
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| mailbox::list(conn, ws, domain_id)).await?;
            print_list(&list, json, table)?;
        }
        MailboxCommand::Show { email, json } => {
            let (_, found) = find_mailbox(&app, &email).await?;
            if json {
                print_json(&found)?;
            } else {
                print!("{}", table(std::slice::from_ref(&found)));
            }
        }
        MailboxCommand::Create { domain, count, daily_limit, workspace, format } => {
            let access = access_for_address(&app, workspace, &domain).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let issued = create::create_bulk(&app, &access, domain.id, count, daily_limit, false).await?;
            print_credentials(&app, &issued, &format)?;
            eprintln!(
                "{} mailboxes created on {}; these passwords are not shown again",
                issued.credentials.len(),
                domain.name
            );
        }
        MailboxCommand::Export { domain, format, workspace } => {
            let access = access_for_address(&app, workspace, &domain).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let format: ExportFormat = format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (ws, id) = (access.workspace.id, domain.id);
            let mailboxes = app.store.read(move |conn| mailbox::senders(conn, ws, Some(id))).await?;
            print_deployment_warnings(&app.config);
            let csv =
                export::write_csv(format, &mailbox::server_settings(&app.config), &mailbox::export_rows(&mailboxes));
            print_bytes(&csv)?;
        }
        MailboxCommand::Set { email, daily_limit, per_minute, status, display_name } => {
            let (access, found) = mailbox_access(&app, &email).await?;
            let status = status.map(|s| s.parse::<Status>()).transpose()?;
            let changes = Changes { display_name, daily_limit, per_minute, status };
            let updated = mailbox::update(&app, &access, found.id, changes).await?;
            eprintln!(
                "{}: display name \"{}\", daily limit {}, per minute {}, status {}",
                updated.address, updated.display_name, updated.daily_limit, updated.per_minute, updated.status
            );
        }
        MailboxCommand::ResetPassword { email, format } => {
            let (access, found) = mailbox_access(&app, &email).await?;
            if format != "plain" && !found.sends_campaigns() {
                anyhow::bail!(
                    "The mailbox {} is a role mailbox, never exported to a sequencer; use --format plain",
                    found.address
                );
            }
            let issued = create::reset_passwords(&app, &access, vec![found.id]).await?;
            print_credentials(&app, &issued, &format)?;
            eprintln!("{}: new password set; the old one no longer works", found.address);
        }
        MailboxCommand::Remove { email } => {
            let (access, found) = mailbox_access(&app, &email).await?;
            let removed = mailbox::remove(&app, &access, found.id).await?;
            eprintln!("Mailbox {} removed with its mail", removed.address);
        }
    }
    Ok(())
}

/// Prints just-issued passwords as `email,password` CSV (`plain`) or a sequencer's import file
/// (which leaves role mailboxes out).
fn print_credentials(app: &App, issued: &Issued, format: &str) -> anyhow::Result<()> {
    if format == "plain" {
        let rows: Vec<(String, String)> =
            issued.credentials.iter().map(|c| (c.email.clone(), c.password.clone())).collect();
        return print_bytes(&export::write_credentials_csv(&rows));
    }
    let format: ExportFormat = format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let senders: Vec<Mailbox> = issued.mailboxes.iter().filter(|m| m.sends_campaigns()).cloned().collect();
    if senders.is_empty() {
        anyhow::bail!("Role mailboxes are never exported to a sequencer; use --format plain");
    }
    if senders.len() < issued.mailboxes.len() {
        eprintln!("Role mailboxes are left out of the sequencer file.");
    }
    print_deployment_warnings(&app.config);
    let mut rows = mailbox::export_rows(&senders);
    for row in &mut rows {
        row.password = issued.credentials.iter().find(|c| c.email == row.email).map(|c| c.password.clone());
    }
    print_bytes(&export::write_csv(format, &mailbox::server_settings(&app.config), &rows))
}

/// A mailbox by address, in whichever workspace, with that workspace's id.
pub async fn find_mailbox(app: &App, email: &str) -> anyhow::Result<(i64, mailbox::Mailbox)> {
    let lookup = email.to_string();
    app.store.read(move |conn| mailbox::find_by_address(conn, &lookup)).await.map_err(|e| match e {
        Error::NotFound => anyhow::anyhow!("No mailbox {email}"),
        other => other.into(),
    })
}

/// A mailbox by address and the operator's access to its workspace.
pub(super) async fn mailbox_access(app: &App, email: &str) -> anyhow::Result<(Access, Mailbox)> {
    let (ws, found) = find_mailbox(app, email).await?;
    Ok((cli_access(app, Some(ws.to_string())).await?, found))
}

fn table(list: &[Mailbox]) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|m| {
            [
                m.address.clone(),
                m.display_name.clone(),
                m.status.to_string(),
                m.daily_limit.to_string(),
                m.per_minute.to_string(),
            ]
        })
        .collect();
    text_table(["ADDRESS", "DISPLAY NAME", "STATUS", "DAILY LIMIT", "PER MINUTE"], &rows, "(no mailboxes)")
}
