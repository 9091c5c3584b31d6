//! `inboxgrove leads ...`: import, list and erase a workspace's leads.

use std::path::PathBuf;

use clap::Subcommand;

use super::{cli_access, print_json, print_list, text_table};
use crate::app::App;
use crate::campaign::import::{self, Importer, Options};
use crate::campaign::leads::{self, Filter, Lead, LeadStatus};

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Import a CSV file of leads into a list (comma, semicolon or tab; a header row).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The list the leads join (made when it does not exist).
        #[arg(long, value_name = "NAME")]
        list: String,
        /// The workspace (name or id); needed when there are several.
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
        /// Do not check that each domain has a mail server (MX).
        #[arg(long)]
        no_mx_check: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List leads, newest first.
    #[command(visible_alias = "ls")]
    List {
        /// The workspace (name or id); needed when there are several.
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
        /// Only the leads of this list.
        #[arg(long, value_name = "NAME")]
        list: Option<String>,
        /// Only leads with this status: active, replied, bounced or unsubscribed.
        #[arg(long)]
        status: Option<String>,
        /// Only leads whose address, name or company contains this text.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Erase a lead: every record about it is deleted.
    Remove {
        /// The lead's email address.
        email: String,
        /// The workspace (name or id); needed when there are several.
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
        /// Keep a hash of the address on the suppression list so the person is never contacted again.
        #[arg(long)]
        never_contact_again: bool,
    },
}

pub async fn run(app: App, command: LeadsCommand) -> anyhow::Result<()> {
    match command {
        LeadsCommand::Import { file, list, workspace, no_mx_check, json } => {
            import_file(app, file, list, workspace, !no_mx_check, json).await
        }
        LeadsCommand::List { workspace, list, status, search, json } => {
            let access = cli_access(&app, workspace).await?;
            let ws = access.workspace.id;
            let status: Option<LeadStatus> = status.map(|s| s.parse()).transpose()?;
            let found = app
                .store
                .read(move |conn| {
                    let list = match list {
                        Some(name) => Some(leads::list_id(conn, ws, &name)?.ok_or_else(|| {
                            crate::error::Error::invalid("list", format!("There is no lead list named \"{name}\"."))
                        })?),
                        None => None,
                    };
                    let filter = Filter { search: search.unwrap_or_default(), status, list };
                    leads::page(conn, ws, &filter, 0, i64::MAX)
                })
                .await?;
            print_list(&found.0, json, table)
        }
        LeadsCommand::Remove { email, workspace, never_contact_again } => {
            let access = cli_access(&app, workspace).await?;
            let ws = access.workspace.id;
            let now = app.clock.unix();
            let shown = email.clone();
            app.store
                .write(move |tx| {
                    let lead = leads::find(tx, ws, &email)?.ok_or(crate::error::Error::NotFound)?;
                    leads::erase(tx, ws, lead.id, never_contact_again, now)
                })
                .await
                .map_err(|e| match e {
                    crate::error::Error::NotFound => anyhow::anyhow!("No lead {shown} in this workspace"),
                    other => other.into(),
                })?;
            let kept = if never_contact_again { "; a hash of the address stays suppressed" } else { "" };
            eprintln!("Lead {shown} erased{kept}");
            Ok(())
        }
    }
}

async fn import_file(
    app: App,
    file: PathBuf,
    list: String,
    workspace: Option<String>,
    mx_check: bool,
    json: bool,
) -> anyhow::Result<()> {
    let access = cli_access(&app, workspace).await?;
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let options = Options { list, mapping: None, mx_check, file_name };
    let counted = file.clone();
    let total = tokio::task::spawn_blocking(move || {
        import::check_guessed_mapping(&counted)?;
        import::count_rows(&counted)
    })
    .await??;
    let now = app.clock.unix();
    let id = import::begin(&app.store, access.workspace.id, &options, total, now).await?;
    let importer = Importer { store: app.store.clone(), resolver: app.resolver.clone(), clock: app.clock.clone() };
    let report = importer.run(access.workspace.id, id, &file, &options).await?;
    if json {
        print_json(&report)?;
    } else {
        for skip in &report.skipped {
            println!("row {}: {} skipped: {}", skip.row, skip.email, skip.reason.describe());
        }
    }
    eprintln!(
        "Imported {} new leads, updated {}, skipped {} into list \"{}\"",
        report.imported,
        report.updated,
        report.skipped.len(),
        options.list.trim()
    );
    Ok(())
}

fn table(leads: &[Lead]) -> String {
    let rows: Vec<[String; 4]> = leads
        .iter()
        .map(|lead| {
            let name = format!("{} {}", lead.first_name, lead.last_name).trim().to_string();
            [lead.email.clone(), name, lead.company.clone(), lead.status.label().to_string()]
        })
        .collect();
    text_table(["EMAIL", "NAME", "COMPANY", "STATUS"], &rows, "(no leads)")
}
