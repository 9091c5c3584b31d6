//! `inboxgrove member ...`: who belongs to a workspace, one-time invite links, ending a
//! membership (the last owner stays). The appliance sends no email: the invite link is printed.

use clap::Subcommand;

use super::{cli_access, print_list, text_table};
use crate::app::App;
use crate::error::Error;
use crate::workspaces::{self, Member, Role};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// List a workspace's members and their roles.
    #[command(visible_alias = "ls")]
    List {
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Make a one-time invite link (valid 7 days) for EMAIL and print it.
    #[command(visible_alias = "add")]
    Invite {
        /// The invitee's email.
        email: String,
        /// The role they get.
        #[arg(long, default_value = "member", value_parser = ["owner", "admin", "member", "viewer"])]
        role: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// End a member's membership (the last owner cannot be removed).
    #[command(visible_alias = "rm")]
    Remove {
        /// The member's email.
        email: String,
        /// The workspace (name or id); needed only when the member belongs to several.
        #[arg(long)]
        workspace: Option<String>,
    },
}

pub async fn run(app: App, command: MemberCommand) -> anyhow::Result<()> {
    match command {
        MemberCommand::List { workspace, json } => {
            let access = cli_access(&app, workspace).await?;
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| workspaces::members(conn, ws)).await?;
            print_list(&list, json, table)?;
        }
        MemberCommand::Invite { email, role, workspace } => {
            let access = cli_access(&app, workspace).await?;
            let role: Role = role.parse()?;
            let (now, name) = (app.clock.unix(), access.workspace.name.clone());
            let shown = email.clone();
            let token = app.store.write(move |tx| workspaces::invite(tx, &access, &email, role, now)).await?;
            println!("{}/invite/{token}", app.config.http.base_url);
            eprintln!("Invite for {shown} as {role} in {name}; the link works once, for 7 days");
        }
        MemberCommand::Remove { email, workspace } => {
            // Without --workspace, the one workspace the member belongs to (if only one).
            let workspace = match workspace {
                Some(named) => Some(named),
                None => {
                    let lookup = email.clone();
                    let found = app.store.read(move |conn| workspaces::workspaces_of_member(conn, &lookup)).await?;
                    (found.len() == 1).then(|| found[0].to_string())
                }
            };
            let access = cli_access(&app, workspace).await?;
            let (now, name) = (app.clock.unix(), access.workspace.name.clone());
            let shown = email.clone();
            let removed =
                app.store.write(move |tx| workspaces::remove_member(tx, &access, &email, now)).await.map_err(|e| {
                    match e {
                        Error::NotFound => anyhow::anyhow!("{shown} is not a member of {name}"),
                        other => other.into(),
                    }
                })?;
            eprintln!("{} ({}) is no longer a member", removed.email, removed.role);
        }
    }
    Ok(())
}

fn table(list: &[Member]) -> String {
    let rows: Vec<[String; 2]> = list.iter().map(|m| [m.email.clone(), m.role.to_string()]).collect();
    text_table(["EMAIL", "ROLE"], &rows, "(no members)")
}
