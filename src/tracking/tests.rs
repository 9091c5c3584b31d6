//! The tracking routes in process (the whole router, a temporary database): events and their
//! machine flags, refused tokens, and what a tracking host serves.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::Tracking;
use super::token::{self, Target};
use crate::app::App;
use crate::config::Config;

const MESSAGE: &str = "abc123@a.test";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const BASE: &str = "http://grove.test:8080";

/// Workspaces 1 and 2; domain a.test (tracking host track.a.test) with mailbox 1 of workspace
/// 1; a campaign send of `MESSAGE` to lead@b.test with links 0 and 1, delivered now.
async fn app() -> (tempfile::TempDir, App, i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        Config { data_dir: dir.path().to_path_buf(), hostname: "mail.grove.test".into(), ..Default::default() };
    config.http.base_url = BASE.into();
    let app = App::open(config).await.expect("open app");
    let now = app.clock.unix();
    app.store
        .write(move |tx| {
            tx.execute_batch(&format!(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'other', 0);
                 INSERT INTO domains (id, workspace_id, name, created_at, tracking_host)
                    VALUES (1, 1, 'a.test', 0, 'track.a.test'), (2, 2, 'c.test', 0, 'track.c.test');
                 INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                    display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@a.test', 'A', 'A', 'A', 'x', 0);
                 INSERT INTO leads (id, workspace_id, email, created_at, updated_at) VALUES (1, 1, 'lead@b.test', 0, 0);
                 INSERT INTO campaigns (id, workspace_id, name, time_zone, track_opens, track_clicks, created_at, updated_at)
                    VALUES (1, 1, 'c', 'UTC', 1, 1, 0, 0);
                 INSERT INTO campaign_steps (id, campaign_id, position, created_at) VALUES (1, 1, 0, 0);
                 INSERT INTO campaign_sends (id, campaign_id, lead_id, step_id, mailbox_id, message_id, subject, sent_at)
                    VALUES (1, 1, 1, 1, 1, '{MESSAGE}', 'Hi', {now});
                 INSERT INTO tracked_links (send_id, position, url)
                    VALUES (1, 0, 'https://site.test/a?b=1&c=2'), (1, 1, 'https://other.test/');
                 INSERT INTO events (workspace_id, mailbox_id, kind, recipient, message_id, at)
                    VALUES (1, 1, 'delivered', 'lead@b.test', '{MESSAGE}', {now});"
            ))?;
            Ok::<_, rusqlite::Error>(())
        })
        .await
        .expect("seed");
    (dir, app, now)
}

fn open_token(app: &App, workspace_id: i64) -> String {
    token::sign(&app.keys, &Target::Open { workspace_id, message_id: MESSAGE.into() })
}

fn click_token(app: &App, position: u32) -> String {
    token::sign(&app.keys, &Target::Click { workspace_id: 1, message_id: MESSAGE.into(), position })
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    content_type: String,
    cache: String,
    body: Vec<u8>,
}

async fn send(app: &App, method: &str, host: &str, path: &str, agent: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(path).header(header::HOST, host);
    if let Some(agent) = agent {
        request = request.header(header::USER_AGENT, agent);
    }
    let response = crate::web::router(app.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let text = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, location) = (response.status(), text(header::LOCATION));
    let (content_type, cache) =
        (text(header::CONTENT_TYPE).unwrap_or_default(), text(header::CACHE_CONTROL).unwrap_or_default());
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, location, content_type, cache, body }
}

/// (kind, message_id, recipient, mailbox_id, detail, machine) of the opens and clicks, in order.
async fn hits(app: &App) -> Vec<(String, String, String, Option<i64>, String, bool)> {
    app.store
        .read(|conn| {
            conn.prepare(
                "SELECT kind, message_id, recipient, mailbox_id, detail, machine FROM events \
                 WHERE kind IN ('opened', 'clicked') ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn opens_are_recorded_with_machine_flags_and_answer_an_uncached_gif() {
    let (_dir, app, _) = app().await;
    let path = format!("/t/o/{}", open_token(&app, 1));
    let early = send(&app, "GET", "grove.test:8080", &path, Some(FIREFOX)).await;
    assert_eq!(
        (early.status, early.content_type.as_str(), early.body.as_slice()),
        (StatusCode::OK, "image/gif", &super::open::PIXEL[..])
    );
    assert!(early.cache.contains("no-store"), "{}", early.cache);
    app.clock.advance(60);
    send(&app, "GET", "grove.test:8080", &path, Some(FIREFOX)).await;
    let head = send(&app, "HEAD", "grove.test:8080", &path, Some(FIREFOX)).await;
    assert_eq!(head.status, StatusCode::OK);
    let proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    send(&app, "GET", "track.a.test", &path, Some(proxy)).await;
    send(&app, "GET", "grove.test:8080", &path, None).await;
    let hits = hits(&app).await;
    let flags: Vec<(&str, bool)> = hits.iter().map(|h| (h.4.as_str(), h.5)).collect();
    assert_eq!(flags, [(FIREFOX, true), (FIREFOX, false), (FIREFOX, true), (proxy, true), ("", true)]);
    for hit in &hits {
        assert_eq!(
            (hit.0.as_str(), hit.1.as_str(), hit.2.as_str(), hit.3),
            ("opened", MESSAGE, "lead@b.test", Some(1))
        );
    }
}

#[tokio::test]
async fn clicks_redirect_only_to_the_stored_link_of_the_token() {
    let (_dir, app, _) = app().await;
    app.clock.advance(60);
    let click = send(&app, "GET", "track.a.test", &format!("/t/c/{}", click_token(&app, 0)), Some(FIREFOX)).await;
    assert_eq!((click.status, click.location.as_deref()), (StatusCode::FOUND, Some("https://site.test/a?b=1&c=2")));
    assert!(click.cache.contains("no-store"));
    let scanner =
        send(&app, "GET", "grove.test:8080", &format!("/t/c/{}", click_token(&app, 1)), Some("curl/8.5")).await;
    assert_eq!(scanner.location.as_deref(), Some("https://other.test/"));
    let hits = hits(&app).await;
    let seen: Vec<(&str, &str, bool)> = hits.iter().map(|h| (h.0.as_str(), h.4.as_str(), h.5)).collect();
    assert_eq!(seen, [("clicked", "https://site.test/a?b=1&c=2", false), ("clicked", "https://other.test/", true)]);

    // Refused, with no redirect and nothing recorded: a tampered token, a position with no
    // stored link, an open token as a click, a click token as an open, and garbage.
    let token = click_token(&app, 0);
    let mut tampered = token.clone().into_bytes();
    tampered[4] = if tampered[4] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        format!("/t/c/{tampered}"),
        format!("/t/c/{}", click_token(&app, 2)),
        format!("/t/c/{}", open_token(&app, 1)),
        format!("/t/o/{token}"),
        "/t/c/https%3A%2F%2Fevil.test%2F".to_string(),
        "/t/c/".to_string(),
    ] {
        let refused = send(&app, "GET", "grove.test:8080", &path, Some(FIREFOX)).await;
        assert_eq!((refused.status, refused.location), (StatusCode::NOT_FOUND, None), "{path}");
    }
    assert_eq!(super::hits::request_host(&Default::default(), &"/x".parse().unwrap()), None);
    assert_eq!(self::hits(&app).await.len(), 2);
}

#[tokio::test]
async fn a_tracking_host_serves_tracking_and_unsubscribe_but_not_the_admin_ui() {
    let (_dir, app, _) = app().await;
    let pixel = format!("/t/o/{}", open_token(&app, 1));
    assert_eq!(send(&app, "GET", "track.a.test", &pixel, Some(FIREFOX)).await.status, StatusCode::OK);
    assert_eq!(send(&app, "GET", "TRACK.A.TEST.:443", &pixel, Some(FIREFOX)).await.status, StatusCode::OK);
    for path in ["/", "/login", "/healthz", "/w/1/domains", "/setup/x", "/t"] {
        let refused = send(&app, "GET", "track.a.test", path, Some(FIREFOX)).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!String::from_utf8_lossy(&refused.body).contains("password"), "{path}");
    }
    let unsubscribe = super::unsubscribe::token(&app.keys, 1, Some(1), "lead@b.test");
    let page = send(&app, "GET", "track.a.test", &format!("/unsubscribe/{unsubscribe}"), Some(FIREFOX)).await;
    assert_eq!(page.status, StatusCode::OK);
    // The admin UI on the base URL's host and on any other name.
    assert_eq!(send(&app, "GET", "grove.test:8080", "/login", Some(FIREFOX)).await.status, StatusCode::OK);
    assert_eq!(send(&app, "GET", "127.0.0.1:8080", "/login", Some(FIREFOX)).await.status, StatusCode::OK);
    // Another workspace's tracking host does not serve this workspace's tokens.
    assert_eq!(send(&app, "GET", "track.c.test", &pixel, Some(FIREFOX)).await.status, StatusCode::NOT_FOUND);
    let foreign = format!("/t/c/{}", click_token(&app, 0));
    assert_eq!(send(&app, "GET", "track.c.test", &foreign, Some(FIREFOX)).await.location, None);
    // A token of a workspace that did not send the message records nothing but still draws.
    let elsewhere = send(&app, "GET", "grove.test:8080", &format!("/t/o/{}", open_token(&app, 2)), None).await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    assert_eq!(hits(&app).await.len(), 2);
}

#[test]
fn tracking_urls_point_at_the_base_and_keep_our_own_links() {
    let keys = Arc::new(crate::crypto::MasterKey::from_bytes(&[9; 32]));
    assert!(Tracking::new(keys.clone(), 1, BASE, BASE, false, false).is_none(), "off");
    assert!(Tracking::new(keys.clone(), 1, "", "", true, true).is_none(), "nowhere to point");
    let tracking = Tracking::new(keys.clone(), 1, "https://track.a.test/", BASE, true, true).unwrap();
    let click = tracking.click_url("m@a.test", 3);
    let token = click.strip_prefix("https://track.a.test/t/c/").expect(&click);
    assert_eq!(
        token::verify(&keys, token),
        Some(Target::Click { workspace_id: 1, message_id: "m@a.test".into(), position: 3 })
    );
    let mut rewriter = tracking.rewriter("m@a.test");
    let text = format!("Go https://x.test/ or {BASE}/unsubscribe/T or https://track.a.test/t/o/P");
    let rewritten = rewriter.text(&text);
    assert!(rewritten.starts_with("Go https://track.a.test/t/c/"), "{rewritten}");
    assert!(rewritten.ends_with(&format!(" or {BASE}/unsubscribe/T or https://track.a.test/t/o/P")), "{rewritten}");
    assert_eq!(rewriter.into_links(), ["https://x.test/"]);
    let html = tracking.with_pixel("m@a.test", "<html><body><p>Hi</p></BODY></html>");
    assert!(html.starts_with("<html><body><p>Hi</p><img src=\"https://track.a.test/t/o/"), "{html}");
    assert!(html.ends_with(
        "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\"></BODY></html>"
    ));
    assert!(tracking.with_pixel("m@a.test", "<p>Hi</p>").starts_with("<p>Hi</p><img "));
}

/// A POST of the domain page's tracking host form as user `user` (1: owner, 2: member).
async fn post_tracking_host(app: &App, user: i64, value: &str) -> (StatusCode, Option<String>, String) {
    let now = app.clock.unix();
    let session = app
        .store
        .write(move |tx| {
            let token = crate::auth::sessions::create(tx, user, 0)?;
            tx.execute("UPDATE sessions SET expires_at = ?1", [now + 3600])?;
            Ok::<_, rusqlite::Error>(token)
        })
        .await
        .unwrap();
    let csrf = "abcdefghijabcdefghijabcdefghijabcdefghij123";
    let body = format!("csrf={csrf}&tracking_host={value}");
    let request = Request::builder()
        .method("POST")
        .uri("/w/1/domains/1/tracking-host")
        .header(header::HOST, "grove.test:8080")
        .header(header::COOKIE, format!("ig_session={session}; ig_csrf={csrf}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = crate::web::router(app.clone()).oneshot(request).await.unwrap();
    let (status, location) =
        (response.status(), response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string()));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, location, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_domain_page_sets_the_tracking_host_for_admins_with_errors_inline() {
    let (_dir, app, _) = app().await;
    app.store
        .write(|tx| {
            tx.execute_batch(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES
                    (1, 'owner@grove.test', 'x', 0), (2, 'member@grove.test', 'x', 0);
                 INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (1, 1, 'owner', 0), (1, 2, 'member', 0);
                 INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_enc, public_key, created_at)
                    VALUES (1, 's1', 'ed25519', x'00', 'AAAA', 0);",
            )
        })
        .await
        .unwrap();
    let stored = || async { app.store.read(|conn| super::host::of_domain(conn, 1, 1)).await.unwrap() };
    let (status, _, page) = post_tracking_host(&app, 1, "track.c.test").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"tracking-host-error\"") && page.contains("under a.test"), "{page}");
    assert!(page.contains("value=\"track.c.test\""), "what was typed stays");
    assert!(page.contains("id=\"tracking-host-current\"") && page.contains("<code>track.a.test</code>"), "{page}");
    assert_eq!(stored().await.as_deref(), Some("track.a.test"));

    let (status, location, _) = post_tracking_host(&app, 1, "Links.A.Test").await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/w/1/domains/1")));
    assert_eq!(stored().await.as_deref(), Some("links.a.test"));
    let audit: String = app
        .store
        .read(|c| c.query_row("SELECT detail FROM audit_log WHERE action = 'domain.tracking_host'", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(audit, "tracking host links.a.test");
    assert_eq!(post_tracking_host(&app, 1, "track.a.test").await.0, StatusCode::SEE_OTHER, "back to the first");

    assert_eq!(post_tracking_host(&app, 2, "").await.0, StatusCode::FORBIDDEN, "members cannot");
    assert_eq!(stored().await.as_deref(), Some("track.a.test"));
    assert_eq!(post_tracking_host(&app, 1, "none").await.0, StatusCode::SEE_OTHER);
    assert_eq!(stored().await, None);
}
