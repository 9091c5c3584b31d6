//! `inboxgrove warmup ...`: enroll mailboxes (own ones and connected outside accounts) in their
//! workspace's warmup pool, take them out, read one's warmup today, and read or change the
//! workspace's warmup settings (the ramp curve, the share answered, the daily window).

use clap::Subcommand;
use serde::Serialize;

use super::mailbox::mailbox_access;
use super::{cli_access, print_json};
use crate::app::App;
use crate::campaign::windows;
use crate::warmup::members::{self, Settings};
use crate::warmup::ramp::Curve;
use crate::warmup::status;

#[derive(Subcommand)]
pub enum WarmupCommand {
    /// Put mailboxes into their workspace's warmup pool; the ramp starts today (again: no change).
    Enroll {
        /// The mailboxes' addresses.
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
    },
    /// Take mailboxes out of the warmup pool; their planned, unsent warmup mail is dropped.
    Unenroll {
        /// The mailboxes' addresses.
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
    },
    /// One mailbox's warmup today: its day, target, sent, received and answered messages, and
    /// where its warmup mail landed over the last 14 days.
    Status {
        /// The mailbox's address.
        email: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the workspace's warmup settings; with options, change them first.
    Settings {
        /// The workspace (name or id); needed only when it is not clear.
        #[arg(long)]
        workspace: Option<String>,
        /// Warmup messages a mailbox sends on day 1.
        #[arg(long, value_name = "N")]
        start: Option<i64>,
        /// Warmup messages a day at the end of the ramp (held from then on).
        #[arg(long, value_name = "N")]
        target: Option<i64>,
        /// The day the ramp reaches its target volume.
        #[arg(long, value_name = "DAYS")]
        days: Option<i64>,
        /// Percent of received warmup messages answered (0 to 100).
        #[arg(long, value_name = "PERCENT")]
        reply_percent: Option<i64>,
        /// When warmup mail starts going out each day, as HH:MM in the workspace's time zone.
        #[arg(long, value_name = "HH:MM")]
        window_start: Option<String>,
        /// When warmup mail stops going out each day, as HH:MM.
        #[arg(long, value_name = "HH:MM")]
        window_end: Option<String>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: App, command: WarmupCommand) -> anyhow::Result<()> {
    match command {
        WarmupCommand::Enroll { emails } => set_enrolled(&app, emails, true).await,
        WarmupCommand::Unenroll { emails } => set_enrolled(&app, emails, false).await,
        WarmupCommand::Status { email, json } => show_status(&app, &email, json).await,
        WarmupCommand::Settings { workspace, start, target, days, reply_percent, window_start, window_end, json } => {
            let change = Change { start, target, days, reply_percent, window_start, window_end };
            settings(&app, workspace, change, json).await
        }
    }
}

async fn set_enrolled(app: &App, emails: Vec<String>, on: bool) -> anyhow::Result<()> {
    for email in emails {
        let (access, mailbox) = mailbox_access(app, &email).await?;
        let now = app.clock.unix();
        let id = mailbox.id;
        let changed = app.store.write(move |tx| members::set_enrolled(tx, &access, id, on, now)).await?;
        let said = match (on, changed) {
            (true, true) => "enrolled in warmup",
            (true, false) => "already in warmup",
            (false, true) => "taken out of warmup",
            (false, false) => "was not in warmup",
        };
        println!("{}: {said}", mailbox.address);
    }
    Ok(())
}

async fn show_status(app: &App, email: &str, json: bool) -> anyhow::Result<()> {
    let (access, mailbox) = mailbox_access(app, email).await?;
    let now = app.clock.unix();
    let (ws, id) = (access.workspace.id, mailbox.id);
    let found = app.store.read(move |conn| status::status(conn, ws, id, now)).await?;
    if json {
        return print_json(&found);
    }
    if !found.enrolled {
        println!("{}: not in warmup", mailbox.address);
        return Ok(());
    }
    println!(
        "{}: warmup day {}, {} of {} sent today, {} received, {} answered; placement over 14 days: {} inbox, {} spam",
        mailbox.address,
        found.day,
        found.sent_today,
        found.target_today,
        found.received_today,
        found.replied_today,
        found.placement.inbox,
        found.placement.spam
    );
    Ok(())
}

/// The settings options given on the command line.
struct Change {
    start: Option<i64>,
    target: Option<i64>,
    days: Option<i64>,
    reply_percent: Option<i64>,
    window_start: Option<String>,
    window_end: Option<String>,
}

/// The settings as `warmup settings --json` prints them.
#[derive(Serialize)]
struct Shown {
    start: i64,
    target: i64,
    days: i64,
    reply_percent: i64,
    window_start: String,
    window_end: String,
    time_zone: String,
    /// The volume of each day of the ramp, day 1 first.
    ramp: Vec<i64>,
}

impl Shown {
    fn of(settings: &Settings) -> Shown {
        let curve = settings.curve;
        Shown {
            start: curve.start,
            target: curve.target,
            days: curve.ramp_days,
            reply_percent: settings.reply_percent,
            window_start: windows::format_clock(settings.window_start),
            window_end: windows::format_clock(settings.window_end),
            time_zone: settings.time_zone.name().to_string(),
            ramp: (1..=curve.ramp_days).map(|day| curve.volume(day)).collect(),
        }
    }
}

async fn settings(app: &App, workspace: Option<String>, change: Change, json: bool) -> anyhow::Result<()> {
    let access = cli_access(app, workspace).await?;
    let now = app.clock.unix();
    let shown = app
        .store
        .write(move |tx| {
            let current = members::settings(tx, access.workspace.id)?;
            let any = change.start.is_some()
                || change.target.is_some()
                || change.days.is_some()
                || change.reply_percent.is_some()
                || change.window_start.is_some()
                || change.window_end.is_some();
            if any {
                let curve = Curve {
                    start: change.start.unwrap_or(current.curve.start),
                    target: change.target.unwrap_or(current.curve.target),
                    ramp_days: change.days.unwrap_or(current.curve.ramp_days),
                };
                let start = change.window_start.unwrap_or_else(|| windows::format_clock(current.window_start));
                let end = change.window_end.unwrap_or_else(|| windows::format_clock(current.window_end));
                let percent = change.reply_percent.unwrap_or(current.reply_percent);
                members::update_settings(tx, &access, curve, percent, (&start, &end), now)?;
            }
            Ok::<_, crate::error::Error>(Shown::of(&members::settings(tx, access.workspace.id)?))
        })
        .await?;
    if json {
        return print_json(&shown);
    }
    println!(
        "ramp: {} to {} messages a day over {} days ({}), then held\nanswered: {}%\nwindow: {}-{} {}",
        shown.start,
        shown.target,
        shown.days,
        shown.ramp.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        shown.reply_percent,
        shown.window_start,
        shown.window_end,
        shown.time_zone
    );
    Ok(())
}
