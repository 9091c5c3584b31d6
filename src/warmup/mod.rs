//! Warmup: building a new mailbox's reputation with real mail to and from the other members of
//! its workspace's warmup pool (its enrolled own mailboxes and connected outside accounts), on a
//! ramp, with the receiving member engaging like a person.
//!
//! - [`ramp`]: how many warmup messages each day of warmup sends, and the campaign cap while ramping;
//! - [`corpus`]: the words of warmup mail, shipped in the binary;
//! - [`marker`]: the header by which a receiving member recognises warmup mail;
//! - [`plan`]: a sender's day: recipients on other domains, times inside its window;
//! - [`draw`]: the deterministic draws behind words, recipients and times;
//! - [`members`]: the pool and the workspace's warmup settings;
//! - [`engine`]: the tick that plans each day and sends what is due;
//! - [`message`]: warmup messages and threaded replies as sent;
//! - [`engage`]: the receiving member: filing, placement, planned replies;
//! - [`status`]: a member's day as `warmup status` shows it.

pub mod corpus;
pub mod draw;
pub mod engage;
pub mod engine;
pub mod marker;
pub mod members;
pub mod message;
pub mod plan;
pub mod ramp;
pub mod status;
