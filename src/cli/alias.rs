//! `inboxgrove alias ...`: inbound aliases and catch-all mailboxes of local domains.

use clap::Subcommand;

use super::{access_for_address, find_domain, list_scope, print_list};
use crate::aliases;
use crate::app::App;
use crate::error::Error;

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ADDRESS (on a domain of the workspace) to one or more of its mailboxes.
    Add {
        /// The alias address, e.g. sales@example.com.
        address: String,
        /// The target mailboxes' addresses, separated by commas.
        #[arg(long, value_name = "MAILBOX[,MAILBOX...]")]
        to: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Remove an alias.
    #[command(visible_alias = "rm")]
    Remove {
        /// The alias address.
        address: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
    /// List aliases (of one domain, or of the workspace).
    #[command(visible_alias = "ls")]
    List {
        /// Only the aliases of this domain.
        #[arg(long)]
        domain: Option<String>,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a domain's mail for unknown local parts to MAILBOX, or refuse it again ("none").
    CatchAll {
        /// The local domain.
        domain: String,
        /// A mailbox address of the domain's workspace, or "none".
        mailbox: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// `inboxgrove alias ...`: aliases and catch-all mailboxes.
pub async fn run(app: App, command: AliasCommand) -> anyhow::Result<()> {
    match command {
        AliasCommand::Add { address, to, workspace } => {
            let access = access_for_address(&app, workspace, &address).await?;
            let alias = aliases::add(&app, &access, &address, &aliases::parse_targets(&to)).await?;
            eprintln!("Alias {} added: delivers to {}", alias.address, alias.targets.join(", "));
        }
        AliasCommand::Remove { address, workspace } => {
            let access = access_for_address(&app, workspace, &address).await?;
            let (ws, lookup) = (access.workspace.id, address.clone());
            let id =
                app.store.read(move |conn| aliases::find_by_address(conn, ws, &lookup)).await.map_err(|e| match e {
                    Error::NotFound => anyhow::anyhow!("No alias {address} in workspace {}", access.workspace.name),
                    other => other.into(),
                })?;
            let alias = aliases::remove(&app, &access, id).await?;
            eprintln!("Alias {} removed", alias.address);
        }
        AliasCommand::List { domain, workspace, json } => {
            let (access, domain_id) = list_scope(&app, workspace, domain).await?;
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| aliases::list(conn, ws, domain_id)).await?;
            // The text form stays tab-separated lines (scripts read it); "(no aliases)" when there
            // are none, on standard output like every other list.
            print_list(&list, json, |list| {
                list.iter().map(|alias| format!("{}\t{}\n", alias.address, alias.targets.join(","))).collect()
            })?;
            if list.is_empty() && !json {
                println!("(no aliases)");
            }
        }
        AliasCommand::CatchAll { domain, mailbox, workspace } => {
            let access = access_for_address(&app, workspace, &domain).await?;
            let found = find_domain(&app, &access, domain).await?;
            let mailbox = Some(mailbox).filter(|m| !m.trim().eq_ignore_ascii_case("none"));
            let shown = mailbox.clone().unwrap_or_else(|| "none (unknown users get 550 5.1.1)".into());
            let name = aliases::set_catch_all(&app, &access, found.id, mailbox).await?;
            eprintln!("Catch-all of {name}: {shown}");
        }
    }
    Ok(())
}
