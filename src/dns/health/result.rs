//! The outcome of one DNS health check, and the order of statuses (a list's worst status is the
//! one shown for a domain).

use serde::Serialize;

/// How a check came out, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The record is as it must be.
    Pass,
    /// Mail still works, but something should change (or the check could not be completed).
    Warn,
    /// Receivers will reject or junk the domain's mail until this is fixed.
    Fail,
}

impl Status {
    /// The status as stored and printed: `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// The worst of several statuses; `None` for an empty list.
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
        statuses.into_iter().max()
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's name: `mx`, `spf`, `dkim`, `dmarc`, `ptr`, `blocklist` or `tracking`.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What DNS answered.
    pub found: String,
    /// What the appliance needs.
    pub expected: String,
    /// One sentence saying what to do (empty when the check passes).
    pub fix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_is_the_maximum() {
        assert_eq!(Status::worst([Status::Pass, Status::Fail, Status::Warn]), Some(Status::Fail));
        assert_eq!(Status::worst([Status::Pass, Status::Warn]), Some(Status::Warn));
        assert_eq!(Status::worst([]), None);
        assert_eq!(Status::Warn.as_str(), "warn");
    }
}
