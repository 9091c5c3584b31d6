//! Outreach campaigns: leads (import, validation) and their lists, templates (variables,
//! spintax), send windows in each lead's time zone, mailbox rotation, and the engine tick that
//! turns due (lead, step) pairs into sends through `mta::admit` and `mta::enqueue`.

pub mod campaigns;
pub mod compose;
pub mod csv_file;
pub mod engine;
pub mod forecast;
pub mod import;
pub mod leads;
pub mod reactions;
pub mod rotation;
pub mod spec;
pub mod stats;
pub mod templates;
pub mod validate;
pub mod windows;
