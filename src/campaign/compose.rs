//! One step rendered for one lead, and the message that carries it. The variant is drawn by
//! weight and the spintax resolved from a seed of (campaign, lead, step), so a preview shows
//! exactly what the engine sends and a retried tick renders the same text.
//!
//! Variables: every lead field (`first_name`, `last_name`, `company`, `title`, `website`,
//! `email`), every custom field by its column name, and the sender's `sender_name`,
//! `sender_first_name`, `sender_last_name`, `sender_email`.
//!
//! The message: plain text (an HTML part only when the step has HTML), From the mailbox with
//! its display name, its own Message-ID at the mailbox's domain, List-Unsubscribe (one-click)
//! for the lead, and with the footer mode a last line with the workspace's postal address and
//! the unsubscribe link. A follow-up in the same thread answers the previous step: `Re: ` and
//! the thread's first subject, In-Reply-To the previous message, References every message of
//! the thread. A step marked as a new thread starts over.

use mail_builder::MessageBuilder;
use mail_builder::headers::date::Date;

use crate::campaign::campaigns::{Step, Variant};
use crate::campaign::leads::Lead;
use crate::campaign::rotation::Sender;
use crate::campaign::templates::{self, Mode, Template, Warning};
use crate::crypto::random_token;

/// A step rendered for a lead.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub variant_id: i64,
    pub variant_label: String,
    /// The step's own subject, rendered ("" for a follow-up without one).
    pub subject: String,
    pub text: String,
    /// "" when the step has no HTML.
    pub html: String,
    /// Variables the lead has no value for (and no fallback gave one).
    pub missing: Vec<String>,
    /// Problems in the templates themselves (unbalanced spintax...).
    pub warnings: Vec<String>,
}

/// The earlier messages of the lead's thread in this campaign.
#[derive(Debug, Clone, Default)]
pub struct Thread {
    /// The subject of the thread's first message.
    pub subject: String,
    /// Message-IDs (without angle brackets), oldest first.
    pub message_ids: Vec<String>,
}

/// The variable lookup for a lead and a sender.
fn lookup<'a>(lead: &'a Lead, sender: &'a Sender) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        let value = match name.to_ascii_lowercase().as_str() {
            "sender_name" => sender.display_name.clone(),
            "sender_first_name" => sender.first_name.clone(),
            "sender_last_name" => sender.last_name.clone(),
            "sender_email" => sender.address.clone(),
            _ => return lead.variable(name),
        };
        Some(value).filter(|v| !v.is_empty())
    }
}

/// The variant of a step a lead gets.
pub fn variant(campaign: i64, lead: i64, step: &Step) -> Option<&Variant> {
    let weights: Vec<u32> = step.variants.iter().map(|v| v.weight).collect();
    let index = templates::pick_weighted(&weights, templates::seed(&[campaign, lead, step.id, 1]))?;
    step.variants.get(index)
}

/// Renders a step for a lead (see the module doc).
pub fn render(campaign: i64, step: &Step, lead: &Lead, sender: &Sender) -> Option<Rendered> {
    let variant = variant(campaign, lead.id, step)?;
    let vars = lookup(lead, sender);
    let seed = templates::seed(&[campaign, lead.id, step.id]);
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    let mut part = |source: &str, mode: Mode, salt: u64| {
        let template = Template::parse(source);
        warnings.extend(template.warnings().iter().map(Warning::to_string));
        let rendered = template.render(&vars, seed ^ salt, mode);
        missing.extend(rendered.missing);
        rendered.text
    };
    let subject = part(&variant.subject, Mode::Text, 0);
    let text = part(&variant.body, Mode::Text, 1);
    let html = if variant.html.trim().is_empty() { String::new() } else { part(&variant.html, Mode::Html, 1) };
    missing.sort();
    missing.dedup();
    warnings.dedup();
    Some(Rendered {
        variant_id: variant.id,
        variant_label: variant.label.clone(),
        subject: subject.trim().to_string(),
        text,
        html,
        missing,
        warnings,
    })
}

/// The subject a step goes out with: its own for a new thread, else `Re: ` the thread's.
pub fn subject_for(rendered: &Rendered, step: &Step, thread: Option<&Thread>) -> String {
    match thread {
        Some(thread) if !step.new_thread && !thread.subject.is_empty() => {
            let first = thread.subject.trim();
            if first.len() >= 3 && first[..3].eq_ignore_ascii_case("re:") {
                first.to_string()
            } else {
                format!("Re: {first}")
            }
        }
        _ => rendered.subject.clone(),
    }
}

/// How the lead unsubscribes from this message.
#[derive(Debug, Clone, Default)]
pub struct Unsubscribe {
    /// The List-Unsubscribe header lines (CRLF-terminated).
    pub headers: String,
    /// The link for the footer line; "" when there is none.
    pub link: String,
    /// The footer's postal address; `None` when the campaign adds no footer.
    pub footer_address: Option<String>,
}

/// A composed message.
#[derive(Debug, Clone)]
pub struct Composed {
    pub raw: Vec<u8>,
    /// Without angle brackets.
    pub message_id: String,
    pub subject: String,
}

/// `value` as HTML text.
fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The footer line appended to the text (and HTML) body.
fn footer(unsubscribe: &Unsubscribe) -> Option<(String, String)> {
    let address = unsubscribe.footer_address.as_deref()?;
    let mut text = String::from("\r\n\r\n--\r\n");
    let mut html = String::from("<p style=\"color:#666;font-size:12px\">");
    if !address.trim().is_empty() {
        text.push_str(&address.trim().replace('\n', "\r\n"));
        text.push_str("\r\n");
        html.push_str(&escape_html(address.trim()).replace('\n', "<br>"));
        html.push_str("<br>");
    }
    if !unsubscribe.link.is_empty() {
        text.push_str(&format!("Unsubscribe: {}\r\n", unsubscribe.link));
        let link = escape_html(&unsubscribe.link);
        html.push_str(&format!("<a href=\"{link}\">Unsubscribe</a>"));
    }
    html.push_str("</p>");
    Some((text, html))
}

/// Builds the message of a rendered step (see the module doc).
pub fn compose(
    rendered: &Rendered,
    step: &Step,
    lead: &Lead,
    sender: &Sender,
    thread: Option<&Thread>,
    unsubscribe: &Unsubscribe,
    now: i64,
) -> Composed {
    let domain = sender.address.rsplit_once('@').map_or("localhost", |(_, domain)| domain);
    let message_id = format!("{}@{domain}", random_token());
    let subject = subject_for(rendered, step, thread);
    let to_name = format!("{} {}", lead.first_name, lead.last_name).trim().to_string();
    let mut text = rendered.text.clone();
    let mut html = rendered.html.clone();
    if let Some((text_footer, html_footer)) = footer(unsubscribe) {
        text.push_str(&text_footer);
        if !html.is_empty() {
            html.push_str(&html_footer);
        }
    }
    let mut message = MessageBuilder::new()
        .from((sender.display_name.clone(), sender.address.clone()))
        .to((to_name, lead.email.clone()))
        .subject(subject.clone())
        .date(Date::new(now))
        .message_id(message_id.clone())
        .text_body(text);
    if !html.is_empty() {
        message = message.html_body(html);
    }
    if let Some(thread) = thread.filter(|_| !step.new_thread)
        && let Some(previous) = thread.message_ids.last()
    {
        message = message.in_reply_to(previous.clone()).references(thread.message_ids.clone());
    }
    let mut raw = unsubscribe.headers.clone().into_bytes();
    raw.extend(message.write_to_vec().unwrap_or_default());
    Composed { raw, message_id, subject }
}
