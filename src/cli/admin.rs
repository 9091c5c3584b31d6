//! `inboxgrove admin ...`: administrators (the password is read from standard input).

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::app::App;
use crate::auth::users;
use crate::error::Error;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from standard input. The first admin gets a first workspace.
    #[command(name = "add", visible_alias = "create")]
    Create {
        /// The admin's email (their sign-in name).
        #[arg(long)]
        email: String,
    },
    /// Set a new password (read from standard input) and end the user's sessions.
    ResetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
}

pub async fn run(app: App, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { email } => {
            let user = users::create_admin(&app, &email, read_password()?).await?;
            eprintln!("Admin {} created", user.email);
        }
        AdminCommand::ResetPassword { email } => {
            users::reset_password(&app, &email, read_password()?).await.map_err(|e| match e {
                Error::NotFound => anyhow::anyhow!("No user with the email {email}"),
                other => other.into(),
            })?;
            eprintln!("Password changed; the user's sessions have ended");
        }
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("Cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        bail!(
            "Give the password on standard input, for example: inboxgrove admin create --email you@example.com < password.txt"
        );
    }
    Ok(password)
}
