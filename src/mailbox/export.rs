//! CSV files that Instantly and Smartlead bulk-import as custom SMTP/IMAP mailboxes.
//!
//! Neither vendor publishes its bulk-import layout; the headers here are the ones that mailbox
//! vendors' public exporters agree on (see docs/EXPORT.md), written exactly, in order. Every
//! mailbox becomes one row: the address is both the SMTP and the IMAP login, the host and ports
//! come from [`ServerSettings`], and the password column is filled only in the one-time export
//! made right after creation or a reset (InboxGrove keeps only password hashes afterwards).
//!
//! Rule for every text cell: it goes through [`neutralize`], which puts a `'` in front of a cell
//! starting with `=`, `+`, `-`, `@`, a tab or a carriage return, so a spreadsheet that opens the
//! file shows the text instead of running it as a formula (OWASP's CSV-injection advice).
//! Numbers the exporter writes itself (ports, limits) are not user text and are written as is.
//! Quoting of commas, quotes and line breaks is left to the `csv` crate; records end in CRLF
//! (RFC 4180).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Warmup emails a day InboxGrove asks for when a mailbox has warmup on: a conservative ceiling.
pub const WARMUP_DAILY_LIMIT: u32 = 20;
/// How many warmup emails a day are added until [`WARMUP_DAILY_LIMIT`] is reached.
pub const WARMUP_DAILY_INCREMENT: u32 = 2;

/// Instantly's bulk-import header (the long form, with the warmup columns).
const INSTANTLY_HEADER: [&str; 15] = [
    "Email",
    "First Name",
    "Last Name",
    "IMAP Username",
    "IMAP Password",
    "IMAP Host",
    "IMAP Port",
    "SMTP Username",
    "SMTP Password",
    "SMTP Host",
    "SMTP Port",
    "Daily Limit",
    "Warmup Enabled",
    "Warmup Limit",
    "Warmup Increment",
];

/// Smartlead's bulk-import header.
const SMARTLEAD_HEADER: [&str; 19] = [
    "from_name",
    "from_email",
    "user_name",
    "password",
    "smtp_host",
    "smtp_port",
    "imap_host",
    "imap_port",
    "max_email_per_day",
    "custom_tracking_url",
    "warmup_enabled",
    "total_warmup_per_day",
    "daily_rampup",
    "reply_rate_percentage",
    "bcc",
    "signature",
    "different_reply_to_address",
    "imap_user_name",
    "imap_password",
];

const CREDENTIALS_HEADER: [&str; 2] = ["email", "password"];

/// Longest label kept in a file name.
const MAX_LABEL_LEN: usize = 200;

const IN_MEMORY: &str = "writing CSV into memory cannot fail";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error("Unknown export format \"{0}\": choose instantly or smartlead.")]
    UnknownFormat(String),
}

/// The sequencer a file is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    Instantly,
    Smartlead,
}

impl ExportFormat {
    /// Every format, in the order they are offered.
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Instantly, ExportFormat::Smartlead];

    /// The lowercase name used on the command line, in URLs and in file names.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExportFormat::Instantly => "instantly",
            ExportFormat::Smartlead => "smartlead",
        }
    }

    /// The exact header line of this format, column by column.
    pub fn header(&self) -> &'static [&'static str] {
        match self {
            ExportFormat::Instantly => &INSTANTLY_HEADER,
            ExportFormat::Smartlead => &SMARTLEAD_HEADER,
        }
    }

    /// A download name such as `instantly-example.com.csv`; `label` keeps only `A-Z a-z 0-9 . _ -`,
    /// anything else becomes `-`.
    pub fn file_name(&self, label: &str) -> String {
        format!("{}-{}.csv", self.as_str(), sanitize_label(label))
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = ExportError;

    /// "instantly" or "smartlead", in any case, surrounding spaces ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim();
        ExportFormat::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ExportError::UnknownFormat(wanted.to_owned()))
    }
}

/// A label made safe for a file name; empty labels become "mailboxes".
fn sanitize_label(label: &str) -> String {
    let safe: String = label
        .chars()
        .take(MAX_LABEL_LEN)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    if safe.is_empty() { "mailboxes".to_owned() } else { safe }
}

/// Where a sequencer connects: the config's `hostname` for both hosts, the public submission
/// port (STARTTLS, 587 or `[smtp] public_submission_port`) and the public IMAP port (implicit
/// TLS, 993 or `[imap] public_port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub imap_host: String,
    pub imap_port: u16,
}

/// One mailbox as it goes into an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    /// The clear password: Some only in the one-time export right after creation or a reset;
    /// None leaves the password columns empty.
    pub password: Option<String>,
    /// Sends a day the sequencer may make from this mailbox.
    pub daily_limit: u32,
    /// Whether the sequencer should run its warmup on this mailbox.
    pub warmup_enabled: bool,
}

/// Protects a cell against formula injection: a `'` goes in front when the cell starts with
/// `=`, `+`, `-`, `@`, a tab or a carriage return. Other cells are returned unchanged.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// The import file for `format`: its exact header, then one row per mailbox.
pub fn write_csv(format: ExportFormat, server: &ServerSettings, rows: &[ExportRow]) -> Vec<u8> {
    let record = match format {
        ExportFormat::Instantly => instantly_record,
        ExportFormat::Smartlead => smartlead_record,
    };
    write_records(format.header(), rows.iter().map(|row| record(server, row)))
}

/// The file handed out once after mailboxes are created: `email,password`, one row each.
pub fn write_credentials_csv(rows: &[(String, String)]) -> Vec<u8> {
    write_records(
        &CREDENTIALS_HEADER,
        rows.iter().map(|(email, password)| vec![neutralize(email), neutralize(password)]),
    )
}

/// Writes a header and records with CRLF line ends.
fn write_records<'a>(header: &[&str], records: impl Iterator<Item = Vec<Cow<'a, str>>>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    writer.write_record(header).expect(IN_MEMORY);
    for record in records {
        writer.write_record(record.iter().map(|cell| cell.as_bytes())).expect(IN_MEMORY);
    }
    writer.into_inner().expect(IN_MEMORY)
}

/// A number written by the exporter itself; never neutralized.
fn number(value: impl fmt::Display) -> Cow<'static, str> {
    Cow::Owned(value.to_string())
}

/// "TRUE" or "FALSE", the form both importers read.
fn flag(value: bool) -> Cow<'static, str> {
    Cow::Borrowed(if value { "TRUE" } else { "FALSE" })
}

/// The password cell: the neutralized password, or empty.
fn password_cell(row: &ExportRow) -> Cow<'_, str> {
    row.password.as_deref().map_or(Cow::Borrowed(""), neutralize)
}

/// A warmup setting: the number when warmup is on, empty (the vendor's default) when it is off.
fn warmup_setting(row: &ExportRow, value: u32) -> Cow<'static, str> {
    if row.warmup_enabled { number(value) } else { Cow::Borrowed("") }
}

/// One row in [`INSTANTLY_HEADER`] order.
fn instantly_record<'a>(server: &'a ServerSettings, row: &'a ExportRow) -> Vec<Cow<'a, str>> {
    let email = neutralize(&row.email);
    vec![
        email.clone(),
        neutralize(&row.first_name),
        neutralize(&row.last_name),
        email.clone(),
        password_cell(row),
        neutralize(&server.imap_host),
        number(server.imap_port),
        email,
        password_cell(row),
        neutralize(&server.smtp_host),
        number(server.smtp_port),
        number(row.daily_limit),
        flag(row.warmup_enabled),
        warmup_setting(row, WARMUP_DAILY_LIMIT),
        warmup_setting(row, WARMUP_DAILY_INCREMENT),
    ]
}

/// One row in [`SMARTLEAD_HEADER`] order.
fn smartlead_record<'a>(server: &'a ServerSettings, row: &'a ExportRow) -> Vec<Cow<'a, str>> {
    let email = neutralize(&row.email);
    let empty = || Cow::Borrowed("");
    vec![
        neutralize(&row.display_name),
        email.clone(),
        email.clone(),
        password_cell(row),
        neutralize(&server.smtp_host),
        number(server.smtp_port),
        neutralize(&server.imap_host),
        number(server.imap_port),
        number(row.daily_limit),
        empty(),
        flag(row.warmup_enabled),
        warmup_setting(row, WARMUP_DAILY_LIMIT),
        warmup_setting(row, WARMUP_DAILY_INCREMENT),
        empty(),
        empty(),
        empty(),
        empty(),
        email,
        password_cell(row),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ServerSettings {
        ServerSettings {
            smtp_host: "mail.example.com".into(),
            smtp_port: 587,
            imap_host: "mail.example.com".into(),
            imap_port: 993,
        }
    }

    fn row(password: Option<&str>) -> ExportRow {
        ExportRow {
            email: "emma.walker@example.com".into(),
            first_name: "Emma".into(),
            last_name: "Walker".into(),
            display_name: "Emma Walker".into(),
            password: password.map(str::to_owned),
            daily_limit: 40,
            warmup_enabled: true,
        }
    }

    /// The header and every record of a CSV file, parsed back with the csv crate.
    fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let records = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
        (header, records)
    }

    /// Column `name` of `record` under `header`.
    fn cell<'a>(header: &[String], record: &'a [String], name: &str) -> &'a str {
        let index = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
        &record[index]
    }

    #[test]
    fn instantly_header_and_columns() {
        let bytes = write_csv(ExportFormat::Instantly, &server(), &[row(Some("Pw3xAmpleXyzKq7RtUvW"))]);
        let (header, records) = parse(&bytes);
        assert_eq!(
            header.join(","),
            "Email,First Name,Last Name,IMAP Username,IMAP Password,IMAP Host,IMAP Port,SMTP Username,\
             SMTP Password,SMTP Host,SMTP Port,Daily Limit,Warmup Enabled,Warmup Limit,Warmup Increment"
        );
        assert_eq!(records.len(), 1);
        let expected = [
            "emma.walker@example.com",
            "Emma",
            "Walker",
            "emma.walker@example.com",
            "Pw3xAmpleXyzKq7RtUvW",
            "mail.example.com",
            "993",
            "emma.walker@example.com",
            "Pw3xAmpleXyzKq7RtUvW",
            "mail.example.com",
            "587",
            "40",
            "TRUE",
            "20",
            "2",
        ];
        assert_eq!(records[0], expected);
    }

    #[test]
    fn smartlead_header_and_columns() {
        let bytes = write_csv(ExportFormat::Smartlead, &server(), &[row(Some("Pw3xAmpleXyzKq7RtUvW"))]);
        let (header, records) = parse(&bytes);
        assert_eq!(
            header.join(","),
            "from_name,from_email,user_name,password,smtp_host,smtp_port,imap_host,imap_port,max_email_per_day,\
             custom_tracking_url,warmup_enabled,total_warmup_per_day,daily_rampup,reply_rate_percentage,bcc,\
             signature,different_reply_to_address,imap_user_name,imap_password"
        );
        let expected = [
            "Emma Walker",
            "emma.walker@example.com",
            "emma.walker@example.com",
            "Pw3xAmpleXyzKq7RtUvW",
            "mail.example.com",
            "587",
            "mail.example.com",
            "993",
            "40",
            "",
            "TRUE",
            "20",
            "2",
            "",
            "",
            "",
            "",
            "emma.walker@example.com",
            "Pw3xAmpleXyzKq7RtUvW",
        ];
        assert_eq!(records[0], expected);
    }

    #[test]
    fn warmup_off_leaves_warmup_settings_empty() {
        let quiet = ExportRow { warmup_enabled: false, ..row(None) };
        for format in ExportFormat::ALL {
            let (header, records) = parse(&write_csv(format, &server(), std::slice::from_ref(&quiet)));
            let names = match format {
                ExportFormat::Instantly => ["Warmup Enabled", "Warmup Limit", "Warmup Increment"],
                ExportFormat::Smartlead => ["warmup_enabled", "total_warmup_per_day", "daily_rampup"],
            };
            assert_eq!(cell(&header, &records[0], names[0]), "FALSE");
            assert_eq!(cell(&header, &records[0], names[1]), "");
            assert_eq!(cell(&header, &records[0], names[2]), "");
        }
    }

    #[test]
    fn no_password_means_empty_password_columns() {
        let columns = [
            (ExportFormat::Instantly, ["IMAP Password", "SMTP Password"]),
            (ExportFormat::Smartlead, ["password", "imap_password"]),
        ];
        for (format, names) in columns {
            let (header, records) = parse(&write_csv(format, &server(), &[row(None)]));
            for name in names {
                assert_eq!(cell(&header, &records[0], name), "", "{format} {name}");
            }
        }
    }

    #[test]
    fn formulas_are_neutralized_in_every_format() {
        let hostile = ExportRow {
            first_name: "-5".into(),
            last_name: "+SUM(A1)".into(),
            display_name: "=HYPERLINK(\"http://x\")".into(),
            ..row(None)
        };
        let (header, records) = parse(&write_csv(ExportFormat::Smartlead, &server(), std::slice::from_ref(&hostile)));
        assert_eq!(cell(&header, &records[0], "from_name"), "'=HYPERLINK(\"http://x\")");
        let (header, records) = parse(&write_csv(ExportFormat::Instantly, &server(), &[hostile]));
        assert_eq!(cell(&header, &records[0], "First Name"), "'-5");
        assert_eq!(cell(&header, &records[0], "Last Name"), "'+SUM(A1)");
        assert_eq!(cell(&header, &records[0], "Daily Limit"), "40");
    }

    #[test]
    fn neutralize_rule() {
        for risky in ["=1+1", "+1", "-5", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(risky), format!("'{risky}"));
        }
        for safe in ["", "Emma", "5", "a=b", " =x", "'quoted"] {
            assert!(matches!(neutralize(safe), Cow::Borrowed(s) if s == safe), "{safe:?}");
        }
    }

    #[test]
    fn commas_and_quotes_round_trip() {
        let tricky =
            ExportRow { display_name: "Walker, \"Em\" Emma".into(), last_name: "O'Neil, Jr.".into(), ..row(None) };
        let (header, records) = parse(&write_csv(ExportFormat::Smartlead, &server(), std::slice::from_ref(&tricky)));
        assert_eq!(cell(&header, &records[0], "from_name"), "Walker, \"Em\" Emma");
        let (header, records) = parse(&write_csv(ExportFormat::Instantly, &server(), &[tricky]));
        assert_eq!(cell(&header, &records[0], "Last Name"), "O'Neil, Jr.");
    }

    #[test]
    fn records_end_in_crlf_and_count_matches() {
        let bytes = write_csv(ExportFormat::Instantly, &server(), &[row(None), row(None), row(None)]);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches("\r\n").count(), 4);
        assert!(text.ends_with("\r\n"));
        let (_, records) = parse(text.as_bytes());
        assert!(records.iter().all(|r| r.len() == INSTANTLY_HEADER.len()));
    }

    #[test]
    fn credentials_file() {
        let rows = vec![
            ("emma.walker@example.com".to_owned(), "Pw3xAmpleXyzKq7RtUvW".to_owned()),
            ("bob@example.com".to_owned(), "-starts-with-dash".to_owned()),
        ];
        let (header, records) = parse(&write_credentials_csv(&rows));
        assert_eq!(header, ["email", "password"]);
        assert_eq!(
            records,
            [["emma.walker@example.com", "Pw3xAmpleXyzKq7RtUvW"], ["bob@example.com", "'-starts-with-dash"]]
        );
    }

    #[test]
    fn format_names_parse_and_print() {
        for format in ExportFormat::ALL {
            assert_eq!(format.as_str().parse::<ExportFormat>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!(" Instantly ".parse::<ExportFormat>(), Ok(ExportFormat::Instantly));
        let error = "lemlist".parse::<ExportFormat>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("lemlist"), "{message}");
        for format in ExportFormat::ALL {
            assert!(message.contains(format.as_str()), "{message}");
        }
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(ExportFormat::Instantly.file_name("example.com"), "instantly-example.com.csv");
        assert_eq!(ExportFormat::Smartlead.file_name("../etc/pass wd"), "smartlead-..-etc-pass-wd.csv");
        assert_eq!(ExportFormat::Smartlead.file_name("bücher.de"), "smartlead-b-cher.de.csv");
        assert_eq!(ExportFormat::Instantly.file_name(""), "instantly-mailboxes.csv");
    }
}
