//! `inboxgrove campaign ...`: create campaigns from a file (docs/CAMPAIGNS.md), start, pause and
//! resume them, and read their counts and their leads.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::{cli_access, print_json, print_list, text_table};
use crate::app::App;
use crate::auth::Actor;
use crate::campaign::campaigns::{self, Campaign, CampaignStatus};
use crate::campaign::engine::{self, NotSending};
use crate::campaign::stats::{self, Counts, LeadShown};
use crate::campaign::{reactions, spec};
use crate::error::Error;
use crate::workspaces::{self, Access, Role, Workspace};

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a draft campaign from a TOML file; prints its id.
    Create {
        /// The campaign file (see docs/CAMPAIGNS.md).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The workspace (name or id); needed when there are several.
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
    },
    /// List the campaigns of a workspace.
    #[command(visible_alias = "ls")]
    List {
        /// The workspace (name or id); needed when there are several.
        #[arg(long, value_name = "WORKSPACE")]
        workspace: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Start a draft campaign: its leads become due.
    Start {
        /// The campaign's id.
        id: i64,
    },
    /// Pause an active campaign: nothing more is sent until it is resumed.
    Pause {
        /// The campaign's id.
        id: i64,
    },
    /// Resume a paused campaign.
    Resume {
        /// The campaign's id.
        id: i64,
    },
    /// Show a campaign: status, counts and why it is not sending.
    Show {
        /// The campaign's id.
        id: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The leads of a campaign, their status and every step sent to them.
    Leads {
        /// The campaign's id.
        id: i64,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
}

/// A campaign as `show --json` prints it.
#[derive(Serialize)]
struct Shown {
    id: i64,
    name: String,
    status: CampaignStatus,
    counts: Counts,
    /// Reason codes.
    not_sending: Vec<String>,
    /// The same in words.
    not_sending_reasons: Vec<String>,
}

#[derive(Serialize)]
struct Listed {
    id: i64,
    name: String,
    status: CampaignStatus,
}

pub async fn run(app: App, command: CampaignCommand) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Create { file, workspace } => create(app, file, workspace).await,
        CampaignCommand::List { workspace, json } => {
            let access = cli_access(&app, workspace).await?;
            let ws = access.workspace.id;
            let list = app.store.read(move |conn| campaigns::list(conn, ws)).await?;
            let listed: Vec<Listed> =
                list.into_iter().map(|c| Listed { id: c.id, name: c.settings.name, status: c.status }).collect();
            print_list(&listed, json, |rows| {
                let rows: Vec<[String; 3]> =
                    rows.iter().map(|c| [c.id.to_string(), c.name.clone(), c.status.label().to_string()]).collect();
                text_table(["ID", "NAME", "STATUS"], &rows, "(no campaigns)")
            })
        }
        CampaignCommand::Start { id } => set_status(app, id, CampaignStatus::Active, "started").await,
        CampaignCommand::Pause { id } => set_status(app, id, CampaignStatus::Paused, "paused").await,
        CampaignCommand::Resume { id } => set_status(app, id, CampaignStatus::Active, "resumed").await,
        CampaignCommand::Show { id, json } => show(app, id, json).await,
        CampaignCommand::Leads { id, json } => {
            let campaign = find(&app, id).await?;
            let leads = app.store.read(move |conn| stats::leads(conn, campaign.id)).await?;
            print_list(&leads, json, leads_table)
        }
    }
}

async fn create(app: App, file: PathBuf, workspace: Option<String>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("Cannot read {}: {e}", file.display()))?;
    let access = cli_access(&app, workspace).await?;
    let ws = access.workspace.id;
    let zone = app.store.read(move |conn| workspaces::time_zone(conn, ws)).await?;
    let campaign = spec::parse(&text, zone)?;
    let now = app.clock.unix();
    let id = app.store.write(move |tx| campaigns::create(tx, &access, &campaign, now)).await?;
    println!("{id}");
    eprintln!("Campaign {id} created as a draft; start it with: inboxgrove campaign start {id}");
    Ok(())
}

/// The campaign with this id, in whatever workspace it is (the operator sees all), with the
/// events applied so its lead states are current.
async fn find(app: &App, id: i64) -> anyhow::Result<Campaign> {
    let now = app.clock.unix();
    app.store.write(move |tx| reactions::apply(tx, now)).await?;
    app.store.read(move |conn| campaigns::by_id(conn, id)).await?.ok_or_else(|| anyhow::anyhow!("No campaign {id}"))
}

async fn operator(app: &App, workspace: i64) -> anyhow::Result<Access> {
    let name = app.store.read(move |conn| workspaces::name(conn, workspace)).await?;
    Ok(Access { workspace: Workspace { id: workspace, name, role: Role::Owner }, actor: Actor::cli() })
}

async fn set_status(app: App, id: i64, wanted: CampaignStatus, done: &str) -> anyhow::Result<()> {
    let campaign = find(&app, id).await?;
    let access = operator(&app, campaign.workspace_id).await?;
    let now = app.clock.unix();
    let updated =
        app.store.write(move |tx| campaigns::set_status(tx, &access, id, wanted, now)).await.map_err(|e| match e {
            Error::Conflict(message) => anyhow::anyhow!("{message}"),
            other => other.into(),
        })?;
    eprintln!("Campaign {id} \"{}\" {done}", updated.settings.name);
    Ok(())
}

async fn show(app: App, id: i64, json: bool) -> anyhow::Result<()> {
    let campaign = find(&app, id).await?;
    let now = app.clock.unix();
    let read = campaign.clone();
    let (counts, reasons) = app
        .store
        .read(move |conn| Ok::<_, Error>((stats::counts(conn, read.id)?, engine::not_sending(conn, &read, now)?)))
        .await?;
    let shown = Shown {
        id,
        name: campaign.settings.name.clone(),
        status: campaign.status,
        counts,
        not_sending: reasons.iter().map(|r| r.code().to_string()).collect(),
        not_sending_reasons: reasons.iter().map(NotSending::describe).collect(),
    };
    if json {
        return print_json(&shown);
    }
    let c = &shown.counts;
    println!("Campaign {id}: {} ({})", shown.name, campaign.status.label());
    println!(
        "leads {}  sent {}  queued {}  delivered {}  bounced {}  replied {}  unsubscribed {}  opened {}  clicked {}",
        c.leads, c.sent, c.queued, c.delivered, c.bounced, c.replied, c.unsubscribed, c.opened, c.clicked
    );
    for reason in &shown.not_sending_reasons {
        println!("Not sending: {reason}");
    }
    Ok(())
}

fn leads_table(leads: &[LeadShown]) -> String {
    let rows: Vec<[String; 4]> = leads
        .iter()
        .map(|lead| {
            let last = lead.sends.last().map(|s| crate::clock::format_unix(s.at)).unwrap_or_default();
            [lead.email.clone(), lead.status.clone(), lead.sends.len().to_string(), last]
        })
        .collect();
    text_table(["EMAIL", "STATUS", "SENT", "LAST SENT"], &rows, "(no leads)")
}
