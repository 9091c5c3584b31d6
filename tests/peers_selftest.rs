//! Proves the real-peer harness (tests/common/peers.rs) on its own, before the SMTP and delivery
//! tests rely on it: Knot answers what the zones say and follows live changes, two Postfix
//! instances share a port on different loopback addresses and script their refusals by local
//! part, the aiosmtpd server follows its reply script, and dkimpy passes a message it signed
//! itself (also after a trip through Postfix's Maildir) and fails it after tampering.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::peers::{Dns, PostfixMx, ScriptedSmtp, Zone, dkim_available, dkim_verify, free_port, txt_record};

const WAIT: Duration = Duration::from_secs(20);

/// Sends one message with swaks; its whole dialogue comes back in the output.
fn swaks(ip: &str, port: u16, to: &str, extra: &[&str]) -> Output {
    Command::new("swaks")
        .args(["--server", &format!("{ip}:{port}"), "--to", to, "--from", "a@b.test", "--timeout", "10"])
        .args(extra)
        .output()
        .expect("run swaks")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn dns_serves_zones_and_follows_live_changes() {
    if !Dns::available() {
        return;
    }
    let dns = Dns::start(&[
        Zone::new(
            "dest.test",
            &["@ MX 10 mx.dest.test.", "mx A 127.0.0.2", r#"sel._domainkey TXT "v=DKIM1; k=rsa; p=AAAA" "BBBB""#],
        ),
        Zone::new("nullmx.test", &["@ MX 0 ."]),
    ]);
    assert_eq!(dns.nameserver(), format!("127.0.0.1:{}", dns.port));
    assert_eq!(dns.dig("MX", "dest.test.").trim(), "10 mx.dest.test.");
    assert_eq!(dns.dig("A", "mx.dest.test.").trim(), "127.0.0.2");
    assert_eq!(dns.dig("TXT", "sel._domainkey.dest.test.").trim(), r#""v=DKIM1; k=rsa; p=AAAA" "BBBB""#);
    assert_eq!(dns.dig("MX", "nullmx.test.").trim(), "0 .");

    let kdig = Command::new("kdig")
        .args(["@127.0.0.1", "-p", &dns.port.to_string(), "+tcp", "+short", "MX", "dest.test."])
        .output()
        .expect("kdig");
    assert_eq!(String::from_utf8_lossy(&kdig.stdout).trim(), "10 mx.dest.test.", "over TCP too");

    dns.set_zone(&Zone::new("dest.test", &["@ MX 20 mx2.dest.test.", "mx2 A 127.0.0.3"]));
    assert_eq!(dns.dig("MX", "dest.test.").trim(), "20 mx2.dest.test.");
    assert_eq!(dns.dig("TXT", "sel._domainkey.dest.test.").trim(), "", "the old records are gone");

    dns.set_zone(&Zone::new("later.test", &["@ MX 5 mx.later.test."]));
    assert_eq!(dns.dig("MX", "later.test.").trim(), "5 mx.later.test.", "a zone added live");
    assert_eq!(dns.dig("MX", "dest.test.").trim(), "20 mx2.dest.test.", "other zones kept");
}

#[test]
fn txt_record_splits_long_values_into_255_character_strings() {
    let value = "x".repeat(300);
    let line = txt_record("sel._domainkey", &value);
    assert_eq!(line, format!("sel._domainkey TXT \"{}\" \"{}\"", "x".repeat(255), "x".repeat(45)));
}

#[test]
fn postfix_delivers_refuses_and_tempfails_by_local_part() {
    if !PostfixMx::available() || !common::have_peer("swaks") {
        return;
    }
    // Two instances at once, on the same port of two loopback addresses.
    let port = free_port("127.0.0.2");
    let first = PostfixMx::start("127.0.0.2", port, &["dest.test", "other.test"]);
    let second = PostfixMx::start("127.0.0.3", port, &["dest.test"]);

    let sent = swaks("127.0.0.2", port, "someone@dest.test", &["--header", "Subject: first"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let sent = swaks("127.0.0.2", port, "else@other.test", &["--header", "Subject: other domain"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let messages = first.wait_for(2, WAIT);
    let stored = String::from_utf8_lossy(&messages[0]);
    assert!(stored.contains("Subject: first"), "oldest first: {stored}");
    assert!(stored.contains("Delivered-To: someone@dest.test"), "{stored}");

    let rejected = text(&swaks("127.0.0.2", port, "reject@dest.test", &[]));
    assert!(rejected.contains("<** 550 5.1.1"), "{rejected}");
    let deferred = text(&swaks("127.0.0.2", port, "tempfail@other.test", &[]));
    assert!(deferred.contains("<** 450 4.2.0"), "{deferred}");

    let sent = swaks("127.0.0.3", port, "someone@dest.test", &["--header", "Subject: second"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let at_second = second.wait_for(1, WAIT);
    assert!(String::from_utf8_lossy(&at_second[0]).contains("Subject: second"));
    assert_eq!(first.messages().len(), 2, "the first instance got nothing more:\n{}", first.log());
    assert!(first.log().contains("550 5.1.1"), "the log is readable:\n{}", first.log());
}

#[test]
fn scripted_smtp_follows_its_script_per_recipient() {
    if !ScriptedSmtp::available() || !common::have_peer("swaks") {
        return;
    }
    let port = free_port("127.0.0.1");
    let server = ScriptedSmtp::start(
        "127.0.0.1",
        port,
        &[
            ("slow@dest.test", &["451 4.3.0 try again", "451 4.3.0 try again", "250 2.1.5 OK"]),
            ("gone@dest.test", &["550 5.1.1 no such user"]),
        ],
    );
    for _ in 0..2 {
        let dialogue = text(&swaks("127.0.0.1", port, "Slow@dest.test", &[]));
        assert!(dialogue.contains("<** 451 4.3.0 try again"), "{dialogue}");
    }
    let sent = swaks("127.0.0.1", port, "slow@dest.test", &["--header", "Subject: third time"]);
    assert!(sent.status.success(), "{}", text(&sent));
    for _ in 0..2 {
        let dialogue = text(&swaks("127.0.0.1", port, "gone@dest.test", &[]));
        assert!(dialogue.contains("<** 550 5.1.1 no such user"), "the last reply repeats: {dialogue}");
    }
    let sent = swaks("127.0.0.1", port, "anyone@dest.test", &["--header", "Subject: unscripted"]);
    assert!(sent.status.success(), "{}", text(&sent));

    let messages = server.wait_for(2, WAIT);
    assert!(String::from_utf8_lossy(&messages[0]).contains("Subject: third time"));
    assert!(String::from_utf8_lossy(&messages[1]).contains("Subject: unscripted"));
    assert!(messages[0].windows(2).any(|w| w == b"\r\n"), "raw DATA keeps CRLF");
    assert_eq!(server.attempts("slow@dest.test"), 3);
    assert_eq!(server.attempts("gone@dest.test"), 2);
    assert_eq!(server.attempts("nobody@dest.test"), 0);
    let envelopes = server.envelopes();
    assert_eq!(envelopes[0].mail_from, "a@b.test");
    assert_eq!(envelopes[0].rcpt_to, ["slow@dest.test"]);
}

#[test]
fn scripted_smtp_scripts_the_data_reply() {
    if !ScriptedSmtp::available() || !common::have_peer("swaks") {
        return;
    }
    let port = free_port("127.0.0.1");
    let server = ScriptedSmtp::start("127.0.0.1", port, &[("DATA", &["452 4.3.1 queue full", "250 2.0.0 OK"])]);
    let dialogue = text(&swaks("127.0.0.1", port, "x@dest.test", &[]));
    assert!(dialogue.contains("<** 452 4.3.1 queue full"), "{dialogue}");
    assert!(server.messages().is_empty(), "a refused DATA is not recorded");
    let sent = swaks("127.0.0.1", port, "x@dest.test", &[]);
    assert!(sent.status.success(), "{}", text(&sent));
    assert_eq!(server.wait_for(1, WAIT).len(), 1);
}

/// An RSA key pair: (private key PEM path, base64 DER public key for the p= tag).
fn rsa_key(dir: &Path) -> (std::path::PathBuf, String) {
    let key = dir.join("dkim.pem");
    let generated = Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048").output().expect("openssl");
    assert!(generated.status.success(), "{}", text(&generated));
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("openssl rsa -pubout");
    assert!(public.status.success(), "{}", text(&public));
    use base64::Engine;
    (key, base64::engine::general_purpose::STANDARD.encode(public.stdout))
}

/// Signs `message` with dkimpy itself (selector "sel", domain dest.test).
fn dkimpy_sign(message: &[u8], key: &Path) -> Vec<u8> {
    use std::io::Write;
    let python = common::peers::venv_python().expect("venv python");
    let script = "import sys, dkim\n\
        msg = sys.stdin.buffer.read()\n\
        key = open(sys.argv[1], 'rb').read()\n\
        sig = dkim.sign(msg, b'sel', b'dest.test', key, include_headers=[b'from', b'to', b'subject', b'date'])\n\
        sys.stdout.buffer.write(sig + msg)\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().expect("stdin").write_all(message).expect("write message");
    let output = child.wait_with_output().expect("sign");
    assert!(output.status.success(), "{}", text(&output));
    output.stdout
}

#[test]
fn dkim_verify_passes_a_dkimpy_signature_and_fails_after_tampering() {
    if !Dns::available() || !dkim_available() || !common::have_peer("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (key, public) = rsa_key(dir.path());
    let record = txt_record("sel._domainkey", &format!("v=DKIM1; k=rsa; p={public}"));
    assert!(record.matches('"').count() >= 4, "a 2048-bit key needs two strings: {record}");
    let dns = Dns::start(&[Zone::new("dest.test", &[&record])]);

    let message =
        b"From: a@dest.test\r\nTo: b@other.test\r\nSubject: signed\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
        Message-ID: <1@dest.test>\r\n\r\nHello,\r\nthis is signed.\r\n";
    let signed = dkimpy_sign(message, &key);
    let (passed, log) = dkim_verify(&signed, &dns);
    assert!(passed, "dkimpy's own signature passes: {log}");

    let tampered = String::from_utf8(signed.clone()).expect("utf8").replace("this is signed", "this is forged");
    let (passed, log) = dkim_verify(tampered.as_bytes(), &dns);
    assert!(!passed, "a changed body fails: {log}");
    assert!(log.contains("body hash mismatch"), "{log}");

    let (passed, log) = dkim_verify(message, &dns);
    assert!(!passed && log.contains("no DKIM-Signature"), "{log}");

    dns.set_zone(&Zone::new("dest.test", &[]));
    let (passed, log) = dkim_verify(&signed, &dns);
    assert!(!passed, "fails once the key is unpublished: {log}");
}

#[test]
fn dkim_verify_passes_a_copy_stored_by_postfix() {
    if !Dns::available() || !dkim_available() || !PostfixMx::available() || !common::have_peer("swaks") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (key, public) = rsa_key(dir.path());
    let dns = Dns::start(&[Zone::new("dest.test", &[&txt_record("sel._domainkey", &format!("v=DKIM1; p={public}"))])]);
    let message =
        b"From: a@dest.test\r\nTo: b@dest.test\r\nSubject: via postfix\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
        \r\nA line.\r\n.leading dot survives\r\n";
    let signed = dkimpy_sign(message, &key);
    let file = dir.path().join("signed.eml");
    std::fs::write(&file, &signed).expect("write message");

    let port = free_port("127.0.0.2");
    let mx = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let sent = swaks("127.0.0.2", port, "b@dest.test", &["--data", file.to_str().expect("path")]);
    assert!(sent.status.success(), "{}", text(&sent));
    let stored = mx.wait_for(1, WAIT).remove(0);
    assert!(!stored.windows(2).any(|w| w == b"\r\n"), "Maildir copies use LF");
    let (passed, log) = dkim_verify(&stored, &dns);
    assert!(passed, "the stored copy verifies: {log}\n{}", String::from_utf8_lossy(&stored));
}

#[test]
fn postfix_offers_starttls_only_when_started_with_tls() {
    if !PostfixMx::available() || !common::have_peer("swaks") {
        return;
    }
    let port = free_port("127.0.0.2");
    let plain = PostfixMx::start("127.0.0.2", port, &["dest.test"]);
    let tls = PostfixMx::start_tls("127.0.0.3", port, &["dest.test"]);

    let ehlo = text(&swaks("127.0.0.2", port, "x@dest.test", &["--quit-after", "EHLO"]));
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let sent = swaks("127.0.0.3", port, "x@dest.test", &["--tls", "--header", "Subject: over tls"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let stored = String::from_utf8_lossy(&tls.wait_for(1, WAIT)[0]).into_owned();
    assert!(stored.contains("(using TLSv1.3"), "{stored}");
    assert!(plain.messages().is_empty());
}
