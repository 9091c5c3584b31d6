//! Link rewriting for click tracking: every http(s) URL of the text part and every http(s)
//! `href` of an `<a>` or `<area>` tag of the HTML part is replaced by a click URL, and the
//! original URLs are collected in order of first appearance: a URL's position in that list is
//! the link index its click token carries (the same URL in both parts, or twice, is one link).
//!
//! In text, a URL starts at `http://` or `https://` (in any case, not glued to a preceding letter
//! or digit) and runs to the first space, control character, `<`, `>`, `"` or backtick; then
//! trailing punctuation is dropped (`.` `,` `;` `:` `!` `?` `'` `*`, and a `)` or `]` that closes
//! nothing opened inside the URL), so "see https://x.test/a?b=1." keeps its full stop. In HTML,
//! the attribute value is read quoted or unquoted, its character references decoded (`&amp;`
//! is `&`), and the URL stored is the one a browser would follow. Comments are skipped; other
//! tags, text content, `mailto:`, `tel:`, relative and fragment links are left alone, as are
//! URLs that start with one of the caller's own prefixes (the unsubscribe link) and URLs longer
//! than [`MAX_URL_LEN`].

/// URLs longer than this are left as they are.
pub const MAX_URL_LEN: usize = 2048;

/// Rewrites the parts of one message, collecting its links.
pub struct Rewriter<'a, F: Fn(u32) -> String> {
    click_url: F,
    /// Prefixes (lowercase) of URLs never rewritten.
    keep: &'a [String],
    links: Vec<String>,
}

impl<'a, F: Fn(u32) -> String> Rewriter<'a, F> {
    /// `click_url(position)` makes the click URL of the link at `position`; URLs starting with
    /// one of `keep` (lowercase) are left alone.
    pub fn new(click_url: F, keep: &'a [String]) -> Self {
        Rewriter { click_url, keep, links: Vec::new() }
    }

    /// The links collected so far, by position.
    pub fn into_links(self) -> Vec<String> {
        self.links
    }

    /// The click URL for `url`, registering it; `None` when it stays as it is.
    fn replace(&mut self, url: &str) -> Option<String> {
        let lower = url.to_ascii_lowercase();
        if url.len() > MAX_URL_LEN || self.keep.iter().any(|prefix| lower.starts_with(prefix.as_str())) {
            return None;
        }
        if url.chars().any(char::is_control) {
            return None;
        }
        let position = match self.links.iter().position(|link| link == url) {
            Some(position) => position,
            None => {
                self.links.push(url.to_string());
                self.links.len() - 1
            }
        };
        Some((self.click_url)(u32::try_from(position).ok()?))
    }

    /// The text part with its URLs rewritten.
    pub fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in text_urls(text) {
            if let Some(replacement) = self.replace(&text[start..end]) {
                out.push_str(&text[copied..start]);
                out.push_str(&replacement);
                copied = end;
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// The HTML part with the hrefs of its links rewritten.
    pub fn html(&mut self, html: &str) -> String {
        let mut out = String::with_capacity(html.len());
        let mut copied = 0;
        for (start, end) in link_hrefs(html) {
            let url = decode_references(&html[start..end]);
            let url = url.trim();
            if !has_web_scheme(url) {
                continue;
            }
            if let Some(replacement) = self.replace(url) {
                out.push_str(&html[copied..start]);
                out.push_str(&crate::campaign::templates::escape_html(&replacement));
                copied = end;
            }
        }
        out.push_str(&html[copied..]);
        out
    }
}

fn has_web_scheme(url: &str) -> bool {
    scheme_len(url).is_some_and(|len| url.len() > len)
}

/// The length of a leading `http://` or `https://` (any case).
fn scheme_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    ["http://", "https://"].into_iter().find_map(|scheme| {
        bytes.get(..scheme.len()).filter(|head| head.eq_ignore_ascii_case(scheme.as_bytes())).map(|_| scheme.len())
    })
}

fn ends_url(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '`')
}

/// The byte ranges of the URLs in a text (see the module doc).
fn text_urls(text: &str) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = lower[from..].find("http") {
        let start = from + offset;
        from = start + 4;
        let glued = text[..start].chars().next_back().is_some_and(char::is_alphanumeric);
        let Some(scheme) = scheme_len(&text[start..]).filter(|_| !glued) else { continue };
        let rest = &text[start..];
        let run = rest.find(ends_url).unwrap_or(rest.len());
        let end = start + trimmed_len(&rest[..run]);
        let host_starts = text[start + scheme..end].chars().next().is_some_and(|c| c.is_alphanumeric() || c == '[');
        if host_starts {
            found.push((start, end));
            from = end;
        }
    }
    found
}

/// The length of `url` without its trailing punctuation (see the module doc).
fn trimmed_len(url: &str) -> usize {
    let mut url = url;
    while let Some(last) = url.chars().next_back() {
        let unbalanced =
            |open: char, close: char| last == close && url.matches(open).count() < url.matches(close).count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            url = &url[..url.len() - last.len_utf8()];
        } else {
            break;
        }
    }
    url.len()
}

/// The byte ranges of the `href` values (inside any quotes) of the `<a>` and `<area>` tags.
fn link_hrefs(html: &str) -> Vec<(usize, usize)> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = html[at..].find('<') {
        let open = at + offset;
        if html[open..].starts_with("<!--") {
            at = html[open + 4..].find("-->").map_or(html.len(), |close| open + 4 + close + 3);
            continue;
        }
        let name_end = open + 1 + bytes[open + 1..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        let name = &html[open + 1..name_end];
        let close = tag_end(bytes, name_end);
        if name.eq_ignore_ascii_case("a") || name.eq_ignore_ascii_case("area") {
            found.extend(
                attributes(bytes, name_end, close)
                    .into_iter()
                    .filter_map(|(name, value)| html[name.0..name.1].eq_ignore_ascii_case("href").then_some(value)),
            );
        }
        at = (close + 1).min(html.len()).max(open + 1);
    }
    found
}

/// The index of the `>` closing a tag whose attributes start at `from` (quotes respected), or
/// the end of the text.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    for (index, &byte) in bytes.iter().enumerate().skip(from) {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(byte),
            (Some(q), _) if q == byte => quote = None,
            (None, b'>') => return index,
            _ => {}
        }
    }
    bytes.len()
}

/// The (name range, value range) of the attributes with a value in `bytes[from..to]`.
#[allow(clippy::type_complexity)]
fn attributes(bytes: &[u8], from: usize, to: usize) -> Vec<((usize, usize), (usize, usize))> {
    let is_space = |b: u8| b.is_ascii_whitespace() || b == b'/';
    let mut found = Vec::new();
    let mut at = from;
    loop {
        while at < to && is_space(bytes[at]) {
            at += 1;
        }
        if at >= to {
            return found;
        }
        let name_start = at;
        while at < to && !bytes[at].is_ascii_whitespace() && !matches!(bytes[at], b'=' | b'/') {
            at += 1;
        }
        let name = (name_start, at);
        while at < to && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at >= to || bytes[at] != b'=' {
            if at == name_start {
                at += 1;
            }
            continue;
        }
        at += 1;
        while at < to && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let value = match bytes.get(at) {
            Some(&quote @ (b'"' | b'\'')) if at < to => {
                let start = at + 1;
                let end = bytes[start..to].iter().position(|&b| b == quote).map_or(to, |p| start + p);
                at = (end + 1).min(to);
                (start, end)
            }
            _ => {
                let start = at;
                while at < to && !bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
                (start, at)
            }
        };
        found.push((name, value));
    }
}

/// An attribute value with its common character references decoded.
fn decode_references(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|semi| *semi <= 10).and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => match name.strip_prefix('#') {
                    Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok(),
                    Some(decimal) => decimal.parse().ok(),
                    None => None,
                }
                .and_then(char::from_u32),
            }?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter(keep: &[String]) -> Rewriter<'_, impl Fn(u32) -> String> {
        Rewriter::new(|position| format!("https://t.test/t/c/{position}"), keep)
    }

    #[test]
    fn text_urls_keep_their_query_and_lose_trailing_punctuation() {
        let keep = Vec::new();
        let mut r = rewriter(&keep);
        let text = "See https://a.test/x?b=1&c=2. Or (http://b.test/y), \"HTTPS://c.test/p_(q)\"!\r\n\
                    <https://d.test/> and https://a.test/x?b=1&c=2 again; xhttps://no.test and http:// alone.\r\n\
                    Mail me: mailto:ann@a.test, [docs](https://e.test/d). Ends https://f.test/z?";
        let rewritten = r.text(text);
        assert_eq!(
            rewritten,
            "See https://t.test/t/c/0. Or (https://t.test/t/c/1), \"https://t.test/t/c/2\"!\r\n\
             <https://t.test/t/c/3> and https://t.test/t/c/0 again; xhttps://no.test and http:// alone.\r\n\
             Mail me: mailto:ann@a.test, [docs](https://t.test/t/c/4). Ends https://t.test/t/c/5?"
        );
        assert_eq!(
            r.into_links(),
            [
                "https://a.test/x?b=1&c=2",
                "http://b.test/y",
                "HTTPS://c.test/p_(q)",
                "https://d.test/",
                "https://e.test/d",
                "https://f.test/z"
            ]
        );
    }

    #[test]
    fn html_hrefs_are_rewritten_and_decoded_but_mailto_and_other_tags_are_not() {
        let keep = Vec::new();
        let mut r = rewriter(&keep);
        let html = "<p>Hi <a class=\"x\" href=\"https://a.test/x?b=1&amp;c=2\">A</a>, \
                    <A HREF='http://b.test/'>B</A> <a href=https://c.test/u>C</a> \
                    <a href=\"mailto:ann@a.test\">mail</a> <a href=\"#top\">top</a> <a href=\"/rel\">r</a>\
                    <link href=\"https://css.test/s.css\"><img src=\"https://img.test/i.png\"> \
                    <!-- <a href=\"https://hidden.test/\"> --> text https://plain.test/ \
                    <area href=\" https://d.test/map \" alt=\"a > b\"></p>";
        let rewritten = r.html(html);
        assert_eq!(
            rewritten,
            "<p>Hi <a class=\"x\" href=\"https://t.test/t/c/0\">A</a>, \
             <A HREF='https://t.test/t/c/1'>B</A> <a href=https://t.test/t/c/2>C</a> \
             <a href=\"mailto:ann@a.test\">mail</a> <a href=\"#top\">top</a> <a href=\"/rel\">r</a>\
             <link href=\"https://css.test/s.css\"><img src=\"https://img.test/i.png\"> \
             <!-- <a href=\"https://hidden.test/\"> --> text https://plain.test/ \
             <area href=\"https://t.test/t/c/3\" alt=\"a > b\"></p>"
        );
        assert_eq!(
            r.into_links(),
            ["https://a.test/x?b=1&c=2", "http://b.test/", "https://c.test/u", "https://d.test/map"]
        );
    }

    #[test]
    fn the_same_url_in_both_parts_is_one_link_and_kept_prefixes_stay() {
        let keep = vec!["https://grove.test/unsubscribe/".to_string()];
        let mut r = rewriter(&keep);
        let text = r.text("Go https://a.test/ or leave https://grove.test/unsubscribe/TOKEN");
        let html = r.html("<a href=\"https://a.test/\">go</a> <a href=\"HTTPS://GROVE.TEST/unsubscribe/T\">x</a>");
        assert_eq!(text, "Go https://t.test/t/c/0 or leave https://grove.test/unsubscribe/TOKEN");
        assert_eq!(html, "<a href=\"https://t.test/t/c/0\">go</a> <a href=\"HTTPS://GROVE.TEST/unsubscribe/T\">x</a>");
        assert_eq!(r.into_links(), ["https://a.test/"]);
    }

    #[test]
    fn text_without_links_and_broken_markup_come_back_unchanged() {
        let keep = Vec::new();
        let mut r = rewriter(&keep);
        for text in ["", "No links here.", "http", "https:/x", "ünïcödé http://", "<a href=\"https://x.test"] {
            assert_eq!(r.text(text), text.replace("https://x.test", "https://t.test/t/c/0"));
        }
        let mut r = rewriter(&keep);
        for html in [
            "<",
            "<a",
            "<a href",
            "<a href=",
            "<a href=\"",
            "<p>plain</p>",
            "<!-- never closed <a href=\"https://x.test\">",
        ] {
            assert_eq!(r.html(html), html);
        }
        assert_eq!(r.html("<a href=\"https://x.test"), "<a href=\"https://t.test/t/c/0");
        assert_eq!(decode_references("a&amp;b&#38;c&#x26;d&bogus;e&"), "a&b&c&d&bogus;e&");
    }
}
