//! A stored message as IMAP sees it: ENVELOPE, BODYSTRUCTURE and the bytes of a body section,
//! all from mail-parser's parse of the raw RFC 5322 bytes.
//!
//! mail-parser reports each MIME part's header, body and end as offsets into the raw message (the
//! header includes its blank line; a multipart child's body stops before the CRLF that precedes
//! the next boundary), which are exactly IMAP's section boundaries. An encapsulated message
//! (message/rfc822) is parsed again from its part's body, so every level's offsets are relative
//! to bytes we hold. Section numbers follow RFC 3501 §6.4.5: the parts of a multipart are numbered
//! from 1; a message that is not multipart has one part, 1, its body; the parts of an
//! encapsulated message are numbered within it.

use std::borrow::Cow;

use base64::Engine;
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::{Part, Section};
use mail_parser::{HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType};

/// How deep encapsulated messages are followed.
const MAX_DEPTH: usize = 8;

/// A parsed message (or an encapsulated one).
pub struct Parsed<'a> {
    raw: &'a [u8],
    message: Option<mail_parser::Message<'a>>,
    /// Encapsulated messages, by the index of their part in `message.parts`.
    nested: Vec<(usize, Parsed<'a>)>,
}

/// A part reached by a section number: the message it belongs to and its index there.
struct Located<'p, 'a> {
    parsed: &'p Parsed<'a>,
    index: usize,
}

impl<'a> Parsed<'a> {
    /// Parses `raw`; never fails (a message mail-parser cannot read is one text part).
    pub fn parse(raw: &'a [u8]) -> Parsed<'a> {
        Self::parse_at(raw, MAX_DEPTH)
    }

    fn parse_at(raw: &'a [u8], depth: usize) -> Parsed<'a> {
        let message = MessageParser::default().parse(raw);
        let mut nested = Vec::new();
        if depth > 0
            && let Some(message) = &message
        {
            for (index, part) in message.parts.iter().enumerate() {
                if matches!(part.body, PartType::Message(_)) {
                    nested.push((index, Parsed::parse_at(slice(raw, part.offset_body, part.offset_end), depth - 1)));
                }
            }
        }
        Parsed { raw, message, nested }
    }

    fn parts(&self) -> &[MessagePart<'a>] {
        self.message.as_ref().map_or(&[], |message| message.parts.as_slice())
    }

    fn nested(&self, index: usize) -> Option<&Parsed<'a>> {
        self.nested.iter().find(|(at, _)| *at == index).map(|(_, parsed)| parsed)
    }

    /// The message's header, with the blank line that ends it.
    pub fn header(&self) -> &'a [u8] {
        match self.parts().first() {
            Some(root) => slice(self.raw, 0, root.offset_body),
            None => self.raw,
        }
    }

    /// The message's body (RFC822.TEXT, BODY[TEXT]).
    pub fn text(&self) -> &'a [u8] {
        match self.parts().first() {
            Some(root) => slice(self.raw, root.offset_body, end_of(self.raw, root)),
            None => &[],
        }
    }

    /// The decoded text of the message's text parts (transfer encoding and charset undone),
    /// those of encapsulated messages included, for SEARCH BODY and TEXT.
    pub fn decoded_texts(&self) -> Vec<&str> {
        let mut texts: Vec<&str> = self
            .parts()
            .iter()
            .filter_map(|part| match &part.body {
                PartType::Text(text) | PartType::Html(text) => Some(text.as_ref()),
                _ => None,
            })
            .collect();
        for (_, inner) in &self.nested {
            texts.extend(inner.decoded_texts());
        }
        texts
    }

    /// The whole message.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Every value of a top-level header (unfolded, encoded words left as they are).
    pub fn raw_values(&self, name: &str) -> Vec<String> {
        let Some(root) = self.parts().first() else { return Vec::new() };
        root.headers
            .iter()
            .filter(|header| header.name.as_str().eq_ignore_ascii_case(name))
            .map(|header| unfold(slice(self.raw, header.offset_start, header.offset_end)))
            .collect()
    }

    /// The decoded Subject, if any.
    pub fn subject(&self) -> Option<&str> {
        self.message.as_ref()?.subject()
    }

    /// The day of the Date header, in the sender's time zone (SENTBEFORE, SENTON, SENTSINCE).
    pub fn sent_date(&self) -> Option<chrono::NaiveDate> {
        let date = self.message.as_ref()?.date()?;
        chrono::NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
    }

    /// A top-level header's values as mail-parser decodes them (encoded words, addresses as
    /// `Name <address>`), all occurrences joined; `None` when absent or not text.
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        let root = self.parts().first()?;
        let values: Vec<String> = root
            .headers
            .iter()
            .filter(|header| header.name.as_str().eq_ignore_ascii_case(name))
            .filter_map(|header| match header.value() {
                HeaderValue::Text(text) => Some(text.to_string()),
                HeaderValue::TextList(list) => Some(list.join(" ")),
                HeaderValue::Address(address) => Some(address_text(address)),
                _ => None,
            })
            .collect();
        (!values.is_empty()).then(|| values.join(" "))
    }

    /// The ENVELOPE structure (RFC 3501 §7.4.2).
    pub fn envelope(&self) -> Envelope<'static> {
        let first = |name: &str| self.raw_values(name).into_iter().next();
        let message = self.message.as_ref();
        let from = addresses(message.and_then(|m| m.from()));
        let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
        Envelope {
            date: nstring(first("Date")),
            subject: nstring(first("Subject")),
            sender: or_from(addresses(message.and_then(|m| m.sender()))),
            reply_to: or_from(addresses(message.and_then(|m| m.reply_to()))),
            to: addresses(message.and_then(|m| m.to())),
            cc: addresses(message.and_then(|m| m.cc())),
            bcc: addresses(message.and_then(|m| m.bcc())),
            in_reply_to: nstring(first("In-Reply-To")),
            message_id: nstring(first("Message-ID")),
            from,
        }
    }

    /// BODYSTRUCTURE (`extensible`) or BODY.
    pub fn body_structure(&self, extensible: bool) -> BodyStructure<'static> {
        if self.parts().is_empty() {
            return plain_text_structure(self.raw);
        }
        self.structure_of(0, extensible)
    }

    fn structure_of(&self, index: usize, extensible: bool) -> BodyStructure<'static> {
        let part = &self.parts()[index];
        if let PartType::Multipart(children) = &part.body {
            let bodies: Vec<BodyStructure<'static>> = children
                .iter()
                .filter_map(|&child| usize::try_from(child).ok())
                .filter(|&child| child < self.parts().len())
                .map(|child| self.structure_of(child, extensible))
                .collect();
            let Ok(bodies) = Vec1::try_from(bodies) else {
                return plain_text_structure(slice(self.raw, part.offset_body, end_of(self.raw, part)));
            };
            let subtype = part.content_type().and_then(|ct| ct.subtype()).unwrap_or("mixed").to_ascii_uppercase();
            return BodyStructure::Multi {
                bodies,
                subtype: istring(subtype),
                extension_data: extensible.then(|| MultiPartExtensionData {
                    parameter_list: parameters(part),
                    tail: Some(disposition_tail(part)),
                }),
            };
        }
        let body = slice(self.raw, part.offset_body, end_of(self.raw, part));
        let (kind, subtype) = content_type(part);
        let lines = line_count(body);
        let specific = match (kind.as_str(), self.nested(index)) {
            ("MESSAGE", Some(inner)) if subtype == "RFC822" || subtype == "GLOBAL" => SpecificFields::Message {
                envelope: Box::new(inner.envelope()),
                body_structure: Box::new(inner.body_structure(extensible)),
                number_of_lines: lines,
            },
            ("TEXT", _) => SpecificFields::Text { subtype: istring(subtype), number_of_lines: lines },
            _ => SpecificFields::Basic { r#type: istring(kind), subtype: istring(subtype) },
        };
        let basic = BasicFields {
            parameter_list: parameters(part),
            id: nstring(
                part.content_id().map(|id| if id.starts_with('<') { id.to_string() } else { format!("<{id}>") }),
            ),
            description: nstring(part.content_description().map(str::to_string)),
            content_transfer_encoding: istring(part.content_transfer_encoding().unwrap_or("7BIT").to_ascii_uppercase()),
            size: u32::try_from(body.len()).unwrap_or(u32::MAX),
        };
        BodyStructure::Single {
            body: Body { basic, specific },
            extension_data: extensible
                .then(|| SinglePartExtensionData { md5: NString::NIL, tail: Some(disposition_tail(part)) }),
        }
    }

    /// The bytes of a body section (`None`: the whole message), or `None` when the message has
    /// no such section.
    pub fn section(&self, section: Option<&Section<'_>>) -> Option<Cow<'a, [u8]>> {
        let Some(section) = section else { return Some(Cow::Borrowed(self.raw)) };
        Some(match section {
            Section::Part(Part(path)) => {
                let found = self.locate(path.as_ref())?;
                let part = &found.parsed.parts()[found.index];
                Cow::Borrowed(slice(found.parsed.raw, part.offset_body, end_of(found.parsed.raw, part)))
            }
            Section::Header(path) => Cow::Borrowed(self.message_at(path.as_ref())?.header()),
            Section::Text(path) => Cow::Borrowed(self.message_at(path.as_ref())?.text()),
            Section::HeaderFields(path, names) => {
                Cow::Owned(self.message_at(path.as_ref())?.header_fields(names.as_ref(), true))
            }
            Section::HeaderFieldsNot(path, names) => {
                Cow::Owned(self.message_at(path.as_ref())?.header_fields(names.as_ref(), false))
            }
            Section::Mime(Part(path)) => {
                let found = self.locate(path.as_ref())?;
                let part = &found.parsed.parts()[found.index];
                Cow::Borrowed(slice(found.parsed.raw, part.offset_header, part.offset_body))
            }
        })
    }

    /// The message a HEADER/TEXT section refers to: this one, or an encapsulated one.
    fn message_at(&self, path: Option<&Part>) -> Option<&Parsed<'a>> {
        match path {
            None => Some(self),
            Some(Part(path)) => {
                let found = self.locate(path.as_ref())?;
                found.parsed.nested(found.index)
            }
        }
    }

    /// Follows a part number (`2.1.3`) from this message.
    fn locate(&self, path: &[std::num::NonZeroU32]) -> Option<Located<'_, 'a>> {
        let mut at = Located { parsed: self, index: 0 };
        let mut inside_part = false;
        for number in path {
            let position = usize::try_from(number.get()).ok()?.checked_sub(1)?;
            if inside_part && let Some(inner) = at.parsed.nested(at.index) {
                at = Located { parsed: inner, index: 0 };
                inside_part = false;
            }
            let container = at.parsed.parts().get(at.index)?;
            match &container.body {
                PartType::Multipart(children) => {
                    let child = usize::try_from(*children.get(position)?).ok()?;
                    at = Located { parsed: at.parsed, index: child };
                }
                _ if !inside_part && position == 0 => {}
                _ => return None,
            }
            inside_part = true;
        }
        Some(at)
    }

    /// The header lines whose names are (`keep`) or are not (`!keep`) in `names`, then CRLF.
    fn header_fields(&self, names: &[imap_codec::imap_types::core::AString<'_>], keep: bool) -> Vec<u8> {
        let wanted: Vec<String> =
            names.iter().map(|name| String::from_utf8_lossy(name.as_ref()).to_ascii_lowercase()).collect();
        let mut out = Vec::new();
        if let Some(root) = self.parts().first() {
            for header in &root.headers {
                let listed = wanted.iter().any(|name| header.name.as_str().eq_ignore_ascii_case(name));
                if listed == keep {
                    out.extend_from_slice(slice(self.raw, header.offset_field, header.offset_end));
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// `raw[start..end]`, clamped to the bytes there are.
fn slice(raw: &[u8], start: u32, end: u32) -> &[u8] {
    let end = usize::try_from(end).unwrap_or(usize::MAX).min(raw.len());
    let start = usize::try_from(start).unwrap_or(usize::MAX).min(end);
    &raw[start..end]
}

/// Where a part ends (mail-parser may leave it 0 for a part it could not finish).
fn end_of(raw: &[u8], part: &MessagePart<'_>) -> u32 {
    if part.offset_end < part.offset_body { u32::try_from(raw.len()).unwrap_or(u32::MAX) } else { part.offset_end }
}

/// A header value with its line folding removed.
fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.replace("\r\n", "").replace('\n', "").trim().to_string()
}

fn line_count(body: &[u8]) -> u32 {
    u32::try_from(body.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

/// The type and subtype, upper case; text/plain when the part has none (RFC 2045 §5.2).
fn content_type(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => {
            (ct.ctype().to_ascii_uppercase(), ct.subtype().map_or_else(|| "PLAIN".to_string(), str::to_ascii_uppercase))
        }
        None if matches!(part.body, PartType::Message(_)) => ("MESSAGE".into(), "RFC822".into()),
        None => ("TEXT".into(), "PLAIN".into()),
    }
}

fn parameters(part: &MessagePart<'_>) -> Vec<(IString<'static>, IString<'static>)> {
    let listed: Vec<(IString<'static>, IString<'static>)> = part
        .content_type()
        .and_then(|ct| ct.attributes())
        .unwrap_or_default()
        .iter()
        .map(|attribute| (istring(attribute.name.to_ascii_uppercase()), istring(attribute.value.to_string())))
        .collect();
    if listed.is_empty() && part.content_type().is_none() {
        return vec![(istring("CHARSET".to_string()), istring("US-ASCII".to_string()))];
    }
    listed
}

fn disposition_tail(part: &MessagePart<'_>) -> Disposition<'static> {
    let disposition = part.content_disposition().map(|cd| {
        let parameters = cd
            .attributes()
            .unwrap_or_default()
            .iter()
            .map(|attribute| (istring(attribute.name.to_ascii_uppercase()), istring(attribute.value.to_string())))
            .collect();
        (istring(cd.ctype().to_ascii_uppercase()), parameters)
    });
    let language = part
        .content_language()
        .as_text_list()
        .map(|list| list.iter().map(|lang| istring(lang.to_string())).collect())
        .or_else(|| part.content_language().as_text().map(|lang| vec![istring(lang.to_string())]))
        .unwrap_or_default();
    Disposition {
        disposition,
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: nstring(part.content_location().map(str::to_string)),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// A one-part text/plain structure for bytes mail-parser could not read.
fn plain_text_structure(body: &[u8]) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istring("CHARSET".into()), istring("US-ASCII".into()))],
                id: NString::NIL,
                description: NString::NIL,
                content_transfer_encoding: istring("7BIT".into()),
                size: u32::try_from(body.len()).unwrap_or(u32::MAX),
            },
            specific: SpecificFields::Text { subtype: istring("PLAIN".into()), number_of_lines: line_count(body) },
        },
        extension_data: None,
    }
}

/// An IMAP string: quoted when it can be, a literal otherwise (NUL bytes become spaces).
/// A string for a response. NUL (and any other byte no IMAP string may hold) cannot be sent, so
/// it becomes U+FFFD: a header with such a byte still shows the rest of its text.
pub fn istring(text: String) -> IString<'static> {
    if let Ok(value) = IString::try_from(text.clone()) {
        return value;
    }
    let cleaned: String = text.chars().map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect();
    IString::try_from(cleaned).unwrap_or_else(|_| IString::Literal(crate::imap::fetch::literal(Vec::new())))
}

fn nstring(text: Option<String>) -> NString<'static> {
    NString(text.map(istring))
}

/// Envelope addresses, groups as RFC 3501 §7.4.2 spells them: a start marker `(NIL NIL
/// "name" NIL)`, the members as addresses, an end marker `(NIL NIL NIL NIL)`. Non-ASCII display
/// names and group names are given as RFC 2047 encoded words, as they would appear in a header.
fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<Address<'static>> {
    let Some(address) = address else { return Vec::new() };
    match address {
        mail_parser::Address::List(list) => list.iter().map(single_address).collect(),
        mail_parser::Address::Group(groups) => {
            let mut out = Vec::new();
            for group in groups {
                match &group.name {
                    Some(name) => {
                        out.push(Address {
                            name: NString::NIL,
                            adl: NString::NIL,
                            mailbox: nstring(Some(encoded_word(name))),
                            host: NString::NIL,
                        });
                        out.extend(group.addresses.iter().map(single_address));
                        out.push(Address {
                            name: NString::NIL,
                            adl: NString::NIL,
                            mailbox: NString::NIL,
                            host: NString::NIL,
                        });
                    }
                    None => out.extend(group.addresses.iter().map(single_address)),
                }
            }
            out
        }
    }
}

fn single_address(addr: &mail_parser::Addr<'_>) -> Address<'static> {
    let email = addr.address.as_deref().unwrap_or_default();
    let (mailbox, host) = match email.rsplit_once('@') {
        Some((local, domain)) => (local.to_string(), domain.to_string()),
        None => (email.to_string(), String::new()),
    };
    Address {
        name: nstring(addr.name.as_deref().map(encoded_word)),
        adl: NString::NIL,
        mailbox: nstring(Some(mailbox)),
        host: nstring(Some(host)),
    }
}

/// Addresses as `Name <address>`, comma-separated.
fn address_text(address: &mail_parser::Address<'_>) -> String {
    let one = |addr: &mail_parser::Addr<'_>| {
        format!("{} <{}>", addr.name.as_deref().unwrap_or_default(), addr.address.as_deref().unwrap_or_default())
    };
    match address {
        mail_parser::Address::List(list) => list.iter().map(one).collect::<Vec<_>>().join(", "),
        mail_parser::Address::Group(groups) => {
            groups.iter().flat_map(|group| group.addresses.iter().map(one)).collect::<Vec<_>>().join(", ")
        }
    }
}

/// ASCII text as is; anything else as one RFC 2047 base64 encoded word.
fn encoded_word(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const MIXED: &[u8] = b"From: Ann <ann@a.test>\r\nTo: bob@b.test\r\nSubject: hi\r\n there\r\n\
        Message-ID: <m1@a.test>\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
        preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n\
        --b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: c@c.test\r\n\r\ninner body\r\n--b1--\r\n";

    #[test]
    fn a_nul_in_a_header_keeps_the_rest_of_the_text() {
        let IString::Literal(literal) = istring("Hello\0 world ü".into()) else {
            panic!("non-ASCII text is a literal");
        };
        assert_eq!(literal.data(), "Hello\u{FFFD} world ü".as_bytes());
        assert!(matches!(istring("plain".into()), IString::Quoted(_)));
    }

    fn part(numbers: &[u32]) -> Part {
        let numbers: Vec<NonZeroU32> = numbers.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect();
        Part(Vec1::try_from(numbers).unwrap())
    }

    fn text(bytes: Option<Cow<'_, [u8]>>) -> String {
        String::from_utf8(bytes.expect("section exists").into_owned()).unwrap()
    }

    #[test]
    fn sections_follow_rfc3501_numbering() {
        let parsed = Parsed::parse(MIXED);
        assert!(text(parsed.section(Some(&Section::Header(None)))).ends_with("boundary=\"b1\"\r\n\r\n"));
        assert_eq!(text(parsed.section(Some(&Section::Part(part(&[1]))))), "hello");
        assert_eq!(
            text(parsed.section(Some(&Section::Mime(part(&[1]))))),
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert_eq!(
            text(parsed.section(Some(&Section::Part(part(&[2]))))),
            "Subject: inner\r\nFrom: c@c.test\r\n\r\ninner body"
        );
        assert_eq!(
            text(parsed.section(Some(&Section::Header(Some(part(&[2])))))),
            "Subject: inner\r\nFrom: c@c.test\r\n\r\n"
        );
        assert_eq!(text(parsed.section(Some(&Section::Text(Some(part(&[2])))))), "inner body");
        assert_eq!(text(parsed.section(Some(&Section::Part(part(&[2, 1]))))), "inner body");
        assert!(parsed.section(Some(&Section::Part(part(&[3])))).is_none());
        assert!(parsed.section(Some(&Section::Part(part(&[1, 1])))).is_none());
        let names = Vec1::try_from(vec![
            imap_codec::imap_types::core::AString::try_from("subject").unwrap(),
            imap_codec::imap_types::core::AString::try_from("FROM").unwrap(),
        ])
        .unwrap();
        let fields = text(parsed.section(Some(&Section::HeaderFields(None, names))));
        assert_eq!(fields, "From: Ann <ann@a.test>\r\nSubject: hi\r\n there\r\n\r\n");

        let single = Parsed::parse(b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(text(single.section(Some(&Section::Part(part(&[1]))))), "body\r\n");
        assert_eq!(single.text(), b"body\r\n");
    }

    #[test]
    fn envelope_and_structure_describe_the_message() {
        let parsed = Parsed::parse(MIXED);
        let envelope = parsed.envelope();
        assert_eq!(envelope.subject, nstring(Some("hi there".into())));
        assert_eq!(envelope.message_id, nstring(Some("<m1@a.test>".into())));
        assert_eq!(envelope.from.len(), 1);
        assert_eq!(envelope.sender, envelope.from, "sender defaults to from");
        assert_eq!(envelope.to[0].host, nstring(Some("b.test".into())));
        let BodyStructure::Multi { bodies, subtype, .. } = parsed.body_structure(true) else { panic!("multipart") };
        assert_eq!(subtype, istring("MIXED".into()));
        assert_eq!(bodies.as_ref().len(), 2);
        let BodyStructure::Single { body, .. } = &bodies.as_ref()[1] else { panic!("single") };
        assert!(matches!(body.specific, SpecificFields::Message { .. }));
        assert_eq!(encoded_word("Zoë"), "=?utf-8?b?Wm/Dqw==?=");
    }

    /// The address lists of an ENVELOPE as IMAP encodes them (`NIL` when empty).
    fn encoded_addresses(list: &[Address<'static>]) -> String {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        use imap_codec::imap_types::fetch::MessageDataItem;
        use imap_codec::imap_types::response::{Data, Response};
        let envelope = Envelope { to: list.to_vec(), ..Parsed::parse(b"\r\n").envelope() };
        let items = Vec1::from(MessageDataItem::Envelope(envelope));
        let response = Response::Data(Data::Fetch { seq: NonZeroU32::MIN, items });
        let text = String::from_utf8(ResponseCodec::default().encode(&response).dump()).unwrap();
        // ENVELOPE (date subject from sender reply-to TO cc bcc in-reply-to message-id)
        let to = text.strip_prefix("* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL ").expect("only To is given");
        to.strip_suffix(" NIL NIL NIL NIL))\r\n").expect("only To is given").to_string()
    }

    #[test]
    fn groups_are_start_and_end_markers_around_their_members() {
        let to = |header: &str| {
            let raw = format!("Subject: s\r\nTo: {header}\r\n\r\nbody\r\n");
            encoded_addresses(&Parsed::parse(raw.as_bytes()).envelope().to)
        };
        assert_eq!(to("undisclosed-recipients:;"), "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))");
        assert_eq!(
            to("Team: a@x.test, Bo <b@y.test>;"),
            "((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.test\")(\"Bo\" NIL \"b\" \"y.test\")(NIL NIL NIL NIL))"
        );
        assert_eq!(
            to("c@z.test, Team: a@x.test;, d@w.test"),
            "((NIL NIL \"c\" \"z.test\")(NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL NIL NIL)\
             (NIL NIL \"d\" \"w.test\"))"
        );
        assert_eq!(to("\"The Team\": ;"), "((NIL NIL \"The Team\" NIL)(NIL NIL NIL NIL))");
        assert_eq!(
            to("=?utf-8?q?=C3=89quipe?=: a@x.test;"),
            "((NIL NIL \"=?utf-8?b?w4lxdWlwZQ==?=\" NIL)(NIL NIL \"a\" \"x.test\")(NIL NIL NIL NIL))",
            "a group name is a phrase as in the header: encoded when it is not ASCII"
        );
        assert_eq!(
            to("team-a: a@x.test;, team-b: ;"),
            "((NIL NIL \"team-a\" NIL)(NIL NIL \"a\" \"x.test\")\
            (NIL NIL NIL NIL)(NIL NIL \"team-b\" NIL)(NIL NIL NIL NIL))"
        );
    }
}
