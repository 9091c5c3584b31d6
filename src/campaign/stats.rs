//! What a campaign did, read from the event log joined to `campaign_sends` by our Message-ID
//! (and by the lead's address for replies and unsubscribes, which may answer any message of the
//! thread). Nothing here is a counter of its own: every number is a query over rows written in
//! the transactions that caused them, so no figure can drift from what happened.

use rusqlite::Connection;
use serde::Serialize;

use crate::error::Result;

/// A campaign's counts (the `counts` of `campaign show --json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Leads enrolled.
    pub leads: i64,
    /// Sends not delivered (nor bounced) yet.
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub bounced: i64,
    /// Leads who replied.
    pub replied: i64,
    pub unsubscribed: i64,
    pub opened: i64,
    pub clicked: i64,
}

/// Sends of the campaign (or of one step / variant) whose message has an event of `kinds`.
fn sends_with(conn: &Connection, campaign: i64, kinds: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!(
        "SELECT count(*) FROM campaign_sends s WHERE s.campaign_id = ?1 AND EXISTS (SELECT 1 FROM events e \
         WHERE e.message_id = s.message_id AND e.kind IN ({kinds}))"
    ))?
    .query_row([campaign], |row| row.get(0))
}

/// Leads of the campaign with an event of `kinds` from their address after their first send.
fn leads_with(conn: &Connection, campaign: i64, kinds: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!(
        "SELECT count(*) FROM (SELECT s.lead_id, min(s.sent_at) AS first FROM campaign_sends s \
         WHERE s.campaign_id = ?1 GROUP BY s.lead_id) f JOIN leads l ON l.id = f.lead_id \
         JOIN campaigns c ON c.id = ?1 WHERE EXISTS (SELECT 1 FROM events e WHERE e.workspace_id = c.workspace_id \
         AND e.recipient = l.email AND e.kind IN ({kinds}) AND e.at >= f.first)"
    ))?
    .query_row([campaign], |row| row.get(0))
}

/// The campaign's counts.
pub fn counts(conn: &Connection, campaign: i64) -> Result<Counts> {
    let leads: i64 =
        conn.query_row("SELECT count(*) FROM campaign_leads WHERE campaign_id = ?1", [campaign], |row| row.get(0))?;
    let sent: i64 =
        conn.query_row("SELECT count(*) FROM campaign_sends WHERE campaign_id = ?1", [campaign], |row| row.get(0))?;
    let delivered = sends_with(conn, campaign, "'delivered'")?;
    let bounced = sends_with(conn, campaign, "'bounced', 'expired'")?;
    let settled = sends_with(conn, campaign, "'delivered', 'bounced', 'expired', 'cancelled'")?;
    Ok(Counts {
        leads,
        queued: sent - settled,
        sent,
        delivered,
        bounced,
        replied: leads_with(conn, campaign, "'reply'")?,
        unsubscribed: leads_with(conn, campaign, "'unsubscribed', 'complaint', 'unsubscribe_request'")?,
        opened: sends_with(conn, campaign, "'opened'")?,
        clicked: sends_with(conn, campaign, "'clicked'")?,
    })
}

/// One send of a lead (`campaign leads --json`).
#[derive(Debug, Clone, Serialize)]
pub struct SendShown {
    /// The step's position, from 1.
    pub step: i64,
    /// The variant's label (A, B...).
    pub variant: String,
    pub mailbox: String,
    pub message_id: String,
    pub at: i64,
}

/// A lead of a campaign and its sends.
#[derive(Debug, Clone, Serialize)]
pub struct LeadShown {
    pub email: String,
    pub status: String,
    pub stop_reason: String,
    pub sends: Vec<SendShown>,
}

/// The campaign's leads with their sends, by address.
pub fn leads(conn: &Connection, campaign: i64) -> Result<Vec<LeadShown>> {
    let mut out: Vec<(i64, LeadShown)> = conn
        .prepare(
            "SELECT l.id, l.email, c.status, c.stop_reason FROM campaign_leads c JOIN leads l ON l.id = c.lead_id \
             WHERE c.campaign_id = ?1 ORDER BY l.email",
        )?
        .query_map([campaign], |row| {
            Ok((
                row.get(0)?,
                LeadShown { email: row.get(1)?, status: row.get(2)?, stop_reason: row.get(3)?, sends: Vec::new() },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut sends = conn.prepare(
        "SELECT s.lead_id, st.position, coalesce(v.label, ''), coalesce(m.address, ''), s.message_id, s.sent_at \
         FROM campaign_sends s JOIN campaign_steps st ON st.id = s.step_id \
         LEFT JOIN campaign_variants v ON v.id = s.variant_id LEFT JOIN mailboxes m ON m.id = s.mailbox_id \
         WHERE s.campaign_id = ?1 ORDER BY s.lead_id, s.id",
    )?;
    let rows = sends.query_map([campaign], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            SendShown {
                step: row.get(1)?,
                variant: row.get(2)?,
                mailbox: row.get(3)?,
                message_id: row.get(4)?,
                at: row.get(5)?,
            },
        ))
    })?;
    let index: std::collections::HashMap<i64, usize> = out.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    for row in rows {
        let (lead, send) = row?;
        if let Some(i) = index.get(&lead) {
            out[*i].1.sends.push(send);
        }
    }
    Ok(out.into_iter().map(|(_, lead)| lead).collect())
}
