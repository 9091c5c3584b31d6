//! The preview of a step for a lead, and the test send.
//!
//! The preview renders exactly what the engine would send that lead (`compose::render`: the
//! same variant, spintax and variables, drawn from the campaign, the lead and the step), from
//! the mailbox the lead would get: the one that sent its first step, else the pool's first. A
//! follow-up in the same thread shows its `Re: ` subject (`compose::subject_for`) from the
//! subject the thread started with: the one sent, or the one the thread's first step renders.
//! It lists the variables the lead has no value for and the template's own problems
//! (unbalanced spintax). The lead picker searches the addresses of the campaign's lists.
//!
//! A test send (members) mails that rendering, its subject prefixed "[Test] ", to an address
//! the user types, from a pool mailbox. It is a send like any other of that mailbox:
//! `mta::admit` checks it and counts it against the mailbox's daily limit in the transaction
//! that enqueues it, and a refusal is shown on the form. It is not threaded, not tracked and not
//! counted in the campaign's numbers.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum_extra::extract::Query;
use rusqlite::Connection;
use serde::Deserialize;

use crate::app::App;
use crate::campaign::campaigns::{self, Campaign, Step};
use crate::campaign::compose::{self, Rendered, Thread, Unsubscribe};
use crate::campaign::leads::{self, Lead};
use crate::campaign::rotation::{self, Sender};
use crate::campaign::{stats, validate};
use crate::error::Error;
use crate::mta::admit::{self, AdmitError};
use crate::tracking::unsubscribe;
use crate::web::session::{CsrfForm, Ctx, Session};
use crate::web::{WebResult, render};
use crate::workspaces::Role;

/// Leads the picker offers at most.
const PICKER_LEADS: i64 = 50;

/// The preview's query: the step (from 1), the lead, the picker's search, and the address a
/// test was just sent to.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct PreviewQuery {
    step: usize,
    lead: Option<i64>,
    q: String,
    sent: String,
}

/// What the preview shows for one lead.
struct Shown {
    lead: Lead,
    sender: Sender,
    /// None when no variant of the step has a weight above 0.
    rendered: Option<Rendered>,
    /// The subject it goes out with.
    subject: String,
    /// A follow-up in the same thread (In-Reply-To the previous step).
    threaded: bool,
    /// With the footer mode: the postal address the footer prints (maybe empty) and its
    /// unsubscribe link ("" without a base URL).
    footer: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "campaigns/preview.html")]
struct PreviewPage {
    ctx: Ctx,
    campaign: Campaign,
    steps: Vec<Step>,
    /// The step shown, from 0.
    step: usize,
    q: String,
    candidates: Vec<(i64, String)>,
    shown: Option<Shown>,
    /// Why there is nothing to show.
    problem: Option<&'static str>,
    /// The pool as (id, address), for the test send.
    pool: Vec<(i64, String)>,
    test_to: String,
    test_mailbox: i64,
    test_error: Option<String>,
    notice: Option<String>,
}

impl PreviewPage {
    fn position(&self) -> usize {
        self.step + 1
    }

    fn lead_id(&self) -> i64 {
        self.shown.as_ref().map_or(0, |s| s.lead.id)
    }

    fn is_lead(&self, id: &i64) -> bool {
        self.lead_id() == *id
    }

    /// The picker's leads, with the lead shown first when the search left it out.
    fn picker(&self) -> Vec<(i64, String)> {
        let mut out = self.candidates.clone();
        if let Some(shown) = &self.shown
            && !out.iter().any(|(id, _)| *id == shown.lead.id)
        {
            out.insert(0, (shown.lead.id, shown.lead.email.clone()));
        }
        out
    }

    fn variant_count(&self) -> usize {
        self.steps.get(self.step).map_or(0, |s| s.variants.len())
    }

    /// ", 3 days after step 1" (or after the start for the first).
    fn step_text(&self) -> String {
        let Some(step) = self.steps.get(self.step) else { return String::new() };
        let unit = match step.delay_unit {
            campaigns::DelayUnit::Days => "days",
            campaigns::DelayUnit::BusinessDays => "business days",
            campaigns::DelayUnit::Hours => "hours",
        };
        match self.step {
            0 => format!(", {} {unit} after the start", step.delay),
            previous => format!(", {} {unit} after step {previous}", step.delay),
        }
    }
}

/// The preview page's data (see the module doc); `mailbox` overrides the sender.
async fn preview_page(
    app: &App,
    ctx: Ctx,
    id: i64,
    query: &PreviewQuery,
    mailbox: Option<i64>,
) -> WebResult<PreviewPage> {
    let ws = ctx.ws();
    let (base, keys) = (app.config.http.base_url.clone(), app.keys.clone());
    let (wanted, lead_id, q) = (query.step, query.lead, query.q.clone());
    let now = app.clock.unix();
    let read = move |conn: &Connection| {
        let campaign = campaigns::get(conn, ws, id)?;
        let steps = campaigns::steps(conn, id)?;
        let step = wanted.clamp(1, steps.len().max(1)) - 1;
        let candidates = campaigns::list_leads(conn, id, &q, PICKER_LEADS)?;
        let pool = campaigns::pool_mailboxes(conn, id)?;
        let lead = pick_lead(conn, ws, id, lead_id, &candidates)?;
        let (shown, problem) = match (lead, steps.get(step)) {
            (None, _) => (None, Some("The campaign's lists have no leads yet: import some to preview the steps.")),
            (_, None) => (None, Some("The campaign has no steps.")),
            (Some(lead), Some(_)) => match shown(conn, &campaign, &steps, step, lead, mailbox, &pool, now)? {
                Some(mut shown) => {
                    shown.footer = footer(conn, &campaign, &shown, &base, &keys)?;
                    (Some(shown), None)
                }
                None => (None, Some("The campaign has no mailbox to send from: add one to it.")),
            },
        };
        Ok::<_, Error>((campaign, steps, step, candidates, pool, shown, problem))
    };
    let (campaign, steps, step, candidates, pool, shown, problem) = app.store.read(read).await?;
    let test_mailbox = mailbox.or_else(|| shown.as_ref().map(|s| s.sender.id)).unwrap_or_default();
    Ok(PreviewPage {
        ctx,
        campaign,
        steps,
        step,
        q: query.q.clone(),
        candidates,
        shown,
        problem,
        pool,
        test_to: String::new(),
        test_mailbox,
        test_error: None,
        notice: (!query.sent.is_empty()).then(|| {
            format!(
                "Test message queued for {}. It counts against the mailbox's daily limit; it is not counted in \
                 the campaign's numbers.",
                query.sent
            )
        }),
    })
}

/// The lead asked for when the campaign targets it, else the picker's first (else the first
/// of the lists).
fn pick_lead(
    conn: &Connection,
    ws: i64,
    campaign: i64,
    wanted: Option<i64>,
    candidates: &[(i64, String)],
) -> Result<Option<Lead>, Error> {
    if let Some(id) = wanted
        && campaigns::targets_lead(conn, campaign, id)?
    {
        return Ok(Some(leads::get(conn, ws, id)?));
    }
    // A search that matches nobody still shows a lead: the first of all.
    let first = match candidates.first() {
        Some((id, _)) => Some(*id),
        None => campaigns::list_leads(conn, campaign, "", 1)?.first().map(|(id, _)| *id),
    };
    first.map(|id| leads::get(conn, ws, id)).transpose()
}

/// The step rendered for the lead, from the mailbox it would get (or `mailbox`, a pool one).
#[allow(clippy::too_many_arguments)]
fn shown(
    conn: &Connection,
    campaign: &Campaign,
    steps: &[Step],
    index: usize,
    lead: Lead,
    mailbox: Option<i64>,
    pool: &[(i64, String)],
    now: i64,
) -> Result<Option<Shown>, Error> {
    let s = &campaign.settings;
    let first = campaigns::lead_mailbox(conn, campaign.id, lead.id)?;
    let chosen = mailbox.filter(|m| pool.iter().any(|(id, _)| id == m) || first == Some(*m));
    let Some(mailbox) = chosen.or(first).or_else(|| pool.first().map(|(id, _)| *id)) else { return Ok(None) };
    let Some(sender) = rotation::load(conn, mailbox, s.min_gap_seconds, s.jitter_seconds, now)? else {
        return Ok(None);
    };
    let step = &steps[index];
    let rendered = compose::render(campaign.id, step, &lead, &sender);
    let threaded = index > 0 && !step.new_thread;
    let subject = match &rendered {
        Some(rendered) => {
            let thread = if threaded { thread_subject(conn, campaign, steps, index, &lead, &sender)? } else { None };
            let thread = thread.map(|subject| Thread { subject, message_ids: Vec::new() });
            compose::subject_for(rendered, step, thread.as_ref())
        }
        None => String::new(),
    };
    Ok(Some(Shown { lead, sender, rendered, subject, threaded, footer: None }))
}

/// The subject the thread of step `index` started with: that of the last step before it that
/// started a thread (the first step, or one marked new thread), as sent or as it renders.
fn thread_subject(
    conn: &Connection,
    campaign: &Campaign,
    steps: &[Step],
    index: usize,
    lead: &Lead,
    sender: &Sender,
) -> Result<Option<String>, Error> {
    let Some(start) = (0..index).rev().find(|i| *i == 0 || steps[*i].new_thread) else { return Ok(None) };
    let sent = stats::sent_subjects(conn, campaign.id, lead.id)?;
    if let Some(subject) = sent.get(&steps[start].id) {
        return Ok(Some(subject.clone()));
    }
    Ok(compose::render(campaign.id, &steps[start], lead, sender).map(|r| r.subject))
}

/// The footer the campaign adds (postal address, unsubscribe link), if it adds one.
fn footer(
    conn: &Connection,
    campaign: &Campaign,
    shown: &Shown,
    base: &str,
    keys: &crate::crypto::MasterKey,
) -> Result<Option<(String, String)>, Error> {
    if !campaign.settings.unsubscribe_footer {
        return Ok(None);
    }
    let address = crate::workspaces::postal_address(conn, campaign.workspace_id)?;
    let token = unsubscribe::token(keys, campaign.workspace_id, Some(shown.sender.id), &shown.lead.email);
    let link = if base.is_empty() { String::new() } else { format!("{base}/unsubscribe/{token}") };
    Ok(Some((address.trim().to_string(), link)))
}

pub async fn show(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    Query(query): Query<PreviewQuery>,
) -> WebResult {
    let (_, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    let mut page = preview_page(&app, ctx, id, &query, None).await?;
    page.test_to = session.user.email.clone();
    Ok(render(StatusCode::OK, &page))
}

/// The test send form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TestForm {
    to: String,
    mailbox: i64,
    step: usize,
    lead: Option<i64>,
}

/// Sends the previewed step to the typed address (members); see the module doc.
pub async fn test_send(
    State(app): State<App>,
    session: Session,
    Path((ws, id)): Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<TestForm>,
) -> WebResult {
    let (access, ctx) = session.in_workspace(&app, ws, "campaigns").await?;
    access.workspace.role.require(Role::Member)?;
    let query = PreviewQuery { step: form.step, lead: form.lead, ..PreviewQuery::default() };
    let mut page = preview_page(&app, ctx, id, &query, Some(form.mailbox)).await?;
    page.test_to = form.to.clone();
    let to = match validate::normalize(&form.to) {
        Ok(to) => to,
        Err(_) => return test_refused(page, format!("\"{}\" is not an email address.", form.to.trim())),
    };
    let Some(shown) = page.shown.as_ref() else {
        return test_refused(page, "There is nothing to send: see above.".into());
    };
    let Some(rendered) = shown.rendered.as_ref() else {
        return test_refused(page, "No variant of this step has a weight above 0.".into());
    };
    let step = &page.steps[page.step];
    let outgoing = test_message(&app, &page.campaign, step, rendered, shown, &to);
    let prepared = crate::mta::prepare(&app, outgoing).await?;
    let (mailbox, now, recipient) = (shown.sender.id, app.clock.unix(), to.clone());
    let detail = format!("step {} to {to} from {}", page.position(), shown.sender.address);
    let name = page.campaign.settings.name.clone();
    let queued = app
        .store
        .write(move |tx| {
            admit::admit(tx, mailbox, &[recipient.as_str()], now).map_err(Refused::Admit)?;
            crate::mta::enqueue(tx, &prepared, now).map_err(Refused::Other)?;
            crate::audit::record(tx, Some(ws), &access.actor, "campaign.test_send", &name, &detail, now)?;
            Ok::<_, Refused>(())
        })
        .await;
    match queued {
        Ok(()) => {
            app.wakeup.notify_one();
            let lead = page.lead_id();
            let to = serde_html_form::to_string([("sent", to.as_str())]).unwrap_or_default();
            Ok(Redirect::to(&format!("/w/{ws}/campaigns/{id}/preview?step={}&lead={lead}&{to}", page.position()))
                .into_response())
        }
        Err(Refused::Admit(AdmitError::Refused(refusal))) => test_refused(page, format!("Not sent: {refusal}.")),
        Err(Refused::Admit(AdmitError::Store(e))) => Err(Error::from(e).into()),
        Err(Refused::Other(e)) => Err(e.into()),
    }
}

/// Why the test send's transaction did not queue it.
enum Refused {
    Admit(AdmitError),
    Other(Error),
}

impl From<rusqlite::Error> for Refused {
    fn from(e: rusqlite::Error) -> Refused {
        Refused::Admit(AdmitError::Store(e))
    }
}

fn test_refused(mut page: PreviewPage, message: String) -> WebResult {
    page.test_error = Some(message);
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The test message: the rendering with "[Test] " before its subject, to `to`, as a new thread,
/// with the unsubscribe headers and footer a real send of the campaign has.
fn test_message(
    app: &App,
    campaign: &Campaign,
    step: &Step,
    rendered: &Rendered,
    shown: &Shown,
    to: &str,
) -> crate::mta::Outgoing {
    let (workspace, sender) = (campaign.workspace_id, &shown.sender);
    let rendered = Rendered { subject: format!("[Test] {}", shown.subject), ..rendered.clone() };
    let step = Step { new_thread: true, ..step.clone() };
    let recipient = Lead { email: to.to_string(), ..shown.lead.clone() };
    let token = unsubscribe::token(&app.keys, workspace, Some(sender.id), to);
    let domain = sender.address.rsplit_once('@').map_or("", |(_, domain)| domain);
    let mailto = format!("{}@{domain}", unsubscribe::mailto_local_part(&app.keys, workspace, Some(sender.id), to));
    let base = &app.config.http.base_url;
    let unsubscribe = Unsubscribe {
        headers: unsubscribe::headers(base, &token, Some(&mailto)),
        link: if base.is_empty() { String::new() } else { format!("{base}/unsubscribe/{token}") },
        footer_address: shown.footer.as_ref().map(|(address, _)| address.clone()),
    };
    let now = app.clock.unix();
    let composed = compose::compose(&rendered, &step, &recipient, sender, None, &unsubscribe, None, now);
    crate::mta::Outgoing {
        workspace_id: workspace,
        mailbox_id: Some(sender.id),
        mail_from: sender.address.clone(),
        recipients: vec![to.to_string()],
        raw: composed.raw,
        trace: String::new(),
    }
}
