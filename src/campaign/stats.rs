//! What a campaign did, read from the event log joined to `campaign_sends` by our Message-ID
//! (and by the lead's address for replies and unsubscribes, which may answer any message of the
//! thread). Nothing here is a counter of its own: every number is a query over rows written in
//! the transactions that caused them, so no figure can drift from what happened.
//!
//! - A send is *delivered*, *bounced* (a bounce or an expiry), *opened* or *clicked* when an
//!   event of that kind names its Message-ID; opens and clicks count only those made by people
//!   (`events.machine = 0`: image proxies and link scanners are recorded but not counted). A send
//!   is *queued* until it is delivered, bounced, expired or cancelled.
//! - A lead *replied* (or *unsubscribed*: an unsubscribe, a complaint or a "remove me" reply)
//!   when an event of that kind comes from its address at or after its first send. Per step and
//!   per variant ([`by_step`]) the lead's first such event is credited to the send it answers:
//!   the lead's last send at or before it. So the steps' numbers add up to the campaign's.
//! - Rates are of the messages sent.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::campaign::campaigns::DelayUnit;
use crate::campaign::windows;
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
    /// Sends opened by a person (machine opens left out).
    pub opened: i64,
    /// Sends whose links a person followed (scanners left out).
    pub clicked: i64,
}

/// Event kinds that settle a send (it is no longer queued).
const SETTLED: &str = "'delivered', 'bounced', 'expired', 'cancelled'";
/// Event kinds that count as a bounce.
const BOUNCED: &str = "'bounced', 'expired'";
/// Event kinds from a lead's address that count as unsubscribing.
const UNSUBSCRIBED: &str = "'unsubscribed', 'complaint', 'unsubscribe_request'";
/// Opens and clicks made by people, not by proxies or scanners.
const HUMAN: &str = "AND e.machine = 0";

/// Sends of the campaign whose message has an event of `kinds` (`extra`: more conditions on `e`).
fn sends_with(conn: &Connection, campaign: i64, kinds: &str, extra: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!(
        "SELECT count(*) FROM campaign_sends s WHERE s.campaign_id = ?1 AND EXISTS (SELECT 1 FROM events e \
         WHERE e.message_id = s.message_id AND e.kind IN ({kinds}) {extra})"
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
    let delivered = sends_with(conn, campaign, "'delivered'", "")?;
    let bounced = sends_with(conn, campaign, BOUNCED, "")?;
    let settled = sends_with(conn, campaign, SETTLED, "")?;
    Ok(Counts {
        leads,
        queued: sent - settled,
        sent,
        delivered,
        bounced,
        replied: leads_with(conn, campaign, "'reply'")?,
        unsubscribed: leads_with(conn, campaign, UNSUBSCRIBED)?,
        opened: sends_with(conn, campaign, "'opened'", HUMAN)?,
        clicked: sends_with(conn, campaign, "'clicked'", HUMAN)?,
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
    let index: HashMap<i64, usize> = out.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    for row in rows {
        let (lead, send) = row?;
        if let Some(i) = index.get(&lead) {
            out[*i].1.sends.push(send);
        }
    }
    Ok(out.into_iter().map(|(_, lead)| lead).collect())
}

/// The numbers of a step or a variant (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub opened: i64,
    pub clicked: i64,
    pub replied: i64,
    pub unsubscribed: i64,
}

impl Funnel {
    fn add(&mut self, other: &Funnel) {
        self.queued += other.queued;
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.bounced += other.bounced;
        self.opened += other.opened;
        self.clicked += other.clicked;
        self.replied += other.replied;
        self.unsubscribed += other.unsubscribed;
    }
}

/// `part` of `sent` as a percentage with one decimal ("12.5%"); "–" when nothing was sent.
pub fn rate(part: i64, sent: i64) -> String {
    if sent <= 0 {
        return "–".into();
    }
    let tenths = (part.saturating_mul(1000) + sent / 2) / sent;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A variant's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct VariantStats {
    pub variant_id: i64,
    pub label: String,
    pub subject: String,
    pub weight: u32,
    pub funnel: Funnel,
}

/// A step's numbers, in all and per variant.
#[derive(Debug, Clone, Serialize)]
pub struct StepStats {
    /// From 1.
    pub position: i64,
    pub step_id: i64,
    /// The delay before it, as words ("3 business days").
    pub delay: String,
    pub new_thread: bool,
    pub total: Funnel,
    pub variants: Vec<VariantStats>,
}

/// The numbers of each step and each of its variants, in step order (module doc).
pub fn by_step(conn: &Connection, campaign: i64) -> Result<Vec<StepStats>> {
    let mut cells: HashMap<(i64, Option<i64>), Funnel> = send_funnels(conn, campaign)?;
    for (kind, key) in [("'reply'", Reaction::Replied), (UNSUBSCRIBED, Reaction::Unsubscribed)] {
        for cell in credited(conn, campaign, kind)? {
            let funnel = cells.entry(cell).or_default();
            match key {
                Reaction::Replied => funnel.replied += 1,
                Reaction::Unsubscribed => funnel.unsubscribed += 1,
            }
        }
    }
    let steps = crate::campaign::campaigns::steps(conn, campaign)?;
    let mut out = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let mut total = Funnel::default();
        for (_, funnel) in cells.iter().filter(|((step_id, _), _)| *step_id == step.id) {
            total.add(funnel);
        }
        let variants = step
            .variants
            .iter()
            .map(|v| VariantStats {
                variant_id: v.id,
                label: v.label.clone(),
                subject: v.subject.clone(),
                weight: v.weight,
                funnel: cells.get(&(step.id, Some(v.id))).copied().unwrap_or_default(),
            })
            .collect();
        let unit = match step.delay_unit {
            DelayUnit::Days => "days",
            DelayUnit::BusinessDays => "business days",
            DelayUnit::Hours => "hours",
        };
        out.push(StepStats {
            position: i64::try_from(index + 1).unwrap_or(i64::MAX),
            step_id: step.id,
            delay: format!("{} {unit}", step.delay),
            new_thread: step.new_thread,
            total,
            variants,
        });
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Reaction {
    Replied,
    Unsubscribed,
}

/// The message events of the campaign's sends, by (step, variant).
fn send_funnels(conn: &Connection, campaign: i64) -> Result<HashMap<(i64, Option<i64>), Funnel>> {
    let has = |kinds: &str, extra: &str| {
        format!(
            "sum(EXISTS (SELECT 1 FROM events e WHERE e.message_id = s.message_id AND e.kind IN ({kinds}) {extra}))"
        )
    };
    let sql = format!(
        "SELECT s.step_id, s.variant_id, count(*), {}, {}, {}, {}, {} FROM campaign_sends s \
         WHERE s.campaign_id = ?1 GROUP BY s.step_id, s.variant_id",
        has("'delivered'", ""),
        has(BOUNCED, ""),
        has(SETTLED, ""),
        has("'opened'", HUMAN),
        has("'clicked'", HUMAN),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([campaign], |row| {
        let sent: i64 = row.get(2)?;
        let settled: i64 = row.get(5)?;
        let funnel = Funnel {
            queued: sent - settled,
            sent,
            delivered: row.get(3)?,
            bounced: row.get(4)?,
            opened: row.get(6)?,
            clicked: row.get(7)?,
            ..Funnel::default()
        };
        Ok(((row.get(0)?, row.get(1)?), funnel))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// For each lead with an event of `kinds` from its address after its first send, the (step,
/// variant) of the send its first such event answers: its last send at or before it.
fn credited(conn: &Connection, campaign: i64, kinds: &str) -> Result<Vec<(i64, Option<i64>)>> {
    let sql = format!(
        "SELECT s.step_id, s.variant_id FROM (SELECT f.lead_id, (SELECT min(e.at) FROM events e \
         WHERE e.workspace_id = c.workspace_id AND e.recipient = l.email AND e.kind IN ({kinds}) AND e.at >= f.first) \
         AS at FROM (SELECT lead_id, min(sent_at) AS first FROM campaign_sends WHERE campaign_id = ?1 GROUP BY lead_id) f \
         JOIN leads l ON l.id = f.lead_id JOIN campaigns c ON c.id = ?1) r \
         JOIN campaign_sends s ON s.id = (SELECT s2.id FROM campaign_sends s2 WHERE s2.campaign_id = ?1 \
         AND s2.lead_id = r.lead_id AND s2.sent_at <= r.at ORDER BY s2.sent_at DESC, s2.id DESC LIMIT 1) \
         WHERE r.at IS NOT NULL"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([campaign], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sends of the workspace's campaigns in [from, to).
pub fn workspace_sent_between(conn: &Connection, workspace: i64, from: i64, to: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM campaign_sends s JOIN campaigns c ON c.id = s.campaign_id \
             WHERE c.workspace_id = ?1 AND s.sent_at >= ?2 AND s.sent_at < ?3",
        )?
        .query_row((workspace, from, to), |row| row.get(0))?)
}

/// Sends of the campaign on each of the last `days` local days in `zone` (oldest first): the
/// day (YYYY-MM-DD) and the count.
pub fn sent_per_day(
    conn: &Connection,
    campaign: i64,
    zone: chrono_tz::Tz,
    now: i64,
    days: usize,
) -> Result<Vec<(String, i64)>> {
    let mut ranges = Vec::with_capacity(days);
    let mut at = now;
    for _ in 0..days {
        let (start, end) = windows::local_day_range(at, zone);
        ranges.push((windows::local_day(start, zone), start, end));
        at = start - 1;
    }
    ranges.reverse();
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FROM campaign_sends WHERE campaign_id = ?1 AND sent_at >= ?2 AND sent_at < ?3",
    )?;
    ranges
        .into_iter()
        .map(|(day, start, end)| Ok((day, stmt.query_row((campaign, start, end), |row| row.get(0))?)))
        .collect()
}

/// A campaign lead's state in words (the code stays in the data).
pub fn status_label(status: &str) -> &'static str {
    match status {
        "active" => "In sequence",
        "finished" => "Finished",
        "replied" => "Replied",
        "bounced" => "Bounced",
        "unsubscribed" => "Unsubscribed",
        "paused" => "Paused",
        _ => "Unknown",
    }
}

/// The campaign lead states, in the order a filter offers them.
pub const LEAD_STATUSES: [&str; 6] = ["active", "finished", "replied", "bounced", "unsubscribed", "paused"];

/// One row of a campaign's lead table or CSV export.
#[derive(Debug, Clone, Serialize)]
pub struct LeadRow {
    pub lead_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub status: String,
    pub stop_reason: String,
    pub steps_sent: i64,
    pub last_sent_at: Option<i64>,
    /// The mailbox of its sends ("" before the first).
    pub mailbox: String,
}

/// Which of a campaign's leads to show.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    /// Matches the address, the names and the company.
    pub search: String,
    /// A campaign lead state (one of [`LEAD_STATUSES`]).
    pub status: Option<String>,
}

/// The lead table's sortable columns: URL name and SQL expression (the first is the default).
pub const LEAD_SORT_COLUMNS: &[(&str, &str)] =
    &[("email", "l.email"), ("status", "c.status"), ("sent", "steps_sent"), ("last", "last_sent_at")];

const LEAD_MATCHING: &str = "c.campaign_id = ?1 AND (?2 IS NULL OR c.status = ?2) AND (?3 = '%%' \
    OR l.email LIKE ?3 ESCAPE '\\' OR l.first_name LIKE ?3 ESCAPE '\\' OR l.last_name LIKE ?3 ESCAPE '\\' \
    OR l.company LIKE ?3 ESCAPE '\\')";

fn lead_pattern(filter: &LeadFilter) -> String {
    format!("%{}%", filter.search.trim().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// How many of the campaign's leads match.
pub fn lead_count(conn: &Connection, campaign: i64, filter: &LeadFilter) -> Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM campaign_leads c JOIN leads l ON l.id = c.lead_id WHERE {LEAD_MATCHING}"
        ))?
        .query_row((campaign, &filter.status, lead_pattern(filter)), |row| row.get(0))?)
}

/// One page of the campaign's leads in `order_by` (built from [`LEAD_SORT_COLUMNS`] only);
/// `limit` < 0 reads them all (the export).
pub fn lead_page(
    conn: &Connection,
    campaign: i64,
    filter: &LeadFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<LeadRow>> {
    let sql = format!(
        "SELECT l.id, l.email, l.first_name, l.last_name, l.company, c.status, c.stop_reason, \
         (SELECT count(*) FROM campaign_sends s WHERE s.campaign_id = c.campaign_id AND s.lead_id = c.lead_id) \
         AS steps_sent, (SELECT max(s.sent_at) FROM campaign_sends s WHERE s.campaign_id = c.campaign_id \
         AND s.lead_id = c.lead_id) AS last_sent_at, coalesce(m.address, '') FROM campaign_leads c \
         JOIN leads l ON l.id = c.lead_id LEFT JOIN mailboxes m ON m.id = c.mailbox_id WHERE {LEAD_MATCHING} \
         ORDER BY {order_by}, l.email LIMIT ?4 OFFSET ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map((campaign, &filter.status, lead_pattern(filter), limit, offset), |row| {
        Ok(LeadRow {
            lead_id: row.get(0)?,
            email: row.get(1)?,
            first_name: row.get(2)?,
            last_name: row.get(3)?,
            company: row.get(4)?,
            status: row.get(5)?,
            stop_reason: row.get(6)?,
            steps_sent: row.get(7)?,
            last_sent_at: row.get(8)?,
            mailbox: row.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What happened to a lead's mail, for the export (module doc: the same rules as the counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub delivered: bool,
    pub bounced: bool,
    pub opened: bool,
    pub clicked: bool,
    pub replied: bool,
    pub unsubscribed: bool,
}

/// The outcome of each lead of the campaign that was sent something, by lead id.
pub fn outcomes(conn: &Connection, campaign: i64) -> Result<HashMap<i64, Outcome>> {
    let message = |kinds: &str, extra: &str| {
        format!(
            "EXISTS (SELECT 1 FROM campaign_sends s JOIN events e ON e.message_id = s.message_id \
             WHERE s.campaign_id = ?1 AND s.lead_id = f.lead_id AND e.kind IN ({kinds}) {extra})"
        )
    };
    let peer = |kinds: &str| {
        format!(
            "EXISTS (SELECT 1 FROM events e WHERE e.workspace_id = c.workspace_id AND e.recipient = l.email \
             AND e.kind IN ({kinds}) AND e.at >= f.first)"
        )
    };
    let sql = format!(
        "SELECT f.lead_id, {}, {}, {}, {}, {}, {} FROM (SELECT lead_id, min(sent_at) AS first FROM campaign_sends \
         WHERE campaign_id = ?1 GROUP BY lead_id) f JOIN leads l ON l.id = f.lead_id JOIN campaigns c ON c.id = ?1",
        message("'delivered'", ""),
        message(BOUNCED, ""),
        message("'opened'", HUMAN),
        message("'clicked'", HUMAN),
        peer("'reply'"),
        peer(UNSUBSCRIBED),
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([campaign], |row| {
        let outcome = Outcome {
            delivered: row.get(1)?,
            bounced: row.get(2)?,
            opened: row.get(3)?,
            clicked: row.get(4)?,
            replied: row.get(5)?,
            unsubscribed: row.get(6)?,
        };
        Ok((row.get(0)?, outcome))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The subjects the lead's sends of the campaign went out with, by step id.
pub fn sent_subjects(conn: &Connection, campaign: i64, lead: i64) -> Result<HashMap<i64, String>> {
    let mut stmt =
        conn.prepare_cached("SELECT step_id, subject FROM campaign_sends WHERE campaign_id = ?1 AND lead_id = ?2")?;
    let rows = stmt.query_map((campaign, lead), |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A campaign of two steps (step 1 with variants A and B) sent to three leads.
    fn setup(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT INTO workspaces (id, name, time_zone, created_at) VALUES (1, 'w', 'UTC', 0);
             INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'x.test', 0);
             INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
               display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@x.test', 'Ann', '', 'Ann', 'x', 0);
             INSERT INTO leads (id, workspace_id, email, created_at, updated_at) VALUES
               (1, 1, 'a@y.test', 0, 0), (2, 1, 'b@y.test', 0, 0), (3, 1, 'c@y.test', 0, 0);
             INSERT INTO campaigns (id, workspace_id, name, status, time_zone, created_at, updated_at)
               VALUES (1, 1, 'c', 'active', 'UTC', 0, 0);
             INSERT INTO campaign_steps (id, campaign_id, position, created_at) VALUES (1, 1, 1, 0), (2, 1, 2, 0);
             INSERT INTO campaign_variants (id, step_id, label, subject, body) VALUES
               (1, 1, 'A', 's', 'b'), (2, 1, 'B', 's', 'b'), (3, 2, 'A', '', 'b');
             INSERT INTO campaign_leads (campaign_id, lead_id, status, steps_done, due_at, updated_at) VALUES
               (1, 1, 'replied', 1, 0, 0), (1, 2, 'finished', 2, 0, 0), (1, 3, 'active', 1, 0, 0);
             INSERT INTO campaign_sends (campaign_id, lead_id, step_id, variant_id, mailbox_id, message_id, subject, sent_at)
               VALUES (1, 1, 1, 1, 1, 'm1', 's', 100), (1, 2, 1, 2, 1, 'm2', 's', 100), (1, 3, 1, 2, 1, 'm3', 's', 100),
                      (1, 2, 2, 3, 1, 'm4', 's', 300);
             INSERT INTO events (workspace_id, kind, recipient, message_id, at, machine) VALUES
               (1, 'delivered', 'a@y.test', 'm1', 110, 0), (1, 'delivered', 'b@y.test', 'm2', 110, 0),
               (1, 'bounced', 'c@y.test', 'm3', 110, 0), (1, 'delivered', 'b@y.test', 'm4', 310, 0),
               (1, 'opened', 'a@y.test', 'm1', 120, 1), (1, 'opened', 'b@y.test', 'm2', 120, 0),
               (1, 'clicked', 'b@y.test', 'm4', 320, 0),
               (1, 'reply', 'a@y.test', '', 200, 0), (1, 'reply', 'a@y.test', '', 400, 0),
               (1, 'reply', 'b@y.test', '', 50, 0), (1, 'unsubscribed', 'b@y.test', '', 500, 0);",
        )
    }

    #[tokio::test]
    async fn steps_and_variants_count_from_the_event_log_and_add_up_to_the_campaign() {
        let (_dir, store) = crate::store::open_temp();
        store.write(setup).await.unwrap();
        let (counts, steps, outcomes) = store
            .read(|conn| Ok::<_, crate::error::Error>((counts(conn, 1)?, by_step(conn, 1)?, outcomes(conn, 1)?)))
            .await
            .unwrap();
        let expected = Counts {
            leads: 3,
            queued: 0,
            sent: 4,
            delivered: 3,
            bounced: 1,
            replied: 1,
            unsubscribed: 1,
            opened: 1,
            clicked: 1,
        };
        assert_eq!(counts, expected, "a machine open and a reply before the first send do not count");
        let first = Funnel { sent: 3, delivered: 2, bounced: 1, opened: 1, replied: 1, ..Funnel::default() };
        assert_eq!(steps[0].total, first);
        let a = Funnel { sent: 1, delivered: 1, replied: 1, ..Funnel::default() };
        let b = Funnel { sent: 2, delivered: 1, bounced: 1, opened: 1, ..Funnel::default() };
        assert_eq!((steps[0].variants[0].funnel, steps[0].variants[1].funnel), (a, b));
        let second = Funnel { sent: 1, delivered: 1, clicked: 1, unsubscribed: 1, ..Funnel::default() };
        assert_eq!(steps[1].total, second, "the unsubscribe answers step 2, the lead's last message before it");
        assert_eq!((steps[0].delay.as_str(), steps[1].position), ("0 days", 2));
        assert!(outcomes[&1].replied && !outcomes[&1].opened, "a machine open is no open");
        assert!(outcomes[&2].opened && outcomes[&2].clicked && outcomes[&2].unsubscribed && !outcomes[&2].replied);
        assert!(outcomes[&3].bounced && !outcomes[&3].delivered);
        assert_eq!((rate(1, 3), rate(2, 3), rate(0, 0)), ("33.3%".to_string(), "66.7%".to_string(), "–".to_string()));
    }
}
