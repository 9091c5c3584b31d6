//! The router in process (no socket, a temporary database), for what is decided per request:
//! CSRF on every form, the `Secure` cookie flag, roles, and `/healthz`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::app::App;
use crate::auth::sessions;
use crate::config::Config;

/// An appliance on a temporary data dir with workspace 1, domain 1 (a.test), mailbox 1, queue
/// row 1, and users: 1 owner@, 2 admin@, 3 member@ (each with a session).
async fn app(base_url: &str) -> (tempfile::TempDir, App, [String; 3]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
    config.http.base_url = base_url.into();
    let app = App::open(config).await.expect("open app");
    let tokens = app
        .store
        .write(|tx| {
            tx.execute_batch(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES
                    (1, 'owner@grove.test', 'x', 0), (2, 'admin@grove.test', 'x', 0), (3, 'member@grove.test', 'x', 0);
                 INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES
                    (1, 1, 'owner', 0), (1, 2, 'admin', 0), (1, 3, 'member', 0);
                 INSERT INTO domains (id, workspace_id, name, created_at) VALUES (1, 1, 'a.test', 0);
                 INSERT INTO mailboxes (id, workspace_id, domain_id, local_part, address, first_name, last_name,
                    display_name, password_hash, created_at) VALUES (1, 1, 1, 'ann', 'ann@a.test', 'A', 'A', 'A', 'x', 0);
                 INSERT INTO messages (id, workspace_id, mailbox_id, mail_from, size, body, created_at)
                    VALUES (1, 1, 1, 'ann@a.test', 1, x'00', 0);
                 INSERT INTO queue (id, message_id, workspace_id, mailbox_id, recipient, domain, next_attempt_at,
                    created_at, updated_at) VALUES (1, 1, 1, 1, 'lead@b.test', 'b.test', 0, 0, 0);",
            )?;
            Ok::<_, rusqlite::Error>([sessions::create(tx, 1, 0)?, sessions::create(tx, 2, 0)?, sessions::create(tx, 3, 0)?])
        })
        .await
        .expect("seed");
    let now = app.clock.unix();
    app.store
        .write(move |tx| tx.execute("UPDATE sessions SET expires_at = ?1", [now + 3600]))
        .await
        .expect("live sessions");
    (dir, app, tokens)
}

/// The response to one request with a session and a CSRF cookie, or with no cookies at all when
/// `session` is empty.
async fn send(app: &App, method: &str, uri: &str, session: &str, body: &str) -> (StatusCode, Vec<String>, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if !session.is_empty() {
        request = request.header(
            header::COOKIE,
            format!("ig_session={session}; ig_csrf=abcdefghijabcdefghijabcdefghijabcdefghij123"),
        );
    }
    let request = request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = super::router(app.clone()).oneshot(request).await.expect("a response");
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, cookies, String::from_utf8_lossy(&body).into_owned())
}

/// Every POST route of the UI, from the router's source, with its path parameters filled in.
fn post_routes() -> Vec<String> {
    let source = include_str!("ui/mod.rs");
    source
        .lines()
        .filter(|line| line.contains(".route(") && line.contains("post("))
        .filter_map(|line| line.split('"').nth(1))
        .map(|path| {
            path.replace("{ws}", "1")
                .replace("{id}", "1")
                .replace("{alias}", "1")
                .replace("{batch}", "1")
                .replace("{token}", "some-token")
        })
        .collect()
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing() {
    let (_dir, app, [owner, ..]) = app("http://127.0.0.1:8080").await;
    let routes = post_routes();
    assert!(routes.len() >= 15, "{routes:?}");
    let audited = || async {
        app.store.read(|c| c.query_row("SELECT count(*) FROM audit_log", [], |r| r.get::<_, i64>(0))).await.unwrap()
    };
    let before = audited().await;
    for route in &routes {
        if route.starts_with("/unsubscribe/") {
            continue; // RFC 8058 one-click: mail providers post it without any cookie
        }
        for body in ["name=x.test&email=a@b.test&count=1", "csrf=wrong-token&name=x.test&email=a@b.test&count=1"] {
            let (status, _, page) = send(&app, "POST", route, &owner, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {route} with {body:?}: {page}");
        }
    }
    assert_eq!(audited().await, before, "no refused form changed anything");
    let domains: i64 = app.store.read(|c| c.query_row("SELECT count(*) FROM domains", [], |r| r.get(0))).await.unwrap();
    assert_eq!(domains, 1);
}

#[tokio::test]
async fn session_cookies_are_secure_only_behind_an_https_base_url() {
    for (base, secure) in [("https://grove.test", true), ("http://127.0.0.1:8080", false)] {
        let (_dir, app, _) = app(base).await;
        let (status, cookies, _) = send(&app, "GET", "/login", "", "").await;
        assert_eq!(status, StatusCode::OK);
        let csrf = cookies.iter().find(|c| c.starts_with("ig_csrf=")).expect("a CSRF cookie");
        assert_eq!(csrf.contains("; Secure"), secure, "{base}: {csrf}");
        assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"), "{csrf}");
        let session = crate::web::session::cookie_header(&app, "ig_session", "t", Some(60));
        assert_eq!(session.to_str().unwrap().contains("; Secure"), secure, "{base}: {session:?}");
    }
}

#[tokio::test]
async fn admins_administer_but_cannot_grant_ownership_and_members_cannot_administer() {
    let (_dir, app, [_, admin, member]) = app("http://127.0.0.1:8080").await;
    let csrf = "csrf=abcdefghijabcdefghijabcdefghijabcdefghij123";
    assert_eq!(send(&app, "GET", "/w/1/audit", &admin, "").await.0, StatusCode::OK, "admins read the audit log");
    let (status, _, page) =
        send(&app, "POST", "/w/1/members", &admin, &format!("{csrf}&email=new@grove.test&role=admin")).await;
    assert_eq!(status, StatusCode::OK, "admins invite: {page}");
    assert!(page.contains("/invite/"), "the invite link is shown");
    let (status, _, _) =
        send(&app, "POST", "/w/1/members", &admin, &format!("{csrf}&email=boss@grove.test&role=owner")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only owners grant ownership");
    assert_eq!(send(&app, "GET", "/w/1/audit", &member, "").await.0, StatusCode::FORBIDDEN, "members do not");
    let (status, _, _) =
        send(&app, "POST", "/w/1/members", &member, &format!("{csrf}&email=x@grove.test&role=viewer")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members do not invite");
    let invites: Vec<(String, String)> = app
        .store
        .read(|c| {
            c.prepare("SELECT email, role FROM invites")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
        .unwrap();
    assert_eq!(invites, [("new@grove.test".to_string(), "admin".to_string())]);
}

#[tokio::test]
async fn healthz_answers_503_when_the_store_is_unusable() {
    let (dir, app, _) = app("http://127.0.0.1:8080").await;
    assert_eq!(send(&app, "GET", "/healthz", "", "").await.0, StatusCode::OK);
    // The database file is overwritten with garbage under the running appliance.
    let path = dir.path().join("inboxgrove.db");
    let size = std::fs::metadata(&path).expect("the database file").len();
    std::fs::write(&path, vec![0x5a; usize::try_from(size).unwrap()]).expect("overwrite");
    std::fs::remove_file(dir.path().join("inboxgrove.db-wal")).ok();
    std::fs::remove_file(dir.path().join("inboxgrove.db-shm")).ok();
    let (status, _, body) = send(&app, "GET", "/healthz", "", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "store unusable\n"));
}

#[tokio::test]
async fn workspace_settings_are_saved_by_admins_and_only_shown_to_members() {
    let (_dir, app, [_, admin, member]) = app("http://127.0.0.1:8080").await;
    let form = "csrf=abcdefghijabcdefghijabcdefghijabcdefghij123&name=w&time_zone=UTC&default_daily_limit=12\
                &postal_address=1+Main+St";
    let stored = || async {
        app.store.read(|c| crate::workspaces::default_daily_limit(c, 1)).await.expect("the default daily limit")
    };
    let (status, _, page) = send(&app, "GET", "/w/1/settings/workspace", &member, "").await;
    assert_eq!(status, StatusCode::OK, "members see the settings: {page}");
    assert!(page.contains("id=\"ws-default-daily-limit\">40<"), "read-only: {page}");
    assert!(!page.contains("Save workspace settings"), "no form for members");
    assert_eq!(send(&app, "POST", "/w/1/settings/workspace", &member, form).await.0, StatusCode::FORBIDDEN);
    assert_eq!(stored().await, 40, "a member changed nothing");
    let (status, _, page) = send(&app, "POST", "/w/1/settings/workspace", &admin, form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "admins save: {page}");
    assert_eq!(stored().await, 12);
}
