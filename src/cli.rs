//! The command line: `serve` and the maintenance and scripting commands. Commands other than
//! `serve` open the same data dir directly (SQLite allows it while the server runs) and act as
//! the operator, recorded as "cli" in the audit log.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::auth::{Actor, users};
use crate::config::{Config, LogFormat};
use crate::dns::dkim::DkimAlgorithm;
use crate::domains;
use crate::error::Error;
use crate::mailbox::export::{self, ExportFormat};
use crate::mailbox::{self, Changes, Status, create};
use crate::workspaces::{self, Access, Role, Workspace};

#[derive(Parser)]
#[command(
    name = "inboxgrove",
    version,
    about = "Self-hosted cold-email appliance: UI, SMTP, IMAP and MTA in one binary"
)]
struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
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
    Admin(AdminCommand),
    /// Manage sending domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage mailboxes.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent copy of the database to FILE (safe while serving).
    Backup { file: PathBuf },
    /// Inspect and steer the outbound queue (all workspaces).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Manage inbound aliases and catch-all mailboxes of local domains.
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Subcommand)]
enum AliasCommand {
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

#[derive(Subcommand)]
enum QueueCommand {
    /// Print the queue as a table, newest first.
    List {
        /// Only rows with this status.
        #[arg(long, value_parser = crate::mta::queue::STATUSES)]
        status: Option<String>,
    },
    /// Make a queued or deferred message due now (the running appliance picks it up).
    Retry { id: i64 },
    /// Cancel a queued or deferred message.
    Cancel { id: i64 },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin; the password is read from standard input. The first admin gets a first workspace.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Set a new password (read from standard input) and end the user's sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum DomainCommand {
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

#[derive(Subcommand)]
enum MailboxCommand {
    /// Create N mailboxes on a domain; prints their credentials as CSV, once.
    Create {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Print a domain's mailboxes as CSV for a sequencer (without passwords).
    Export {
        #[arg(long)]
        domain: String,
        #[arg(long, value_parser = ["instantly", "smartlead"])]
        format: String,
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Change a mailbox's settings.
    Set {
        email: String,
        #[arg(long)]
        daily_limit: Option<u32>,
        /// Messages per minute the mailbox may submit (0: no limit).
        #[arg(long)]
        per_minute: Option<u32>,
        #[arg(long, value_parser = ["active", "warming", "paused"])]
        status: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings, secrets redacted.
    Check,
}

/// Runs the command line and turns errors into a message and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), cli.data.as_deref()) {
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
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Backup { file } => backup(config, file).await,
        Command::Admin(command) => admin(App::open(config).await?, command).await,
        Command::Domain(command) => domain(App::open(config).await?, command).await,
        Command::Mailbox(command) => mailbox_command(App::open(config).await?, command).await,
        Command::Queue(command) => queue_command(App::open(config).await?, command).await,
        Command::Alias(command) => alias_command(App::open(config).await?, command).await,
    }
}

async fn backup(config: Config, file: PathBuf) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} already exists; choose a new file", file.display());
    }
    let app = App::open(config).await?;
    app.store.backup(file.clone()).await.with_context(|| format!("backup to {} failed", file.display()))?;
    eprintln!(
        "backup written to {}; keep the master key (master.key in the data dir, or INBOXGROVE_MASTER_KEY) with it",
        file.display()
    );
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        bail!(
            "give the password on standard input, e.g. `inboxgrove admin create --email you@example.com < password.txt`"
        );
    }
    Ok(password)
}

async fn admin(app: App, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { email } => {
            let user = users::create_admin(&app, &email, read_password()?).await?;
            eprintln!("admin {} created", user.email);
        }
        AdminCommand::ResetPassword { email } => {
            users::reset_password(&app, &email, read_password()?).await.map_err(|e| match e {
                Error::NotFound => anyhow::anyhow!("no user with the email {email}"),
                other => other.into(),
            })?;
            eprintln!("password changed; the user's sessions have ended");
        }
    }
    Ok(())
}

/// The operator's access to a workspace chosen with `--workspace` (or the only one).
async fn cli_access(app: &App, wanted: Option<String>) -> anyhow::Result<Access> {
    let (id, name) = app
        .store
        .read(move |conn| {
            let id = workspaces::resolve_for_cli(conn, wanted.as_deref())?;
            let name: String = conn.query_row("SELECT name FROM workspaces WHERE id = ?1", [id], |row| row.get(0))?;
            Ok::<_, Error>((id, name))
        })
        .await?;
    Ok(Access { workspace: Workspace { id, name, role: Role::Owner }, actor: Actor::cli() })
}

async fn find_domain(app: &App, access: &Access, name: String) -> anyhow::Result<domains::Domain> {
    let ws = access.workspace.id;
    let shown = name.clone();
    app.store.read(move |conn| domains::find_by_name(conn, ws, &name)).await.map_err(|e| match e {
        Error::NotFound => {
            anyhow::anyhow!("no domain {shown} in workspace {}", access.workspace.name)
        }
        other => other.into(),
    })
}

async fn domain(app: App, command: DomainCommand) -> anyhow::Result<()> {
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

async fn mailbox_command(app: App, command: MailboxCommand) -> anyhow::Result<()> {
    match command {
        MailboxCommand::Create { domain, count, workspace } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let issued = create::create_bulk(&app, &access, domain.id, count, false).await?;
            let rows: Vec<(String, String)> = issued.credentials.into_iter().map(|c| (c.email, c.password)).collect();
            print_bytes(&export::write_credentials_csv(&rows))?;
            eprintln!("{} mailboxes created on {}; these passwords are not shown again", rows.len(), domain.name);
        }
        MailboxCommand::Export { domain, format, workspace } => {
            let access = cli_access(&app, workspace).await?;
            let domain = find_domain(&app, &access, domain).await?;
            let format: ExportFormat = format.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (ws, id) = (access.workspace.id, domain.id);
            let mailboxes = app.store.read(move |conn| mailbox::list(conn, ws, Some(id))).await?;
            let csv =
                export::write_csv(format, &mailbox::server_settings(&app.config), &mailbox::export_rows(&mailboxes));
            print_bytes(&csv)?;
        }
        MailboxCommand::Set { email, daily_limit, per_minute, status, display_name } => {
            let lookup = email.clone();
            let (ws, found) =
                app.store.read(move |conn| mailbox::find_by_address(conn, &lookup)).await.map_err(|e| match e {
                    Error::NotFound => anyhow::anyhow!("no mailbox {email}"),
                    other => other.into(),
                })?;
            let access = cli_access(&app, Some(ws.to_string())).await?;
            let status = status.map(|s| s.parse::<Status>()).transpose()?;
            let changes = Changes { display_name, daily_limit, per_minute, status };
            let updated = mailbox::update(&app, &access, found.id, changes).await?;
            eprintln!(
                "{}: display name \"{}\", daily limit {}, per minute {}, status {}",
                updated.address, updated.display_name, updated.daily_limit, updated.per_minute, updated.status
            );
        }
    }
    Ok(())
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
async fn alias_command(app: App, command: AliasCommand) -> anyhow::Result<()> {
    use crate::aliases;
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

/// `inboxgrove queue ...`: the operator's view of the queue, over all workspaces.
async fn queue_command(app: App, command: QueueCommand) -> anyhow::Result<()> {
    use crate::mta::queue;
    let not_found = |id: i64| {
        move |e: Error| match e {
            Error::NotFound => anyhow::anyhow!("no queue row {id}"),
            other => other.into(),
        }
    };
    match command {
        QueueCommand::List { status } => {
            let mut rows = Vec::new();
            for page in 0.. {
                let wanted = status.clone();
                let (chunk, more) =
                    app.store.read(move |conn| queue::list(conn, None, wanted.as_deref(), page)).await?;
                rows.extend(chunk);
                if !more {
                    break;
                }
            }
            print!("{}", queue_table(&rows));
        }
        QueueCommand::Retry { id } => {
            let row = queue::retry_now(&app, None, id).await.map_err(not_found(id))?;
            eprintln!("message {} to {} is due now ({})", row.id, row.recipient, row.status);
        }
        QueueCommand::Cancel { id } => {
            let row = queue::cancel(&app, None, id).await.map_err(not_found(id))?;
            eprintln!("message {} to {} cancelled", row.id, row.recipient);
        }
    }
    Ok(())
}

/// The queue as an aligned text table.
fn queue_table(rows: &[crate::mta::queue::QueueRow]) -> String {
    let header = ["ID", "STATUS", "ATTEMPTS", "RECIPIENT", "FROM", "NEXT ATTEMPT", "LAST REPLY"].map(str::to_string);
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let next = if r.is_pending() { crate::clock::format_unix(r.next_attempt_at) } else { "-".into() };
            let from = if r.mail_from.is_empty() { "<>".to_string() } else { r.mail_from.clone() };
            let reply = r.last_reply.replace(['\r', '\n'], " ");
            [r.id.to_string(), r.status.clone(), r.attempts.to_string(), r.recipient.clone(), from, next, reply]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if cells.is_empty() {
        out.push_str("(the queue is empty)\n");
    }
    out
}

fn print_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
