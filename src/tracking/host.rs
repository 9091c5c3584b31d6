//! Tracking hosts: a sending domain may name its own host for tracking links
//! (`domains.tracking_host`, e.g. `track.example.com`, a CNAME the user publishes to the
//! appliance), so the links in its mail point at its own name instead of the appliance's.
//!
//! A tracking URL is the base URL (`http.base_url`) with its host replaced by the tracking host:
//! the scheme, any port and any path prefix stay, because the tracking host reaches the same
//! listener (or the same TLS proxy) as the base URL. Without a tracking host, the base URL.
//!
//! The rules for a tracking host: a DNS name (stored in ASCII, lowercase; IP addresses are
//! refused by the name check) strictly below its sending domain, so one workspace cannot claim a
//! name under another workspace's domain and the link's domain aligns with the sender's; not the
//! appliance's `hostname` nor the base URL's host (a request whose Host is a tracking host is
//! served only tracking paths, so either would hide the admin UI); and the tracking host of one
//! domain only (a unique index).

use rusqlite::{Connection, OptionalExtension};

use crate::app::App;
use crate::audit;
use crate::config::Config;
use crate::dns::name::normalize_domain;
use crate::error::{Error, Result};
use crate::workspaces::{Access, Role};

const FIELD: &str = "tracking_host";

/// The host of a URL (lowercase, without port or trailing dot); `None` when it has none.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host_of_authority(authority)
}

/// The host of a `Host` header value or an authority (lowercase, without port or trailing dot).
pub fn host_of_authority(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split_once(']').map(|(host, _)| host)?
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, _)| host)
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// `base_url` with its host replaced by `host` (scheme, port and path kept).
pub fn with_host(base_url: &str, host: &str) -> String {
    let Some((scheme, rest)) = base_url.split_once("://") else { return base_url.to_string() };
    let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    let port = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:").map(|(_, port)| port),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    let port = port.map(|port| format!(":{port}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{path}")
}

/// Reads a tracking host as typed: `None` for "" or "none" (no tracking host), else the checked
/// name for `domain` (see the module doc; uniqueness is checked by [`set`]).
pub fn parse(config: &Config, domain: &str, input: &str) -> Result<Option<String>> {
    let input = input.trim();
    if input.is_empty() || input.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let host = normalize_domain(input).map_err(|e| Error::invalid(FIELD, e.to_string()))?;
    if !host.ends_with(&format!(".{domain}")) {
        return Err(Error::invalid(
            FIELD,
            format!("The tracking host must be a name under {domain}, such as track.{domain}."),
        ));
    }
    let own = [Some(config.hostname.trim_end_matches('.').to_ascii_lowercase()), url_host(&config.http.base_url)];
    if own.iter().flatten().any(|name| *name == host) {
        return Err(Error::invalid(
            FIELD,
            format!(
                "{host} is this appliance's own name; choose a name of its own, such as track.{domain}, \
                 and point it at {} with a CNAME record.",
                config.hostname
            ),
        ));
    }
    Ok(Some(host))
}

/// A domain's tracking host.
pub fn of_domain(conn: &Connection, workspace: i64, domain: i64) -> Result<Option<String>> {
    conn.prepare_cached("SELECT tracking_host FROM domains WHERE id = ?1 AND workspace_id = ?2")?
        .query_row((domain, workspace), |row| row.get::<_, Option<String>>(0))
        .optional()?
        .ok_or(Error::NotFound)
}

/// The tracking host of the domain a mailbox is on.
pub fn of_mailbox(conn: &Connection, mailbox: i64) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT d.tracking_host FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE m.id = ?1")?
        .query_row([mailbox], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// The workspace whose domain has `host` as its tracking host.
pub fn workspace_of(conn: &Connection, host: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT workspace_id FROM domains WHERE tracking_host = ?1")?
        .query_row([host], |row| row.get(0))
        .optional()
}

/// Sets (or with "" / "none" clears) a domain's tracking host, with an audit entry. Needs the
/// admin role. Returns the host now set.
pub async fn set(app: &App, access: &Access, domain: i64, input: &str) -> Result<Option<String>> {
    access.workspace.role.require(Role::Admin)?;
    let (workspace, actor, now) = (access.workspace.id, access.actor.clone(), app.clock.unix());
    let (config, input) = (app.config.clone(), input.to_string());
    app.store
        .write(move |tx| {
            let name = crate::domains::get(tx, workspace, domain)?.name;
            let host = parse(&config, &name, &input)?;
            if let Some(host) = &host {
                let taken: Option<i64> = tx
                    .query_row("SELECT id FROM domains WHERE tracking_host = ?1 AND id != ?2", (host, domain), |row| {
                        row.get(0)
                    })
                    .optional()?;
                if taken.is_some() {
                    return Err(Error::Conflict(format!("{host} is already the tracking host of another domain.")));
                }
            }
            tx.execute(
                "UPDATE domains SET tracking_host = ?1 WHERE id = ?2 AND workspace_id = ?3",
                (&host, domain, workspace),
            )?;
            let detail = format!("tracking host {}", host.as_deref().unwrap_or("none"));
            audit::record(tx, Some(workspace), &actor, "domain.tracking_host", &name, &detail, now)?;
            Ok(host)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut config = Config { hostname: "mail.example.com".into(), ..Default::default() };
        config.http.base_url = "https://grove.example.com".into();
        config
    }

    #[test]
    fn a_tracking_host_is_a_name_under_its_domain_and_not_the_appliance_s() {
        let config = config();
        let parse = |input: &str| parse(&config, "example.com", input);
        assert_eq!(parse("Track.Example.COM.").unwrap().as_deref(), Some("track.example.com"));
        assert_eq!(parse("links.mail2.example.com").unwrap().as_deref(), Some("links.mail2.example.com"));
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse(" none ").unwrap(), None);
        for (input, says) in [
            ("example.com", "under example.com"),
            ("track.other.com", "under example.com"),
            ("trackexample.com", "under example.com"),
            ("mail.example.com", "own name"),
            ("192.0.2.1", "IP"),
            ("https://track.example.com/", ""),
            ("track..example.com", ""),
        ] {
            let error = parse(input).unwrap_err();
            assert!(matches!(error, Error::Invalid { field: Some(FIELD), .. }), "{input}: {error:?}");
            assert!(error.to_string().contains(says), "{input}: {error}");
        }
        let mut on_own_name = config.clone();
        on_own_name.http.base_url = "https://admin.example.com:8443/grove".into();
        assert!(super::parse(&on_own_name, "example.com", "admin.example.com").is_err());
    }

    #[test]
    fn tracking_urls_keep_the_base_url_s_scheme_port_and_path() {
        assert_eq!(with_host("https://grove.test", "track.a.test"), "https://track.a.test");
        assert_eq!(with_host("http://127.0.0.1:8080", "track.a.test"), "http://track.a.test:8080");
        assert_eq!(with_host("https://[::1]:8443/grove", "track.a.test"), "https://track.a.test:8443/grove");
        assert_eq!(url_host("https://User@Grove.Test:8443/x?y"), Some("grove.test".into()));
        assert_eq!(url_host("http://[::1]:8080"), Some("::1".into()));
        assert_eq!(host_of_authority("Track.A.Test.:443"), Some("track.a.test".into()));
        assert_eq!(host_of_authority(""), None);
    }
}
