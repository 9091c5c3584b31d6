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
//!
//! With tracking ([`Tracking`], from the campaign's `track_clicks` and `track_opens`): the
//! links of the rendered text and HTML are rewritten to click URLs before the footer is added
//! (so the unsubscribe link stays as it is) and returned in [`Composed::links`] for the send's
//! transaction to store; the open pixel goes at the end of the HTML part, after the footer. A
//! step without HTML has no pixel (plain text cannot load an image). The tokens name the
//! Message-ID made here. Without tracking the message is exactly what it was before tracking
//! existed.

use mail_builder::MessageBuilder;
use mail_builder::headers::date::Date;

use crate::campaign::campaigns::{Step, Variant};
use crate::campaign::leads::Lead;
use crate::campaign::rotation::Sender;
use crate::campaign::templates::{self, Mode, Template, Warning};
use crate::crypto::random_token;
use crate::tracking::Tracking;

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
    /// The links click tracking rewrote, by position (empty without click tracking).
    pub links: Vec<String>,
}

/// The footer line appended to the text (and HTML) body.
fn footer(unsubscribe: &Unsubscribe) -> Option<(String, String)> {
    let address = unsubscribe.footer_address.as_deref()?;
    let mut text = String::from("\r\n\r\n--\r\n");
    let mut html = String::from("<p style=\"color:#666;font-size:12px\">");
    if !address.trim().is_empty() {
        text.push_str(&address.trim().replace('\n', "\r\n"));
        text.push_str("\r\n");
        html.push_str(&templates::escape_html(address.trim()).replace('\n', "<br>"));
        html.push_str("<br>");
    }
    if !unsubscribe.link.is_empty() {
        text.push_str(&format!("Unsubscribe: {}\r\n", unsubscribe.link));
        let link = templates::escape_html(&unsubscribe.link);
        html.push_str(&format!("<a href=\"{link}\">Unsubscribe</a>"));
    }
    html.push_str("</p>");
    Some((text, html))
}

/// Builds the message of a rendered step (see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn compose(
    rendered: &Rendered,
    step: &Step,
    lead: &Lead,
    sender: &Sender,
    thread: Option<&Thread>,
    unsubscribe: &Unsubscribe,
    tracking: Option<&Tracking>,
    now: i64,
) -> Composed {
    let domain = sender.address.rsplit_once('@').map_or("localhost", |(_, domain)| domain);
    let message_id = format!("{}@{domain}", random_token());
    let subject = subject_for(rendered, step, thread);
    let to_name = format!("{} {}", lead.first_name, lead.last_name).trim().to_string();
    let (mut text, mut html, links) = match tracking.filter(|t| t.clicks()) {
        Some(tracking) => {
            let mut rewriter = tracking.rewriter(&message_id);
            let (text, html) = (rewriter.text(&rendered.text), rewriter.html(&rendered.html));
            (text, html, rewriter.into_links())
        }
        None => (rendered.text.clone(), rendered.html.clone(), Vec::new()),
    };
    if let Some((text_footer, html_footer)) = footer(unsubscribe) {
        text.push_str(&text_footer);
        if !html.is_empty() {
            html.push_str(&html_footer);
        }
    }
    if let Some(tracking) = tracking.filter(|t| t.opens())
        && !html.is_empty()
    {
        html = tracking.with_pixel(&message_id, &html);
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
    Composed { raw, message_id, subject, links }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mail_parser::MessageParser;

    use super::*;
    use crate::campaign::campaigns::DelayUnit;
    use crate::campaign::leads::LeadStatus;
    use crate::crypto::MasterKey;

    const UNSUBSCRIBE: &str = "https://grove.test/unsubscribe/TOKEN";

    fn parts(html: &str) -> (Rendered, Step, Lead, Sender, Unsubscribe) {
        let rendered = Rendered {
            variant_id: 1,
            variant_label: "A".into(),
            subject: "Hello".into(),
            text: "Read https://site.test/a?b=1&c=2. Or mail ann@a.test (mailto:ann@a.test).".into(),
            html: html.into(),
            missing: Vec::new(),
            warnings: Vec::new(),
        };
        let step =
            Step { id: 1, position: 0, delay: 0, delay_unit: DelayUnit::Days, new_thread: false, variants: Vec::new() };
        let lead = Lead {
            id: 1,
            email: "lead@b.test".into(),
            first_name: "Bo".into(),
            last_name: String::new(),
            company: String::new(),
            title: String::new(),
            website: String::new(),
            time_zone: String::new(),
            fields: Default::default(),
            status: LeadStatus::Active,
            created_at: 0,
            updated_at: 0,
        };
        let sender = Sender {
            id: 1,
            address: "ann@a.test".into(),
            display_name: "Ann".into(),
            first_name: "Ann".into(),
            last_name: String::new(),
            may_send: true,
            remaining: 10,
            free_at: 0,
        };
        let unsubscribe =
            Unsubscribe { headers: String::new(), link: UNSUBSCRIBE.into(), footer_address: Some("1 Main St".into()) };
        (rendered, step, lead, sender, unsubscribe)
    }

    /// (text part, HTML part or "") of a composed message.
    fn bodies(composed: &Composed) -> (String, String) {
        let message = MessageParser::default().parse(&composed.raw).expect("a message");
        let text = message.body_text(0).map(|t| t.replace("\r\n", "\n")).unwrap_or_default();
        let has_html = String::from_utf8_lossy(&composed.raw).to_ascii_lowercase().contains("text/html");
        let html = if has_html { message.body_html(0).unwrap_or_default().to_string() } else { String::new() };
        (text, html)
    }

    fn tracking(opens: bool, clicks: bool) -> Option<Tracking> {
        let keys = Arc::new(MasterKey::from_bytes(&[1; 32]));
        Tracking::new(keys, 1, "https://track.a.test", "https://grove.test", opens, clicks)
    }

    #[test]
    fn without_tracking_the_links_stay_and_none_are_collected() {
        let (rendered, step, lead, sender, unsubscribe) = parts("<p><a href=\"https://site.test/h\">Site</a></p>");
        let composed = compose(&rendered, &step, &lead, &sender, None, &unsubscribe, None, 0);
        let (text, html) = bodies(&composed);
        assert!(text.starts_with(&rendered.text.replace("\r\n", "\n")), "{text}");
        assert!(text.contains(UNSUBSCRIBE), "{text}");
        assert!(html.starts_with(&rendered.html) && !html.contains("/t/"), "{html}");
        assert!(composed.links.is_empty());
    }

    #[test]
    fn tracked_mail_has_click_urls_a_pixel_last_and_its_unsubscribe_link_untouched() {
        let html = "<p>Read <a href=\"https://site.test/a?b=1&amp;c=2\">this</a> or \
                    <a href=\"mailto:ann@a.test\">mail me</a></p>";
        let (rendered, step, lead, sender, unsubscribe) = parts(html);
        let tracking = tracking(true, true);
        let composed = compose(&rendered, &step, &lead, &sender, None, &unsubscribe, tracking.as_ref(), 0);
        assert_eq!(composed.links, ["https://site.test/a?b=1&c=2"], "one link in both parts");
        let (text, html) = bodies(&composed);
        assert!(text.starts_with("Read https://track.a.test/t/c/"), "{text}");
        assert!(text.contains(". Or mail ann@a.test (mailto:ann@a.test).") && !text.contains("site.test"), "{text}");
        assert!(text.contains(&format!("Unsubscribe: {UNSUBSCRIBE}")), "{text}");
        assert!(html.starts_with("<p>Read <a href=\"https://track.a.test/t/c/"), "{html}");
        assert!(
            html.contains("<a href=\"mailto:ann@a.test\">") && html.contains(&format!("href=\"{UNSUBSCRIBE}\"")),
            "{html}"
        );
        let pixel = html.rfind("<img src=\"https://track.a.test/t/o/").expect("a pixel");
        assert!(pixel > html.find("Unsubscribe</a>").unwrap() && html.ends_with("border:0\">"), "{html}");
        // The click tokens name this message.
        let token = text.split("/t/c/").nth(1).unwrap().split('.').next().unwrap();
        let target = crate::tracking::token::verify(&MasterKey::from_bytes(&[1; 32]), token).unwrap();
        assert_eq!(target.message_id(), composed.message_id);
    }

    #[test]
    fn plain_text_mail_gets_no_pixel_and_opens_only_rewrite_nothing() {
        let (rendered, step, lead, sender, unsubscribe) = parts("");
        let composed = compose(&rendered, &step, &lead, &sender, None, &unsubscribe, tracking(true, false).as_ref(), 0);
        let (text, html) = bodies(&composed);
        assert!(html.is_empty() && !String::from_utf8_lossy(&composed.raw).contains("/t/o/"));
        assert!(text.starts_with(&rendered.text) && composed.links.is_empty(), "{text}");
        let clicks = compose(&rendered, &step, &lead, &sender, None, &unsubscribe, tracking(false, true).as_ref(), 0);
        assert_eq!(clicks.links, ["https://site.test/a?b=1&c=2"]);
        assert!(!String::from_utf8_lossy(&clicks.raw).contains("/t/o/"));
    }
}
