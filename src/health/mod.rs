//! Mailbox health: protection of a sender's reputation.
//!
//! [`protection`] pauses a mailbox for campaigns (warmup and manual sends continue) when the facts
//! written elsewhere say it is hurting its domain's reputation: a domain check failed (blocklisted,
//! SPF or DKIM failing), and resumes it on request. The pause lives on the mailbox row
//! (`campaign_pause_reason`, `campaign_paused_at`); each pause and resume is an audit entry, and the
//! current pauses are the workspace's health alerts. [`score`] computes the 0-100 score and band.
//! [`pace`] recognises "slow down" replies and holds the adaptive throttling arithmetic.

pub mod pace;
pub mod protection;
pub mod score;
