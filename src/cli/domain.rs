//! `inboxgrove domain ...`: sending domains and the records they publish.

use clap::Subcommand;
use serde::Serialize;

use super::{access_for_address, cli_access, find_domain, print_json, print_list, text_table};
use crate::app::App;
use crate::dns::dkim::DkimAlgorithm;
use crate::domains::{self, Domain, RoleChoice};
use crate::tracking;

#[derive(Subcommand)]
pub enum DomainCommand {
    /// List the workspace's domains.
    #[command(visible_alias = "ls")]
    List {
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Print the DNS records a domain must publish (with --json: the domain and its records).
    #[command(visible_alias = "records")]
    Show {
        /// The domain name.
        name: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// As a BIND zone snippet.
        #[arg(long, conflicts_with = "json")]
        zone: bool,
        /// One JSON object: the domain and the records to publish.
        #[arg(long)]
        json: bool,
    },
    /// Add a sending domain with a fresh DKIM key, and print the records to publish.
    Add {
        /// The domain name.
        name: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// The DKIM key type.
        #[arg(long, default_value = "rsa", value_parser = ["rsa", "ed25519"])]
        dkim: String,
        /// Where its role mail (postmaster@, abuse@, dmarc-reports@) goes: an existing mailbox
        /// of the workspace, or "dedicated" (the default): a new postmaster@ mailbox.
        #[arg(long, value_name = "ADDRESS|dedicated")]
        role_mailbox: Option<String>,
    },
    /// Change a domain's settings.
    Set {
        /// The domain name.
        name: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// The address its mail leaves from: one of source_ips under [delivery] in the configuration, or "auto".
        #[arg(long, value_name = "IP|auto", required_unless_present_any = ["role_mailbox", "tracking_host"])]
        source_ip: Option<String>,
        /// Where its role mail goes: a mailbox of the workspace, or "dedicated" (its postmaster@
        /// role mailbox, created when missing).
        #[arg(long, value_name = "ADDRESS|dedicated")]
        role_mailbox: Option<String>,
        /// The host name open and click tracking links use, under the domain (such as
        /// track.example.com, a CNAME to this server), or "none" for the base URL.
        #[arg(long, value_name = "HOST|none")]
        tracking_host: Option<String>,
    },
    /// Remove a domain that has no mailboxes left (its DKIM keys and aliases go with it).
    #[command(visible_alias = "rm")]
    Remove {
        /// The domain name.
        name: String,
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
    },
}

/// A domain as `domain show --json` prints it.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    domain: &'a Domain,
    tracking_host: Option<String>,
    records: Vec<crate::dns::records::DnsRecord>,
}

pub async fn run(app: App, command: DomainCommand) -> anyhow::Result<()> {
    match command {
        DomainCommand::List { workspace, json } => {
            let access = cli_access(&app, workspace).await?;
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| domains::list(conn, ws)).await?;
            print_list(&list, json, table)?;
        }
        DomainCommand::Show { name, workspace, zone, json } => {
            let access = access_for_address(&app, workspace, &name).await?;
            let domain = find_domain(&app, &access, name).await?;
            if json {
                let (ws, id) = (access.workspace.id, domain.id);
                let tracking_host = app.store.read(move |conn| tracking::host::of_domain(conn, ws, id)).await?;
                print_json(&Shown { records: domains::records(&app.config, &domain), domain: &domain, tracking_host })?;
            } else if zone {
                print!("{}", domains::zone(&app.config, &domain));
            } else {
                print!("{}", domains::records_text(&app.config, &domain));
            }
        }
        DomainCommand::Add { name, workspace, dkim, role_mailbox } => {
            let access = cli_access(&app, workspace).await?;
            let algorithm: DkimAlgorithm = dkim.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let role = RoleChoice::from_cli(role_mailbox.as_deref());
            let domain = domains::add(&app, &access, &name, algorithm, role).await?;
            eprintln!(
                "Domain {} added; role mail goes to {}; publish these records:",
                domain.name,
                domain.role_mailbox.as_deref().unwrap_or("its first mailbox")
            );
            print!("{}", domains::records_text(&app.config, &domain));
        }
        DomainCommand::Set { name, workspace, source_ip, role_mailbox, tracking_host } => {
            let access = access_for_address(&app, workspace, &name).await?;
            let domain = find_domain(&app, &access, name).await?;
            if let Some(source_ip) = source_ip {
                let updated = domains::set_source_ip(&app, &access, domain.id, &source_ip).await?;
                eprintln!("{}: egress address {}", updated.name, updated.source_ip.as_deref().unwrap_or("automatic"));
            }
            if let Some(role_mailbox) = role_mailbox {
                let role = RoleChoice::from_cli(Some(&role_mailbox));
                let updated = domains::set_role_mailbox(&app, &access, domain.id, role).await?;
                eprintln!("{}: role mail goes to {}", updated.name, updated.role_mailbox.unwrap_or_default());
            }
            if let Some(input) = tracking_host {
                match tracking::host::set(&app, &access, domain.id, &input).await? {
                    Some(host) => eprintln!("{}: tracking links use {host}", domain.name),
                    None => eprintln!("{}: no tracking host; tracking links use the base URL", domain.name),
                }
            }
        }
        DomainCommand::Remove { name, workspace } => {
            let access = access_for_address(&app, workspace, &name).await?;
            let domain = find_domain(&app, &access, name).await?;
            let removed = domains::remove(&app, &access, domain.id).await?;
            eprintln!("Domain {} removed; its DNS records can be deleted", removed.name);
        }
    }
    Ok(())
}

fn table(list: &[Domain]) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|d| {
            [
                d.display_name.clone(),
                d.mailbox_count.to_string(),
                format!("{} ({})", d.dkim_selector, d.dkim_algorithm),
                d.source_ip.clone().unwrap_or_else(|| "auto".into()),
                crate::clock::format_unix(d.created_at),
            ]
        })
        .collect();
    text_table(["DOMAIN", "MAILBOXES", "DKIM", "SOURCE IP", "ADDED"], &rows, "(no domains)")
}
