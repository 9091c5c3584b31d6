//! DNS health: checks that a sending domain's published records match what the appliance sends.
//!
//! Each check answers a [`CheckResult`]: its name, a [`Status`] (`pass`, `warn` or `fail`), what was
//! found, what was expected and a one-sentence fix. The pure decisions live in one file per concern
//! ([`spf`] parses SPF and counts its DNS lookups, [`dmarc`] parses DMARC and decides its status), so
//! they are tested without DNS; lookups go through the one resolver (`app.resolver`).

pub mod dmarc;
pub mod result;
pub mod spf;

pub use result::{CheckResult, Status};
