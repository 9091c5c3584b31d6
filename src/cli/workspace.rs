//! `inboxgrove workspace ...`: the workspaces of the appliance (the operator sees all of them).

use clap::Subcommand;

use super::{cli_access, print_json, print_list, text_table};
use crate::app::App;
use crate::auth::{Actor, users};
use crate::error::Error;
use crate::workspaces::{self, Changes, Summary};

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
    /// Change a workspace's settings: its name, time zone (daily limits reset at its midnight),
    /// the default daily limit of new mailboxes, List-Unsubscribe headers and the postal address
    /// campaign footers print (values equal to the current ones change nothing).
    Set {
        /// The workspace's name or id.
        workspace: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// An IANA time zone, e.g. Europe/Berlin.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// The daily limit new mailboxes get when none is given (0 to 10000); existing mailboxes keep theirs.
        #[arg(long, value_name = "N")]
        default_daily_limit: Option<u32>,
        /// Add List-Unsubscribe headers (one-click unsubscribe) to outgoing mail: on or off.
        #[arg(long, value_name = "ON|OFF", value_parser = ["on", "off"])]
        list_unsubscribe: Option<String>,
        /// The physical postal address printed in campaign footers (several lines allowed; "" removes it).
        #[arg(long, value_name = "TEXT")]
        postal_address: Option<String>,
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
        WorkspaceCommand::Set {
            workspace,
            name,
            time_zone,
            default_daily_limit,
            list_unsubscribe,
            postal_address,
            json,
        } => {
            let list_unsubscribe = list_unsubscribe.map(|choice| choice == "on");
            let changes = Changes { name, time_zone, default_daily_limit, list_unsubscribe, postal_address };
            if changes.is_empty() {
                anyhow::bail!(
                    "Give at least one of --name, --time-zone, --default-daily-limit, --list-unsubscribe or \
                     --postal-address."
                );
            }
            let access = cli_access(&app, Some(workspace)).await?;
            let now = app.clock.unix();
            let updated = app.store.write(move |tx| workspaces::update(tx, &access, changes, now)).await?;
            if json {
                print_json(&updated)?;
            }
            eprintln!("{}", summary_line(&updated));
        }
    }
    Ok(())
}

/// What `workspace set` says on stderr: every setting of the workspace.
fn summary_line(workspace: &Summary) -> String {
    let postal_address = match workspaces::address_on_one_line(&workspace.postal_address) {
        address if address.is_empty() => "no postal address".to_string(),
        address => format!("postal address \"{address}\""),
    };
    format!(
        "workspace {}: name \"{}\", time zone {}, default daily limit {}, List-Unsubscribe {}, {postal_address}",
        workspace.id,
        workspace.name,
        workspace.time_zone,
        workspace.default_daily_limit,
        if workspace.list_unsubscribe { "on" } else { "off" },
    )
}

fn table(list: &[Summary]) -> String {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|w| {
            [
                w.id.to_string(),
                w.name.clone(),
                w.time_zone.clone(),
                w.default_daily_limit.to_string(),
                if w.list_unsubscribe { "on" } else { "off" }.to_string(),
                crate::clock::format_unix(w.created_at),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "TIME ZONE", "DEFAULT DAILY LIMIT", "LIST-UNSUBSCRIBE", "CREATED"];
    text_table(header, &rows, "(no workspaces)")
}
