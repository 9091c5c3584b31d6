//! The settings page over HTTP against the real binary: it shows the certificate the mail ports
//! present (subject, names, a year of validity, self-signed), and its SHA-256 fingerprint equals
//! the hash of the certificate the implicit-TLS submission and IMAP ports hand a client, and what
//! `openssl x509 -fingerprint -sha256` prints for the data dir's `tls/cert.pem`.

mod common;

use std::process::Command;

use chrono::NaiveDateTime;
use common::{Appliance, have_peer, select_attr, select_text};
use rustls::pki_types::ServerName;

/// The SHA-256 fingerprint of the certificate presented on `address` (implicit TLS).
async fn presented_fingerprint(address: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(address).await.expect("connect");
    let connector = inboxgrove::mta::deliver::any_certificate_connector().expect("connector");
    let name = ServerName::try_from("mail.grove.test").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let der = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    digest.as_ref().iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

fn shown_time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M UTC").unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[tokio::test]
async fn the_settings_page_shows_the_certificate_the_mail_ports_present() {
    let appliance = Appliance::start();
    let browser = appliance.setup_admin("owner@grove.test").await;
    let home = browser.get("/workspaces").await;
    assert_eq!(select_attr(&home.body, "header a[href='/settings']", "href").len(), 1, "linked from the top bar");

    let page = browser.get("/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(select_text(&page.body, "#cert-source"), ["Self-signed (generated)"]);
    assert_eq!(select_text(&page.body, "#cert-subject"), ["CN=mail.grove.test"]);
    assert_eq!(select_text(&page.body, "#cert-names code"), ["mail.grove.test", "localhost"]);
    let from = shown_time(&select_text(&page.body, "#cert-not-before")[0]);
    let until = shown_time(&select_text(&page.body, "#cert-not-after")[0]);
    assert_eq!((until - from).num_days(), 365);
    assert!((chrono::Utc::now().naive_utc() - from).num_minutes().abs() <= 5, "valid from now: {from}");

    let shown = select_text(&page.body, "#cert-sha256").remove(0);
    assert_eq!(shown, presented_fingerprint(&appliance.smtp_submissions).await, "submission presents it");
    assert_eq!(shown, presented_fingerprint(&format!("{}:2993", appliance.mail_ip)).await, "IMAPS presents it");
    if have_peer("openssl") {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(appliance.data_dir().join("tls/cert.pem"))
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        let openssl = printed.trim().rsplit('=').next().expect("a fingerprint");
        assert_eq!(shown, openssl, "{printed}");
    }

    let signed_out = appliance.browser().get("/settings").await;
    assert!(signed_out.url.ends_with("/login"), "{}", signed_out.url);
    assert!(!signed_out.body.contains(&shown));
}
