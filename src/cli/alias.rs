//! `inboxgrove alias ...`: inbound aliases and catch-all mailboxes of local domains.

use clap::Subcommand;

use super::{cli_access, find_domain};
use crate::aliases;
use crate::app::App;
use crate::error::Error;
use crate::workspaces::Access;

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ADDRESS (on a domain of the workspace) to one or more of its mailboxes.
    Add {
        address: String,
        /// The target mailboxes' addresses, separated by commas.
        #[arg(long, value_name = "MAILBOX[,MAILBOX...]")]
        to: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Remove an alias.
    Remove {
        address: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List aliases (of one domain, or of the workspace).
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Deliver a domain's mail for unknown local parts to MAILBOX, or refuse it again (`none`).
    CatchAll {
        domain: String,
        /// A mailbox address of the domain's workspace, or `none`.
        mailbox: String,
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// The operator's access to the workspace named by `--workspace`, else the one owning the
/// domain of `address`, else the only one.
async fn alias_access(app: &App, workspace: Option<String>, address: &str) -> anyhow::Result<Access> {
    if workspace.is_some() {
        return cli_access(app, workspace).await;
    }
    let lookup = address.to_string();
    let owner = app.store.read(move |conn| crate::aliases::workspace_of_address(conn, &lookup)).await?;
    cli_access(app, owner.map(|id| id.to_string())).await
}

/// `inboxgrove alias ...`: aliases and catch-all mailboxes.
pub async fn run(app: App, command: AliasCommand) -> anyhow::Result<()> {
    match command {
        AliasCommand::Add { address, to, workspace } => {
            let access = alias_access(&app, workspace, &address).await?;
            let alias = aliases::add(&app, &access, &address, &aliases::parse_targets(&to)).await?;
            eprintln!("alias {} added: delivers to {}", alias.address, alias.targets.join(", "));
        }
        AliasCommand::Remove { address, workspace } => {
            let access = alias_access(&app, workspace, &address).await?;
            let (ws, lookup) = (access.workspace.id, address.clone());
            let id =
                app.store.read(move |conn| aliases::find_by_address(conn, ws, &lookup)).await.map_err(|e| match e {
                    Error::NotFound => anyhow::anyhow!("no alias {address} in workspace {}", access.workspace.name),
                    other => other.into(),
                })?;
            let alias = aliases::remove(&app, &access, id).await?;
            eprintln!("alias {} removed", alias.address);
        }
        AliasCommand::List { domain, workspace } => {
            let access = match &domain {
                Some(domain) => alias_access(&app, workspace, domain).await?,
                None => cli_access(&app, workspace).await?,
            };
            let domain_id = match domain {
                Some(name) => Some(find_domain(&app, &access, name).await?.id),
                None => None,
            };
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| aliases::list(conn, ws, domain_id)).await?;
            for alias in &list {
                println!("{}\t{}", alias.address, alias.targets.join(","));
            }
            if list.is_empty() {
                eprintln!("(no aliases)");
            }
        }
        AliasCommand::CatchAll { domain, mailbox, workspace } => {
            let access = alias_access(&app, workspace, &domain).await?;
            let found = find_domain(&app, &access, domain).await?;
            let mailbox = Some(mailbox).filter(|m| !m.trim().eq_ignore_ascii_case("none"));
            let shown = mailbox.clone().unwrap_or_else(|| "none (unknown users get 550 5.1.1)".into());
            let name = aliases::set_catch_all(&app, &access, found.id, mailbox).await?;
            eprintln!("catch-all of {name}: {shown}");
        }
    }
    Ok(())
}
