//! `inboxgrove domain ...`: sending domains and the records they publish.

use clap::Subcommand;

use super::{cli_access, find_domain};
use crate::app::App;
use crate::dns::dkim::DkimAlgorithm;
use crate::domains;

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Add a sending domain with a fresh DKIM key, and print the records to publish.
    Add {
        name: String,
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, default_value = "rsa", value_parser = ["rsa", "ed25519"])]
        dkim: String,
    },
    /// Print the DNS records a domain must publish.
    Records {
        name: String,
        #[arg(long)]
        workspace: Option<String>,
        /// As a BIND zone snippet.
        #[arg(long)]
        zone: bool,
    },
    /// Change a domain's settings.
    Set {
        name: String,
        #[arg(long)]
        workspace: Option<String>,
        /// The address its mail leaves from: one of `[delivery] source_ips`, or "auto".
        #[arg(long, value_name = "IP|auto")]
        source_ip: String,
    },
}

pub async fn run(app: App, command: DomainCommand) -> anyhow::Result<()> {
    match command {
        DomainCommand::Add { name, workspace, dkim } => {
            let access = cli_access(&app, workspace).await?;
            let algorithm: DkimAlgorithm = dkim.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let domain = domains::add(&app, &access, &name, algorithm).await?;
            eprintln!("domain {} added; publish these records:", domain.name);
            print!("{}", domains::records_text(&app.config, &domain));
        }
        DomainCommand::Records { name, workspace, zone } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, name).await?;
            if zone {
                print!("{}", domains::zone(&app.config, &domain));
            } else {
                print!("{}", domains::records_text(&app.config, &domain));
            }
        }
        DomainCommand::Set { name, workspace, source_ip } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, name).await?;
            let updated = domains::set_source_ip(&app, &access, domain.id, &source_ip).await?;
            eprintln!("{}: egress address {}", updated.name, updated.source_ip.as_deref().unwrap_or("automatic"));
        }
    }
    Ok(())
}
