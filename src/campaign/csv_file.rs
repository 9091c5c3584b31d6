//! Reading lead CSV files exported from anywhere (spreadsheets, CRMs, scrapers).
//!
//! The file is UTF-8 with or without a byte-order mark, uses a comma, semicolon or tab as
//! delimiter, may quote fields (embedded delimiters, doubled quotes, newlines inside quotes),
//! ends lines with CRLF or LF and may have ragged rows. Parsing itself is the `csv` crate's;
//! this module adds three things around it:
//!
//! - **Delimiter detection** ([`detect`]). For each candidate (`,` `;` tab) the sample is
//!   scanned as CSV with that delimiter: a quote opens a quoted field only at the start of a
//!   field (as the parser does), delimiters and line ends inside quotes do not count, and the
//!   delimiters outside quotes are counted on each of the first [`SAMPLE_LINES`] non-empty
//!   lines. A candidate whose count is the same nonzero number on every line wins (the highest
//!   count, ties going to comma, then semicolon, then tab). With ragged rows no candidate may be
//!   consistent; then the candidate with the most delimiters on the header line wins, and a
//!   file with none at all (a single column) is read with a comma.
//! - **Column mapping** ([`guess_mapping`]). Headers are compared ignoring case, spaces,
//!   underscores and dashes against common names for the standard lead fields; the first column
//!   matching a field gets it, and every other non-empty header becomes a custom field.
//! - **Streaming rows** ([`LeadReader`]). One `csv::StringRecord` is reused for every row, so a
//!   file of any length is read in constant memory. Rows are numbered from 1 as the records
//!   after the header, so row N is line N + 1 of a spreadsheet export; a row whose fields are
//!   all empty is counted but not returned, and a line with nothing on it is not a record at all.
//!   Extra fields beyond the header are ignored, missing ones read as empty, values are trimmed.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// How many bytes from the start of a file [`detect`] and [`LeadReader::open`] look at.
pub const SAMPLE_BYTES: usize = 64 * 1024;
/// How many non-empty lines of the sample [`detect`] compares.
pub const SAMPLE_LINES: usize = 50;
/// Delimiters [`detect`] chooses from, in order of preference when counts tie.
const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
/// The UTF-8 byte-order mark some programs (Excel among them) write first.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The standard lead fields, as named in forms and in the serialized [`Column`].
pub const FIELDS: [&str; 7] = ["email", "first_name", "last_name", "company", "title", "website", "time_zone"];

/// The CSV flavour of a file; only the delimiter varies between the exports we meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The field separator: `,`, `;` or tab.
    pub delimiter: u8,
}

impl Default for Dialect {
    fn default() -> Self {
        Self { delimiter: b',' }
    }
}

/// Why a lead file could not be read; the message is shown to the user as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened or read from disk.
    #[error("The file could not be read: {0}.")]
    Io(String),
    /// The file is empty or holds only blank lines.
    #[error("The file has no header row.")]
    NoHeader,
    /// The header row has bytes that are not UTF-8.
    #[error("The file is not UTF-8 text (header row).")]
    HeaderNotUtf8,
    /// The header row could not be parsed.
    #[error("The header row could not be read: {0}.")]
    HeaderUnreadable(String),
    /// A data row has bytes that are not UTF-8.
    #[error("The file is not UTF-8 text (row {row}).")]
    NotUtf8 {
        /// The 1-based data row.
        row: u64,
    },
    /// A data row could not be parsed or read.
    #[error("Row {row} could not be read: {reason}.")]
    Unreadable {
        /// The 1-based data row.
        row: u64,
        /// What went wrong, from the parser or the operating system.
        reason: String,
    },
}

/// What each column is: one of the standard lead fields or a custom field named by its header.
///
/// Serialized in snake case, so the standard fields serialize as the names in [`FIELDS`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// The lead's email address.
    Email,
    /// Given name.
    FirstName,
    /// Family name.
    LastName,
    /// Company or organisation.
    Company,
    /// Job title.
    Title,
    /// Company website or domain.
    Website,
    /// IANA time zone, such as `Europe/Berlin`.
    TimeZone,
    /// A custom field, available to templates under this name.
    Custom(String),
    /// A column that is not imported.
    Ignore,
}

impl Column {
    /// The standard column named by one of [`FIELDS`], such as `first_name`.
    #[must_use]
    pub fn from_field(name: &str) -> Option<Self> {
        match name {
            "email" => Some(Self::Email),
            "first_name" => Some(Self::FirstName),
            "last_name" => Some(Self::LastName),
            "company" => Some(Self::Company),
            "title" => Some(Self::Title),
            "website" => Some(Self::Website),
            "time_zone" => Some(Self::TimeZone),
            _ => None,
        }
    }

    /// The name in [`FIELDS`] of a standard column; `None` for custom and ignored columns.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Email => Some(FIELDS[0]),
            Self::FirstName => Some(FIELDS[1]),
            Self::LastName => Some(FIELDS[2]),
            Self::Company => Some(FIELDS[3]),
            Self::Title => Some(FIELDS[4]),
            Self::Website => Some(FIELDS[5]),
            Self::TimeZone => Some(FIELDS[6]),
            Self::Custom(_) | Self::Ignore => None,
        }
    }
}

/// One data row mapped to lead fields; every value is trimmed and may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLead {
    /// The 1-based data row number (the first row after the header is 1).
    pub row: u64,
    /// The email address as written; validation is `campaign::validate`'s job.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Company.
    pub company: String,
    /// Job title.
    pub title: String,
    /// Website or domain.
    pub website: String,
    /// Time zone as written.
    pub time_zone: String,
    /// Custom fields as (name, value), in column order; empty values are omitted.
    pub custom: Vec<(String, String)>,
}

impl RawLead {
    /// Stores `value` in the field of `column`; when two columns map to the same standard
    /// field, the first non-empty value is kept.
    fn set(&mut self, column: &Column, value: &str) {
        let slot = match column {
            Column::Email => &mut self.email,
            Column::FirstName => &mut self.first_name,
            Column::LastName => &mut self.last_name,
            Column::Company => &mut self.company,
            Column::Title => &mut self.title,
            Column::Website => &mut self.website,
            Column::TimeZone => &mut self.time_zone,
            Column::Custom(name) => {
                if !value.is_empty() {
                    self.custom.push((name.clone(), value.to_owned()));
                }
                return;
            }
            Column::Ignore => return,
        };
        if slot.is_empty() {
            value.clone_into(slot);
        }
    }
}

/// Returns `bytes` without a leading UTF-8 byte-order mark.
#[must_use]
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(&BOM).unwrap_or(bytes)
}

/// Detects the delimiter from the first [`SAMPLE_BYTES`] of a file (see the module doc).
#[must_use]
pub fn detect(sample: &[u8]) -> Dialect {
    let sample = strip_bom(&sample[..sample.len().min(SAMPLE_BYTES)]);
    let counts = CANDIDATES.map(|delimiter| delimiter_counts(sample, delimiter));
    let index = consistent_candidate(&counts).or_else(|| busiest_header(&counts));
    index.map_or_else(Dialect::default, |i| Dialect { delimiter: CANDIDATES[i] })
}

/// The number of `delimiter`s outside quotes on each of the first non-empty lines of `sample`.
/// A last line without its line end may be cut short, so it is used only when it is the only one.
fn delimiter_counts(sample: &[u8], delimiter: u8) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut line = LineScan::new();
    for &byte in sample {
        if !line.push(byte, delimiter) {
            continue;
        }
        if line.has_content {
            counts.push(line.delimiters);
            if counts.len() == SAMPLE_LINES {
                return counts;
            }
        }
        line = LineScan::new();
    }
    if counts.is_empty() && line.has_content {
        counts.push(line.delimiters);
    }
    counts
}

/// The index of the candidate with the same nonzero count on every line, the highest such
/// count winning and ties going to the earlier candidate.
fn consistent_candidate(counts: &[Vec<usize>; 3]) -> Option<usize> {
    let consistent = counts.iter().enumerate().filter_map(|(i, lines)| {
        let first = *lines.first()?;
        (first > 0 && lines.iter().all(|&n| n == first)).then_some((i, first))
    });
    highest(consistent)
}

/// The index of the candidate with the most delimiters on the first line, if any has one.
fn busiest_header(counts: &[Vec<usize>; 3]) -> Option<usize> {
    highest(counts.iter().enumerate().filter_map(|(i, lines)| lines.first().filter(|&&n| n > 0).map(|&n| (i, n))))
}

/// The index with the highest count, the earliest index winning ties.
fn highest(candidates: impl Iterator<Item = (usize, usize)>) -> Option<usize> {
    candidates
        .fold(None, |best: Option<(usize, usize)>, (i, n)| match best {
            Some((_, best_n)) if best_n >= n => best,
            _ => Some((i, n)),
        })
        .map(|(i, _)| i)
}

/// The state of scanning one line for [`delimiter_counts`].
struct LineScan {
    delimiters: usize,
    in_quotes: bool,
    at_field_start: bool,
    after_closing_quote: bool,
    has_content: bool,
}

impl LineScan {
    fn new() -> Self {
        Self { delimiters: 0, in_quotes: false, at_field_start: true, after_closing_quote: false, has_content: false }
    }

    /// Feeds one byte; returns true when it ends the line (CR or LF outside quotes).
    fn push(&mut self, byte: u8, delimiter: u8) -> bool {
        if self.in_quotes {
            self.in_quotes = byte != b'"';
            self.after_closing_quote = !self.in_quotes;
            return false;
        }
        match byte {
            b'\r' | b'\n' => return true,
            b'"' if self.at_field_start || self.after_closing_quote => self.in_quotes = true,
            _ if byte == delimiter => {
                self.delimiters += 1;
                self.at_field_start = true;
                self.after_closing_quote = false;
                self.has_content = true;
                return false;
            }
            _ => {}
        }
        self.at_field_start = false;
        self.after_closing_quote = false;
        self.has_content = true;
        false
    }
}

/// A guessed mapping from headers (see the module doc): one [`Column`] per header.
#[must_use]
pub fn guess_mapping(headers: &[String]) -> Vec<Column> {
    let mut taken: Vec<Column> = Vec::new();
    headers
        .iter()
        .map(|header| {
            let header = header.trim();
            if header.is_empty() {
                return Column::Ignore;
            }
            match standard_column(header) {
                Some(column) if !taken.contains(&column) => {
                    taken.push(column.clone());
                    column
                }
                _ => Column::Custom(header.to_owned()),
            }
        })
        .collect()
}

/// The standard field a header names, compared ignoring case, spaces, underscores and dashes.
fn standard_column(header: &str) -> Option<Column> {
    let key: String = header
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '_' || *c == '-'))
        .flat_map(char::to_lowercase)
        .collect();
    match key.as_str() {
        "email" | "emailaddress" | "mail" => Some(Column::Email),
        "firstname" | "givenname" | "forename" => Some(Column::FirstName),
        "lastname" | "surname" | "familyname" => Some(Column::LastName),
        "company" | "companyname" | "organization" | "organisation" => Some(Column::Company),
        "title" | "jobtitle" | "position" => Some(Column::Title),
        "website" | "url" | "domain" | "companywebsite" => Some(Column::Website),
        "timezone" | "tz" => Some(Column::TimeZone),
        _ => None,
    }
}

/// A streaming reader over a lead file's rows: memory use does not grow with the file.
pub struct LeadReader<R: Read> {
    records: csv::Reader<R>,
    record: csv::StringRecord,
    headers: Vec<String>,
    row: u64,
}

impl LeadReader<BufReader<File>> {
    /// Opens a lead file: detects the dialect from its first [`SAMPLE_BYTES`], skips any
    /// byte-order mark and reads the header row.
    ///
    /// # Errors
    /// [`CsvError::Io`] when the file cannot be opened or read, or the errors of [`LeadReader::new`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CsvError> {
        let mut file = File::open(path).map_err(io_error)?;
        let mut sample = Vec::with_capacity(SAMPLE_BYTES);
        let sample_limit = u64::try_from(SAMPLE_BYTES).unwrap_or(u64::MAX);
        (&mut file).take(sample_limit).read_to_end(&mut sample).map_err(io_error)?;
        let start: u64 = if sample.starts_with(&BOM) { 3 } else { 0 };
        file.seek(SeekFrom::Start(start)).map_err(io_error)?;
        Self::new(BufReader::with_capacity(SAMPLE_BYTES, file), detect(&sample))
    }
}

impl<R: Read> LeadReader<R> {
    /// Reads the header row with `dialect`; `reader` is positioned after any byte-order mark.
    /// Blank lines before the header are skipped; header names are trimmed.
    ///
    /// # Errors
    /// [`CsvError::NoHeader`] for an empty file, [`CsvError::HeaderNotUtf8`] or
    /// [`CsvError::HeaderUnreadable`] for a header that cannot be read.
    pub fn new(reader: R, dialect: Dialect) -> Result<Self, CsvError> {
        let records = csv::ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .flexible(true)
            .has_headers(false)
            .from_reader(reader);
        let mut lead_reader = Self { records, record: csv::StringRecord::new(), headers: Vec::new(), row: 0 };
        lead_reader.headers = lead_reader.read_headers()?;
        Ok(lead_reader)
    }

    /// The header names, trimmed, in column order.
    #[must_use]
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The next row mapped by `mapping` (one [`Column`] per header), or `None` at the end of
    /// the file. Rows whose fields are all empty are skipped.
    ///
    /// # Errors
    /// [`CsvError::NotUtf8`] or [`CsvError::Unreadable`] naming the row; reading may continue
    /// with the next row after a UTF-8 error.
    pub fn next_row(&mut self, mapping: &[Column]) -> Option<Result<RawLead, CsvError>> {
        Some(self.advance()?.map(|row| self.current_lead(row, mapping)))
    }

    /// Reads the first non-blank record as the header row.
    fn read_headers(&mut self) -> Result<Vec<String>, CsvError> {
        loop {
            match self.records.read_record(&mut self.record) {
                Ok(true) if is_blank(&self.record) => {}
                Ok(true) => return Ok(self.record.iter().map(|name| name.trim().to_owned()).collect()),
                Ok(false) => return Err(CsvError::NoHeader),
                Err(err) if is_utf8_error(&err) => return Err(CsvError::HeaderNotUtf8),
                Err(err) => return Err(CsvError::HeaderUnreadable(err.to_string())),
            }
        }
    }

    /// Reads the next non-blank record into `self.record` and returns its row number.
    fn advance(&mut self) -> Option<Result<u64, CsvError>> {
        loop {
            let result = self.records.read_record(&mut self.record);
            if matches!(result, Ok(false)) {
                return None;
            }
            self.row += 1;
            let row = self.row;
            match result {
                Ok(_) if is_blank(&self.record) => {}
                Ok(_) => return Some(Ok(row)),
                Err(err) if is_utf8_error(&err) => return Some(Err(CsvError::NotUtf8 { row })),
                Err(err) => return Some(Err(CsvError::Unreadable { row, reason: err.to_string() })),
            }
        }
    }

    /// The current record mapped to lead fields; fields beyond the header are ignored.
    fn current_lead(&self, row: u64, mapping: &[Column]) -> RawLead {
        let mut lead = RawLead { row, ..RawLead::default() };
        for (column, value) in mapping.iter().zip(self.record.iter()).take(self.headers.len()) {
            lead.set(column, value.trim());
        }
        lead
    }

    /// The current record's trimmed values, padded or cut to the header's width.
    fn current_values(&self) -> Vec<String> {
        let width = self.headers.len();
        (0..width).map(|i| self.record.get(i).unwrap_or_default().trim().to_owned()).collect()
    }
}

/// What [`preview`] returns: the detected dialect, the header names and the first rows.
pub type Preview = (Dialect, Vec<String>, Vec<Vec<String>>);

/// The headers and the first `n` non-blank rows of a file, as trimmed strings padded or cut to
/// the header's width, for the preview table shown before mapping columns. `bytes` may start
/// with a byte-order mark; pass the whole file or a prefix that ends at a line end.
///
/// # Errors
/// The errors of [`LeadReader::new`] and [`LeadReader::next_row`] met within those rows.
pub fn preview(bytes: &[u8], n: usize) -> Result<Preview, CsvError> {
    let bytes = strip_bom(bytes);
    let dialect = detect(bytes);
    let mut reader = LeadReader::new(bytes, dialect)?;
    let mut rows = Vec::new();
    while rows.len() < n {
        let Some(result) = reader.advance() else { break };
        result?;
        rows.push(reader.current_values());
    }
    Ok((dialect, reader.headers, rows))
}

/// Whether every field of the record is empty or whitespace.
fn is_blank(record: &csv::StringRecord) -> bool {
    record.iter().all(|field| field.trim().is_empty())
}

/// Whether the parser refused a record for not being UTF-8.
fn is_utf8_error(err: &csv::Error) -> bool {
    matches!(err.kind(), csv::ErrorKind::Utf8 { .. })
}

/// The user-facing error for a failed open, read or seek of the file.
fn io_error(err: std::io::Error) -> CsvError {
    CsvError::Io(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimiter(sample: &str) -> char {
        char::from(detect(sample.as_bytes()).delimiter)
    }

    fn read_all(bytes: &[u8]) -> (Vec<String>, Vec<Result<RawLead, CsvError>>) {
        let bytes = strip_bom(bytes);
        let mut reader = LeadReader::new(bytes, detect(bytes)).expect("header");
        let headers = reader.headers().to_vec();
        let mapping = guess_mapping(&headers);
        let rows = std::iter::from_fn(|| reader.next_row(&mapping)).collect();
        (headers, rows)
    }

    fn leads(bytes: &[u8]) -> Vec<RawLead> {
        read_all(bytes).1.into_iter().map(|row| row.expect("row")).collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|&s| s.to_owned()).collect()
    }

    #[test]
    fn detects_comma_semicolon_and_tab() {
        assert_eq!(delimiter("email,first_name\na@x.com,Ann\nb@x.com,Bob\n"), ',');
        assert_eq!(delimiter("email;first_name\na@x.com;Ann\nb@x.com;Bob\n"), ';');
        assert_eq!(delimiter("email\tfirst_name\na@x.com\tAnn\nb@x.com\tBob\n"), '\t');
    }

    #[test]
    fn detection_ignores_delimiters_inside_quotes() {
        let semicolons = "email;company\na@x.com;\"Acme, Inc, Ltd\"\nb@x.com;\"Foo, Bar\"\n";
        assert_eq!(delimiter(semicolons), ';');
        let commas = "email,note\na@x.com,\"a;b;c\tx\"\nb@x.com,\"say \"\"hi;\"\" there\"\n";
        assert_eq!(delimiter(commas), ',');
        let tabs = "email\tnote\na@x.com\t\"x,y;z\"\nb@x.com\t\"1,2\n3,4\"\n";
        assert_eq!(delimiter(tabs), '\t');
    }

    #[test]
    fn detection_prefers_the_highest_consistent_count_then_comma() {
        assert_eq!(delimiter("a;b;c,d\n1;2;3,4\n"), ';');
        assert_eq!(delimiter("a;b,c\n1;2,3\n"), ',');
        assert_eq!(delimiter("email\na@x.com\n"), ',');
        assert_eq!(delimiter(""), ',');
    }

    #[test]
    fn detection_falls_back_to_the_header_for_ragged_rows() {
        assert_eq!(delimiter("email;first;last\na@x.com;Ann\nb@x.com;Bob;Smith;extra\n"), ';');
    }

    #[test]
    fn detection_handles_bom_crlf_and_a_cut_last_line() {
        assert_eq!(delimiter("\u{feff}email;name\r\na@x.com;Ann\r\n"), ';');
        assert_eq!(delimiter("email;name\na@x.com;Ann\nb@x.com;B,o,b,b"), ';');
    }

    #[test]
    fn strips_only_a_leading_bom() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFemail"), b"email");
        assert_eq!(strip_bom(b"email"), b"email");
        assert_eq!(strip_bom(b"\xEF\xBB"), b"\xEF\xBB");
    }

    #[test]
    fn reads_a_bom_file_with_crlf() {
        let (headers, rows) = read_all(b"\xEF\xBB\xBFEmail,First Name\r\na@x.com,Ann\r\nb@x.com , Bob \r\n");
        assert_eq!(headers, strings(&["Email", "First Name"]));
        let rows: Vec<RawLead> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            rows[0],
            RawLead { row: 1, email: "a@x.com".into(), first_name: "Ann".into(), ..RawLead::default() }
        );
        assert_eq!(rows[1].email, "b@x.com");
        assert_eq!(rows[1].first_name, "Bob");
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn reads_lf_with_quoted_newlines_and_doubled_quotes() {
        let rows = leads(b"email,company,notes\na@x.com,\"Acme, Inc\",\"line one\nline \"\"two\"\"\"\nb@x.com,Foo,\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].company, "Acme, Inc");
        assert_eq!(rows[0].custom, vec![("notes".to_owned(), "line one\nline \"two\"".to_owned())]);
        assert_eq!(rows[1].row, 2);
        assert!(rows[1].custom.is_empty());
    }

    #[test]
    fn ragged_rows_pad_and_ignore_extra_fields() {
        let rows = leads(b"email;first_name;last_name\na@x.com\nb@x.com;Bob;Smith;surplus;more\n");
        assert_eq!(rows[0], RawLead { row: 1, email: "a@x.com".into(), ..RawLead::default() });
        assert_eq!(rows[1].last_name, "Smith");
        assert!(rows[1].custom.is_empty());
    }

    #[test]
    fn blank_rows_are_skipped_but_counted() {
        let rows = leads(b"email,name\n\na@x.com,Ann\n,\n  ,  \nb@x.com,Bob\n\n");
        let numbers: Vec<u64> = rows.iter().map(|r| r.row).collect();
        assert_eq!(numbers, vec![1, 4]);
    }

    #[test]
    fn empty_file_has_no_header() {
        assert_eq!(LeadReader::new(&b""[..], Dialect::default()).err(), Some(CsvError::NoHeader));
        assert_eq!(LeadReader::new(&b"\n\n,,\n"[..], Dialect::default()).err(), Some(CsvError::NoHeader));
        assert_eq!(CsvError::NoHeader.to_string(), "The file has no header row.");
    }

    #[test]
    fn invalid_utf8_names_the_row_and_reading_continues() {
        let (_, rows) = read_all(b"email,name\na@x.com,Ann\nb@x.com,B\xFFb\nc@x.com,Cy\n");
        assert_eq!(rows[1], Err(CsvError::NotUtf8 { row: 2 }));
        assert_eq!(rows[1].as_ref().unwrap_err().to_string(), "The file is not UTF-8 text (row 2).");
        assert_eq!(rows[2].as_ref().map(|r| r.row), Ok(3));
        let header = LeadReader::new(&b"em\xFFail\na@x.com\n"[..], Dialect::default());
        assert_eq!(header.err(), Some(CsvError::HeaderNotUtf8));
    }

    #[test]
    fn unreadable_message_names_the_row() {
        let err = CsvError::Unreadable { row: 5, reason: "the disk went away".into() };
        assert_eq!(err.to_string(), "Row 5 could not be read: the disk went away.");
    }

    #[test]
    fn guesses_standard_fields_from_synonyms() {
        let headers =
            strings(&["E-mail", "given name", "SURNAME", "Organisation", "Job Title", "company website", "TZ"]);
        let expected = vec![
            Column::Email,
            Column::FirstName,
            Column::LastName,
            Column::Company,
            Column::Title,
            Column::Website,
            Column::TimeZone,
        ];
        assert_eq!(guess_mapping(&headers), expected);
        let more =
            strings(&["Email Address", "first_name", "Family-Name", "company_name", "position", "url", "Time Zone"]);
        assert_eq!(guess_mapping(&more), expected);
        assert_eq!(guess_mapping(&strings(&["mail", "firstname", "Last Name"]))[..], expected[..3]);
    }

    #[test]
    fn guesses_custom_ignored_and_duplicate_columns() {
        let headers = strings(&[" Phone ", "email", "", "Email Address", "  ", "Industry"]);
        assert_eq!(
            guess_mapping(&headers),
            vec![
                Column::Custom("Phone".into()),
                Column::Email,
                Column::Ignore,
                Column::Custom("Email Address".into()),
                Column::Ignore,
                Column::Custom("Industry".into()),
            ]
        );
    }

    #[test]
    fn fields_round_trip_through_columns_and_serde() {
        for name in FIELDS {
            let column = Column::from_field(name).expect("standard field");
            assert_eq!(column.field(), Some(name));
            assert_eq!(serde_json::to_string(&column).unwrap(), format!("\"{name}\""));
        }
        let custom = Column::Custom("Phone".into());
        assert_eq!(serde_json::from_str::<Column>(&serde_json::to_string(&custom).unwrap()).unwrap(), custom);
        assert_eq!(Column::from_field("phone"), None);
    }

    #[test]
    fn maps_custom_fields_and_keeps_the_first_of_duplicate_standard_fields() {
        let mut reader = LeadReader::new(&b"a,b,c,d\nx@y.com,,Acme,Extra\n"[..], Dialect::default()).unwrap();
        let mapping = [Column::Email, Column::Company, Column::Company, Column::Custom("Note".into())];
        let lead = reader.next_row(&mapping).unwrap().unwrap();
        assert_eq!(lead.company, "Acme");
        assert_eq!(lead.custom, vec![("Note".to_owned(), "Extra".to_owned())]);
        assert!(reader.next_row(&mapping).is_none());
    }

    #[test]
    fn preview_returns_rectangular_rows() {
        let (dialect, headers, rows) =
            preview(b"\xEF\xBB\xBFemail;name;city\n\na@x.com;Ann\nb@x.com;Bob;Oslo;extra\nc@x.com;Cy;Rome\n", 2)
                .unwrap();
        assert_eq!(dialect, Dialect { delimiter: b';' });
        assert_eq!(headers, strings(&["email", "name", "city"]));
        assert_eq!(rows, vec![strings(&["a@x.com", "Ann", ""]), strings(&["b@x.com", "Bob", "Oslo"])]);
        assert_eq!(preview(b"email\n", 5).unwrap().2, Vec::<Vec<String>>::new());
        assert_eq!(preview(b"email\nb\xFF\n", 5).err(), Some(CsvError::NotUtf8 { row: 1 }));
    }

    #[test]
    fn opens_a_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        std::fs::write(&path, b"\xEF\xBB\xBFEmail\tCompany\r\na@x.com\t\"Acme\tInc\"\r\n").unwrap();
        let mut reader = LeadReader::open(&path).unwrap();
        assert_eq!(reader.headers(), strings(&["Email", "Company"]));
        let lead = reader.next_row(&guess_mapping(&strings(&["Email", "Company"]))).unwrap().unwrap();
        assert_eq!(lead.company, "Acme\tInc");
        assert!(matches!(LeadReader::open(dir.path().join("missing.csv")), Err(CsvError::Io(_))));
    }

    #[test]
    fn reads_many_rows_quickly() {
        let mut file = String::from("email,first_name,last_name,company,notes\n");
        for i in 0..100_000 {
            file.push_str(&format!("lead{i}@example.com,Ann,Smith,\"Acme, Inc\",note {i}\n"));
        }
        let started = std::time::Instant::now();
        let rows = leads(file.as_bytes());
        assert_eq!(rows.len(), 100_000);
        assert_eq!(rows[99_999].row, 100_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    }
}
