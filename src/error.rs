//! The error every feature module returns. User mistakes (`Invalid`, `Conflict`, `Throttled`)
//! carry a plain sentence shown as is; internal failures are logged and shown generically.
//! HTTP status codes, JSON codes and exit codes are chosen only at the edges (web, CLI).

use crate::crypto::CryptoError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that fails validation; `field` names the form field when there is one.
    #[error("{message}")]
    Invalid { field: Option<&'static str>, message: String },
    /// The object does not exist, or belongs to a workspace the caller cannot see.
    #[error("Not found.")]
    NotFound,
    /// The caller's role does not allow this.
    #[error("Your role in this workspace does not allow this.")]
    Forbidden,
    /// The change collides with existing data (e.g. a duplicate domain).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed attempts; the message says how long to wait.
    #[error("{0}")]
    Throttled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(StoreError::Sqlite(e))
    }
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { field: Some(field), message: message.into() }
    }

    /// A stable machine-readable code for the JSON API and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::NotFound => "not_found",
            Error::Forbidden => "forbidden",
            Error::Conflict(_) => "conflict",
            Error::Throttled(_) => "throttled",
            Error::Store(_) | Error::Crypto(_) | Error::Internal(_) => "internal",
        }
    }

    /// Whether this is the user's mistake (shown as is) rather than an internal failure.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Store(_) | Error::Crypto(_) | Error::Internal(_))
    }

    /// Whether a form's page re-renders with this error for the user to correct, rather than
    /// answering a 403 or 404 page or a failure.
    pub fn belongs_on_form(&self) -> bool {
        self.is_user_error() && !matches!(self, Error::Forbidden | Error::NotFound)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
