//! Who is who: user accounts, passwords (argon2id), sessions, throttling of failed logins, and
//! the one-time setup link that creates the first admin.

pub mod password;
pub mod sessions;
pub mod throttle;
pub mod users;

/// Who made a change, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// The user's email, or "cli" for the command line.
    pub label: String,
}

impl Actor {
    pub fn user(id: i64, email: &str) -> Actor {
        Actor { user_id: Some(id), label: email.to_string() }
    }

    pub fn cli() -> Actor {
        Actor { user_id: None, label: "cli".into() }
    }
}
