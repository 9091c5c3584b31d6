//! What every list page shares: the query it takes (search, sort column and direction, page),
//! sortable column headers, and the pager under the table ("1–50 of 1,234", previous, next).
//!
//! A page declares its sortable columns as URL names mapped to SQL expressions
//! ([`Listing::order_by`] only ever returns one of those, never text from the URL), keeps its own
//! filters in [`Listing::filters`] so every link carries them, reads its rows with
//! [`Listing::read_page`] (count the matches, clamp the page to them, read that page), and renders
//! `templates/pager.html` with a `listing` in scope. A list is ascending unless the query says
//! `dir=desc`; one that reads newest first declares [`Listing::descending_by_default`], and then
//! its links say `dir=asc` for the other way round.

use serde::Deserialize;

/// Rows on one page of a list.
pub const PER_PAGE: u32 = 50;

/// The query string of a list page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// Search text.
    pub q: String,
    /// A column's URL name.
    pub sort: String,
    /// `desc` or `asc`; anything else is the list's default direction.
    pub dir: String,
    /// From 1; 0 or absent is the first page, past the last is the last.
    pub page: u32,
}

/// One page of a list, and how to link to the others.
#[derive(Debug, Clone)]
pub struct Listing {
    pub query: ListQuery,
    /// The page's own filters (name, value), kept in every link.
    pub filters: Vec<(&'static str, String)>,
    /// Sortable columns: URL name and SQL expression; the first is the default.
    columns: &'static [(&'static str, &'static str)],
    /// Rows matching the search and filters, over all pages.
    pub total: i64,
    pub per_page: u32,
    /// The direction when the query names none.
    default_descending: bool,
}

impl Listing {
    pub fn new(
        query: ListQuery,
        filters: Vec<(&'static str, String)>,
        columns: &'static [(&'static str, &'static str)],
    ) -> Listing {
        Listing { query, filters, columns, total: 0, per_page: PER_PAGE, default_descending: false }
    }

    /// The same list, descending when the query names no direction (newest first).
    pub fn descending_by_default(self) -> Listing {
        Listing { default_descending: true, ..self }
    }

    /// The search text, trimmed.
    pub fn search(&self) -> &str {
        self.query.q.trim()
    }

    /// The sort column's URL name: the requested one when it is sortable, else the default.
    pub fn sort(&self) -> &'static str {
        self.columns.iter().find(|(name, _)| *name == self.query.sort).unwrap_or(&self.columns[0]).0
    }

    pub fn descending(&self) -> bool {
        match self.query.dir.as_str() {
            "desc" => true,
            "asc" => false,
            _ => self.default_descending,
        }
    }

    /// The `dir` a link or form carries for this direction; none for the default one.
    pub fn dir_param(&self) -> Option<&'static str> {
        self.dir_for(self.descending())
    }

    fn dir_for(&self, descending: bool) -> Option<&'static str> {
        match (descending, self.default_descending) {
            (true, false) => Some("desc"),
            (false, true) => Some("asc"),
            _ => None,
        }
    }

    /// `ORDER BY` text: the sort column's SQL expression and direction.
    pub fn order_by(&self) -> String {
        let sql = self.columns.iter().find(|(name, _)| *name == self.sort()).map_or("", |c| c.1);
        format!("{sql} {}", if self.descending() { "DESC" } else { "ASC" })
    }

    /// The number of pages (at least 1).
    pub fn pages(&self) -> u32 {
        let total = u64::try_from(self.total.max(0)).unwrap_or(0);
        u32::try_from(total.div_ceil(u64::from(self.per_page))).unwrap_or(u32::MAX).max(1)
    }

    /// The page shown, from 1.
    pub fn page(&self) -> u32 {
        self.query.page.clamp(1, self.pages())
    }

    /// Counts the matches into [`Listing::total`], which clamps the page (past the end is the
    /// last page), then reads the page shown with its `LIMIT` and `OFFSET`. Call both in one read
    /// so the count and the rows agree.
    pub fn read_page<T, E>(
        &mut self,
        count: impl FnOnce() -> Result<i64, E>,
        read: impl FnOnce(i64, i64) -> Result<T, E>,
    ) -> Result<T, E> {
        self.total = count()?;
        let (limit, offset) = self.limit_offset();
        read(limit, offset)
    }

    /// `LIMIT` and `OFFSET` of the page shown.
    pub fn limit_offset(&self) -> (i64, i64) {
        let per_page = i64::from(self.per_page);
        (per_page, i64::from(self.page() - 1) * per_page)
    }

    /// "1–50 of 1,234", or "None" when nothing matches.
    pub fn summary(&self) -> String {
        if self.total <= 0 {
            return "None".into();
        }
        let (limit, offset) = self.limit_offset();
        let last = (offset + limit).min(self.total);
        format!("{}–{} of {}", thousands(offset + 1), thousands(last), thousands(self.total))
    }

    /// A link to `page` with this sort, search and filters.
    fn link(&self, page: u32, sort: &str, descending: bool) -> String {
        let mut pairs: Vec<(&str, String)> = self.filters.iter().map(|(k, v)| (*k, v.clone())).collect();
        if !self.search().is_empty() {
            pairs.push(("q", self.search().to_string()));
        }
        pairs.push(("sort", sort.to_string()));
        if let Some(dir) = self.dir_for(descending) {
            pairs.push(("dir", dir.into()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        format!("?{}", serde_html_form::to_string(&pairs).unwrap_or_default())
    }

    pub fn previous(&self) -> Option<String> {
        (self.page() > 1).then(|| self.link(self.page() - 1, self.sort(), self.descending()))
    }

    pub fn next(&self) -> Option<String> {
        (self.page() < self.pages()).then(|| self.link(self.page() + 1, self.sort(), self.descending()))
    }

    /// A sortable column header: a link that sorts by `column` (the other way round when it is
    /// already the sort column; the default column in the list's default direction, any other
    /// from A to Z), and `aria-sort` on the sorted one. HTML; `label` is the template's own text.
    pub fn header(&self, column: &str, label: &str) -> String {
        let sorted = self.sort() == column;
        let descending = match (sorted, column == self.columns[0].0) {
            (true, _) => !self.descending(),
            (false, default_column) => default_column && self.default_descending,
        };
        let (aria, mark) = match (sorted, self.descending()) {
            (false, _) => ("", ""),
            (true, false) => (" aria-sort=\"ascending\"", " ▲"),
            (true, true) => (" aria-sort=\"descending\"", " ▼"),
        };
        let href = self.link(1, column, descending).replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
        format!("<th{aria}><a href=\"{href}\" data-sort=\"{column}\">{label}{mark}</a></th>")
    }
}

/// 1234567 as "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[(&str, &str)] = &[("address", "address"), ("created", "created_at")];

    fn listing(q: &str, sort: &str, dir: &str, page: u32, total: i64) -> Listing {
        let query = ListQuery { q: q.into(), sort: sort.into(), dir: dir.into(), page };
        Listing { total, ..Listing::new(query, vec![("domain", "3".into())], COLUMNS) }
    }

    #[test]
    fn pages_summaries_and_links() {
        let first = listing(" ann ", "", "", 0, 1234);
        assert_eq!((first.page(), first.pages(), first.limit_offset()), (1, 25, (50, 0)));
        assert_eq!(first.summary(), "1–50 of 1,234");
        assert_eq!(first.previous(), None);
        assert_eq!(first.next().as_deref(), Some("?domain=3&q=ann&sort=address&page=2"));
        let last = listing("", "created", "desc", 99, 1234);
        assert_eq!((last.page(), last.limit_offset()), (25, (50, 1200)));
        assert_eq!(last.summary(), "1,201–1,234 of 1,234");
        assert_eq!(last.order_by(), "created_at DESC");
        assert_eq!(last.previous().as_deref(), Some("?domain=3&sort=created&dir=desc&page=24"));
        assert_eq!(listing("", "", "", 1, 0).summary(), "None");
        assert_eq!(listing("", "", "", 3, 0).page(), 1);
    }

    #[test]
    fn only_declared_columns_reach_the_sql() {
        let hostile = listing("", "address; DROP TABLE mailboxes", "desc", 1, 1);
        assert_eq!(hostile.order_by(), "address DESC");
        let header = listing("x&y", "address", "", 1, 1).header("address", "Email");
        assert_eq!(
            header,
            "<th aria-sort=\"ascending\"><a href=\"?domain=3&amp;q=x%26y&amp;sort=address&amp;dir=desc\" \
             data-sort=\"address\">Email ▲</a></th>"
        );
        assert!(listing("", "address", "", 1, 1).header("created", "Created").ends_with(">Created</a></th>"));
    }

    #[test]
    fn a_list_may_be_descending_by_default() {
        let newest = |dir: &str| listing("", "", dir, 1, 120).descending_by_default();
        assert_eq!((newest("").descending(), newest("").dir_param()), (true, None));
        assert_eq!(newest("").order_by(), "address DESC");
        assert_eq!(newest("").next().as_deref(), Some("?domain=3&sort=address&page=2"));
        assert_eq!((newest("asc").order_by(), newest("asc").dir_param()), ("address ASC".into(), Some("asc")));
        assert_eq!(newest("asc").next().as_deref(), Some("?domain=3&sort=address&dir=asc&page=2"));
        assert!(newest("").header("address", "When").contains("sort=address&amp;dir=asc\""));
        assert!(newest("asc").header("address", "When").contains("sort=address\""));
        let other = newest("").header("created", "Created");
        assert!(other.contains("sort=created&amp;dir=asc\""), "another column starts from A: {other}");
        let back = listing("", "created", "", 1, 120).descending_by_default().header("address", "When");
        assert!(back.contains("sort=address\""), "the default column starts newest first: {back}");
        assert_eq!(listing("", "", "asc", 1, 1).dir_param(), None, "asc is the usual default");
    }

    #[test]
    fn read_page_counts_then_reads_the_clamped_page() {
        let mut past_the_end = listing("", "", "", 9, 120);
        let read = past_the_end.read_page(|| Ok::<_, ()>(120), |limit, offset| Ok((limit, offset)));
        assert_eq!(read, Ok((50, 100)), "the last page");
        assert_eq!((past_the_end.total, past_the_end.summary().as_str()), (120, "101–120 of 120"));
        let mut small = Listing { per_page: 10, ..listing("", "", "", 2, 0) };
        assert_eq!(small.read_page(|| Ok::<_, ()>(15), |limit, offset| Ok((limit, offset))), Ok((10, 10)));
        let failed = small.read_page(|| Err("count failed"), |_, _| Ok(()));
        assert_eq!(failed, Err("count failed"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(
            [thousands(0), thousands(999), thousands(1000), thousands(1_234_567)],
            ["0", "999", "1,000", "1,234,567"]
        );
    }
}
