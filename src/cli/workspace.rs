//! `inboxgrove workspace ...`: the workspaces of the appliance (the operator sees all of them).

use clap::Subcommand;

use super::{cli_access, print_json, print_list, text_table};
use crate::app::App;
use crate::auth::{Actor, users};
use crate::error::Error;
use crate::workspaces::{self, Summary};

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// List every workspace.
    #[command(visible_alias = "ls")]
    List {
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Create a workspace owned by an existing user.
    Add {
        /// The workspace's name.
        name: String,
        /// The email of the user who owns it (an existing account).
        #[arg(long, value_name = "EMAIL")]
        owner: String,
    },
    /// Rename a workspace or set its time zone (daily limits reset at its midnight).
    Set {
        /// The workspace's name or id.
        workspace: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// An IANA time zone, e.g. Europe/Berlin.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// Print the workspace as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: App, command: WorkspaceCommand) -> anyhow::Result<()> {
    match command {
        WorkspaceCommand::List { json } => {
            let list = app.store.read(workspaces::list_all).await?;
            print_list(&list, json, table)?;
        }
        WorkspaceCommand::Add { name, owner } => {
            let name = workspaces::check_name(&name)?;
            let email = users::normalize_email(&owner)?;
            let now = app.clock.unix();
            let shown = name.clone();
            let id = app
                .store
                .write(move |tx| {
                    let (user, _) = users::find_by_email(tx, &email)?.ok_or_else(|| {
                        Error::invalid("owner", format!("No account for {email}: invite or create it first."))
                    })?;
                    workspaces::create(tx, &name, user.id, &Actor::cli(), now)
                })
                .await?;
            eprintln!("Workspace {shown} (id {id}) created, owned by {owner}");
        }
        WorkspaceCommand::Set { workspace, name, time_zone, json } => {
            if name.is_none() && time_zone.is_none() {
                anyhow::bail!("Give --name or --time-zone.");
            }
            let access = cli_access(&app, Some(workspace)).await?;
            let now = app.clock.unix();
            let updated = app
                .store
                .write(move |tx| workspaces::update(tx, &access, name.as_deref(), time_zone.as_deref(), now))
                .await?;
            if json {
                print_json(&updated)?;
            }
            eprintln!("workspace {}: name \"{}\", time zone {}", updated.id, updated.name, updated.time_zone);
        }
    }
    Ok(())
}

fn table(list: &[Summary]) -> String {
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|w| [w.id.to_string(), w.name.clone(), w.time_zone.clone(), crate::clock::format_unix(w.created_at)])
        .collect();
    text_table(["ID", "NAME", "TIME ZONE", "CREATED"], &rows, "(no workspaces)")
}
