//! The command line: `serve` and the maintenance and scripting commands, one file per command
//! group, one grammar: `inboxgrove NOUN VERB [ID] [--flags]` with the verbs list, show, add, set
//! and remove (older verb names stay as aliases). Commands other than `serve` open the same data
//! dir directly (SQLite allows it while the server runs) and act as the operator, recorded as
//! "cli" in the audit log. Shared here: finding the config file, choosing the workspace
//! (`--workspace`, needed only where the name or address does not tell), finding a domain, and
//! printing: an aligned text table, or with `--json` one object a line (lists) or one object (show).

mod admin;
mod alias;
mod campaign;
mod domain;
mod events;
mod leads;
mod mailbox;
mod member;
mod queue;
mod warmup;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app::App;
use crate::auth::Actor;
use crate::config::{Config, LogFormat};
use crate::domains;
use crate::error::Error;
use crate::workspaces::{self, Access, Role, Workspace};

#[derive(Parser)]
#[command(
    name = "inboxgrove",
    version,
    about = "Self-hosted cold-email appliance: UI, SMTP, IMAP and MTA in one binary"
)]
struct Cli {
    /// Configuration file (TOML). Without it: $INBOXGROVE_CONFIG, else /etc/inboxgrove/config.toml
    /// when it exists, else the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides data_dir in the configuration).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Serve,
    /// Manage administrators.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Manage a workspace's members and invites.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Manage sending domains.
    #[command(subcommand)]
    Domain(domain::DomainCommand),
    /// Manage mailboxes.
    #[command(subcommand)]
    Mailbox(mailbox::MailboxCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent copy of the database to FILE (safe while serving).
    Backup {
        /// The new file (never overwritten).
        file: PathBuf,
    },
    /// Inspect and steer the outbound queue (all workspaces).
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Manage inbound aliases and catch-all mailboxes of local domains.
    #[command(subcommand)]
    Alias(alias::AliasCommand),
    /// Read the event log (queued, delivered, bounced, replies, complaints...).
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Import, list and erase leads.
    #[command(subcommand)]
    Leads(leads::LeadsCommand),
    /// Create and run campaigns: multi-step sequences to lead lists.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Warm mailboxes up: enroll them in the workspace's warmup pool, read their progress.
    #[command(subcommand)]
    Warmup(warmup::WarmupCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings, secrets redacted.
    Check,
}

/// Runs the command line and turns errors into a message and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = crate::config::config_file(cli.config.as_deref());
    let config = match Config::load(file.as_deref(), cli.data.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log.format);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: Cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !matches!(cli.command, Command::Config(_))
        && let Err(e) = ensure_data_dir(&config, file.as_deref())
    {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the data dir when it does not exist yet, and says so (with the config it came from),
/// so a command run without the host's config does not silently start a new appliance.
fn ensure_data_dir(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("Cannot create the data directory {}", dir.display()))?;
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    let source = match file {
        Some(file) => format!("config {}", file.display()),
        None => "no config file: embedded defaults".to_string(),
    };
    eprintln!("Created data directory {} ({source})", shown.display());
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INBOXGROVE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => crate::serve::run(config).await,
        Command::Config(ConfigCommand::Check) => {
            print!("{}", config.redacted_toml());
            eprintln!("The configuration is valid.");
            print_deployment_warnings(&config);
            Ok(())
        }
        Command::Backup { file } => backup(config, file).await,
        Command::Admin(command) => admin::run(open(config).await?, command).await,
        Command::Workspace(command) => workspace::run(open(config).await?, command).await,
        Command::Member(command) => member::run(open(config).await?, command).await,
        Command::Domain(command) => domain::run(open(config).await?, command).await,
        Command::Mailbox(command) => mailbox::run(open(config).await?, command).await,
        Command::Queue(command) => queue::run(open(config).await?, command).await,
        Command::Alias(command) => alias::run(open(config).await?, command).await,
        Command::Events(command) => events::run(open(config).await?, command).await,
        Command::Leads(command) => leads::run(open(config).await?, command).await,
        Command::Campaign(command) => campaign::run(open(config).await?, command).await,
        Command::Warmup(command) => warmup::run(open(config).await?, command).await,
    }
}

/// Opens the data dir for a command. With `INBOXGROVE_TEST_CLOCK=1` (tests only) the command's
/// clock runs where the test moved the server's.
async fn open(config: Config) -> anyhow::Result<App> {
    let app = App::open(config).await?;
    if std::env::var("INBOXGROVE_TEST_CLOCK").is_ok_and(|v| v == "1")
        && let Some(offset) = crate::settings::get(&app.store, crate::settings::TEST_CLOCK_OFFSET).await?
    {
        app.clock.advance(offset.parse().unwrap_or(0));
    }
    Ok(app)
}

async fn backup(config: Config, file: PathBuf) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} already exists; choose a new file", file.display());
    }
    let app = open(config).await?;
    app.store.backup(file.clone()).await.with_context(|| format!("Backup to {} failed", file.display()))?;
    eprintln!(
        "Backup written to {}; keep the master key (master.key in the data dir, or INBOXGROVE_MASTER_KEY) with it",
        file.display()
    );
    Ok(())
}

/// The operator's access to a workspace chosen with `--workspace` (or the only one).
async fn cli_access(app: &App, wanted: Option<String>) -> anyhow::Result<Access> {
    let (id, name) = app
        .store
        .read(move |conn| {
            let id = workspaces::resolve_for_cli(conn, wanted.as_deref())?;
            Ok::<_, Error>((id, workspaces::name(conn, id)?))
        })
        .await?;
    Ok(Access { workspace: Workspace { id, name, role: Role::Owner }, actor: Actor::cli() })
}

/// The operator's access to the workspace named by `--workspace`, else the one owning the
/// domain of `address` (an address or a domain name), else the only one.
async fn access_for_address(app: &App, workspace: Option<String>, address: &str) -> anyhow::Result<Access> {
    if workspace.is_some() {
        return cli_access(app, workspace).await;
    }
    let lookup = address.to_string();
    let owner = app.store.read(move |conn| crate::aliases::workspace_of_address(conn, &lookup)).await?;
    cli_access(app, owner.map(|id| id.to_string())).await
}

/// The workspace for a list that may be narrowed to one domain (by name), and that domain's id:
/// the domain's own workspace when one is named, else `--workspace` (or the only one).
async fn list_scope(
    app: &App,
    workspace: Option<String>,
    domain: Option<String>,
) -> anyhow::Result<(Access, Option<i64>)> {
    let Some(name) = domain else { return Ok((cli_access(app, workspace).await?, None)) };
    let access = access_for_address(app, workspace, &name).await?;
    let id = find_domain(app, &access, name).await?.id;
    Ok((access, Some(id)))
}

async fn find_domain(app: &App, access: &Access, name: String) -> anyhow::Result<domains::Domain> {
    let ws = access.workspace.id;
    let shown = name.clone();
    app.store.read(move |conn| domains::find_by_name(conn, ws, &name)).await.map_err(|e| match e {
        Error::NotFound => {
            anyhow::anyhow!("No domain {shown} in workspace {}", access.workspace.name)
        }
        other => other.into(),
    })
}

/// Rows as an aligned text table under `header`; only `empty` is printed when there are none.
fn text_table<const N: usize>(header: [&str; N], rows: &[[String; N]], empty: &str) -> String {
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Prints a list: with `json` one JSON object a line (nothing when empty), else `text` of it.
fn print_list<T: Serialize>(items: &[T], json: bool, text: impl FnOnce(&[T]) -> String) -> anyhow::Result<()> {
    if !json {
        print!("{}", text(items));
        return Ok(());
    }
    let mut out = String::new();
    for item in items {
        out.push_str(&serde_json::to_string(item)?);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// The configuration's deployment warnings on standard error, a "warning:" line each: by
/// `config check`, and before a sequencer file (whose hosts and ports come from the config).
fn print_deployment_warnings(config: &Config) {
    for warning in config.deployment_warnings() {
        eprintln!("warning: {warning}");
    }
}

/// Prints one object as JSON on one line.
fn print_json<T: Serialize>(item: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(item)?);
    Ok(())
}

fn print_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and option has help text, and none of it shows a literal backtick.
    #[test]
    fn help_text_is_complete_and_plain() {
        fn walk(command: &clap::Command, path: &str, problems: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let about = command.get_about().map(|a| a.to_string()).unwrap_or_default();
            if about.is_empty() && command.get_name() != "help" {
                problems.push(format!("{path}: no help"));
            }
            for arg in command.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if help.is_empty() && !builtin {
                    problems.push(format!("{path} {}: no help", arg.get_id()));
                }
                if help.contains('`') {
                    problems.push(format!("{path} {}: {help}", arg.get_id()));
                }
            }
            if about.contains('`') {
                problems.push(format!("{path}: {about}"));
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, problems);
            }
        }
        let mut problems = Vec::new();
        walk(&Cli::command(), "", &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
