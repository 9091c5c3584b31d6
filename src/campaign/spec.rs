//! The campaign file of `inboxgrove campaign create --file FILE` (documented in
//! docs/CAMPAIGNS.md): TOML read into a [`NewCampaign`]. Unknown keys are refused, so a typo
//! does not silently become a default. `daily_cap`, `min_gap_seconds` and `jitter_seconds` may
//! stand at the top level or under `[schedule]`.

use serde::Deserialize;

use crate::campaign::campaigns::{DelayUnit, NewCampaign, NewStep, NewVariant, Settings};
use crate::campaign::windows;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    mailboxes: Vec<String>,
    lists: Vec<String>,
    #[serde(default)]
    schedule: ScheduleFile,
    stop_on_reply: Option<bool>,
    stop_company_on_reply: Option<bool>,
    track_opens: Option<bool>,
    track_clicks: Option<bool>,
    /// `header` (List-Unsubscribe only) or `footer` (also a footer line with the postal address).
    unsubscribe: Option<String>,
    start_date: Option<String>,
    daily_cap: Option<u32>,
    min_gap_seconds: Option<u32>,
    jitter_seconds: Option<u32>,
    steps: Vec<StepFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    time_zone: Option<String>,
    days: Option<Vec<String>>,
    start: Option<String>,
    end: Option<String>,
    use_lead_time_zone: Option<bool>,
    daily_cap: Option<u32>,
    min_gap_seconds: Option<u32>,
    jitter_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    html: String,
    weight: Option<u32>,
    delay_days: Option<u32>,
    delay_business_days: Option<u32>,
    delay_hours: Option<u32>,
    #[serde(default)]
    new_thread: bool,
    #[serde(default)]
    variants: Vec<VariantFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    #[serde(default)]
    subject: String,
    body: String,
    #[serde(default)]
    html: String,
    weight: Option<u32>,
}

/// Reads a campaign file; `default_zone` is the workspace's time zone.
pub fn parse(text: &str, default_zone: chrono_tz::Tz) -> Result<NewCampaign> {
    let file: CampaignFile = toml::from_str(text)
        .map_err(|e| Error::invalid("file", format!("The campaign file is not valid: {}", e.message())))?;
    let schedule = &file.schedule;
    let time_zone = match &schedule.time_zone {
        Some(zone) => crate::workspaces::check_time_zone(zone)?.parse().unwrap_or(default_zone),
        None => default_zone,
    };
    let days = match &schedule.days {
        Some(days) => windows::parse_days(days).map_err(|e| Error::invalid("days", e.to_string()))?,
        None => [true, true, true, true, true, false, false],
    };
    let clock = |value: &Option<String>, default: u32, field: &'static str| -> Result<u32> {
        value
            .as_deref()
            .map_or(Ok(default), |v| windows::parse_clock(v).map_err(|e| Error::invalid(field, e.to_string())))
    };
    let unsubscribe_footer = match file.unsubscribe.as_deref().map(str::trim) {
        None | Some("header") => false,
        Some("footer") => true,
        Some(other) => {
            return Err(Error::invalid(
                "unsubscribe",
                format!("unsubscribe is \"header\" or \"footer\", not \"{other}\"."),
            ));
        }
    };
    let settings = Settings {
        name: file.name.trim().to_string(),
        time_zone,
        days,
        window_start: clock(&schedule.start, 9 * 60, "start")?,
        window_end: clock(&schedule.end, 17 * 60, "end")?,
        use_lead_time_zone: schedule.use_lead_time_zone.unwrap_or(true),
        start_date: file.start_date.unwrap_or_default().trim().to_string(),
        daily_cap: schedule.daily_cap.or(file.daily_cap).unwrap_or(0),
        min_gap_seconds: schedule.min_gap_seconds.or(file.min_gap_seconds).unwrap_or(0),
        jitter_seconds: schedule.jitter_seconds.or(file.jitter_seconds).unwrap_or(0),
        stop_on_reply: file.stop_on_reply.unwrap_or(true),
        stop_company_on_reply: file.stop_company_on_reply.unwrap_or(false),
        track_opens: file.track_opens.unwrap_or(false),
        track_clicks: file.track_clicks.unwrap_or(false),
        unsubscribe_footer,
    };
    let steps =
        file.steps.into_iter().enumerate().map(|(index, step)| step_of(index + 1, step)).collect::<Result<_>>()?;
    let campaign = NewCampaign { settings, mailboxes: file.mailboxes, lists: file.lists, steps };
    crate::campaign::campaigns::check(&campaign)?;
    Ok(campaign)
}

fn step_of(number: usize, step: StepFile) -> Result<NewStep> {
    let delays = [
        step.delay_days.map(|d| (d, DelayUnit::Days)),
        step.delay_business_days.map(|d| (d, DelayUnit::BusinessDays)),
        step.delay_hours.map(|d| (d, DelayUnit::Hours)),
    ];
    let mut given = delays.into_iter().flatten();
    let (delay, delay_unit) = given.next().unwrap_or((0, DelayUnit::Days));
    if given.next().is_some() {
        return Err(Error::invalid(
            "steps",
            format!("Step {number}: give one of delay_days, delay_business_days or delay_hours, not several."),
        ));
    }
    let mut variants = Vec::new();
    if !step.body.trim().is_empty() || !step.subject.trim().is_empty() {
        variants.push(NewVariant {
            subject: step.subject,
            body: step.body,
            html: step.html,
            weight: step.weight.unwrap_or(1),
        });
    }
    variants.extend(step.variants.into_iter().map(|v| NewVariant {
        subject: v.subject,
        body: v.body,
        html: v.html,
        weight: v.weight.unwrap_or(1),
    }));
    Ok(NewStep { delay, delay_unit, new_thread: step.new_thread, variants })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
name = "Q1 founders"
mailboxes = ["ann@a.test", "bob@b.test"]
lists = ["Founders"]
stop_on_reply = true

[schedule]
time_zone = "Europe/Berlin"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "17:30"
use_lead_time_zone = true
daily_cap = 100
min_gap_seconds = 300
jitter_seconds = 60

[[steps]]
subject = "{Hi|Hello} {{first_name|there}}"
body = "Body one"

[[steps.variants]]
subject = "Quick question, {{first_name}}"
body = "Body one B"
weight = 2

[[steps]]
body = "Following up"
delay_days = 3

[[steps]]
subject = "New thread"
body = "Last one"
delay_business_days = 2
new_thread = true
"#;

    #[test]
    fn a_campaign_file_reads_into_settings_and_steps() {
        let campaign = parse(FILE, chrono_tz::Tz::UTC).unwrap();
        let s = &campaign.settings;
        assert_eq!(s.time_zone, chrono_tz::Tz::Europe__Berlin);
        assert_eq!((s.window_start, s.window_end), (540, 1050));
        assert_eq!((s.daily_cap, s.min_gap_seconds, s.jitter_seconds), (100, 300, 60));
        assert!(s.stop_on_reply && s.use_lead_time_zone && !s.track_opens && !s.unsubscribe_footer);
        assert_eq!(campaign.steps.len(), 3);
        assert_eq!(campaign.steps[0].variants.len(), 2);
        assert_eq!(campaign.steps[0].variants[1].weight, 2);
        assert_eq!((campaign.steps[1].delay, campaign.steps[1].delay_unit), (3, DelayUnit::Days));
        assert_eq!(campaign.steps[2].delay_unit, DelayUnit::BusinessDays);
        assert!(campaign.steps[2].new_thread);
    }

    #[test]
    fn mistakes_are_named() {
        let typo = FILE.replace("stop_on_reply", "stop_on_replies");
        assert!(parse(&typo, chrono_tz::Tz::UTC).unwrap_err().to_string().contains("stop_on_replies"));
        let zone = FILE.replace("Europe/Berlin", "Mars/Base");
        assert!(parse(&zone, chrono_tz::Tz::UTC).unwrap_err().to_string().contains("Mars/Base"));
        let subjectless = FILE.replace("subject = \"New thread\"\n", "");
        assert!(parse(&subjectless, chrono_tz::Tz::UTC).unwrap_err().to_string().contains("Step 3 needs a subject"));
        let two = FILE.replace("delay_days = 3", "delay_days = 3\ndelay_hours = 4");
        assert!(parse(&two, chrono_tz::Tz::UTC).unwrap_err().to_string().contains("not several"));
    }
}
